"""Minibatch standard deviation (ProGAN, StyleGAN2-ADA), with strided groups."""

from __future__ import annotations

from typing import Optional

import torch

from ..._checks import check_group_size, check_input
from .._backend import Backend, use_triton
from .reference import minibatch_stddev_reference


def resolve_group_size(n: int, group_size: Optional[int], *, adjust_group_size: bool) -> int:
    """The group size used for a batch of ``n``: ``min(group_size, n)``, or all of ``n`` for None."""
    return check_group_size(
        n,
        group_size,
        arg="group_size",
        adjust=adjust_group_size,
        remedy=(
            "pass a batch that is a multiple of {g}, or adjust_group_size=True to use the largest divisor of "
            "the batch size not above it ({divisor})"
        ),
    )


def minibatch_stddev(
    x: torch.Tensor,
    *,
    group_size: Optional[int] = 4,
    num_channels: int = 1,
    adjust_group_size: bool = False,
    backend: Optional[Backend] = None,
) -> torch.Tensor:
    r"""Append the standard deviation across groups of samples as extra feature maps.

    With :math:`G = \min(\text{group\_size}, N)`, :math:`M = N/G` and :math:`F` = ``num_channels``, the batch
    is viewed as ``(G, M, F, C/F, H, W)`` (sample :math:`i` is in group slot :math:`i \bmod M`, so groups
    are strided), and

    .. math::
        s_{m f} = \operatorname{mean}_{c, h, w}
        \sqrt{\operatorname{Var}_g\big[x_{g m f c h w}\big] + 10^{-8}}

    (biased variance) is broadcast to ``(N, F, H, W)`` and concatenated to ``x``.

    Args:
        x: input of shape ``(N, C, H, W)``.
        group_size: samples per group; None uses the whole batch.
        num_channels: number of stddev feature maps ``F``; must divide ``C``.
        adjust_group_size: if the batch size is not divisible by the group size, use the largest divisor
            of it below ``group_size`` instead of raising.
        backend: ``"auto"``, ``"triton"`` or ``"torch"``; None follows :func:`ganblocks.ops.use_backend`.

    Returns:
        Tensor of shape ``(N, C + F, H, W)``, dtype and memory format of ``x``.

    Example:
        >>> import torch
        >>> from ganblocks.functional import minibatch_stddev
        >>> x = torch.tensor([0.0, 2.0]).reshape(2, 1, 1, 1)
        >>> minibatch_stddev(x, group_size=2)[:, 1].flatten()
        tensor([1., 1.])

    Reference:
        Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation", ICLR 2018.
    """
    check_input("x", x, exact=4)
    n, c = x.shape[0], x.shape[1]
    if n == 0:
        raise ValueError(f"x must have a non-empty batch, got shape {tuple(x.shape)}")
    if (
        type(num_channels) is not int
        and (isinstance(num_channels, bool) or not isinstance(num_channels, int))
    ) or num_channels < 1:  # the common exact int first; int subclasses pass, a bool fails
        raise ValueError(f"num_channels must be a positive int, got {num_channels!r}")
    if c % num_channels != 0:
        raise ValueError(f"the channel count of x ({c}) must be divisible by num_channels ({num_channels})")
    g = resolve_group_size(n, group_size, adjust_group_size=adjust_group_size)
    if use_triton(backend, x, op="minibatch_stddev"):
        from .custom_op import minibatch_stddev_triton

        return minibatch_stddev_triton(x, group_size=g, num_channels=num_channels)
    return minibatch_stddev_reference(x, group_size=g, num_channels=num_channels)
