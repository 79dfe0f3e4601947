"""Triton kernels for ``minibatch_stddev``: statistics fused with the copy of ``x``, and the backward.

A program owns one group slot ``m``, one channel group ``f`` and a ``(BLOCK_C, BLOCK_P)`` tile of that
group's channels × pixels (see ``planar``). It walks the ``G`` members of the group (samples
``g * M + m``) twice: the first walk accumulates the mean and writes each tile into ``out[:, :C]``, the
second (served from L2) the biased variance, so ``x`` is read from memory once and the variance is the
two-pass one of the reference. Each program stores the sum of ``sqrt(var + 1e-8)`` over its tile; the
few partial sums per ``(m, f)`` are added in PyTorch in a fixed order (deterministic, no atomics), and
the ``F`` stat channels, ``1/C`` of the output, are broadcast into ``out[:, C:]`` by one strided copy.

The backward recomputes the group mean and deviation the same way and writes
``dx = dout[:, :C] + D[m, f] / (K G) * (x - mean) / std`` in a third walk, ``K = C/F * H * W`` and
``D[m, f]`` the sum of the stat channels' gradient over the group's samples and pixels.
"""

from __future__ import annotations

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


def minibatch_stddev_forward(x: torch.Tensor, group_size: int, num_channels: int) -> torch.Tensor:
    """``cat([x, stats broadcast to (N, F, H, W)], dim=1)`` with strided groups of ``group_size``."""
    n, c, h, w = x.shape
    f = num_channels
    out = torch.empty((n, c + f, h, w), dtype=x.dtype, device=x.device, memory_format=output_memory_format(x))
    if out.numel() == 0:
        return out
    x, (sx_n, sx_c, sx_p) = planar(x)
    _, (so_n, so_c, so_p) = planar(out)
    num_m, c_per_f, num_p, num_cb, num_chunks, block_c, block_p = _grid(x, group_size, f, sx_c)
    acc = accumulation_dtype(x.dtype)
    partial = torch.zeros((num_m * f, num_chunks), dtype=acc, device=x.device)
    if x.numel() > 0:  # with no channels the mean over none is nan, as in the reference
        _mbstd_fwd_kernel[(num_m * f * num_chunks,)](
            x, out, partial,
            group_size, num_m, f, c_per_f, num_p, num_cb, num_chunks,
            sx_n, sx_c, sx_p, so_n, so_c, so_p,
            ACC=acc_dtype(x.dtype), BLOCK_C=block_c, BLOCK_P=block_p,
        )  # fmt: skip
    stats = partial.sum(dim=1).div_(c_per_f * num_p).to(x.dtype).reshape(num_m, f)
    out[:, c:].copy_(stats.repeat(group_size, 1).reshape(n, f, 1, 1).expand(n, f, h, w))
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
    acc = accumulation_dtype(x.dtype)
    d_stat = dout[:, c:].sum(dim=(2, 3), dtype=acc).reshape(group_size, num_m * f).sum(dim=0)
    coef = d_stat.div_(c_per_f * num_p * group_size).contiguous()
    _mbstd_bwd_kernel[(num_m * f * num_chunks,)](
        x, dout, coef, dx_out,
        group_size, num_m, f, c_per_f, num_p, num_cb, num_chunks,
        sx_n, sx_c, sx_p, sd_n, sd_c, sd_p, sdx_n, sdx_c, sdx_p,
        ACC=acc_dtype(x.dtype), BLOCK_C=block_c, BLOCK_P=block_p,
    )  # fmt: skip
    if dx_out is not dx:
        dx.copy_(dx_out)
    return dx
