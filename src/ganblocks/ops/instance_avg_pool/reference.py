"""Reference ``instance_avg_pool``: sums and counts per ``(sample, instance)`` segment with ``index_add``."""

from __future__ import annotations

import torch

from ..._precision import upcast


def segment_ids(instance_map: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Compact ``(sample, instance id)`` pairs to ``0 … S-1``, one entry per pixel in ``(n, h, w)`` order.

    Ids may be any integers (pix2pixHD codes ``label * 1000 + k``): ``torch.unique`` maps them to
    ``0 … U-1`` over the whole batch, then only the pairs that occur in some sample are kept, so the
    number of segments ``S`` is at most the number of pixels whatever the ids and the batch.
    """
    n = instance_map.shape[0]
    flat = instance_map.reshape(n, -1)
    values, inverse = torch.unique(flat, return_inverse=True)
    num_ids = values.numel()
    key = inverse + torch.arange(n, device=flat.device).unsqueeze(1) * num_ids
    present = torch.zeros(n * num_ids, dtype=torch.bool, device=flat.device)
    present[key.reshape(-1)] = True
    remap = present.cumsum(0) - 1
    return remap[key.reshape(-1)], int(present.sum())


def output_format(features: torch.Tensor) -> torch.memory_format:
    """The memory format of ``features`` (channels_last or contiguous), kept by the output."""
    if features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def instance_avg_pool_reference(features: torch.Tensor, instance_map: torch.Tensor) -> torch.Tensor:
    """Every pixel gets the mean of ``features`` over its instance in its sample (sums in float32 or float64)."""
    n, c, h, w = features.shape
    fmt = output_format(features)
    if features.numel() == 0:
        return torch.empty_like(features, memory_format=fmt)
    seg, num_segments = segment_ids(instance_map)
    flat = upcast(features).permute(0, 2, 3, 1).reshape(-1, c)
    sums = flat.new_zeros(num_segments, c).index_add(0, seg, flat)
    counts = torch.bincount(seg, minlength=num_segments).to(flat.dtype)
    means = sums / counts.unsqueeze(1)
    out = means.index_select(0, seg).reshape(n, h, w, c).permute(0, 3, 1, 2)
    return out.to(dtype=features.dtype, memory_format=fmt)
