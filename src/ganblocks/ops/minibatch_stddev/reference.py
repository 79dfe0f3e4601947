from __future__ import annotations

import torch

from ..._precision import upcast


def output_memory_format(x: torch.Tensor) -> torch.memory_format:
    """The layout of the output: channels_last for a channels_last ``x`` (not also contiguous), else contiguous.

    Shared by the reference, the Triton launcher and the custom op's fake kernel so that all three agree.
    """
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def minibatch_stddev_stats_reference(x: torch.Tensor, *, group_size: int, num_channels: int) -> torch.Tensor:
    """Per group slot and channel group, the mean standard deviation: shape (N // group_size, F).

    Sample ``i`` belongs to slot ``i % M`` (M = N // G): groups are strided, as in StyleGAN2-ADA.
    """
    n, c, h, w = x.shape
    g, f = group_size, num_channels
    acc = upcast(x)
    y = acc.reshape(g, n // g, f, c // f, h, w)
    y = y - y.mean(dim=0)
    y = y.square().mean(dim=0)
    y = (y + 1e-8).sqrt()
    return y.mean(dim=(2, 3, 4))


def minibatch_stddev_reference(x: torch.Tensor, *, group_size: int, num_channels: int) -> torch.Tensor:
    """Concatenate the group standard deviation to ``x`` as ``num_channels`` extra channels."""
    n, _, h, w = x.shape
    stats = minibatch_stddev_stats_reference(x, group_size=group_size, num_channels=num_channels)
    feat = (
        stats.to(x.dtype).repeat(group_size, 1).reshape(n, num_channels, 1, 1).expand(n, num_channels, h, w)
    )
    fmt = output_memory_format(x)
    if fmt == torch.channels_last:
        # torch.cat keeps channels_last only when every input has it; the stat maps are 1/C of the output.
        feat = feat.contiguous(memory_format=fmt)
    return torch.cat([x, feat], dim=1)
