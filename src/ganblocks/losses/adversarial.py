r"""Adversarial losses on logits: non-saturating (BCE), LSGAN, hinge, WGAN and the relativistic RaGAN and
RpGAN, multi-scale aware."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Optional, TypeAlias, get_args

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_finite, check_nonempty, check_probability
from ..outputs import PredLike, as_logits, check_same_scales
from ._reduction import Reduction, check_reduction

AdversarialKind: TypeAlias = Literal["non_saturating", "lsgan", "hinge", "wgan", "ragan", "rpgan"]
ScaleReduction: TypeAlias = Literal["sum", "mean"]
KINDS: tuple[str, ...] = get_args(AdversarialKind)
SCALE_REDUCTIONS: tuple[str, ...] = get_args(ScaleReduction)


def _check_options(kind: str, scale_reduction: str, reduction: str) -> None:
    if kind not in KINDS:
        hint = " ('vanilla', BCE with logits, is 'non_saturating')" if kind == "vanilla" else ""
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}{hint}")
    if scale_reduction not in SCALE_REDUCTIONS:
        raise ValueError(f"scale_reduction must be one of {SCALE_REDUCTIONS}, got {scale_reduction!r}")
    check_reduction(reduction)


# The kinds whose losses have targets (real/fake labels); hinge has margins and WGAN raw scores.
LABEL_KINDS: tuple[str, ...] = ("non_saturating", "lsgan")
# The kinds whose every loss compares real with fake logits: both sides enter d_loss and g_loss.
RELATIVISTIC_KINDS: tuple[str, ...] = ("ragan", "rpgan")


def _check_labels(kind: str, **labels: Optional[float]) -> None:
    """Label targets (None: the default 1 / 0) exist for the BCE kinds (in [0, 1]) and LSGAN (any number)."""
    for name, value in labels.items():
        if value is None:
            continue
        if kind not in LABEL_KINDS:
            raise ValueError(
                f"{name} applies to the kinds with targets {LABEL_KINDS}, but kind={kind!r} has none (hinge "
                f"has margins, wgan raw scores, ragan and rpgan compare real with fake); got {name}={value!r}, "
                "leave it None"
            )
        if kind == "lsgan":
            check_finite(name, value)
        else:
            check_probability(name, value)


def _float(x: torch.Tensor) -> torch.Tensor:
    # Half-precision logits are reduced in float32 so the loss (and a GradScaler's scaled loss) keeps
    # its precision; float32/float64 pass through without a copy.
    if not x.is_floating_point():
        raise TypeError(f"discriminator logits must be floating point, got dtype {x.dtype}")
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _per_sample(loss: torch.Tensor) -> torch.Tensor:
    """``(N,)``: the mean of each sample's elementwise losses (a 0-d loss is one sample)."""
    return loss.reshape(loss.shape[0] if loss.ndim > 0 else 1, -1).mean(1)


def _term(
    kind: str,
    x: torch.Tensor,
    target_is_real: bool,
    for_discriminator: bool,
    label: Optional[float] = None,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """One scale's loss of logits ``x`` pushed towards real (or fake), or towards ``label``.

    The mean over all elements (``reduction="mean"``), else the ``(N,)`` per-sample means.
    """
    x = _float(x)
    if reduction != "mean":
        return _per_sample(_elementwise(kind, x, target_is_real, for_discriminator, label))
    if kind in LABEL_KINDS:
        if kind == "non_saturating" and label is None:
            # softplus(∓x) is BCE(x, 1 or 0); it keeps infinite logits meaningful (a real logit of +inf
            # costs 0, BCE gives NaN) and measured about as fast as the fused BCE.
            return F.softplus(-x).mean() if target_is_real else F.softplus(x).mean()
        target = (1.0 if target_is_real else 0.0) if label is None else label
        # One fused op with a fused backward instead of an elementwise chain and a mean: fewer small
        # kernels per scale, which is what a multi-scale discriminator's small logits pay for.
        if kind == "lsgan":
            return F.mse_loss(x, torch.full_like(x, target))
        return F.binary_cross_entropy_with_logits(x, torch.full_like(x, target))
    return _elementwise(kind, x, target_is_real, for_discriminator, label).mean()


def _elementwise(
    kind: str, x: torch.Tensor, target_is_real: bool, for_discriminator: bool, label: Optional[float]
) -> torch.Tensor:
    """The loss of each logit."""
    if kind in LABEL_KINDS:
        if kind == "non_saturating" and label is None:
            return F.softplus(-x) if target_is_real else F.softplus(x)
        target = torch.full_like(x, (1.0 if target_is_real else 0.0) if label is None else label)
        if kind == "lsgan":
            return F.mse_loss(x, target, reduction="none")
        return F.binary_cross_entropy_with_logits(x, target, reduction="none")
    if kind == "hinge":
        if not for_discriminator:
            if not target_is_real:
                raise ValueError(
                    "hinge: the generator loss is -mean(D(fake)) and needs target_is_real=True, "
                    "got target_is_real=False with for_discriminator=False"
                )
            return -x
        return F.relu(1.0 - x) if target_is_real else F.relu(1.0 + x)
    # wgan: the critic raises real scores and lowers fake ones; the generator raises fake scores.
    return -x if target_is_real else x


def _logits(name: str, pred: object) -> list[torch.Tensor]:
    """The per-scale logits of ``pred``, each with at least one element (a mean over none is NaN)."""
    logits = as_logits(name, pred)
    for i, x in enumerate(logits):
        check_nonempty(name if len(logits) == 1 else f"{name} (scale {i})", x)
    return logits


def _reduce(terms: Sequence[torch.Tensor], scale_reduction: str, reduction: Reduction) -> torch.Tensor:
    """Sum or average the scales' terms (scalars, or ``(N,)`` per sample), then apply ``reduction``."""
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    total = total / len(terms) if scale_reduction == "mean" else total
    return total.sum() if reduction == "sum" else total


def _relativistic(kind: str, up: torch.Tensor, down: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    r"""One scale's relativistic loss that pushes the logits ``up`` above the logits ``down``.

    RaGAN: the mean of :math:`\mathrm{softplus}(-(u - \bar d))` over ``up`` plus the mean of
    :math:`\mathrm{softplus}(d - \bar u)` over ``down``, bars the means over the whole batch of the scale;
    RpGAN: the mean of :math:`\mathrm{softplus}(-(u - d))` over paired elements. A scalar for ``"mean"``,
    else ``(N,)`` per sample (a RaGAN sample's value is its ``up`` term plus its ``down`` term).
    """
    u, d = _float(up), _float(down)
    if kind == "rpgan":
        loss = F.softplus(d - u)
        return loss.mean() if reduction == "mean" else _per_sample(loss)
    above = F.softplus(d.mean() - u)
    below = F.softplus(d - u.mean())
    if reduction == "mean":
        return above.mean() + below.mean()
    if reduction == "sum":  # each side over its own batch, which may differ in size from the other's
        return _per_sample(above).sum() + _per_sample(below).sum()
    return _per_sample(above) + _per_sample(below)


def _check_not_relativistic(kind: str) -> None:
    if kind in RELATIVISTIC_KINDS:
        raise ValueError(
            f"kind={kind!r} is relativistic: each side compares real with fake logits, so there is no loss of "
            "one side alone; use d_loss(real_pred, fake_pred, ...) and g_loss(fake_pred, real_pred=real_pred, ...)"
        )


def _relativistic_scales(
    kind: str,
    up_name: str,
    up_pred: object,
    down_name: str,
    down_pred: object,
    scale_reduction: str,
    reduction: Reduction,
) -> torch.Tensor:
    up = _logits(up_name, up_pred)
    down = _logits(down_name, down_pred)
    # RpGAN pairs the elements; RaGAN's "none" adds sample i's real and fake terms: both need one batch size.
    check_same_scales(up_name, up, down_name, down, batch=kind == "rpgan" or reduction == "none")
    terms = [_relativistic(kind, u, d, reduction) for u, d in zip(up, down)]
    return _reduce(terms, scale_reduction, reduction)


def adversarial_loss(
    pred: PredLike,
    target_is_real: bool,
    *,
    kind: AdversarialKind,
    for_discriminator: bool = True,
    scale_reduction: ScaleReduction = "sum",
    reduction: Reduction = "mean",
    real_label: Optional[float] = None,
    fake_label: Optional[float] = None,
) -> torch.Tensor:
    r"""One side of an adversarial loss, in the form of pix2pixHD's and SPADE's ``GANLoss``.

    Per scale :math:`s` with logits :math:`x_s`, the mean over all elements of

    - ``non_saturating``: real :math:`\mathrm{softplus}(-x) = \mathrm{BCE}(x, 1)`, fake
      :math:`\mathrm{softplus}(x) = \mathrm{BCE}(x, 0)` (BCE with logits: pix2pixHD's and SPADE's
      "vanilla"/"original" GAN loss, whose generator side is this non-saturating loss);
    - ``lsgan``: real :math:`(x - 1)^2`, fake :math:`x^2`;
    - ``hinge``: real :math:`\max(0, 1 - x)`, fake :math:`\max(0, 1 + x)`; generator :math:`-x`;
    - ``wgan``: real :math:`-x`, fake :math:`x`;

    then summed over scales (``scale_reduction="sum"``, pix2pixHD) or averaged (``"mean"``, SPADE).
    ``reduction="none"`` returns one value per sample, shape ``(N,)``: the mean of the sample's logits at
    each scale (a patch discriminator's patches), reduced over scales as above; ``"sum"`` is their sum
    over the batch and ``"mean"`` (default) their mean, which equals the mean over all elements.
    ``for_discriminator`` only matters for ``hinge`` (SPADE's semantics: the generator's hinge loss is
    :math:`-\mathrm{mean}(x)` and exists only for ``target_is_real=True``).

    Label targets (pix2pixHD's ``target_real_label`` / ``target_fake_label``): with a target :math:`y`
    (``real_label`` when ``target_is_real``, else ``fake_label``) the non-saturating loss is :math:`\mathrm{BCE}(x, y) = y\,\mathrm{softplus}(-x) + (1 - y)\,\mathrm{softplus}(x)` and
    LSGAN's is :math:`(x - y)^2`. Hinge and WGAN have no targets: a label raises a ValueError. The
    relativistic kinds (``ragan``, ``rpgan``) have no loss of one side alone and raise here: use
    :func:`d_loss` and :func:`g_loss`.

    Args:
        pred: logits: a tensor, a list of per-scale tensors, pix2pixHD nested lists (the last entry of
            each scale is used) or a :class:`~ganblocks.DiscriminatorOutput`. A plain tuple such as
            ``(logits, features)``, or a list mixing tensors and lists, is ambiguous and raises.
        target_is_real: push ``pred`` towards "real" (True) or "fake" (False).
        kind: the loss family (see the table).
        for_discriminator: whether this is the discriminator's loss (hinge only).
        scale_reduction: ``"sum"`` or ``"mean"`` over scales.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch (see above).
        real_label: the target for ``target_is_real=True`` (None: 1); in [0, 1] for non_saturating.
        fake_label: the target for ``target_is_real=False`` (None: 0).

    Returns:
        A scalar tensor, or ``(N,)`` for ``reduction="none"``; float32 for float16/bfloat16 logits. NaN in ``pred`` propagates to the loss
        (nothing is checked, which would need a device synchronisation). Empty logits (a batch of 0)
        raise a ValueError: the mean over no sample is undefined.

    Example:
        >>> import torch
        >>> from ganblocks.losses import adversarial_loss
        >>> adversarial_loss(torch.zeros(2, 1, 4, 4), True, kind="lsgan")
        tensor(1.)

    Reference:
        Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs"
        (pix2pixHD), CVPR 2018; Park et al., "Semantic Image Synthesis with Spatially-Adaptive
        Normalization" (SPADE), CVPR 2019.
    """
    _check_options(kind, scale_reduction, reduction)
    _check_not_relativistic(kind)
    _check_labels(kind, real_label=real_label, fake_label=fake_label)
    label = real_label if target_is_real else fake_label
    logits = _logits("pred", pred)
    terms = [_term(kind, x, bool(target_is_real), for_discriminator, label, reduction) for x in logits]
    return _reduce(terms, scale_reduction, reduction)


def d_loss(
    real_pred: PredLike,
    fake_pred: PredLike,
    *,
    kind: AdversarialKind,
    scale_reduction: ScaleReduction = "sum",
    reduction: Reduction = "mean",
    real_label: Optional[float] = None,
    fake_label: Optional[float] = None,
) -> torch.Tensor:
    r"""The discriminator's (critic's) loss on real and fake logits: the real term plus the fake term.

    .. math::
        L_D = \sum_s \big(\mathbb{E}[\ell_\text{real}(r_s)] + \mathbb{E}[\ell_\text{fake}(f_s)]\big)

    with :math:`\ell` from :func:`adversarial_loss`'s table: non-saturating
    :math:`\mathrm{softplus}(-r) + \mathrm{softplus}(f)`, LSGAN :math:`(r-1)^2 + f^2`, hinge
    :math:`\max(0,1-r) + \max(0,1+f)`, WGAN :math:`f - r`. The sum over scales becomes a mean with
    ``scale_reduction="mean"``. pix2pixHD halves this sum in its training step; SPADE does not.

    The relativistic kinds compare each real logit with the fake ones (per scale, means over all elements):

    - ``ragan`` (RaGAN, relativistic average, the standard BCE form "RaSGAN"):
      :math:`\mathbb{E}_r[\mathrm{softplus}(-(r - \mathbb{E}_f f))] + \mathbb{E}_f[\mathrm{softplus}(f - \mathbb{E}_r r)]`,
      i.e. :math:`\mathrm{BCE}(r - \bar f, 1) + \mathrm{BCE}(f - \bar r, 0)`, the batch means
      :math:`\bar f, \bar r` carrying gradient;
    - ``rpgan`` (RpGAN, relativistic pairing, R3GAN's loss): :math:`\mathbb{E}[\mathrm{softplus}(-(r - f))]`
      over paired elements (real and fake need the same batch size and shape).

    Their generator losses (:func:`g_loss`) swap the roles of real and fake.

    One-sided label smoothing (Salimans et al. 2016) is ``real_label=0.9`` here and nothing in
    :func:`g_loss`: with targets :math:`y_r, y_f` the non-saturating loss becomes
    :math:`\mathrm{BCE}(r, y_r) + \mathrm{BCE}(f, y_f)` and LSGAN :math:`(r - y_r)^2 + (f - y_f)^2`
    (Mao et al.'s :math:`b` and :math:`a`).

    Args:
        real_pred: logits on real samples (any form :func:`adversarial_loss` accepts).
        fake_pred: logits on fake samples, with the same number of scales and the same per-scale shape
            after the batch dimension (batch sizes may differ).
        kind: the loss family.
        scale_reduction: ``"sum"`` or ``"mean"`` over scales.
        reduction: ``"mean"`` (the real term's batch mean plus the fake term's), ``"sum"`` (their batch
            sums) or ``"none"``: sample :math:`i`'s real term plus its fake term, shape ``(N,)``, which
            needs one batch size for both.
        real_label: the target of the real logits (None: 1); non_saturating and lsgan only.
        fake_label: the target of the fake logits (None: 0).

    Returns:
        A scalar tensor, or ``(N,)`` for ``reduction="none"``.

    Example:
        >>> import torch
        >>> from ganblocks.losses import d_loss
        >>> d_loss(torch.tensor([1.0]), torch.tensor([0.0]), kind="lsgan", real_label=0.9)  # 0.1^2 + 0
        tensor(0.0100)
        >>> d_loss(torch.tensor([2.0]), torch.tensor([-0.5]), kind="hinge")
        tensor(0.5000)
        >>> d_loss(torch.tensor([1.0]), torch.tensor([1.0]), kind="rpgan")  # softplus(0) = log 2
        tensor(0.6931)

    Reference:
        Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014; Mao et al., "Least Squares
        Generative Adversarial Networks", ICCV 2017; Lim & Ye, "Geometric GAN", 2017 (hinge); Arjovsky
        et al., "Wasserstein GAN", ICML 2017; Jolicoeur-Martineau, "The relativistic discriminator: a key
        element missing from standard GAN", ICLR 2019 (RaGAN, RpGAN); Huang et al., "The GAN is dead; long
        live the GAN! A Modern GAN Baseline", NeurIPS 2024 (R3GAN: RpGAN with R1 and R2).
    """
    _check_options(kind, scale_reduction, reduction)
    _check_labels(kind, real_label=real_label, fake_label=fake_label)
    if kind in RELATIVISTIC_KINDS:
        return _relativistic_scales(
            kind, "real_pred", real_pred, "fake_pred", fake_pred, scale_reduction, reduction
        )
    real = _logits("real_pred", real_pred)
    fake = _logits("fake_pred", fake_pred)
    check_same_scales("real_pred", real, "fake_pred", fake, batch=reduction == "none")
    terms = []
    for r, f in zip(real, fake):
        real_term = _term(kind, r, True, True, real_label, reduction)
        fake_term = _term(kind, f, False, True, fake_label, reduction)
        # "sum": each side over its own batch, which may differ in size from the other's.
        terms.append(real_term.sum() + fake_term.sum() if reduction == "sum" else real_term + fake_term)
    return _reduce(terms, scale_reduction, reduction)


def g_loss(
    fake_pred: PredLike,
    *,
    real_pred: Optional[PredLike] = None,
    kind: AdversarialKind,
    scale_reduction: ScaleReduction = "sum",
    reduction: Reduction = "mean",
    real_label: Optional[float] = None,
) -> torch.Tensor:
    r"""The generator's loss on the discriminator's logits for fake samples.

    .. math::
        L_G = \sum_s \mathbb{E}[\ell_G(f_s)]

    non-saturating :math:`\mathrm{softplus}(-f)`, LSGAN :math:`(f-1)^2`, hinge and WGAN
    :math:`-f`. With ``real_label`` :math:`y` the non-saturating loss uses :math:`\mathrm{BCE}(f, y)` and LSGAN
    :math:`(f - y)^2` (Mao et al.'s :math:`c`).

    The relativistic kinds also read the real logits :math:`r` (``real_pred``, required for them and
    refused for the others): ``ragan``
    :math:`\mathbb{E}_f[\mathrm{softplus}(-(f - \mathbb{E}_r r))] + \mathbb{E}_r[\mathrm{softplus}(r - \mathbb{E}_f f)]`,
    ``rpgan`` :math:`\mathbb{E}[\mathrm{softplus}(-(f - r))]`: :func:`d_loss` with real and fake swapped.
    Gradient flows into ``real_pred`` as given; pass it detached (or computed under ``torch.no_grad()``)
    when the discriminator's parameters must not collect gradients in the generator's step.

    Args:
        fake_pred: logits on fake samples (any form :func:`adversarial_loss` accepts).
        real_pred: logits on real samples, for ``ragan`` and ``rpgan`` only (``rpgan``: the same batch
            size and shapes as ``fake_pred``).
        kind: the loss family.
        scale_reduction: ``"sum"`` or ``"mean"`` over scales.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``) over the batch.
        real_label: the target the generator pushes its logits to (None: 1); non_saturating and lsgan
            only. Leave it None for one-sided label smoothing.

    Returns:
        A scalar tensor.

    Example:
        >>> import torch
        >>> from ganblocks.losses import g_loss
        >>> g_loss([torch.tensor([1.0]), torch.tensor([3.0])], kind="wgan", scale_reduction="mean")
        tensor(-2.)
        >>> g_loss(torch.tensor([0.0]), real_pred=torch.tensor([2.0]), kind="rpgan")  # softplus(2 - 0)
        tensor(2.1269)

    Reference:
        Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (the non-saturating loss).
    """
    _check_options(kind, scale_reduction, reduction)
    _check_labels(kind, real_label=real_label)
    if kind in RELATIVISTIC_KINDS:
        if real_pred is None:
            raise ValueError(
                f"kind={kind!r} is relativistic: the generator's loss compares fake with real logits, so "
                "g_loss needs real_pred (the discriminator's output on a real batch), got None"
            )
        return _relativistic_scales(
            kind, "fake_pred", fake_pred, "real_pred", real_pred, scale_reduction, reduction
        )
    if real_pred is not None:
        raise ValueError(
            f"real_pred is used by the relativistic kinds {RELATIVISTIC_KINDS} only; kind={kind!r} reads "
            "fake_pred alone, so leave real_pred None"
        )
    fake = _logits("fake_pred", fake_pred)
    return _reduce(
        [_term(kind, f, True, False, real_label, reduction) for f in fake], scale_reduction, reduction
    )


class AdversarialLoss(nn.Module):
    r"""Adversarial loss of one family, with the discriminator's and the generator's side.

    ``d_loss(real_pred, fake_pred)`` and ``g_loss(fake_pred)`` are the direct API;
    ``forward(pred, target_is_real, for_discriminator=True)`` mirrors pix2pixHD's and SPADE's
    ``GANLoss`` for code that migrates from them (pix2pixHD: ``use_lsgan`` is ``kind="lsgan"``, else
    ``"non_saturating"``; SPADE: ``gan_mode`` ``"ls"``, ``"original"``, ``"hinge"``, ``"w"`` are
    ``"lsgan"``, ``"non_saturating"``, ``"hinge"``, ``"wgan"``, with ``scale_reduction="mean"``).
    Everything works on logits (no sigmoid), so it is safe under autocast.

    pix2pixHD's and SPADE's "vanilla" BCE-with-logits loss is ``"non_saturating"``: BCE to 1 and 0 for
    D is :math:`\mathrm{softplus}(-r) + \mathrm{softplus}(f)`, and BCE to 1 for G is the non-saturating
    :math:`\mathrm{softplus}(-f)` (Goodfellow et al.'s :math:`-\log D(G(z))`; the saturating
    :math:`\log(1 - D(G(z)))` is not offered). The name says what the generator's side is, which "vanilla"
    does not. With label targets it is computed as BCE.

    The relativistic kinds ``"ragan"`` and ``"rpgan"`` (see :func:`~ganblocks.losses.d_loss`) need the real
    logits in the generator's loss too: ``g_loss(fake_pred, real_pred=real_pred)``; ``forward`` (one side alone)
    raises for them.

    Args:
        kind: ``"non_saturating"``, ``"lsgan"``, ``"hinge"``, ``"wgan"``, ``"ragan"`` or ``"rpgan"``.
        scale_reduction: ``"sum"`` (pix2pixHD) or ``"mean"`` (SPADE) over the scales of a multi-scale
            discriminator.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch; see :func:`adversarial_loss`.
        real_label: the discriminator's target for real logits (None: 1), used by ``d_loss`` and by
            ``forward`` with ``for_discriminator=True``; ``0.9`` is one-sided label smoothing (Salimans et
            al. 2016). Only for ``"non_saturating"`` (in [0, 1]) and ``"lsgan"``.
        fake_label: the discriminator's target for fake logits (None: 0).
        generator_label: the generator's target (None: 1), used by ``g_loss`` and by ``forward`` with
            ``for_discriminator=False``. pix2pixHD's ``GANLoss(target_real_label=y)`` uses one target for
            both, i.e. ``real_label=y, generator_label=y``.

    Example:
        >>> import torch
        >>> from ganblocks import AdversarialLoss
        >>> loss = AdversarialLoss("non_saturating")
        >>> loss.d_loss(torch.zeros(4, 1), torch.zeros(4, 1))
        tensor(1.3863)
        >>> loss(torch.zeros(4, 1), target_is_real=True, for_discriminator=False)
        tensor(0.6931)
        >>> smoothed = AdversarialLoss("non_saturating", real_label=0.9)  # one-sided label smoothing
        >>> smoothed.d_loss(torch.zeros(4, 1), torch.zeros(4, 1))  # BCE(0, 0.9) + BCE(0, 0) = 2 log 2
        tensor(1.3863)
    """

    def __init__(
        self,
        kind: AdversarialKind,
        *,
        scale_reduction: ScaleReduction = "sum",
        reduction: Reduction = "mean",
        real_label: Optional[float] = None,
        fake_label: Optional[float] = None,
        generator_label: Optional[float] = None,
    ) -> None:
        super().__init__()
        _check_options(kind, scale_reduction, reduction)
        _check_labels(kind, real_label=real_label, fake_label=fake_label, generator_label=generator_label)
        self.kind: AdversarialKind = kind
        self.scale_reduction: ScaleReduction = scale_reduction
        self.reduction: Reduction = reduction
        self.real_label = None if real_label is None else float(real_label)
        self.fake_label = None if fake_label is None else float(fake_label)
        self.generator_label = None if generator_label is None else float(generator_label)

    def d_loss(self, real_pred: PredLike, fake_pred: PredLike) -> torch.Tensor:
        """The discriminator's loss; see :func:`ganblocks.losses.d_loss`."""
        return d_loss(
            real_pred,
            fake_pred,
            kind=self.kind,
            scale_reduction=self.scale_reduction,
            reduction=self.reduction,
            real_label=self.real_label,
            fake_label=self.fake_label,
        )

    def g_loss(self, fake_pred: PredLike, *, real_pred: Optional[PredLike] = None) -> torch.Tensor:
        """The generator's loss (``real_pred`` for the relativistic kinds); see :func:`ganblocks.losses.g_loss`."""
        return g_loss(
            fake_pred,
            real_pred=real_pred,
            kind=self.kind,
            scale_reduction=self.scale_reduction,
            reduction=self.reduction,
            real_label=self.generator_label,
        )

    def forward(self, pred: PredLike, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        """One side of the loss; see :func:`ganblocks.losses.adversarial_loss`."""
        return adversarial_loss(
            pred,
            target_is_real,
            kind=self.kind,
            for_discriminator=for_discriminator,
            scale_reduction=self.scale_reduction,
            reduction=self.reduction,
            real_label=self.real_label if for_discriminator else self.generator_label,
            fake_label=self.fake_label,
        )

    def extra_repr(self) -> str:
        s = f"kind={self.kind!r}, scale_reduction={self.scale_reduction!r}, reduction={self.reduction!r}"
        for name in ("real_label", "fake_label", "generator_label"):
            value = getattr(self, name)
            if value is not None:
                s += f", {name}={value}"
        return s
