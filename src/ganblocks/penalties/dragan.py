r"""DRAGAN (Kodali et al. 2017): the gradient-norm penalty on noisy perturbations of the real data."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .._checks import check_nonnegative, check_positive, check_requires_autograd
from ..losses._reduction import Reduction, check_reduction
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


def _check_options(weight: float, c: float, target: float, logit_reduction: str, reduction: str) -> None:
    check_nonnegative("weight", weight)
    check_positive("c", c, allow_zero=True)
    check_positive("target", target, allow_zero=True)
    check_logit_reduction(logit_reduction)
    check_reduction(reduction)


def dragan_penalty(
    discriminator: Discriminator,
    real: Inputs,
    *,
    weight: float = 10.0,
    c: float = 0.5,
    target: float = 1.0,
    interpolate: bool = False,
    logit_reduction: LogitReduction = "sum",
    reduction: Reduction = "mean",
    autocast: bool = False,
    condition: Optional[Inputs] = None,
    generator: Optional[torch.Generator] = None,
    scaler: Optional[torch.amp.GradScaler] = None,
) -> torch.Tensor:
    r"""DRAGAN's penalty on the gradient norm around the real data, against sharp local maxima of D.

    .. math::
        \begin{aligned}
        \hat x &= x + \delta, \qquad \delta = c\, \sigma_x\, u, \qquad u \sim U[0, 1)
            \text{ per element}, \\
        P &= \lambda\, \mathbb{E}\big[(\|\nabla_{\hat x} D(\hat x)\|_2 - t)^2\big]
        \end{aligned}

    with :math:`\sigma_x` the standard deviation of the whole real batch (population, as ``numpy.std`` in
    the authors' code), computed per scale for lists, and the norm per sample over every non-batch
    dimension (jointly over the scales of a list). ``interpolate=True`` also draws
    :math:`\alpha \sim U[0, 1]` per sample and uses :math:`x + \alpha\delta`, as the authors' code does
    (between the sample and its perturbation). :math:`D(\hat x)` is the sum of every logit the
    discriminator returns for the sample (``logit_reduction="mean"``: each scale's mean logit, summed
    over scales); ``real`` is detached. For half inputs :math:`\hat x` is drawn and computed in float32
    and rounded once.

    Compiled discriminators, DDP, mixed precision (``autocast=False`` by default: the discriminator runs
    outside an enclosing autocast, since the target amplifies a low-precision norm's error), conditions
    and NaN inputs behave as for :func:`~ganblocks.penalties.gradient_penalty`.

    Args:
        discriminator: a callable returning a tensor, a list of per-scale tensors or a
            ``DiscriminatorOutput``; called with the perturbed batch (a tensor or a list of scales).
        real: real samples ``(N, ...)`` or a list of scales.
        weight: :math:`\lambda` (10).
        c: the perturbation scale :math:`c` (0.5).
        target: the target norm :math:`t` (1).
        interpolate: scale each sample's perturbation by :math:`\alpha \sim U[0, 1]` (the authors' code).
        logit_reduction: ``"sum"`` or ``"mean"`` over a patch discriminator's logits, per scale.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``) over the batch.
        autocast: run the discriminator under the enclosing ``torch.autocast`` (True) or outside it, in
            its own dtype (False, default).
        condition: for a conditional discriminator: the condition concatenated in front of the input
            along the channels (not perturbed, not differentiated); see ``gradient_penalty``.
        generator: a ``torch.Generator`` for :math:`u` (and :math:`\alpha`), on the inputs' device.
        scaler: an enabled ``torch.amp.GradScaler`` to scale the inner gradient with, or None.

    Returns:
        The weighted penalty (float32 or wider): a scalar, or ``(N,)`` for ``reduction="none"``.

    Example:
        >>> import torch
        >>> from ganblocks.penalties import dragan_penalty
        >>> critic = lambda x: x @ torch.tensor([3.0, 4.0])  # gradient norm 5 everywhere
        >>> dragan_penalty(critic, torch.randn(8, 2), weight=1.0)  # (5 - 1)^2
        tensor(16., grad_fn=<AddBackward0>)

    Reference:
        Kodali et al., "On Convergence and Stability of GANs" (DRAGAN), arXiv:1705.07215, 2017.
    """
    _check_options(weight, c, target, logit_reduction, reduction)
    check_requires_autograd("dragan_penalty")
    reals, single = check_inputs("real", real)
    conds = check_condition(condition, reals, single, "real")
    n = reals[0].shape[0]
    alpha: Optional[torch.Tensor] = None
    if interpolate:
        alpha = torch.rand(n, device=reals[0].device, generator=generator)
    points: list[torch.Tensor] = []
    for r in reals:
        w = working_dtype(r)
        r32 = r.detach().to(w)
        u = torch.rand(r.shape, device=r.device, dtype=w, generator=generator)
        delta = c * r32.std(correction=0) * u  # the population std of the whole batch
        if alpha is not None:
            delta = delta * alpha.to(w).view(n, *([1] * (r.ndim - 1)))
        points.append((r32 + delta).to(r.dtype).requires_grad_(True))
    grads, total = input_gradients_of(
        discriminator,
        points,
        single,
        conds,
        logit_reduction=logit_reduction,
        scaler=scaler,
        autocast=autocast,
        name="perturbed real",
    )
    per_sample = norm_deviations(grads, norm="sample", target=target, one_sided=False)
    return finish(per_sample, weight, reduction, total)


class DraganPenalty(nn.Module):
    r"""DRAGAN's gradient penalty; see :func:`ganblocks.penalties.dragan_penalty`.

    Args:
        weight: :math:`\lambda` (10).
        c: the perturbation scale (0.5).
        target: the target norm (1).
        interpolate: scale each perturbation by :math:`\alpha \sim U[0, 1]` per sample.
        logit_reduction: ``"sum"`` or ``"mean"`` over a patch discriminator's logits.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
        autocast: keep an enclosing ``torch.autocast`` for the discriminator (False: run it in its dtype).

    Example:
        >>> import torch
        >>> from ganblocks.penalties import DraganPenalty
        >>> DraganPenalty(weight=1.0)(lambda x: x @ torch.tensor([0.0, 1.0]), torch.randn(4, 2))  # unit norm
        tensor(0., grad_fn=<AddBackward0>)
    """

    def __init__(
        self,
        *,
        weight: float = 10.0,
        c: float = 0.5,
        target: float = 1.0,
        interpolate: bool = False,
        logit_reduction: LogitReduction = "sum",
        reduction: Reduction = "mean",
        autocast: bool = False,
    ) -> None:
        super().__init__()
        _check_options(weight, c, target, logit_reduction, reduction)
        self.weight = float(weight)
        self.c = float(c)
        self.target = float(target)
        self.interpolate = bool(interpolate)
        self.logit_reduction: LogitReduction = logit_reduction
        self.reduction: Reduction = reduction
        self.autocast = bool(autocast)

    def forward(
        self,
        discriminator: Discriminator,
        real: Inputs,
        *,
        condition: Optional[Inputs] = None,
        generator: Optional[torch.Generator] = None,
        scaler: Optional[torch.amp.GradScaler] = None,
    ) -> torch.Tensor:
        return dragan_penalty(
            discriminator,
            real,
            weight=self.weight,
            c=self.c,
            target=self.target,
            interpolate=self.interpolate,
            logit_reduction=self.logit_reduction,
            reduction=self.reduction,
            autocast=self.autocast,
            condition=condition,
            generator=generator,
            scaler=scaler,
        )

    def extra_repr(self) -> str:
        return (
            f"weight={self.weight}, c={self.c}, target={self.target}, interpolate={self.interpolate}, "
            f"logit_reduction={self.logit_reduction!r}, reduction={self.reduction!r}, "
            f"autocast={self.autocast}"
        )
