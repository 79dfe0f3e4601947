"""Triton kernels for ``instance_avg_pool``: per-segment sums with atomics, then a gather of the means.

Pixels are numbered ``p = (n * H + h) * W + w``; ``seg[p]`` is the compacted ``(sample, instance)``
segment (see :func:`.reference.segment_ids`). The features are addressed through their strides, so
contiguous, channels_last and any other dense layout are read and written without a copy.

Instance maps are spatially coherent: most tiles of pixels lie in one segment. A tile whose pixels all
share a segment is summed in registers and added with one atomic per channel; only tiles that straddle
a boundary add pixel by pixel. The atomics make float32 sums on GPU reproducible up to rounding order.
"""

# No `from __future__ import annotations`: the interpreter of Triton 3.0 and 3.1 (torch 2.4, 2.5) finds
# tl.constexpr parameters only by unstringified annotations.

import torch
import triton
import triton.language as tl

from .._triton.common import acc_dtype, dense, tile_budget


@triton.jit
def _pixel_offsets(p, hw, width, s_n, s_h, s_w):
    n = p // hw
    r = p % hw
    return n * s_n + (r // width) * s_h + (r % width) * s_w


@triton.jit
def _segment_sum_kernel(
    x_ptr, seg_ptr, sums_ptr, num_pixels, hw, width, num_c, s_n, s_c, s_h, s_w,
    ACC: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):  # fmt: skip
    p = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    c = tl.program_id(1).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C)
    pmask = p < num_pixels
    cmask = c < num_c
    mask = pmask[:, None] & cmask[None, :]
    offs = _pixel_offsets(p, hw, width, s_n, s_h, s_w)[:, None] + c[None, :] * s_c
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
    seg = tl.load(seg_ptr + p, mask=pmask, other=0)
    lo = tl.min(tl.where(pmask, seg, num_pixels), axis=0)
    hi = tl.max(tl.where(pmask, seg, -1), axis=0)
    if lo == hi:
        # The whole tile lies in one segment: one atomic per channel.
        tl.atomic_add(sums_ptr + lo * num_c + c, tl.sum(x, axis=0), mask=cmask)
    else:
        tl.atomic_add(sums_ptr + seg[:, None] * num_c + c[None, :], x, mask=mask)


@triton.jit
def _gather_means_kernel(
    sums_ptr, inv_count_ptr, seg_ptr, y_ptr, num_pixels, hw, width, num_c, s_n, s_c, s_h, s_w,
    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
):  # fmt: skip
    p = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    c = tl.program_id(1).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C)
    pmask = p < num_pixels
    mask = pmask[:, None] & (c < num_c)[None, :]
    seg = tl.load(seg_ptr + p, mask=pmask, other=0)
    inv = tl.load(inv_count_ptr + seg, mask=pmask, other=0.0)
    mean = tl.load(sums_ptr + seg[:, None] * num_c + c[None, :], mask=mask, other=0.0) * inv[:, None]
    offs = _pixel_offsets(p, hw, width, s_n, s_h, s_w)[:, None] + c[None, :] * s_c
    tl.store(y_ptr + offs, mean.to(y_ptr.dtype.element_ty), mask=mask)


def _launch_config(num_pixels: int, num_c: int) -> tuple[int, int]:
    """``(BLOCK_P, BLOCK_C)``: all channels of a few pixels up to 32, else 32-channel tiles."""
    block_c = min(triton.next_power_of_2(num_c), 32)
    block_p = max(1, min(tile_budget(2048) // block_c, triton.next_power_of_2(num_pixels)))
    return block_p, block_c


def instance_avg_pool_forward(features: torch.Tensor, instance_map: torch.Tensor) -> torch.Tensor:
    from .reference import output_format, segment_ids

    x = dense(features)
    y = torch.empty_like(x, memory_format=output_format(x))
    if x.numel() == 0:
        return y
    n, num_c, h, w = x.shape
    seg, num_segments = segment_ids(instance_map)
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    sums = torch.zeros(num_segments, num_c, dtype=acc, device=x.device)
    inv_count = torch.bincount(seg, minlength=num_segments).to(acc).reciprocal_()
    num_pixels = n * h * w
    block_p, block_c = _launch_config(num_pixels, num_c)
    grid = (triton.cdiv(num_pixels, block_p), triton.cdiv(num_c, block_c))
    sx, sy = x.stride(), y.stride()
    _segment_sum_kernel[grid](
        x, seg, sums, num_pixels, h * w, w, num_c, sx[0], sx[1], sx[2], sx[3],
        ACC=acc_dtype(x.dtype), BLOCK_P=block_p, BLOCK_C=block_c,
    )  # fmt: skip
    _gather_means_kernel[grid](
        sums, inv_count, seg, y, num_pixels, h * w, w, num_c, sy[0], sy[1], sy[2], sy[3],
        BLOCK_P=block_p, BLOCK_C=block_c,
    )  # fmt: skip
    return y
