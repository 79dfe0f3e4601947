r"""WGAN-GP: the gradient penalty on random interpolates of real and fake samples (Gulrajani et al. 2017)."""

from __future__ import annotations

from typing import Literal, Optional, TypeAlias, get_args

import torch
from torch import nn

from .._checks import check_nonnegative, check_positive, check_requires_autograd, check_same_dtype
from ..losses._reduction import Reduction, check_reduction
from ..outputs import check_same_scales
from ._common import (
    Discriminator,
    Inputs,
    LogitReduction,
    check_condition,
    check_inputs,
    check_logit_reduction,
    finish,
    input_gradients_of,
    norm_deviations,
    working_dtype,
)

GradientNorm: TypeAlias = Literal["sample", "pixel"]
GRADIENT_NORMS: tuple[str, ...] = get_args(GradientNorm)


def _check_options(weight: float, norm: str, target: float, logit_reduction: str, reduction: str) -> None:
    check_nonnegative("weight", weight)
    if norm not in GRADIENT_NORMS:
        raise ValueError(f"norm must be one of {GRADIENT_NORMS}, got {norm!r}")
    check_positive("target", target, allow_zero=True)
    check_logit_reduction(logit_reduction)
    check_reduction(reduction)


def gradient_penalty(
    discriminator: Discriminator,
    real: Inputs,
    fake: Inputs,
    *,
    weight: float = 10.0,
    norm: GradientNorm = "sample",
    target: float = 1.0,
    one_sided: bool = False,
    logit_reduction: LogitReduction = "sum",
    reduction: Reduction = "mean",
    autocast: bool = False,
    condition: Optional[Inputs] = None,
    generator: Optional[torch.Generator] = None,
    scaler: Optional[torch.amp.GradScaler] = None,
) -> torch.Tensor:
    r"""WGAN-GP's penalty on the gradient norm at random points between real and fake samples.

    .. math::
        \begin{aligned}
        \hat x &= \alpha\, x_\text{real} + (1 - \alpha)\, x_\text{fake},
            \qquad \alpha \sim U[0, 1] \text{ per sample}, \\
        GP &= \lambda\, \mathbb{E}\big[(\|\nabla_{\hat x} D(\hat x)\|_2 - t)^2\big]
        \end{aligned}

    with :math:`t` = ``target``; ``one_sided=True`` penalises only norms above the target,
    :math:`\max(0, \|\cdot\| - t)^2` (WGAN-LP, Petzka et al. 2018). :math:`D(\hat x)` is the sum of every
    logit the discriminator returns for the sample (all patches, all scales), or with
    ``logit_reduction="mean"`` the sum over scales of each scale's mean logit (see
    :func:`~ganblocks.penalties.r1_penalty`). ``real`` and ``fake`` are detached; :math:`\hat x` is
    ``torch.lerp(fake, real, alpha)``, computed in float32 for half inputs and rounded once.

    ``norm="sample"`` takes the norm over all non-batch dimensions (and over all scales jointly when the
    inputs are lists, as for MSG-GAN: the interpolation uses one :math:`\alpha` per sample for all scales,
    so the penalty constrains D along one straight line in the joint input space). ``norm="pixel"`` takes
    it over the channel dimension at each position and averages the squared deviation over samples and
    positions of every scale (the sample's value): a per-location constraint for patch discriminators. ProGAN's variant
    (target 750) corresponds to ``target=750, weight=lambda / 750**2``.

    Compiled discriminators, DDP, ``scaler`` and NaN inputs behave as described in
    :func:`~ganblocks.penalties.r1_penalty`. Mixed precision differs: by default the discriminator runs
    outside an enclosing ``torch.autocast``, in its own dtype (float32 for a float32 module), because
    :math:`(\|\nabla\| - t)^2` multiplies the relative error of a low-precision gradient norm by
    about :math:`2\|\nabla\| / |\|\nabla\| - t|`: with norms near the target, as a trained critic's
    are, bfloat16 autocast puts the penalty tens of percent off (R1, which has no target, stays within a
    few percent). ``autocast=True`` keeps the caller's autocast, faster and less accurate.

    Args:
        discriminator: a callable returning a tensor, a list of per-scale tensors or a
            ``DiscriminatorOutput``; called with the interpolate (a tensor or a list of scales).
        real: real samples ``(N, ...)`` or a list of scales.
        fake: fake samples with exactly the shapes of ``real``.
        weight: :math:`\lambda` (10 in WGAN-GP).
        norm: ``"sample"`` or ``"pixel"``.
        target: the target norm :math:`t` (1 in WGAN-GP; 0 gives a zero-centred penalty).
        one_sided: penalise only norms above ``target``.
        logit_reduction: ``"sum"`` (WGAN-GP's :math:`D` for a single-logit critic) or ``"mean"`` over a
            patch discriminator's logits, per scale.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch; ``"none"`` returns
            :math:`\lambda (\|\nabla\| - t)^2` per sample, shape ``(N,)``.
        autocast: run the discriminator under the enclosing ``torch.autocast`` (True) or outside it, in
            its own dtype (False, default; see above).
        condition: for a conditional discriminator that sees the condition concatenated with the image
            along the channels: the condition ``(N, C_cond, *spatial)`` shared by the real and fake
            samples (a list with one per scale for lists). D is called with
            ``torch.cat([condition, x_hat], 1)``; the condition is not interpolated and not
            differentiated, so the norm runs over the image channels only. Detached, and cast to the
            inputs' dtype.
        generator: a ``torch.Generator`` for :math:`\alpha`, on the inputs' device.
        scaler: an enabled ``torch.amp.GradScaler`` to scale the inner gradient with, or None.

    Returns:
        The weighted penalty (float32 or wider): a scalar, or ``(N,)`` for ``reduction="none"``.

    Example:
        >>> import torch
        >>> from ganblocks.penalties import gradient_penalty
        >>> critic = lambda x: x @ torch.tensor([3.0, 4.0])  # gradient norm 5 everywhere
        >>> gradient_penalty(critic, torch.randn(8, 2), torch.randn(8, 2), weight=1.0)
        tensor(16., grad_fn=<AddBackward0>)

    Reference:
        Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.
    """
    _check_options(weight, norm, target, logit_reduction, reduction)
    check_requires_autograd("gradient_penalty")
    reals, single = check_inputs("real", real)
    fakes, fake_single = check_inputs("fake", fake)
    if single != fake_single:
        raise ValueError("real and fake must both be tensors or both be lists of scales")
    check_same_scales("real", reals, "fake", fakes, batch=True)
    for i, (r, f) in enumerate(zip(reals, fakes)):
        # torch.lerp does not promote: a float64 real and a float32 fake would fail inside it.
        check_same_dtype("real" if single else f"real[{i}]", r, "fake" if single else f"fake[{i}]", f)
    if norm == "pixel" and any(t.ndim < 3 for t in reals):
        raise ValueError(
            f"norm='pixel' needs inputs (N, C, *spatial), got shapes {[tuple(t.shape) for t in reals]}"
        )
    conds = check_condition(condition, reals, single, "real")
    n = reals[0].shape[0]
    alpha = torch.rand(n, device=reals[0].device, generator=generator)
    points: list[torch.Tensor] = []
    for r, f in zip(reals, fakes):
        w = working_dtype(r)
        a = alpha.to(w).view(n, *([1] * (r.ndim - 1)))
        points.append(torch.lerp(f.detach().to(w), r.detach().to(w), a).to(r.dtype).requires_grad_(True))
    grads, total = input_gradients_of(
        discriminator,
        points,
        single,
        conds,
        logit_reduction=logit_reduction,
        scaler=scaler,
        autocast=autocast,
        name="interpolate",
    )
    per_sample = norm_deviations(grads, norm=norm, target=target, one_sided=one_sided)
    return finish(per_sample, weight, reduction, total)


class GradientPenalty(nn.Module):
    r"""WGAN-GP gradient penalty; see :func:`ganblocks.penalties.gradient_penalty`.

    Args:
        weight: :math:`\lambda`.
        norm: ``"sample"`` or ``"pixel"``.
        target: the target norm.
        one_sided: penalise only norms above the target.
        logit_reduction: ``"sum"`` or ``"mean"`` over a patch discriminator's logits.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
        autocast: keep an enclosing ``torch.autocast`` for the discriminator (False: run it in its dtype).

    Example:
        >>> import torch
        >>> from ganblocks import GradientPenalty
        >>> gp = GradientPenalty(weight=1.0)
        >>> gp(lambda x: x @ torch.tensor([0.0, 1.0]), torch.randn(4, 2), torch.randn(4, 2))  # unit gradient
        tensor(0., grad_fn=<AddBackward0>)
    """

    def __init__(
        self,
        *,
        weight: float = 10.0,
        norm: GradientNorm = "sample",
        target: float = 1.0,
        one_sided: bool = False,
        logit_reduction: LogitReduction = "sum",
        reduction: Reduction = "mean",
        autocast: bool = False,
    ) -> None:
        super().__init__()
        _check_options(weight, norm, target, logit_reduction, reduction)
        self.weight = float(weight)
        self.norm: GradientNorm = norm
        self.target = float(target)
        self.one_sided = bool(one_sided)
        self.logit_reduction: LogitReduction = logit_reduction
        self.reduction: Reduction = reduction
        self.autocast = bool(autocast)

    def forward(
        self,
        discriminator: Discriminator,
        real: Inputs,
        fake: Inputs,
        *,
        condition: Optional[Inputs] = None,
        generator: Optional[torch.Generator] = None,
        scaler: Optional[torch.amp.GradScaler] = None,
    ) -> torch.Tensor:
        return gradient_penalty(
            discriminator,
            real,
            fake,
            weight=self.weight,
            norm=self.norm,
            target=self.target,
            one_sided=self.one_sided,
            logit_reduction=self.logit_reduction,
            reduction=self.reduction,
            autocast=self.autocast,
            condition=condition,
            generator=generator,
            scaler=scaler,
        )

    def extra_repr(self) -> str:
        return (
            f"weight={self.weight}, norm={self.norm!r}, target={self.target}, one_sided={self.one_sided}, "
            f"logit_reduction={self.logit_reduction!r}, reduction={self.reduction!r}, "
            f"autocast={self.autocast}"
        )
