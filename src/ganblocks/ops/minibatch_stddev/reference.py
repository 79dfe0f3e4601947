from __future__ import annotations

from typing import Any

import torch

from ..._precision import LOW_PRECISION, upcast


def output_memory_format(x: torch.Tensor) -> torch.memory_format:
    """The layout of the output: channels_last for a channels_last ``x`` (not also contiguous), else contiguous.

    Shared by the reference, the Triton launcher and the custom op's fake kernel so that all three agree.
    """
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return torch.contiguous_format  # the common contiguous case decided by one test
    return torch.channels_last


# Below this many elements the statistics take the single-call torch.var path.
_SMALL = 1024


def _group_std_mean(y: torch.Tensor) -> torch.Tensor:
    """``mean_{c,h,w} sqrt(var_g(y) + 1e-8)`` of the grouped view ``(G, M, F, C/F, H, W)``: shape (M, F)."""
    acc = upcast(y)
    dev = acc - acc.mean(dim=0)
    std = (dev.square().mean(dim=0) + 1e-8).sqrt()
    return std.mean(dim=(2, 3, 4))


def _group_std_mean_grad(y: torch.Tensor, ds: torch.Tensor) -> torch.Tensor:
    """The gradient of :func:`_group_std_mean` for the incoming ``ds`` (M, F), in differentiable PyTorch.

    With ``d = y - mean_g y`` and ``std = sqrt(mean_g d² + 1e-8)``: ``dy = ds / (K G) * d / std``,
    ``K = C/F * H * W`` (the variance's own derivative ``2 d / G`` needs no centring term, as ``Σ_g d = 0``).
    """
    g, m, f = y.shape[0], y.shape[1], y.shape[2]
    k = y.shape[3] * y.shape[4] * y.shape[5]
    acc = upcast(y)
    dev = acc - acc.mean(dim=0)
    std = (dev.square().mean(dim=0) + 1e-8).sqrt()
    coef = ds.to(acc.dtype).reshape(m, f, 1, 1, 1) / (k * g)
    return (dev * (coef / std)).to(y.dtype)


class _GroupStdMean(torch.autograd.Function):
    """:func:`_group_std_mean` with a backward that recomputes the statistics from the input.

    Autograd keeps only the input (a view of ``x``), where the composite formula would keep the centred
    copy of ``x``; the backward is differentiable PyTorch on the saved input, so every order works.
    """

    @staticmethod
    def forward(ctx: Any, y: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(y)
        return _group_std_mean(y)

    @staticmethod
    def backward(ctx: Any, ds: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return _group_std_mean_grad(y, ds)


def minibatch_stddev_stats_reference(x: torch.Tensor, *, group_size: int, num_channels: int) -> torch.Tensor:
    """Per group slot and channel group, the mean standard deviation: shape (N // group_size, F).

    Sample ``i`` belongs to slot ``i % M`` (M = N // G): groups are strided, as in StyleGAN2-ADA.
    """
    n, c, h, w = x.shape
    g, f = group_size, num_channels
    y = x.reshape(g, n // g, f, c // f, h, w)
    if y.numel() <= _SMALL:
        # A few hundred elements: torch.var (Welford, slow per element but one call) costs less host time
        # than the custom function, and autograd saves only its input here too.
        if y.dtype in LOW_PRECISION:
            y = y.float()
        return (torch.var(y, dim=0, correction=0) + 1e-8).sqrt().mean(dim=(2, 3, 4))
    stats: torch.Tensor = _GroupStdMean.apply(y)  # type: ignore[no-untyped-call]
    return stats


def minibatch_stddev_reference(x: torch.Tensor, *, group_size: int, num_channels: int) -> torch.Tensor:
    """Concatenate the group standard deviation to ``x`` as ``num_channels`` extra channels."""
    n, _, h, w = x.shape
    stats = minibatch_stddev_stats_reference(x, group_size=group_size, num_channels=num_channels)
    if stats.dtype != x.dtype:
        stats = stats.to(x.dtype)
    # Sample i reads slot i % M: the (M, F) statistics tiled G times along the batch, and over H, W.
    tiles = stats.view(n // group_size, num_channels, 1, 1)
    if output_memory_format(x) == torch.channels_last:
        # torch.cat keeps channels_last only when every input has it (explicit strides: a repeat's
        # (N, 1, H, W) output is ambiguous and counts as contiguous); the stat maps are 1/C of the output.
        feat = tiles.repeat(group_size, 1, 1, 1).expand(n, num_channels, h, w)
        feat = feat.contiguous(memory_format=torch.channels_last)
    else:
        feat = tiles.repeat(group_size, 1, h, w)
    return torch.cat([x, feat], dim=1)
