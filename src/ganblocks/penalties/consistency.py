r"""Balanced consistency regularization (bCR, Zhao et al. 2020): D(x) ≈ D(T(x)) on real and fake images."""

from __future__ import annotations

from typing import Callable, Literal, Optional, TypeAlias

import torch
from torch import nn

from .._checks import check_float_tensor, check_nonnegative, check_requires_autograd
from ..outputs import PredLike, as_logits, check_same_scales

ScaleReduction: TypeAlias = Literal["sum", "mean"]
Augment = Callable[[torch.Tensor], torch.Tensor]
Discriminator = Callable[[torch.Tensor], PredLike]


def _check_options(weight_real: float, weight_fake: float, scale_reduction: str) -> None:
    check_nonnegative("weight_real", weight_real)
    check_nonnegative("weight_fake", weight_fake)
    if scale_reduction not in ("sum", "mean"):
        raise ValueError(f"scale_reduction must be one of ('sum', 'mean'), got {scale_reduction!r}")


def _wide(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _term(
    name: str,
    discriminator: Discriminator,
    x: torch.Tensor,
    pred: Optional[PredLike],
    augment: Augment,
    scale_reduction: str,
) -> torch.Tensor:
    """The mean squared difference of the logits of ``x`` and of ``augment(x)``, over scales."""
    x = check_float_tensor(name, x).detach()
    plain = as_logits(f"{name}_pred", discriminator(x) if pred is None else pred)
    augmented = augment(x)
    if not isinstance(augmented, torch.Tensor) or augmented.shape != x.shape:
        got = tuple(augmented.shape) if isinstance(augmented, torch.Tensor) else type(augmented).__name__
        raise ValueError(f"augment must return a tensor of {name}'s shape {tuple(x.shape)}, got {got}")
    aug = as_logits(f"discriminator(augment({name}))", discriminator(augmented))
    check_same_scales(f"{name}_pred", plain, f"discriminator(augment({name}))", aug, batch=True)
    # float16/bfloat16 logits are compared in float32; float32/float64 as they are.
    terms = [(_wide(a) - _wide(p)).square().mean() for p, a in zip(plain, aug)]
    total = torch.stack(terms).sum()
    return total / len(terms) if scale_reduction == "mean" else total


def consistency_regularization(
    discriminator: Discriminator,
    real: torch.Tensor,
    fake: Optional[torch.Tensor],
    *,
    augment: Augment,
    weight_real: float = 10.0,
    weight_fake: float = 10.0,
    real_pred: Optional[PredLike] = None,
    fake_pred: Optional[PredLike] = None,
    scale_reduction: ScaleReduction = "sum",
) -> torch.Tensor:
    r"""bCR: penalise the discriminator for changing its logits under a semantics-preserving augmentation.

    .. math::
        L_\text{bCR} = \lambda_\text{real}\, \big\|D(x) - D(T(x))\big\|^2
        + \lambda_\text{fake}\, \big\|D(G(z)) - D(T(G(z)))\big\|^2

    added to the discriminator's loss, with :math:`T` the user's stochastic augmentation (the paper uses
    flips and translations; :func:`~ganblocks.training.diff_augment` works). Each squared norm is the mean
    over the batch and every logit of a scale (for one logit per image, :math:`\mathbb{E}[(D(x) -
    D(T(x)))^2]` as in the paper), summed (or averaged) over the scales of a multi-scale discriminator.
    Both sides carry gradient, as in the paper. ``real`` and ``fake`` are detached: this is a
    discriminator regularizer and no gradient reaches the generator.

    ``fake=None`` (or ``weight_fake=0``) leaves out the fake term: the original CR of Zhang et al. (2020).

    Args:
        discriminator: a callable of an image batch returning logits (tensor, list of scales or
            ``DiscriminatorOutput``).
        real: real images ``(N, ...)``.
        fake: generated images, or None.
        augment: :math:`T`, a callable of an image batch returning a batch of the same shape.
        weight_real: :math:`\lambda_\text{real}` (10).
        weight_fake: :math:`\lambda_\text{fake}` (10).
        real_pred: the discriminator's output on ``real`` if already computed (for the adversarial loss),
            to save a forward; must come from the same discriminator on the same batch.
        fake_pred: the same for ``fake``.
        scale_reduction: ``"sum"`` or ``"mean"`` over scales.

    Returns:
        The weighted penalty, a scalar tensor (float32 or wider).

    Example:
        >>> import torch
        >>> from ganblocks.penalties import consistency_regularization
        >>> d = lambda x: x.sum(1)  # logits: the sum of the features
        >>> shift = lambda x: x + 0.5  # T adds 0.5 to each of the 2 features: D changes by 1
        >>> consistency_regularization(d, torch.zeros(4, 2), torch.ones(4, 2), augment=shift)
        tensor(20.)

    Reference:
        Zhao et al., "Improved Consistency Regularization for GANs", AAAI 2021 (bCR); Zhang et al.,
        "Consistency Regularization for Generative Adversarial Networks", ICLR 2020 (CR).
    """
    _check_options(weight_real, weight_fake, scale_reduction)
    check_requires_autograd("consistency_regularization")
    if not callable(augment):
        raise TypeError(f"augment must be callable, got {type(augment).__name__}")
    total = weight_real * _term("real", discriminator, real, real_pred, augment, scale_reduction)
    if fake is not None and weight_fake != 0.0:
        total = total + weight_fake * _term("fake", discriminator, fake, fake_pred, augment, scale_reduction)
    return total


class ConsistencyRegularization(nn.Module):
    r"""bCR as a module; see :func:`ganblocks.penalties.consistency_regularization`.

    Args:
        augment: the augmentation :math:`T` (a callable or module, e.g.
            :class:`~ganblocks.training.DiffAugment`); registered as a submodule when it is one.
        weight_real: :math:`\lambda_\text{real}` (10).
        weight_fake: :math:`\lambda_\text{fake}` (10).
        scale_reduction: ``"sum"`` or ``"mean"`` over scales.

    Example:
        >>> import torch
        >>> from ganblocks.penalties import ConsistencyRegularization
        >>> cr = ConsistencyRegularization(lambda x: x.flip(-1), weight_fake=0.0)
        >>> d = lambda x: x[..., 0]  # D reads the first feature; the flip makes it read the last
        >>> cr(d, torch.tensor([[1.0, 3.0]]), None)  # 10 * (1 - 3)^2
        tensor(40.)
    """

    def __init__(
        self,
        augment: Augment,
        *,
        weight_real: float = 10.0,
        weight_fake: float = 10.0,
        scale_reduction: ScaleReduction = "sum",
    ) -> None:
        super().__init__()
        _check_options(weight_real, weight_fake, scale_reduction)
        if not callable(augment):
            raise TypeError(f"augment must be callable, got {type(augment).__name__}")
        self.augment = augment
        self.weight_real = float(weight_real)
        self.weight_fake = float(weight_fake)
        self.scale_reduction: ScaleReduction = scale_reduction

    def forward(
        self,
        discriminator: Discriminator,
        real: torch.Tensor,
        fake: Optional[torch.Tensor],
        *,
        real_pred: Optional[PredLike] = None,
        fake_pred: Optional[PredLike] = None,
    ) -> torch.Tensor:
        return consistency_regularization(
            discriminator,
            real,
            fake,
            augment=self.augment,
            weight_real=self.weight_real,
            weight_fake=self.weight_fake,
            real_pred=real_pred,
            fake_pred=fake_pred,
            scale_reduction=self.scale_reduction,
        )

    def extra_repr(self) -> str:
        s = f"weight_real={self.weight_real}, weight_fake={self.weight_fake}, scale_reduction={self.scale_reduction!r}"
        return s if isinstance(self.augment, nn.Module) else f"augment={self.augment!r}, {s}"
