"""Triton kernels for ``minibatch_stddev``: statistics fused with the copy of ``x``, and the backward.

A program owns one group slot ``m``, one channel group ``f`` and a ``(BLOCK_C, BLOCK_P)`` tile of that
group's channels × pixels (see ``planar``). It walks the ``G`` members of the group (samples
``g * M + m``) twice: the first walk accumulates the mean and writes each tile into ``out[:, :C]``, the
second (served from L2) the biased variance, so ``x`` is read from memory once and the variance is the
two-pass one of the reference. Each program stores the sum of ``sqrt(var + 1e-8)`` over its tile. A
second kernel adds the few partial sums of each ``(m, f)`` in a fixed order (deterministic, no atomics),
divides by their count and writes the result straight into the stat channels ``out[:, C:]``: two
launches in all, where zeroing, summing, dividing, casting and broadcasting in PyTorch took 5-6 more.

The backward sums the stat channels' gradient over each group's samples and pixels (``D[m, f]``) in one
small kernel, then recomputes the group mean and deviation the same way and writes
``dx = dout[:, :C] + D[m, f] / (K G) * (x - mean) / std`` in a third walk, ``K = C/F * H * W``.
"""

# No `from __future__ import annotations`: the interpreter of Triton 3.0 and 3.1 (torch 2.4, 2.5) finds
# tl.constexpr parameters only by unstringified annotations.

import torch
import triton
import triton.language as tl

from ..._precision import accumulation_dtype
from .._triton.common import acc_dtype
from .._triton.planar import planar, tiles
from .reference import output_memory_format


@triton.jit
def _tile(pid, num_chunks, num_f, c_per_f, num_p, num_cb, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    """Decode a program id into (m, channel offsets, pixel offsets, mask) for its tile."""
    chunk = pid % num_chunks
    mf = pid // num_chunks
    m = mf // num_f
    f = mf % num_f
    cb = chunk % num_cb
    pb = chunk // num_cb
    cl = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    p = pb * BLOCK_P + tl.arange(0, BLOCK_P)
    mask = (cl < c_per_f)[:, None] & (p < num_p)[None, :]
    c64 = (f * c_per_f + cl).to(tl.int64)[:, None]
    p64 = p.to(tl.int64)[None, :]
    return mf, m, c64, p64, mask


@triton.jit
def _mbstd_fwd_kernel(
    x_ptr, out_ptr, partial_ptr,
    group_size, num_m, num_f, c_per_f, num_p, num_cb, num_chunks,
    sx_n, sx_c, sx_p, so_n, so_c, so_p,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    mf, m, c64, p64, mask = _tile(pid, num_chunks, num_f, c_per_f, num_p, num_cb, BLOCK_C, BLOCK_P)
    x_tile = c64 * sx_c + p64 * sx_p
    o_tile = c64 * so_c + p64 * so_p
    total = tl.zeros([BLOCK_C, BLOCK_P], dtype=ACC)
    for g in range(group_size):
        n = (g * num_m + m).to(tl.int64)
        v = tl.load(x_ptr + (n * sx_n + x_tile), mask=mask, other=0.0)
        tl.store(out_ptr + (n * so_n + o_tile), v, mask=mask)
        total += v.to(ACC)
    mean = total / group_size
    sq = tl.zeros([BLOCK_C, BLOCK_P], dtype=ACC)
    for g in range(group_size):
        n = (g * num_m + m).to(tl.int64)
        d = tl.load(x_ptr + (n * sx_n + x_tile), mask=mask, other=0.0).to(ACC) - mean
        sq += d * d
    std = tl.sqrt(sq / group_size + 1e-8)
    tl.store(
        partial_ptr + (mf.to(tl.int64) * num_chunks + pid % num_chunks), tl.sum(tl.where(mask, std, 0.0))
    )


@triton.jit
def _mbstd_stat_kernel(
    partial_ptr, out_ptr, num_m, num_f, num_c, num_p, num_chunks, count, so_n, so_c, so_p,
    ACC: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    # One program per sample n, stat channel f and block of pixels: each adds the partials of its (m, f)
    # again (a few, from L2) rather than waiting on another launch to broadcast them.
    nf = tl.program_id(0)
    n = nf // num_f
    f = nf % num_f
    row = partial_ptr + ((n % num_m) * num_f + f).to(tl.int64) * num_chunks
    j = tl.arange(0, BLOCK_S)
    total = tl.zeros([BLOCK_S], dtype=ACC)
    for start in range(0, num_chunks, BLOCK_S):
        total += tl.load(row + start + j, mask=start + j < num_chunks, other=0.0)
    stat = tl.sum(total, axis=0) / count
    p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
    dst = out_ptr + n.to(tl.int64) * so_n + (num_c + f).to(tl.int64) * so_c + p.to(tl.int64) * so_p
    tl.store(dst, (tl.full([BLOCK_P], 0, ACC) + stat).to(out_ptr.dtype.element_ty), mask=p < num_p)


@triton.jit
def _mbstd_coef_kernel(
    dout_ptr, coef_ptr, group_size, num_m, num_f, num_c, num_p, count, sd_n, sd_c, sd_p,
    ACC: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    # coef[m, f] = D[m, f] / (K G): the stat channel f's gradient summed over the G samples of slot m and
    # over the pixels, in a fixed order. One program per (m, f) suffices: the stat channels are 1/C of
    # dout, and the op runs on a discriminator's last, 4 x 4, block.
    mf = tl.program_id(0)
    m = mf // num_f
    f = mf % num_f
    p = tl.arange(0, BLOCK_P)
    total = tl.zeros([BLOCK_P], dtype=ACC)
    for g in range(group_size):
        base = dout_ptr + (g * num_m + m).to(tl.int64) * sd_n + (num_c + f).to(tl.int64) * sd_c
        for start in range(0, num_p, BLOCK_P):
            i = start + p
            total += tl.load(base + i.to(tl.int64) * sd_p, mask=i < num_p, other=0.0).to(ACC)
    tl.store(coef_ptr + mf, tl.sum(total, axis=0) / count)


@triton.jit
def _mbstd_bwd_kernel(
    x_ptr, dout_ptr, coef_ptr, dx_ptr,
    group_size, num_m, num_f, c_per_f, num_p, num_cb, num_chunks,
    sx_n, sx_c, sx_p, sd_n, sd_c, sd_p, sdx_n, sdx_c, sdx_p,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    mf, m, c64, p64, mask = _tile(pid, num_chunks, num_f, c_per_f, num_p, num_cb, BLOCK_C, BLOCK_P)
    x_tile = c64 * sx_c + p64 * sx_p
    total = tl.zeros([BLOCK_C, BLOCK_P], dtype=ACC)
    for g in range(group_size):
        n = (g * num_m + m).to(tl.int64)
        total += tl.load(x_ptr + (n * sx_n + x_tile), mask=mask, other=0.0).to(ACC)
    mean = total / group_size
    sq = tl.zeros([BLOCK_C, BLOCK_P], dtype=ACC)
    for g in range(group_size):
        n = (g * num_m + m).to(tl.int64)
        d = tl.load(x_ptr + (n * sx_n + x_tile), mask=mask, other=0.0).to(ACC) - mean
        sq += d * d
    # coef = D[m, f] / (K * G), so dx = dout + coef * (x - mean) / std.
    scale = tl.load(coef_ptr + mf).to(ACC) / tl.sqrt(sq / group_size + 1e-8)
    d_tile = c64 * sd_c + p64 * sd_p
    dx_tile = c64 * sdx_c + p64 * sdx_p
    for g in range(group_size):
        n = (g * num_m + m).to(tl.int64)
        d = tl.load(x_ptr + (n * sx_n + x_tile), mask=mask, other=0.0).to(ACC) - mean
        dy = tl.load(dout_ptr + (n * sd_n + d_tile), mask=mask, other=0.0).to(ACC)
        tl.store(dx_ptr + (n * sdx_n + dx_tile), (dy + scale * d).to(dx_ptr.dtype.element_ty), mask=mask)


def _grid(x: torch.Tensor, group_size: int, num_channels: int, channel_stride: int) -> tuple[int, ...]:
    n, c, h, w = x.shape
    c_per_f, num_p = c // num_channels, h * w
    block_c, block_p = tiles(c_per_f, num_p, channel_stride)
    num_cb = triton.cdiv(c_per_f, block_c)
    num_chunks = num_cb * triton.cdiv(num_p, block_p)
    return n // group_size, c_per_f, num_p, num_cb, num_chunks, block_c, block_p


def _block(size: int) -> int:
    """A power-of-2 block for a loop over ``size`` elements: the whole run when it is short."""
    return int(min(triton.next_power_of_2(max(size, 1)), 1024))


def minibatch_stddev_forward(x: torch.Tensor, group_size: int, num_channels: int) -> torch.Tensor:
    """``cat([x, stats broadcast to (N, F, H, W)], dim=1)`` with strided groups of ``group_size``."""
    n, c, h, w = x.shape
    f = num_channels
    out = torch.empty((n, c + f, h, w), dtype=x.dtype, device=x.device, memory_format=output_memory_format(x))
    if out.numel() == 0:
        return out
    if x.numel() == 0:  # no channels: the mean over none is nan, as in the reference
        return out.fill_(float("nan"))
    x, (sx_n, sx_c, sx_p) = planar(x)
    _, (so_n, so_c, so_p) = planar(out)
    num_m, c_per_f, num_p, num_cb, num_chunks, block_c, block_p = _grid(x, group_size, f, sx_c)
    acc = acc_dtype(x.dtype)
    # Every program stores its slot: no zero fill.
    partial = torch.empty((num_m * f, num_chunks), dtype=accumulation_dtype(x.dtype), device=x.device)
    _mbstd_fwd_kernel[(num_m * f * num_chunks,)](
        x, out, partial,
        group_size, num_m, f, c_per_f, num_p, num_cb, num_chunks,
        sx_n, sx_c, sx_p, so_n, so_c, so_p,
        ACC=acc, BLOCK_C=block_c, BLOCK_P=block_p,
    )  # fmt: skip
    stat_block = _block(num_p)
    _mbstd_stat_kernel[(n * f, triton.cdiv(num_p, stat_block))](
        partial, out, num_m, f, c, num_p, num_chunks, c_per_f * num_p, so_n, so_c, so_p,
        ACC=acc, BLOCK_S=_block(num_chunks), BLOCK_P=stat_block,
    )  # fmt: skip
    return out


def minibatch_stddev_backward(
    dout: torch.Tensor, x: torch.Tensor, group_size: int, num_channels: int
) -> torch.Tensor:
    """``dx`` from the gradient ``dout`` of the ``(N, C + F, H, W)`` output."""
    c = x.shape[1]
    f = num_channels
    dx = torch.empty_like(x)
    if dx.numel() == 0 or dout.numel() == 0:
        return dx
    x, (sx_n, sx_c, sx_p) = planar(x)
    dout, (sd_n, sd_c, sd_p) = planar(dout)
    dx_out, (sdx_n, sdx_c, sdx_p) = planar(dx)
    num_m, c_per_f, num_p, num_cb, num_chunks, block_c, block_p = _grid(x, group_size, f, sx_c)
    acc = acc_dtype(x.dtype)
    coef = torch.empty(num_m * f, dtype=accumulation_dtype(x.dtype), device=x.device)
    _mbstd_coef_kernel[(num_m * f,)](
        dout, coef, group_size, num_m, f, c, num_p, c_per_f * num_p * group_size, sd_n, sd_c, sd_p,
        ACC=acc, BLOCK_P=_block(num_p),
    )  # fmt: skip
    _mbstd_bwd_kernel[(num_m * f * num_chunks,)](
        x, dout, coef, dx_out,
        group_size, num_m, f, c_per_f, num_p, num_cb, num_chunks,
        sx_n, sx_c, sx_p, sd_n, sd_c, sd_p, sdx_n, sdx_c, sdx_p,
        ACC=acc, BLOCK_C=block_c, BLOCK_P=block_p,
    )  # fmt: skip
    if dx_out is not dx:
        dx.copy_(dx_out)
    return dx
