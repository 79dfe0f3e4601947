r"""Consistency regularization (Zhao et al. 2020): bCR, D(x) ≈ D(T(x)) on real and fake images, and zCR,
D(G(z)) ≈ D(G(z + Δz)) with G rewarded for G(z) ≠ G(z + Δz)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Optional, Union

import torch
from torch import nn

from .._checks import check_float_tensor, check_nonempty, check_nonnegative, check_requires_autograd
from ..losses._reduction import Reduction, check_reduction, check_scale_reduction, reduce_batch
from ..losses.adversarial import ScaleReduction
from ..outputs import PredLike, as_logits, as_tensor_list, check_same_scales

Augment = Callable[[torch.Tensor], torch.Tensor]
Discriminator = Callable[[torch.Tensor], PredLike]


def _check_options(weight_real: float, weight_fake: float, scale_reduction: str, reduction: str) -> None:
    check_nonnegative("weight_real", weight_real)
    check_nonnegative("weight_fake", weight_fake)
    check_scale_reduction(scale_reduction)
    check_reduction(reduction)


def _wide(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _mean_square(
    plain: Sequence[torch.Tensor], other: Sequence[torch.Tensor], scale_reduction: str, reduction: str
) -> torch.Tensor:
    """Per scale, the mean square difference of two logit lists (over everything for ``reduction="mean"``,
    per sample otherwise), summed or averaged over the scales."""
    squares = [(_wide(o) - _wide(p)).square() for p, o in zip(plain, other)]
    if reduction == "mean":
        total = torch.stack([s.mean() for s in squares]).sum()
    else:
        total = torch.stack([s.reshape(s.shape[0] if s.ndim else 1, -1).mean(1) for s in squares]).sum(0)
    return total / len(squares) if scale_reduction == "mean" else total


def _term(
    name: str,
    discriminator: Discriminator,
    x: torch.Tensor,
    pred: Optional[PredLike],
    augment: Augment,
    scale_reduction: str,
    reduction: Reduction,
) -> torch.Tensor:
    """The mean squared difference of the logits of ``x`` and of ``augment(x)``, over scales.

    A scalar (the mean over the batch and the logits) for ``"mean"``, else ``(N,)``: each sample's mean
    over its own logits.
    """
    x = check_float_tensor(name, x).detach()
    plain = as_logits(f"{name}_pred", discriminator(x) if pred is None else pred)
    augmented = augment(x)
    if not isinstance(augmented, torch.Tensor) or augmented.shape != x.shape:
        got = tuple(augmented.shape) if isinstance(augmented, torch.Tensor) else type(augmented).__name__
        raise ValueError(f"augment must return a tensor of {name}'s shape {tuple(x.shape)}, got {got}")
    aug = as_logits(f"discriminator(augment({name}))", discriminator(augmented))
    check_same_scales(f"{name}_pred", plain, f"discriminator(augment({name}))", aug, batch=True)
    # float16/bfloat16 logits are compared in float32; float32/float64 as they are.
    return _mean_square(plain, aug, scale_reduction, reduction)


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
    reduction: Reduction = "mean",
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
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` over the batch. Sample :math:`i`'s value
            is its real term plus its fake term, each the mean over that sample's logits per scale;
            ``"none"`` (shape ``(N,)``) needs one batch size for ``real`` and ``fake``, ``"sum"`` sums each
            side over its own batch.

    Returns:
        The weighted penalty (float32 or wider): a scalar, or ``(N,)`` for ``reduction="none"``.

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
    _check_options(weight_real, weight_fake, scale_reduction, reduction)
    check_requires_autograd("consistency_regularization")
    if not callable(augment):
        raise TypeError(f"augment must be callable, got {type(augment).__name__}")
    with_fake = fake is not None and weight_fake != 0.0
    if (
        reduction == "none"
        and with_fake
        and isinstance(real, torch.Tensor)
        and isinstance(fake, torch.Tensor)
    ):
        if real.ndim == 0 or fake.ndim == 0 or real.shape[0] != fake.shape[0]:
            raise ValueError(
                "reduction='none' needs one batch size for real and fake, got shapes "
                f"{tuple(real.shape)} and {tuple(fake.shape)}"
            )
    total = weight_real * _term("real", discriminator, real, real_pred, augment, scale_reduction, reduction)
    if reduction == "sum":
        total = total.sum()
    if fake is not None and with_fake:
        term = weight_fake * _term(
            "fake", discriminator, fake, fake_pred, augment, scale_reduction, reduction
        )
        total = total + (term.sum() if reduction == "sum" else term)
    return total


class ConsistencyRegularization(nn.Module):
    r"""bCR as a module; see :func:`ganblocks.penalties.consistency_regularization`.

    Args:
        augment: the augmentation :math:`T` (a callable or module, e.g.
            :class:`~ganblocks.training.DiffAugment`); registered as a submodule when it is one.
        weight_real: :math:`\lambda_\text{real}` (10).
        weight_fake: :math:`\lambda_\text{fake}` (10).
        scale_reduction: ``"sum"`` or ``"mean"`` over scales.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.

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
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        _check_options(weight_real, weight_fake, scale_reduction, reduction)
        if not callable(augment):
            raise TypeError(f"augment must be callable, got {type(augment).__name__}")
        self.augment = augment
        self.weight_real = float(weight_real)
        self.weight_fake = float(weight_fake)
        self.scale_reduction: ScaleReduction = scale_reduction
        self.reduction: Reduction = reduction

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
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        s = (
            f"weight_real={self.weight_real}, weight_fake={self.weight_fake}, "
            f"scale_reduction={self.scale_reduction!r}, reduction={self.reduction!r}"
        )
        return s if isinstance(self.augment, nn.Module) else f"augment={self.augment!r}, {s}"


Images = Union[torch.Tensor, Sequence[torch.Tensor]]


def _check_zcr_options(scale_reduction: str, reduction: str, **numbers: float) -> None:
    for name, value in numbers.items():
        check_nonnegative(name, value)
    check_scale_reduction(scale_reduction)
    check_reduction(reduction)


def _detach_images(name: str, x: Images) -> Images:
    items, single = as_tensor_list(name, x)
    for i, t in enumerate(items):
        check_float_tensor(name if single else f"{name}[{i}]", t)
    return items[0].detach() if single else [t.detach() for t in items]


def latent_consistency_d_penalty(
    discriminator: Callable[[Any], PredLike],
    fake: Images,
    fake_perturbed: Images,
    *,
    weight: float = 5.0,
    fake_pred: Optional[PredLike] = None,
    scale_reduction: ScaleReduction = "sum",
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""zCR, the discriminator's term: its logits should not change between :math:`G(z)` and :math:`G(z + \Delta z)`.

    .. math::
        L^\text{zCR}_D = \lambda_\text{dis}\, \big\|D(G(z)) - D(G(z + \Delta z))\big\|^2, \qquad
        \Delta z \sim \mathcal{N}(0, \sigma_\text{noise}^2 I)

    added to the discriminator's loss (defaults :math:`\sigma_\text{noise} = 0.03`, :math:`\lambda_\text{dis} = 5`;
    StudioGAN's BigGAN CIFAR-10 configuration uses :math:`\sigma = 0.05`, :math:`\lambda_\text{dis} = 20`;
    :meth:`LatentConsistencyRegularization.perturb` draws :math:`z + \Delta z`). The squared norm
    is the mean over the batch and every logit of a scale, summed (or averaged) over scales, as in
    :func:`consistency_regularization`; the images are detached, so only the discriminator is penalised (a ``fake_pred`` passed in must come
    from detached images too, or the gradient reaches the generator).

    Args:
        discriminator: a callable of an image batch (or of whatever ``fake`` is, e.g. an MSG pyramid)
            returning logits.
        fake: :math:`G(z)`, a tensor or a list of tensors (a pyramid).
        fake_perturbed: :math:`G(z + \Delta z)`, the same form.
        weight: :math:`\lambda_\text{dis}` (5).
        fake_pred: the discriminator's output on ``fake`` if already computed, to save a forward.
        scale_reduction: ``"sum"`` or ``"mean"`` over scales.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``) over the batch.

    Returns:
        The weighted penalty (float32 or wider): a scalar, or ``(N,)`` for ``reduction="none"``.

    Example:
        >>> import torch
        >>> from ganblocks.penalties import latent_consistency_d_penalty
        >>> d = lambda x: x.sum(1)
        >>> latent_consistency_d_penalty(d, torch.zeros(2, 2), torch.full((2, 2), 0.5))  # 5 * (0 - 1)^2
        tensor(5.)

    Reference:
        Zhao et al., "Improved Consistency Regularization for GANs", AAAI 2021 (zCR).
    """
    _check_zcr_options(scale_reduction, reduction, weight=weight)
    check_requires_autograd("latent_consistency_d_penalty")
    a = _detach_images("fake", fake)
    b = _detach_images("fake_perturbed", fake_perturbed)
    plain = as_logits("fake_pred", discriminator(a) if fake_pred is None else fake_pred)
    moved = as_logits("discriminator(fake_perturbed)", discriminator(b))
    check_same_scales("fake_pred", plain, "discriminator(fake_perturbed)", moved, batch=True)
    total = _mean_square(plain, moved, scale_reduction, reduction)
    return weight * (total.sum() if reduction == "sum" else total)


def latent_consistency_g_penalty(
    fake: Images,
    fake_perturbed: Images,
    *,
    weight: float = 0.5,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""zCR, the generator's term: a reward for images that *do* change under a latent perturbation.

    .. math::
        L^\text{zCR}_G = -\lambda_\text{gen}\, \big\|G(z) - G(z + \Delta z)\big\|^2

    added to the generator's loss (:math:`\lambda_\text{gen} = 0.5` in the paper): without it, the
    discriminator's term would let the generator collapse nearby latents to one image. The squared norm is
    each sample's mean over its elements (for a pyramid, summed over the levels), then reduced over the
    batch; it is negative, and gradient flows into both images.

    Args:
        fake: :math:`G(z)`, a tensor or a list of tensors (a pyramid).
        fake_perturbed: :math:`G(z + \Delta z)`, the same form and shapes.
        weight: :math:`\lambda_\text{gen}` (0.5).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``) over the batch.

    Returns:
        A scalar (float32 or wider), or ``(N,)`` for ``reduction="none"``; never positive.

    Example:
        >>> import torch
        >>> from ganblocks.penalties import latent_consistency_g_penalty
        >>> latent_consistency_g_penalty(torch.zeros(2, 3), torch.ones(2, 3))  # -0.5 * 1
        tensor(-0.5000)

    Reference:
        Zhao et al., "Improved Consistency Regularization for GANs", AAAI 2021 (zCR).
    """
    check_nonnegative("weight", weight)
    check_reduction(reduction)
    a, _ = as_tensor_list("fake", fake)
    b, _ = as_tensor_list("fake_perturbed", fake_perturbed)
    check_same_scales("fake", a, "fake_perturbed", b, batch=True)
    per_sample = []
    for i, (x, y) in enumerate(zip(a, b)):
        check_float_tensor(f"fake[{i}]", x)
        check_float_tensor(f"fake_perturbed[{i}]", y)
        check_nonempty(f"fake[{i}]", x)
        d = (_wide(x) - _wide(y)).square()
        per_sample.append(d.reshape(d.shape[0] if d.ndim else 1, -1).mean(1))
    total = torch.stack(per_sample).sum(0)
    return -weight * reduce_batch(total, reduction)


class LatentConsistencyRegularization(nn.Module):
    r"""zCR (Zhao et al. 2021): the latent perturbation and both terms, with the paper's defaults.

    ``perturb(z)`` draws :math:`z + \Delta z`; ``forward`` (= :meth:`d_penalty`) is the discriminator's term
    :func:`latent_consistency_d_penalty` and :meth:`g_penalty` the generator's
    :func:`latent_consistency_g_penalty`.

    Args:
        sigma: :math:`\sigma_\text{noise}`, the perturbation's standard deviation (0.03).
        weight_dis: :math:`\lambda_\text{dis}` (5).
        weight_gen: :math:`\lambda_\text{gen}` (0.5).
        scale_reduction: ``"sum"`` or ``"mean"`` over the discriminator's scales.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.

    Example:
        >>> import torch
        >>> from ganblocks.penalties import LatentConsistencyRegularization
        >>> zcr = LatentConsistencyRegularization()
        >>> g, d = torch.nn.Linear(8, 4), torch.nn.Linear(4, 1)
        >>> z = torch.randn(16, 8)
        >>> fake, moved = g(z), g(zcr.perturb(z))
        >>> bool(zcr(d, fake, moved) >= 0), bool(zcr.g_penalty(fake, moved) <= 0)
        (True, True)
    """

    def __init__(
        self,
        *,
        sigma: float = 0.03,
        weight_dis: float = 5.0,
        weight_gen: float = 0.5,
        scale_reduction: ScaleReduction = "sum",
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        _check_zcr_options(
            scale_reduction, reduction, sigma=sigma, weight_dis=weight_dis, weight_gen=weight_gen
        )
        self.sigma = float(sigma)
        self.weight_dis = float(weight_dis)
        self.weight_gen = float(weight_gen)
        self.scale_reduction: ScaleReduction = scale_reduction
        self.reduction: Reduction = reduction

    def perturb(self, z: torch.Tensor, *, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        r""":math:`z + \sigma \epsilon`, :math:`\epsilon \sim \mathcal{N}(0, I)` of ``z``'s shape."""
        z = check_float_tensor("z", z)
        noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        return z + self.sigma * noise

    def d_penalty(
        self,
        discriminator: Callable[[Any], PredLike],
        fake: Images,
        fake_perturbed: Images,
        *,
        fake_pred: Optional[PredLike] = None,
    ) -> torch.Tensor:
        """The discriminator's term; see :func:`latent_consistency_d_penalty`."""
        return latent_consistency_d_penalty(
            discriminator,
            fake,
            fake_perturbed,
            weight=self.weight_dis,
            fake_pred=fake_pred,
            scale_reduction=self.scale_reduction,
            reduction=self.reduction,
        )

    def g_penalty(self, fake: Images, fake_perturbed: Images) -> torch.Tensor:
        """The generator's term; see :func:`latent_consistency_g_penalty`."""
        return latent_consistency_g_penalty(
            fake, fake_perturbed, weight=self.weight_gen, reduction=self.reduction
        )

    def forward(
        self,
        discriminator: Callable[[Any], PredLike],
        fake: Images,
        fake_perturbed: Images,
        *,
        fake_pred: Optional[PredLike] = None,
    ) -> torch.Tensor:
        return self.d_penalty(discriminator, fake, fake_perturbed, fake_pred=fake_pred)

    def extra_repr(self) -> str:
        return (
            f"sigma={self.sigma}, weight_dis={self.weight_dis}, weight_gen={self.weight_gen}, "
            f"scale_reduction={self.scale_reduction!r}, reduction={self.reduction!r}"
        )
