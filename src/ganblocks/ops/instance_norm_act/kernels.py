"""Triton kernels for ``instance_norm_act``: one program per ``(n, c)`` plane.

The forward reads the plane once for its statistics (sums shifted by the first tile's mean, so the
variance does not cancel catastrophically) and once more to normalize, apply the affine, the activation
and the gain; a plane that fits in one tile is read once. The spatial dims of a dense tensor are one
strided run in contiguous (stride 1) and channels_last (stride C) layouts, so neither is copied.
The backward recomputes the pre-activation from ``x`` and the saved per-plane mean and rstd.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import triton
import triton.language as tl

from ..._precision import accumulation_dtype
from .._triton.activations import act_forward, act_grad_from_input, scalar
from .._triton.common import acc_dtype, dense, like, tile_budget
from .._triton.stats import rsqrt


@triton.jit
def _plane_affine(scale_ptr, bias_ptr, n, c, stride_sn, stride_bn, ACC: tl.constexpr,
                  HAS_SCALE: tl.constexpr, HAS_BIAS: tl.constexpr):  # fmt: skip
    s = tl.load(scale_ptr + n * stride_sn + c).to(ACC) if HAS_SCALE else 1.0
    b = tl.load(bias_ptr + n * stride_bn + c).to(ACC) if HAS_BIAS else 0.0
    return s, b


@triton.jit
def _instance_norm_act_fwd_kernel(
    x_ptr, y_ptr, scale_ptr, bias_ptr, mean_ptr, rstd_ptr,
    num_c, hw, sxn, sxc, sxs, stride_sn, stride_bn, eps: tl.float64, alpha: tl.float64, gain: tl.float64,
    ACT: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_BIAS: tl.constexpr,
    ACC: tl.constexpr, BLOCK: tl.constexpr, SINGLE: tl.constexpr,
):  # fmt: skip
    # float64 scalars converted to the accumulation dtype: float64 data sees them unrounded.
    eps = scalar(eps, ACC)
    alpha = scalar(alpha, ACC)
    gain = scalar(gain, ACC)
    pid = tl.program_id(0).to(tl.int64)
    n = pid // num_c
    c = pid % num_c
    # y has x's strides (empty_like of a dense tensor).
    plane = n * sxn + c * sxc
    xp = x_ptr + plane
    yp = y_ptr + plane
    offs = tl.arange(0, BLOCK).to(tl.int64)

    mask0 = offs < hw
    x0 = tl.load(xp + offs * sxs, mask=mask0, other=0.0).to(ACC)
    # Shift by the first tile's mean: exact two-pass statistics when the plane fits in one tile.
    shift = tl.sum(x0, axis=0) / tl.minimum(hw, BLOCK).to(ACC)
    d = tl.where(mask0, x0 - shift, 0.0)
    s1 = d
    s2 = d * d
    for start in range(BLOCK, hw, BLOCK):
        i = start + offs
        m = i < hw
        d = tl.where(m, tl.load(xp + i * sxs, mask=m, other=0.0).to(ACC) - shift, 0.0)
        s1 += d
        s2 += d * d
    d_mean = tl.sum(s1, axis=0) / hw
    var = tl.sum(s2, axis=0) / hw - d_mean * d_mean
    # Rounding can leave a tiny negative variance; a where (not tl.maximum, which drops NaN on CUDA) keeps
    # a NaN plane NaN, as in the reference.
    var = tl.where(var < 0, 0.0, var)
    mean = shift + d_mean
    rstd = rsqrt(var + eps, ACC)
    tl.store(mean_ptr + pid, mean)
    tl.store(rstd_ptr + pid, rstd)

    s, b = _plane_affine(scale_ptr, bias_ptr, n, c, stride_sn, stride_bn, ACC, HAS_SCALE, HAS_BIAS)
    a = rstd * s
    if SINGLE:
        y = act_forward((x0 - mean) * a + b, alpha, ACT) * gain
        tl.store(yp + offs * sxs, y.to(y_ptr.dtype.element_ty), mask=mask0)
    else:
        for start in range(0, hw, BLOCK):
            i = start + offs
            m = i < hw
            xv = tl.load(xp + i * sxs, mask=m, other=0.0).to(ACC)
            y = act_forward((xv - mean) * a + b, alpha, ACT) * gain
            tl.store(yp + i * sxs, y.to(y_ptr.dtype.element_ty), mask=m)


@triton.jit
def _dz_xhat(xv, dyv, mean, rstd, s, b, alpha, gain, ACT: tl.constexpr):
    """Gradient at the pre-activation, and the normalized input."""
    xhat = (xv - mean) * rstd
    dz = dyv * (act_grad_from_input(xhat * s + b, alpha, ACT) * gain)
    return dz, xhat


@triton.jit
def _instance_norm_act_bwd_kernel(
    dy_ptr, x_ptr, dx_ptr, scale_ptr, bias_ptr, mean_ptr, rstd_ptr, dscale_ptr, dbias_ptr,
    num_c, hw, sxn, sxc, sxs, stride_sn, stride_bn, alpha: tl.float64, gain: tl.float64,
    ACT: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_BIAS: tl.constexpr,
    ACC: tl.constexpr, BLOCK: tl.constexpr, SINGLE: tl.constexpr,
):  # fmt: skip
    alpha = scalar(alpha, ACC)
    gain = scalar(gain, ACC)
    # dz = dy * gain * act'(z), z = s * xhat + b. Per plane: dbias = sum(dz), dscale = sum(dz * xhat),
    # dx = rstd * s * (dz - mean(dz) - xhat * mean(dz * xhat)). dy and dx share x's strides.
    pid = tl.program_id(0).to(tl.int64)
    n = pid // num_c
    c = pid % num_c
    plane = n * sxn + c * sxc
    offs = tl.arange(0, BLOCK).to(tl.int64)
    mean = tl.load(mean_ptr + pid)
    rstd = tl.load(rstd_ptr + pid)
    s, b = _plane_affine(scale_ptr, bias_ptr, n, c, stride_sn, stride_bn, ACC, HAS_SCALE, HAS_BIAS)

    mask0 = offs < hw
    x0 = tl.load(x_ptr + plane + offs * sxs, mask=mask0, other=0.0).to(ACC)
    dy0 = tl.load(dy_ptr + plane + offs * sxs, mask=mask0, other=0.0).to(ACC)
    dz0, xhat0 = _dz_xhat(x0, dy0, mean, rstd, s, b, alpha, gain, ACT)
    dz0 = tl.where(mask0, dz0, 0.0)
    acc_dz = dz0
    acc_dzx = dz0 * xhat0
    for start in range(BLOCK, hw, BLOCK):
        i = start + offs
        m = i < hw
        xv = tl.load(x_ptr + plane + i * sxs, mask=m, other=0.0).to(ACC)
        dyv = tl.load(dy_ptr + plane + i * sxs, mask=m, other=0.0).to(ACC)
        dz, xhat = _dz_xhat(xv, dyv, mean, rstd, s, b, alpha, gain, ACT)
        dz = tl.where(m, dz, 0.0)
        acc_dz += dz
        acc_dzx += dz * xhat
    sum_dz = tl.sum(acc_dz, axis=0)
    sum_dzx = tl.sum(acc_dzx, axis=0)
    tl.store(dbias_ptr + pid, sum_dz)
    tl.store(dscale_ptr + pid, sum_dzx)

    mean_dz = sum_dz / hw
    mean_dzx = sum_dzx / hw
    k = rstd * s
    if SINGLE:
        dx = k * (dz0 - mean_dz - xhat0 * mean_dzx)
        tl.store(dx_ptr + plane + offs * sxs, dx.to(dx_ptr.dtype.element_ty), mask=mask0)
    else:
        for start in range(0, hw, BLOCK):
            i = start + offs
            m = i < hw
            xv = tl.load(x_ptr + plane + i * sxs, mask=m, other=0.0).to(ACC)
            dyv = tl.load(dy_ptr + plane + i * sxs, mask=m, other=0.0).to(ACC)
            dz, xhat = _dz_xhat(xv, dyv, mean, rstd, s, b, alpha, gain, ACT)
            dx = k * (dz - mean_dz - xhat * mean_dzx)
            tl.store(dx_ptr + plane + i * sxs, dx.to(dx_ptr.dtype.element_ty), mask=m)


def _spatial_stride(x: torch.Tensor) -> Optional[int]:
    """The one stride that walks all spatial elements of ``x`` in order, or None if there is none."""
    dims = [(size, stride) for size, stride in zip(x.shape[2:], x.stride()[2:]) if size != 1]
    if not dims:
        return 1
    for (_, outer), (size, inner) in zip(dims, dims[1:]):
        if outer != inner * size:
            return None
    return dims[-1][1]


def _planar(x: torch.Tensor) -> tuple[torch.Tensor, int, bool]:
    """``x`` dense with its spatial dims one strided run, that stride, and whether that needed a new layout.

    A non-dense ``x`` is copied with ``empty_like``, so a strided channels_last view stays channels_last, as
    the fake kernels (``empty_like``) predict under torch.compile. Only a dense layout whose spatial dims
    are interleaved with the batch or channel dim gets a contiguous copy; its result is copied back.
    """
    x = dense(x)
    stride = _spatial_stride(x)
    if stride is None:
        return x.contiguous(), 1, True
    return x, stride, False


def _restore_layout(t: torch.Tensor, x: torch.Tensor, relaid: bool) -> torch.Tensor:
    return torch.empty_like(x).copy_(t) if relaid else t


def _launch_config(hw: int) -> tuple[int, int]:
    cap = tile_budget(4096)
    block = min(triton.next_power_of_2(hw), cap)
    return block, 8 if block >= 2048 else 4


def _affine(p: Optional[torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The parameter (or a placeholder pointer) and its batch stride: 0 for ``(C,)``, C for ``(N, C)``."""
    if p is None:
        return x, 0
    p = p.contiguous()
    return p, (p.shape[1] if p.ndim == 2 else 0)


def instance_norm_act_forward(
    x: torch.Tensor,
    scale: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    eps: float,
    act: int,
    alpha: float,
    gain: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(y, mean, rstd)`` with ``mean`` and ``rstd`` of shape ``(N, C)`` in the accumulation dtype."""
    n, c, hw = x.shape[0], x.shape[1], math.prod(x.shape[2:])
    if x.numel() == 0:
        # The statistics of empty planes are undefined and never read; only their shape matters.
        zeros = x.new_zeros((n, c), dtype=accumulation_dtype(x.dtype))
        return torch.empty_like(x), zeros, zeros.clone()
    mean = x.new_empty((n, c), dtype=accumulation_dtype(x.dtype))
    rstd = torch.empty_like(mean)
    x_in = x
    x, sxs, relaid = _planar(x)
    y = torch.empty_like(x)
    scale_t, stride_sn = _affine(scale, x)
    bias_t, stride_bn = _affine(bias, x)
    block, num_warps = _launch_config(hw)
    _instance_norm_act_fwd_kernel[(n * c,)](
        x, y, scale_t, bias_t, mean, rstd,
        c, hw, x.stride(0), x.stride(1), sxs, stride_sn, stride_bn, float(eps), alpha, gain,
        ACT=act, HAS_SCALE=scale is not None, HAS_BIAS=bias is not None,
        ACC=acc_dtype(x.dtype), BLOCK=block, SINGLE=block >= hw, num_warps=num_warps,
    )  # fmt: skip
    return _restore_layout(y, x_in, relaid), mean, rstd


def instance_norm_act_backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    scale: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    mean: torch.Tensor,
    rstd: torch.Tensor,
    act: int,
    alpha: float,
    gain: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dx, dscale, dbias)`` with the affine gradients per plane, ``(N, C)`` in the accumulation dtype."""
    n, c, hw = x.shape[0], x.shape[1], math.prod(x.shape[2:])
    if x.numel() == 0:
        # Sums over empty planes.
        zeros = x.new_zeros((n, c), dtype=accumulation_dtype(x.dtype))
        return torch.empty_like(x), zeros, zeros.clone()
    x_in = x
    x, sxs, relaid = _planar(x)
    dy = like(dy, x)
    dx = torch.empty_like(x)
    dscale = x.new_empty((n, c), dtype=accumulation_dtype(x.dtype))
    dbias = torch.empty_like(dscale)
    scale_t, stride_sn = _affine(scale, x)
    bias_t, stride_bn = _affine(bias, x)
    block, num_warps = _launch_config(hw)
    _instance_norm_act_bwd_kernel[(n * c,)](
        dy, x, dx, scale_t, bias_t, mean.contiguous(), rstd.contiguous(), dscale, dbias,
        c, hw, x.stride(0), x.stride(1), sxs, stride_sn, stride_bn, alpha, gain,
        ACT=act, HAS_SCALE=scale is not None, HAS_BIAS=bias is not None,
        ACC=acc_dtype(x.dtype), BLOCK=block, SINGLE=block >= hw, num_warps=num_warps,
    )  # fmt: skip
    return _restore_layout(dx, x_in, relaid), dscale, dbias
