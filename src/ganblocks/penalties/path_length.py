r"""StyleGAN2's path length regularization: a running-mean-centred penalty on :math:`\|J_w^\top y\|`."""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import nn

from .._checks import check_float_tensor, check_int, check_nonnegative, check_probability
from ..losses._reduction import Reduction, check_reduction, reduce_batch
from ._common import eager, keep_parameters_in_graph

Synthesis = Callable[[torch.Tensor], torch.Tensor]


def _check_ws(ws: object) -> torch.Tensor:
    t = check_float_tensor("ws", ws)
    if t.ndim not in (2, 3) or t.shape[0] == 0:
        raise ValueError(
            f"ws must have shape (N, num_ws, w_dim) or (N, w_dim) with N > 0, got {tuple(t.shape)}"
        )
    return t


def path_lengths(
    images: torch.Tensor,
    ws: torch.Tensor,
    *,
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    r"""Per-sample path lengths :math:`\big(\frac{1}{L}\sum_l \|\partial (y \cdot g) / \partial w_l\|^2\big)^{1/2}`.

    :math:`g` is Gaussian noise divided by :math:`\sqrt{HW}` and :math:`w_l` the :math:`L` latents of a sample
    (one for ``ws`` of shape ``(N, w_dim)``). The gradient keeps its graph (``create_graph=True``), so the
    result can be differentiated with respect to the generator's parameters.

    Args:
        images: generator output ``(N, C, H, W)``, computed from ``ws`` with autograd on.
        ws: the latents ``(N, num_ws, w_dim)`` or ``(N, w_dim)`` the images were computed from.
        noise: the projection :math:`g` (shape of ``images``); None draws it.
        generator: random generator for the noise.

    Returns:
        ``(N,)`` lengths in float32 (float64 for float64 inputs).

    Example:
        >>> import torch
        >>> from ganblocks.penalties import path_lengths
        >>> ws = torch.ones(1, 2, requires_grad=True)
        >>> images = (3.0 * ws).reshape(1, 1, 1, 2)  # the Jacobian is 3 I
        >>> path_lengths(images, ws, noise=torch.tensor([[[[1.0, 0.0]]]]))
        tensor([3.])
    """
    check_float_tensor("images", images, exact_ndim=4)
    _check_ws(ws)
    if images.shape[0] != ws.shape[0]:
        raise ValueError(f"images and ws must have one batch size, got {images.shape[0]} and {ws.shape[0]}")
    if not torch.is_grad_enabled():
        raise RuntimeError(
            "path_lengths differentiates the images with respect to ws and needs autograd, but it was called "
            "with gradients disabled (inside torch.no_grad() or torch.inference_mode())"
        )
    if not ws.requires_grad:
        raise ValueError(
            "ws does not require grad; call ws.requires_grad_(True) before running the synthesis"
        )
    acc = torch.promote_types(images.dtype, torch.float32)
    if noise is None:
        noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=acc)
        noise = noise / math.sqrt(images.shape[2] * images.shape[3])
    elif tuple(noise.shape) != tuple(images.shape):
        raise ValueError(
            f"noise must have the shape of images {tuple(images.shape)}, got {tuple(noise.shape)}"
        )
    (grad,) = torch.autograd.grad((images.to(acc) * noise).sum(), ws, create_graph=True, allow_unused=True)
    if grad is None:
        raise ValueError("images do not depend on ws; pass the latents the images were computed from")
    sq = grad.to(acc).square().sum(dim=-1)
    return (sq.mean(dim=1) if sq.ndim == 2 else sq).sqrt()


def path_length_penalty(
    images: torch.Tensor,
    ws: torch.Tensor,
    pl_mean: torch.Tensor,
    *,
    decay: float = 0.01,
    weight: float = 2.0,
    reduction: Reduction = "mean",
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Path length regularization from a forward pass: the penalty and the updated running mean.

    .. math::
        a' = a + \beta\,(\overline{\ell} - a), \qquad
        P = \lambda\ \mathbb E_n\big[(\ell_n - a')^2\big]

    with :math:`\ell` from :func:`path_lengths`, :math:`a` = ``pl_mean``, :math:`\beta` = ``decay`` and
    :math:`\lambda` = ``weight``. As in StyleGAN2-ADA, :math:`a'` is not detached inside :math:`P`. The
    result also holds a zero term for every parameter the images depend on, so each gets a gradient tensor
    (zero where the penalty has none, e.g. a to-RGB bias before an upsampling blur), as DDP and Adam need.

    Args:
        images: generator output ``(N, C, H, W)`` computed from ``ws``.
        ws: latents ``(N, num_ws, w_dim)`` or ``(N, w_dim)``, requiring grad.
        pl_mean: the running mean :math:`a`, a scalar tensor (not modified).
        decay: :math:`\beta` (0.01).
        weight: :math:`\lambda` (2).
        reduction: ``"mean"`` (default, :math:`P`), ``"sum"`` or ``"none"`` over the batch; ``"none"``
            returns :math:`\lambda (\ell_n - a')^2` per sample, shape ``(N,)``. The running mean is
            updated from the batch mean of :math:`\ell` whatever the reduction.
        noise: the projection noise; None draws it.
        generator: random generator for the noise.

    Returns:
        ``(penalty, new_pl_mean)``: the penalty with graph (a scalar, or ``(N,)``), and the detached
        updated mean.

    Example:
        >>> import torch
        >>> from ganblocks.penalties import path_length_penalty
        >>> ws = torch.ones(1, 2, requires_grad=True)
        >>> images = (3.0 * ws).reshape(1, 1, 1, 2)
        >>> noise = torch.tensor([[[[1.0, 0.0]]]])
        >>> penalty, mean = path_length_penalty(images, ws, torch.tensor(1.0), decay=0.5, noise=noise)
        >>> penalty.item(), mean.item()  # a' = 2, 2 * (3 - 2)^2
        (2.0, 2.0)

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020, section 3.2.
    """
    penalty, mean, _ = _penalty_and_lengths(
        images, ws, pl_mean, decay=decay, weight=weight, reduction=reduction, noise=noise, generator=generator
    )
    return penalty, mean


def _penalty_and_lengths(
    images: torch.Tensor,
    ws: torch.Tensor,
    pl_mean: torch.Tensor,
    *,
    decay: float,
    weight: float,
    reduction: Reduction,
    noise: Optional[torch.Tensor],
    generator: Optional[torch.Generator],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`path_length_penalty`'s penalty and new mean, and the path lengths behind them."""
    check_probability("decay", decay)
    check_nonnegative("weight", weight)
    check_reduction(reduction)
    check_float_tensor("pl_mean", pl_mean)
    if pl_mean.numel() != 1:
        raise ValueError(f"pl_mean must be a scalar tensor, got shape {tuple(pl_mean.shape)}")
    lengths = path_lengths(images, ws, noise=noise, generator=generator)
    mean = pl_mean.detach().to(lengths).reshape(()).lerp(lengths.mean(), decay)
    penalty = reduce_batch((lengths - mean).square(), reduction) * weight
    return keep_parameters_in_graph(penalty, images.sum(dtype=lengths.dtype)), mean.detach(), lengths


class PathLengthPenalty(nn.Module):
    r"""StyleGAN2's path length regularizer with its running mean (a buffer), on a shrunk batch.

    Calls the synthesis network on the first ``N // batch_shrink`` latents and returns
    :func:`path_length_penalty`, updating the buffer ``pl_mean``. For lazy regularization (StyleGAN2:
    every 4 generator steps) wrap it in :class:`~ganblocks.penalties.LazyRegularizer`, which runs it only on
    regularization steps and multiplies it by the interval; the synthesis forward then also runs only on
    those steps. For logging, ``last_lengths`` holds the path lengths of the latest call (detached, ``(N,)``,
    None before the first call) and ``pl_mean`` their running mean (StyleGAN2-ADA logs ``Loss/pl_penalty``,
    rosinality ``path_length``); they stay on the device until converted to Python numbers. Call it outside ``torch.compile`` (a compiled synthesis is called through its eager
    ``_orig_mod``: compiled graphs cannot be differentiated twice).

    Args:
        weight: :math:`\lambda` (2).
        decay: running-mean decay :math:`\beta` (0.01).
        batch_shrink: divide the batch by this (2); at least one sample is kept.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the (shrunk) batch; see
            :func:`path_length_penalty`.

    Example:
        >>> import torch
        >>> from ganblocks.penalties import LazyRegularizer, PathLengthPenalty
        >>> synthesis = lambda ws: ws.sum(1).reshape(-1, 1, 2, 2)  # (N, 2, 4) -> (N, 1, 2, 2)
        >>> lazy = LazyRegularizer(PathLengthPenalty(), interval=4)
        >>> [lazy(step, synthesis, torch.randn(8, 2, 4)) is None for step in range(5)]
        [False, True, True, True, False]
        >>> lazy.penalty.last_lengths.shape  # the 8 // 2 path lengths of step 4
        torch.Size([4])

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020, section 3.2
        (``StyleGAN2Loss`` of stylegan2-ada-pytorch: ``pl_batch_shrink=2``, ``pl_decay=0.01``,
        ``pl_weight=2``, ``G_reg_interval=4``).
    """

    pl_mean: torch.Tensor
    last_lengths: Optional[torch.Tensor]

    def __init__(
        self,
        *,
        weight: float = 2.0,
        decay: float = 0.01,
        batch_shrink: int = 2,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        self.weight = check_nonnegative("weight", weight)
        self.decay = check_probability("decay", decay)
        self.batch_shrink = check_int("batch_shrink", batch_shrink)
        self.reduction: Reduction = check_reduction(reduction)
        self.register_buffer("pl_mean", torch.zeros(()))
        self.last_lengths = None

    def batch_size(self, num_samples: int) -> int:
        """How many of a batch of ``num_samples`` are regularized: ``max(num_samples // batch_shrink, 1)``."""
        return max(num_samples // self.batch_shrink, 1)

    def forward(
        self, synthesis: Synthesis, ws: torch.Tensor, *, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        """Run ``synthesis`` on the first :meth:`batch_size` latents of ``ws`` and return the penalty.

        ``ws`` may carry its graph (e.g. the mapping network's output), so the penalty reaches the mapping
        network as in StyleGAN2-ADA; a tensor without grad is detached and made a leaf.
        """
        _check_ws(ws)
        ws = ws[: self.batch_size(ws.shape[0])]
        if not ws.requires_grad:
            ws = ws.detach().requires_grad_(True)
        return self.from_outputs(eager(synthesis)(ws), ws, generator=generator)

    def from_outputs(
        self,
        images: torch.Tensor,
        ws: torch.Tensor,
        *,
        noise: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """The penalty of images already computed from ``ws`` (no shrinking); updates ``pl_mean`` and
        ``last_lengths``."""
        penalty, mean, lengths = _penalty_and_lengths(
            images,
            ws,
            self.pl_mean,
            decay=self.decay,
            weight=self.weight,
            reduction=self.reduction,
            noise=noise,
            generator=generator,
        )
        with torch.no_grad():
            self.pl_mean.copy_(mean)
        self.last_lengths = lengths.detach()
        return penalty

    def extra_repr(self) -> str:
        return (
            f"weight={self.weight}, decay={self.decay}, batch_shrink={self.batch_shrink}, "
            f"reduction={self.reduction!r}"
        )
