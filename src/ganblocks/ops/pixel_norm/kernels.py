"""Triton kernels for ``pixel_norm``: one program per block of pixels, the channel dim tiled.

A dense tensor in any layout (contiguous, channels_last, any permutation) is, in memory order,
``(outer, C, inner)`` with ``inner`` the stride of the channel dim: pixel ``p`` starts at
``(p // inner) * inner * C + p % inner`` and its channels follow every ``inner`` elements. So no layout
needs a copy, and ``dim`` can be any dimension.
"""

# No `from __future__ import annotations`: the interpreter of Triton 3.0 and 3.1 (torch 2.4, 2.5) finds
# tl.constexpr parameters only by unstringified annotations.

import torch
import triton
import triton.language as tl

from .._triton.activations import scalar
from .._triton.common import acc_dtype, dense, like, tile_budget
from .._triton.stats import rsqrt


@triton.jit
def _pixel_offsets(pid, num_pixels, inner, num_c, BLOCK_P: tl.constexpr):
    p = pid.to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    base = (p // inner) * inner * num_c + p % inner
    return base, p < num_pixels


@triton.jit
def _scale(x):
    """Per pixel (row of ``x``), ``max |x|`` where it exceeds 1, else 1: see ``reference.pixel_scale``.

    ``tl.max`` may drop a NaN (it does on CUDA); the NaN then reaches the output through the sum of
    squares, so both outcomes agree with the reference.
    """
    m = tl.max(tl.abs(x), axis=1)
    return tl.where(m > 1.0, m, 1.0)


@triton.jit
def _pixel_norm_fwd_kernel(
    x_ptr, y_ptr, num_pixels, inner, num_c, eps: tl.float64,
    ACC: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr, SINGLE: tl.constexpr,
):  # fmt: skip
    # y = s * rsqrt(mean_c(s^2) + eps / k^2) with s = x / k: the squares cannot overflow (see _scale).
    eps = scalar(eps, ACC)
    base, pmask = _pixel_offsets(tl.program_id(0), num_pixels, inner, num_c, BLOCK_P)
    cs = tl.arange(0, BLOCK_C).to(tl.int64)
    if SINGLE:
        # All channels fit in one tile: read x once.
        offs = base[:, None] + cs[None, :] * inner
        mask = pmask[:, None] & (cs < num_c)[None, :]
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
        k = _scale(x)
        s = x / k[:, None]
        r = rsqrt(tl.sum(s * s, axis=1) / num_c + eps / (k * k), ACC)
        tl.store(y_ptr + offs, (s * r[:, None]).to(y_ptr.dtype.element_ty), mask=mask)
    else:
        # One pass for the statistics: the running sum of squares is rescaled whenever a larger |x| raises
        # the pixel's k (the scaled sum of squares of LAPACK's nrm2).
        k = tl.full([BLOCK_P], 1.0, ACC)
        ssq = tl.zeros([BLOCK_P], dtype=ACC)
        for c0 in range(0, num_c, BLOCK_C):
            c = c0 + cs
            mask = pmask[:, None] & (c < num_c)[None, :]
            x = tl.load(x_ptr + base[:, None] + c[None, :] * inner, mask=mask, other=0.0).to(ACC)
            k_new = tl.maximum(k, _scale(x))  # both finite or inf, never NaN
            ratio = k / k_new
            s = x / k_new[:, None]
            ssq = ssq * (ratio * ratio) + tl.sum(s * s, axis=1)
            k = k_new
        r = rsqrt(ssq / num_c + eps / (k * k), ACC)
        for c0 in range(0, num_c, BLOCK_C):
            c = c0 + cs
            offs = base[:, None] + c[None, :] * inner
            mask = pmask[:, None] & (c < num_c)[None, :]
            x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
            tl.store(y_ptr + offs, (x / k[:, None] * r[:, None]).to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _pixel_norm_bwd_kernel(
    dy_ptr, x_ptr, dx_ptr, num_pixels, inner, num_c, eps: tl.float64,
    ACC: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr, SINGLE: tl.constexpr,
):  # fmt: skip
    # dx = r dy - x r^3 mean_c(dy x) with r = rsqrt(mean_c(x^2) + eps), written with s = x / k and
    # r_s = rsqrt(mean_c(s^2) + eps / k^2) = k r so that nothing overflows:
    # dx = (r_s / k) * (dy - s * r_s^2 * mean_c(dy s)). r_s is recomputed, not saved.
    eps = scalar(eps, ACC)
    base, pmask = _pixel_offsets(tl.program_id(0), num_pixels, inner, num_c, BLOCK_P)
    cs = tl.arange(0, BLOCK_C).to(tl.int64)
    if SINGLE:
        offs = base[:, None] + cs[None, :] * inner
        mask = pmask[:, None] & (cs < num_c)[None, :]
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
        dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
        k = _scale(x)
        s = x / k[:, None]
        r = rsqrt(tl.sum(s * s, axis=1) / num_c + eps / (k * k), ACC)
        q = r * r * (tl.sum(dy * s, axis=1) / num_c)
        dx = (r / k)[:, None] * (dy - s * q[:, None])
        tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)
    else:
        k = tl.full([BLOCK_P], 1.0, ACC)
        ssq = tl.zeros([BLOCK_P], dtype=ACC)
        dot = tl.zeros([BLOCK_P], dtype=ACC)
        for c0 in range(0, num_c, BLOCK_C):
            c = c0 + cs
            offs = base[:, None] + c[None, :] * inner
            mask = pmask[:, None] & (c < num_c)[None, :]
            x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
            dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
            k_new = tl.maximum(k, _scale(x))
            ratio = k / k_new
            s = x / k_new[:, None]
            ssq = ssq * (ratio * ratio) + tl.sum(s * s, axis=1)
            dot = dot * ratio + tl.sum(dy * s, axis=1)
            k = k_new
        r = rsqrt(ssq / num_c + eps / (k * k), ACC)
        q = r * r * (dot / num_c)
        for c0 in range(0, num_c, BLOCK_C):
            c = c0 + cs
            offs = base[:, None] + c[None, :] * inner
            mask = pmask[:, None] & (c < num_c)[None, :]
            x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
            dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
            dx = (r / k)[:, None] * (dy - x / k[:, None] * q[:, None])
            tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)


def _layout(x: torch.Tensor, dim: int) -> tuple[int, int, int]:
    """``(num_pixels, inner, C)`` of the dense tensor ``x`` normalized along ``dim``."""
    num_c = x.shape[dim]
    numel = x.numel()
    # With one channel the channel stride is arbitrary: every element is its own pixel.
    inner = numel if num_c == 1 else x.stride(dim)
    return numel // num_c, inner, num_c


def _launch_config(num_pixels: int, inner: int, num_c: int) -> tuple[int, int, bool, int]:
    """``(BLOCK_P, BLOCK_C, SINGLE, num_warps)`` for a tile of about ``budget`` elements."""
    budget = tile_budget(4096)
    c_pow2 = triton.next_power_of_2(num_c)
    if inner == 1:
        # Channels are contiguous: whole channel rows per tile.
        block_c = min(c_pow2, budget)
    else:
        # Pixels are contiguous: keep at least 64 of them per row of the tile for coalesced access.
        block_c = min(c_pow2, max(budget // min(triton.next_power_of_2(inner), 64), 1))
    block_p = max(1, min(budget // block_c, triton.next_power_of_2(num_pixels)))
    num_warps = 8 if block_p * block_c >= 4096 else 4
    return block_p, block_c, block_c >= num_c, num_warps


def pixel_norm_forward(x: torch.Tensor, eps: float, dim: int) -> torch.Tensor:
    x = dense(x)
    y = torch.empty_like(x)
    if x.numel() == 0:
        return y
    num_pixels, inner, num_c = _layout(x, dim)
    block_p, block_c, single, num_warps = _launch_config(num_pixels, inner, num_c)
    _pixel_norm_fwd_kernel[(triton.cdiv(num_pixels, block_p),)](
        x, y, num_pixels, inner, num_c, float(eps),
        ACC=acc_dtype(x.dtype), BLOCK_P=block_p, BLOCK_C=block_c, SINGLE=single, num_warps=num_warps,
    )  # fmt: skip
    return y


def pixel_norm_backward(dy: torch.Tensor, x: torch.Tensor, eps: float, dim: int) -> torch.Tensor:
    x = dense(x)
    dy = like(dy, x)
    dx = torch.empty_like(x)
    if x.numel() == 0:
        return dx
    num_pixels, inner, num_c = _layout(x, dim)
    block_p, block_c, single, num_warps = _launch_config(num_pixels, inner, num_c)
    _pixel_norm_bwd_kernel[(triton.cdiv(num_pixels, block_p),)](
        dy, x, dx, num_pixels, inner, num_c, float(eps),
        ACC=acc_dtype(x.dtype), BLOCK_P=block_p, BLOCK_C=block_c, SINGLE=single, num_warps=num_warps,
    )  # fmt: skip
    return dx
