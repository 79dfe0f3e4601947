r"""LeCam regularization (Tseng et al. 2021): keep D's logits near the moving averages of the other side's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import torch
from torch import nn

from .._checks import check_finite, check_int, check_nonempty, check_nonnegative, check_probability
from ..losses._reduction import Reduction, check_reduction, check_scale_reduction
from ..losses.adversarial import ScaleReduction
from ..outputs import PredLike, as_logits, check_same_scales

Anchors = Union[float, torch.Tensor, Sequence[float]]


def _check_options(weight: float, scale_reduction: str, reduction: str) -> None:
    check_nonnegative("weight", weight)
    check_scale_reduction(scale_reduction)
    check_reduction(reduction)


def _wide(x: torch.Tensor) -> torch.Tensor:
    if not x.is_floating_point():
        raise TypeError(f"discriminator logits must be floating point, got dtype {x.dtype}")
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _anchors(name: str, value: Anchors, num_scales: int, like: torch.Tensor) -> list[torch.Tensor]:
    """One 0-d constant per scale (a number or a 0-d tensor is shared by every scale)."""
    if isinstance(value, torch.Tensor):
        t = value.detach().to(device=like.device, dtype=like.dtype)
        if t.ndim == 0:
            return [t] * num_scales
        if t.shape != (num_scales,):
            raise ValueError(
                f"{name} must be a number, a 0-d tensor or a tensor of shape (num_scales,) = ({num_scales},), "
                f"got shape {tuple(t.shape)}"
            )
        return list(t.unbind(0))
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != num_scales:
            raise ValueError(f"{name} must hold one anchor per scale ({num_scales}), got {len(value)}")
        return [like.new_tensor(check_finite(f"{name}[{i}]", v)) for i, v in enumerate(value)]
    return [like.new_tensor(check_finite(name, value))] * num_scales


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0] if x.ndim else 1, -1).mean(1)


def lecam_regularization(
    real_pred: PredLike,
    fake_pred: PredLike,
    *,
    ema_real: Anchors,
    ema_fake: Anchors,
    weight: float = 1.0,
    scale_reduction: ScaleReduction = "sum",
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""LeCam: the squared hinge of real logits above the fake anchor and of fake logits below the real one.

    .. math::
        R_\text{LC} = \lambda \Big(\mathbb{E}_x\big[\max(0, D(x) - \alpha_F)^2\big]
        + \mathbb{E}_z\big[\max(0, \alpha_R - D(G(z)))^2\big]\Big)

    added to the discriminator's loss, with :math:`\alpha_R, \alpha_F` exponential moving averages of the
    discriminator's mean logits on real and on fake samples (:class:`LeCamRegularization` keeps them; here
    they are given and treated as constants). It is the official code's ``lecam_reg``: the paper's
    :math:`\|D(x) - \alpha_F\|^2 + \|D(G(z)) - \alpha_R\|^2` applied one-sidedly, so that only real logits
    above the fake anchor and fake logits below the real anchor are pulled back. Per scale the
    expectations are means over all logits (a patch discriminator's patches), then summed (or averaged)
    over scales; each scale has its own anchors.

    Args:
        real_pred: logits on real samples (any form the adversarial losses accept).
        fake_pred: logits on fake samples, the same scales and per-scale shapes after the batch dimension.
        ema_real: :math:`\alpha_R`: a number, a 0-d tensor, or one per scale (a sequence or a
            ``(num_scales,)`` tensor).
        ema_fake: :math:`\alpha_F`, the same forms.
        weight: :math:`\lambda` (1; the paper tunes it per dataset and architecture).
        scale_reduction: ``"sum"`` or ``"mean"`` over scales.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``, sample :math:`i`'s real term plus its
            fake term, one batch size for both) over the batch; ``"sum"`` sums each side over its own batch.

    Returns:
        The weighted penalty (float32 or wider): a scalar, or ``(N,)`` for ``reduction="none"``.

    Example:
        >>> import torch
        >>> from ganblocks.penalties import lecam_regularization
        >>> real, fake = torch.tensor([[2.0], [0.0]]), torch.tensor([[-1.0], [1.0]])
        >>> # real above α_F = 0: (2 - 0)^2, 0; fake below α_R = 1: (1 + 1)^2, 0; means 2 + 2
        >>> lecam_regularization(real, fake, ema_real=1.0, ema_fake=0.0)
        tensor(4.)

    Reference:
        Tseng et al., "Regularizing Generative Adversarial Networks under Limited Data", CVPR 2021
        (google/lecam-gan, ``lecam_reg``).
    """
    _check_options(weight, scale_reduction, reduction)
    real = [_wide(r) for r in as_logits("real_pred", real_pred)]
    fake = [_wide(f) for f in as_logits("fake_pred", fake_pred)]
    check_same_scales("real_pred", real, "fake_pred", fake, batch=reduction == "none")
    for i, (r, f) in enumerate(zip(real, fake)):
        check_nonempty(f"real_pred (scale {i})", r)
        check_nonempty(f"fake_pred (scale {i})", f)
    alpha_r = _anchors("ema_real", ema_real, len(real), real[0])
    alpha_f = _anchors("ema_fake", ema_fake, len(real), real[0])
    terms = []
    for r, f, ar, af in zip(real, fake, alpha_r, alpha_f):
        above = torch.relu(r - af).square()
        below = torch.relu(ar - f).square()
        if reduction == "mean":
            terms.append(above.mean() + below.mean())
        elif reduction == "sum":
            terms.append(_per_sample(above).sum() + _per_sample(below).sum())
        else:
            terms.append(_per_sample(above) + _per_sample(below))
    total = torch.stack(terms).sum(0)
    total = total / len(terms) if scale_reduction == "mean" else total
    return weight * total


class LeCamRegularization(nn.Module):
    r"""LeCam regularization with its moving anchors; see :func:`lecam_regularization`.

    ``forward(real_pred, fake_pred)`` first updates the anchors with this step's logits, as the official
    code does, then returns the penalty:

    .. math::
        \alpha_R \leftarrow \gamma\,\alpha_R + (1 - \gamma)\,\mathbb{E}[D(x)], \qquad
        \alpha_F \leftarrow \gamma\,\alpha_F + (1 - \gamma)\,\mathbb{E}[D(G(z))]

    per scale, with :math:`\gamma` = ``decay`` (0.99). The first ``max(start_step, 1)`` updates use decay 0,
    setting the anchors to the step's means (the official code's ``ema_losses`` runs with decay 0 before
    its ``start_itr``; StudioGAN's BigGAN CIFAR-10 configuration: ``weight=0.3, decay=0.9,
    start_step=1000``). The anchors, and
    the count of updates, are buffers: they move with ``.to()`` and are saved in ``state_dict()``. They are
    updated without gradient and without a device synchronisation; under DDP each process keeps its own.

    Args:
        weight: :math:`\lambda` (1).
        decay: :math:`\gamma`, in [0, 1] (0.99).
        start_step: the number of updates that set the anchors to the step's means before the moving
            average starts (0: only the first).
        num_scales: the number of scales of the discriminator's output (one pair of anchors each).
        scale_reduction: ``"sum"`` or ``"mean"`` over scales.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
        device: device of the anchors.

    Example:
        >>> import torch
        >>> from ganblocks.penalties import LeCamRegularization
        >>> lecam = LeCamRegularization(decay=0.5)
        >>> lecam(torch.full((4, 1), 2.0), torch.full((4, 1), -2.0))  # anchors 2 and -2: real 2 > -2, fake -2 < 2
        tensor(32.)
        >>> lecam.ema_real, lecam.ema_fake
        (tensor([2.]), tensor([-2.]))
        >>> _ = lecam(torch.zeros(4, 1), torch.zeros(4, 1))  # halfway to 0
        >>> lecam.ema_real, lecam.ema_fake
        (tensor([1.]), tensor([-1.]))
    """

    ema_real: torch.Tensor
    ema_fake: torch.Tensor
    num_updates: torch.Tensor

    def __init__(
        self,
        *,
        weight: float = 1.0,
        decay: float = 0.99,
        start_step: int = 0,
        num_scales: int = 1,
        scale_reduction: ScaleReduction = "sum",
        reduction: Reduction = "mean",
        device: Optional[Union[torch.device, str]] = None,
    ) -> None:
        super().__init__()
        _check_options(weight, scale_reduction, reduction)
        self.weight = float(weight)
        self.decay = check_probability("decay", decay)
        self.start_step = check_int("start_step", start_step, minimum=0)
        self.num_scales = check_int("num_scales", num_scales)
        self.scale_reduction: ScaleReduction = scale_reduction
        self.reduction: Reduction = reduction
        self.register_buffer("ema_real", torch.zeros(num_scales, device=device))
        self.register_buffer("ema_fake", torch.zeros(num_scales, device=device))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long, device=device))

    @torch.no_grad()
    def update(self, real_pred: PredLike, fake_pred: PredLike) -> None:
        """Move the anchors towards this step's mean logits (per scale)."""
        real = as_logits("real_pred", real_pred)
        fake = as_logits("fake_pred", fake_pred)
        for name, logits in (("real_pred", real), ("fake_pred", fake)):
            if len(logits) != self.num_scales:
                raise ValueError(f"{name} must have num_scales={self.num_scales} scale(s), got {len(logits)}")
            for i, x in enumerate(logits):
                check_nonempty(f"{name} (scale {i})", x)
        means_r = torch.stack([_wide(r.detach()).mean().float() for r in real]).to(self.ema_real.device)
        means_f = torch.stack([_wide(f.detach()).mean().float() for f in fake]).to(self.ema_fake.device)
        # Decay 0 on the first updates (the anchors start at the means), without reading the count back.
        decay = torch.where(self.num_updates >= max(self.start_step, 1), self.decay, 0.0)
        self.ema_real.copy_(torch.lerp(means_r, self.ema_real, decay))
        self.ema_fake.copy_(torch.lerp(means_f, self.ema_fake, decay))
        self.num_updates.add_(1)

    def forward(self, real_pred: PredLike, fake_pred: PredLike, *, update: bool = True) -> torch.Tensor:
        """Update the anchors (unless ``update=False``), then the penalty with them."""
        if update:
            self.update(real_pred, fake_pred)
        return lecam_regularization(
            real_pred,
            fake_pred,
            ema_real=self.ema_real,
            ema_fake=self.ema_fake,
            weight=self.weight,
            scale_reduction=self.scale_reduction,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"weight={self.weight}, decay={self.decay}, start_step={self.start_step}, num_scales={self.num_scales}, "
            f"scale_reduction={self.scale_reduction!r}, reduction={self.reduction!r}"
        )
