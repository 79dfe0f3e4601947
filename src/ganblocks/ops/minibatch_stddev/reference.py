"""``minibatch_stddev`` in plain PyTorch: StyleGAN2-ADA's ``MinibatchStdLayer``, differentiable by autograd."""

from __future__ import annotations

import torch

from ..._precision import upcast


def output_memory_format(x: torch.Tensor) -> torch.memory_format:
    """The layout of the output: channels_last for a channels_last ``x`` (not also contiguous), else contiguous.

    Shared by the reference, the Triton launcher and the custom op's fake kernel so that all three agree.
    """
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return torch.contiguous_format
    return torch.channels_last


def minibatch_stddev_stats_reference(x: torch.Tensor, *, group_size: int, num_channels: int) -> torch.Tensor:
    """Per group slot and channel group, the mean standard deviation: shape (N // group_size, F).

    Sample ``i`` belongs to slot ``i % M`` (M = N // G): groups are strided, as in StyleGAN2-ADA.
    """
    n, c, h, w = x.shape
    g, f = group_size, num_channels
    y = upcast(x).reshape(g, n // g, f, c // f, h, w)
    y = y - y.mean(dim=0)
    std = (y.square().mean(dim=0) + 1e-8).sqrt()
    return std.mean(dim=(2, 3, 4))


def minibatch_stddev_reference(x: torch.Tensor, *, group_size: int, num_channels: int) -> torch.Tensor:
    """Concatenate the group standard deviation to ``x`` as ``num_channels`` extra channels."""
    n, _, h, w = x.shape
    stats = minibatch_stddev_stats_reference(x, group_size=group_size, num_channels=num_channels)
    # Sample i reads slot i % M: the (M, F) statistics tiled G times along the batch, and over H, W.
    feat = stats.to(x.dtype).reshape(n // group_size, num_channels, 1, 1).repeat(group_size, 1, h, w)
    return torch.cat([x, feat], dim=1).contiguous(memory_format=output_memory_format(x))
