"""Triton kernels for ``instance_norm_act``: statistics per ``(n, c)`` plane, then normalize.

One program per plane reads it once for its statistics (``shifted_sums``: no catastrophic cancellation)
and once more to normalize, apply the affine, the activation and the gain; a plane that fits in one tile
is read once. When the planes are too few to fill the GPU (4 x 3 x 1024 x 1024 is 12 planes for 132
SMs), each plane is split into chunks of whole tiles, one program per chunk (see ``launch.py``), and the
forward becomes two launches: a statistics kernel stores each chunk's mean and sum of squared deviations,
and a normalize kernel merges its plane's chunks (Chan's formula) before normalizing its own chunk. The
backward's per-plane sums of ``dz`` and ``dz * xhat`` are split the same way. x is read as often either
way; the split only adds the tiny ``(2, planes, splits)`` buffer of partials.

The spatial dims of a dense tensor are one strided run in contiguous (stride 1) and channels_last
(stride C) layouts, so neither is copied. The backward recomputes the pre-activation from ``x`` and the
saved per-plane mean and rstd.
"""

# No `from __future__ import annotations`: the interpreter of Triton 3.0 and 3.1 (torch 2.4, 2.5) finds
# tl.constexpr parameters only by unstringified annotations.

import math
from typing import Any, Optional

import torch
import triton
import triton.language as tl

from ..._precision import accumulation_dtype
from .._triton.activations import act_forward, act_grad_from_input, scalar
from .._triton.common import acc_dtype, like, tile_budget
from .._triton.stats import merge_moments, rsqrt, shifted_sums
from .launch import affine, plan_splits, planar, restore_layout, target_programs


@triton.jit
def _plane(pid, num_c, sxn, sxc, stride_sn, stride_bn, scale_ptr, bias_ptr, ACC: tl.constexpr,
           HAS_SCALE: tl.constexpr, HAS_BIAS: tl.constexpr):  # fmt: skip
    """The offset of plane ``pid`` in x and its affine ``(s, b)``."""
    n = pid // num_c
    c = pid % num_c
    s = tl.load(scale_ptr + n * stride_sn + c).to(ACC) if HAS_SCALE else 1.0
    b = tl.load(bias_ptr + n * stride_bn + c).to(ACC) if HAS_BIAS else 0.0
    return n * sxn + c * sxc, s, b


@triton.jit
def _chunk(hw, chunk):
    """The plane and split of a program of a split launch, and the ``[start, end)`` of its chunk."""
    pid = tl.program_id(0).to(tl.int64)
    split = tl.program_id(1).to(tl.int64)
    start = split * chunk
    return pid, split, start, tl.minimum(start + chunk, hw)


@triton.jit
def _normalize(xp, yp, sxs, start, end, shift, mean, a, b, alpha, gain, ACT: tl.constexpr, ACC: tl.constexpr,
               BLOCK: tl.constexpr):  # fmt: skip
    # x - shift - mean: the plane's mean as a shift (near the data, so x - shift is exact) and a small
    # correction, so a large mean rounded to ACC costs no precision.
    offs = tl.arange(0, BLOCK).to(tl.int64)
    for t in range(start, end, BLOCK):
        i = t + offs
        m = i < end
        xv = tl.load(xp + i * sxs, mask=m, other=0.0).to(ACC)
        y = act_forward((xv - shift - mean) * a + b, alpha, ACT) * gain
        tl.store(yp + i * sxs, y.to(yp.dtype.element_ty), mask=m)


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
    # y has x's strides (empty_like of a dense tensor).
    plane, s, b = _plane(
        pid, num_c, sxn, sxc, stride_sn, stride_bn, scale_ptr, bias_ptr, ACC, HAS_SCALE, HAS_BIAS
    )
    xp = x_ptr + plane
    yp = y_ptr + plane
    shift, s1, s2, x0, mask0 = shifted_sums(xp, sxs, 0, hw, BLOCK, ACC)
    d_mean = s1 / hw
    var = s2 / hw - d_mean * d_mean
    # Rounding can leave a tiny negative variance; a where (not tl.maximum, which drops NaN on CUDA) keeps
    # a NaN plane NaN, as in the reference.
    var = tl.where(var < 0, 0.0, var)
    mean = shift + d_mean
    rstd = rsqrt(var + eps, ACC)
    tl.store(mean_ptr + pid, mean)
    tl.store(rstd_ptr + pid, rstd)
    a = rstd * s
    if SINGLE:
        y = act_forward((x0 - shift - d_mean) * a + b, alpha, ACT) * gain
        offs = tl.arange(0, BLOCK).to(tl.int64)
        tl.store(yp + offs * sxs, y.to(y_ptr.dtype.element_ty), mask=mask0)
    else:
        _normalize(xp, yp, sxs, 0, hw, shift, d_mean, a, b, alpha, gain, ACT, ACC, BLOCK)


@triton.jit
def _instance_norm_act_stats_kernel(x_ptr, part_ptr, num_c, hw, chunk, sxn, sxc, sxs, ACC: tl.constexpr,
                                    BLOCK: tl.constexpr):  # fmt: skip
    pid, split, start, end = _chunk(hw, chunk)
    plane = (pid // num_c) * sxn + (pid % num_c) * sxc
    shift, s1, s2, _, _ = shifted_sums(x_ptr + plane, sxs, start, end, BLOCK, ACC)
    count = (end - start).to(ACC)
    # part is (2, planes, splits): the chunk's mean, and its squared deviations from that mean.
    slot = pid * tl.num_programs(1) + split
    tl.store(part_ptr + slot, shift + s1 / count)
    tl.store(part_ptr + tl.num_programs(0) * tl.num_programs(1) + slot, s2 - s1 * s1 / count)


@triton.jit
def _instance_norm_act_apply_kernel(
    x_ptr, y_ptr, scale_ptr, bias_ptr, part_ptr, mean_ptr, rstd_ptr,
    num_c, hw, chunk, sxn, sxc, sxs, stride_sn, stride_bn, eps: tl.float64, alpha: tl.float64, gain: tl.float64,
    ACT: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_BIAS: tl.constexpr,
    ACC: tl.constexpr, BLOCK: tl.constexpr, SPLITS: tl.constexpr,
):  # fmt: skip
    eps = scalar(eps, ACC)
    alpha = scalar(alpha, ACC)
    gain = scalar(gain, ACC)
    pid, split, start, end = _chunk(hw, chunk)
    plane, s, b = _plane(
        pid, num_c, sxn, sxc, stride_sn, stride_bn, scale_ptr, bias_ptr, ACC, HAS_SCALE, HAS_BIAS
    )
    # Every program of the plane merges its few partials (from L2) rather than waiting on a third launch.
    num_splits = tl.num_programs(1)
    j = tl.arange(0, SPLITS).to(tl.int64)
    valid = j < num_splits
    slot = pid * num_splits + j
    means = tl.load(part_ptr + slot, mask=valid, other=0.0)
    m2s = tl.load(part_ptr + tl.num_programs(0) * num_splits + slot, mask=valid, other=0.0)
    counts = tl.where(valid, tl.minimum(hw - j * chunk, chunk), 0).to(ACC)
    mean, var = merge_moments(means, m2s, counts, hw)
    var = tl.where(var < 0, 0.0, var)  # as in the one-program kernel
    rstd = rsqrt(var + eps, ACC)
    tl.store(mean_ptr + pid, mean, mask=split == 0)
    tl.store(rstd_ptr + pid, rstd, mask=split == 0)
    _normalize(x_ptr + plane, y_ptr + plane, sxs, start, end, 0.0, mean, rstd * s, b, alpha, gain, ACT, ACC,
               BLOCK)  # fmt: skip


@triton.jit
def _dz_xhat(xv, dyv, mean, rstd, s, b, alpha, gain, ACT: tl.constexpr):
    """Gradient at the pre-activation, and the normalized input."""
    xhat = (xv - mean) * rstd
    dz = dyv * (act_grad_from_input(xhat * s + b, alpha, ACT) * gain)
    return dz, xhat


@triton.jit
def _dz_sums(dy_ptr, x_ptr, plane, sxs, start, end, mean, rstd, s, b, alpha, gain, ACT: tl.constexpr,
             ACC: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    """``(Σdz, Σdz·xhat)`` over ``[start, end)`` of a plane, and the first tile's ``dz``, ``xhat``, mask."""
    offs = tl.arange(0, BLOCK).to(tl.int64)
    i0 = start + offs
    mask0 = i0 < end
    x0 = tl.load(x_ptr + plane + i0 * sxs, mask=mask0, other=0.0).to(ACC)
    dy0 = tl.load(dy_ptr + plane + i0 * sxs, mask=mask0, other=0.0).to(ACC)
    dz0, xhat0 = _dz_xhat(x0, dy0, mean, rstd, s, b, alpha, gain, ACT)
    dz0 = tl.where(mask0, dz0, 0.0)
    acc_dz = dz0
    acc_dzx = dz0 * xhat0
    for t in range(start + BLOCK, end, BLOCK):
        i = t + offs
        m = i < end
        xv = tl.load(x_ptr + plane + i * sxs, mask=m, other=0.0).to(ACC)
        dyv = tl.load(dy_ptr + plane + i * sxs, mask=m, other=0.0).to(ACC)
        dz, xhat = _dz_xhat(xv, dyv, mean, rstd, s, b, alpha, gain, ACT)
        dz = tl.where(m, dz, 0.0)
        acc_dz += dz
        acc_dzx += dz * xhat
    return tl.sum(acc_dz, axis=0), tl.sum(acc_dzx, axis=0), dz0, xhat0, mask0


@triton.jit
def _dx(dy_ptr, x_ptr, dx_ptr, plane, sxs, start, end, mean, rstd, s, b, alpha, gain, mean_dz, mean_dzx,
        ACT: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    offs = tl.arange(0, BLOCK).to(tl.int64)
    k = rstd * s
    for t in range(start, end, BLOCK):
        i = t + offs
        m = i < end
        xv = tl.load(x_ptr + plane + i * sxs, mask=m, other=0.0).to(ACC)
        dyv = tl.load(dy_ptr + plane + i * sxs, mask=m, other=0.0).to(ACC)
        dz, xhat = _dz_xhat(xv, dyv, mean, rstd, s, b, alpha, gain, ACT)
        dx = k * (dz - mean_dz - xhat * mean_dzx)
        tl.store(dx_ptr + plane + i * sxs, dx.to(dx_ptr.dtype.element_ty), mask=m)


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
    plane, s, b = _plane(
        pid, num_c, sxn, sxc, stride_sn, stride_bn, scale_ptr, bias_ptr, ACC, HAS_SCALE, HAS_BIAS
    )
    mean = tl.load(mean_ptr + pid)
    rstd = tl.load(rstd_ptr + pid)
    sum_dz, sum_dzx, dz0, xhat0, mask0 = _dz_sums(
        dy_ptr, x_ptr, plane, sxs, 0, hw, mean, rstd, s, b, alpha, gain, ACT, ACC, BLOCK
    )
    tl.store(dbias_ptr + pid, sum_dz)
    tl.store(dscale_ptr + pid, sum_dzx)
    mean_dz = sum_dz / hw
    mean_dzx = sum_dzx / hw
    if SINGLE:
        dx = rstd * s * (dz0 - mean_dz - xhat0 * mean_dzx)
        offs = tl.arange(0, BLOCK).to(tl.int64)
        tl.store(dx_ptr + plane + offs * sxs, dx.to(dx_ptr.dtype.element_ty), mask=mask0)
    else:
        _dx(dy_ptr, x_ptr, dx_ptr, plane, sxs, 0, hw, mean, rstd, s, b, alpha, gain, mean_dz, mean_dzx,
            ACT, ACC, BLOCK)  # fmt: skip


@triton.jit
def _instance_norm_act_bwd_sums_kernel(
    dy_ptr, x_ptr, scale_ptr, bias_ptr, mean_ptr, rstd_ptr, part_ptr,
    num_c, hw, chunk, sxn, sxc, sxs, stride_sn, stride_bn, alpha: tl.float64, gain: tl.float64,
    ACT: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_BIAS: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    alpha = scalar(alpha, ACC)
    gain = scalar(gain, ACC)
    pid, split, start, end = _chunk(hw, chunk)
    plane, s, b = _plane(
        pid, num_c, sxn, sxc, stride_sn, stride_bn, scale_ptr, bias_ptr, ACC, HAS_SCALE, HAS_BIAS
    )
    mean = tl.load(mean_ptr + pid)
    rstd = tl.load(rstd_ptr + pid)
    sum_dz, sum_dzx, _, _, _ = _dz_sums(
        dy_ptr, x_ptr, plane, sxs, start, end, mean, rstd, s, b, alpha, gain, ACT, ACC, BLOCK
    )
    slot = pid * tl.num_programs(1) + split  # part is (2, planes, splits)
    tl.store(part_ptr + slot, sum_dz)
    tl.store(part_ptr + tl.num_programs(0) * tl.num_programs(1) + slot, sum_dzx)


@triton.jit
def _instance_norm_act_bwd_apply_kernel(
    dy_ptr, x_ptr, dx_ptr, scale_ptr, bias_ptr, mean_ptr, rstd_ptr, part_ptr, dscale_ptr, dbias_ptr,
    num_c, hw, chunk, sxn, sxc, sxs, stride_sn, stride_bn, alpha: tl.float64, gain: tl.float64,
    ACT: tl.constexpr, HAS_SCALE: tl.constexpr, HAS_BIAS: tl.constexpr,
    ACC: tl.constexpr, BLOCK: tl.constexpr, SPLITS: tl.constexpr,
):  # fmt: skip
    alpha = scalar(alpha, ACC)
    gain = scalar(gain, ACC)
    pid, split, start, end = _chunk(hw, chunk)
    plane, s, b = _plane(
        pid, num_c, sxn, sxc, stride_sn, stride_bn, scale_ptr, bias_ptr, ACC, HAS_SCALE, HAS_BIAS
    )
    num_splits = tl.num_programs(1)
    j = tl.arange(0, SPLITS)
    slot = pid * num_splits + j
    # The same sum in the same order in every program of the plane: they all use the values stored.
    sum_dz = tl.sum(tl.load(part_ptr + slot, mask=j < num_splits, other=0.0), axis=0)
    sum_dzx = tl.sum(
        tl.load(part_ptr + tl.num_programs(0) * num_splits + slot, mask=j < num_splits, other=0.0), axis=0
    )
    tl.store(dbias_ptr + pid, sum_dz, mask=split == 0)
    tl.store(dscale_ptr + pid, sum_dzx, mask=split == 0)
    mean = tl.load(mean_ptr + pid)
    rstd = tl.load(rstd_ptr + pid)
    _dx(dy_ptr, x_ptr, dx_ptr, plane, sxs, start, end, mean, rstd, s, b, alpha, gain, sum_dz / hw, sum_dzx / hw,
        ACT, ACC, BLOCK)  # fmt: skip


def _launch_config(hw: int) -> tuple[int, int]:
    cap = tile_budget(4096)
    block = min(triton.next_power_of_2(hw), cap)
    return block, 8 if block >= 2048 else 4


def _meta(
    x: torch.Tensor, scale: Optional[torch.Tensor], bias: Optional[torch.Tensor], act: int, hw: int, sxs: int
) -> tuple[dict[str, Any], tuple[int, ...], tuple[torch.Tensor, torch.Tensor], int]:
    """The constexprs and launch options, the strides, the affine pointers and the block size."""
    scale_t, stride_sn = affine(scale, x)
    bias_t, stride_bn = affine(bias, x)
    block, num_warps = _launch_config(hw)
    meta = {"ACT": act, "HAS_SCALE": scale is not None, "HAS_BIAS": bias is not None,
            "ACC": acc_dtype(x.dtype), "BLOCK": block, "num_warps": num_warps}  # fmt: skip
    return meta, (x.stride(0), x.stride(1), sxs, stride_sn, stride_bn), (scale_t, bias_t), block


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
    x, sxs, relaid = planar(x)
    y = torch.empty_like(x)
    meta, strides, (scale_t, bias_t), block = _meta(x, scale, bias, act, hw, sxs)
    num_splits, chunk = plan_splits(n * c, hw, block, target_programs(x))
    if num_splits == 1:
        _instance_norm_act_fwd_kernel[(n * c,)](
            x, y, scale_t, bias_t, mean, rstd, c, hw, *strides, float(eps), alpha, gain,
            SINGLE=block >= hw, **meta,
        )  # fmt: skip
    else:
        part = x.new_empty((2, n * c, num_splits), dtype=mean.dtype)
        _instance_norm_act_stats_kernel[(n * c, num_splits)](
            x, part, c, hw, chunk, *strides[:3], ACC=meta["ACC"], BLOCK=block, num_warps=meta["num_warps"]
        )
        _instance_norm_act_apply_kernel[(n * c, num_splits)](
            x, y, scale_t, bias_t, part, mean, rstd, c, hw, chunk, *strides, float(eps), alpha, gain,
            SPLITS=triton.next_power_of_2(num_splits), **meta,
        )  # fmt: skip
    return restore_layout(y, x_in, relaid), mean, rstd


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
    x, sxs, relaid = planar(x)
    dy = like(dy, x)
    dx = torch.empty_like(x)
    dscale = x.new_empty((n, c), dtype=accumulation_dtype(x.dtype))
    dbias = torch.empty_like(dscale)
    mean, rstd = mean.contiguous(), rstd.contiguous()
    meta, strides, (scale_t, bias_t), block = _meta(x, scale, bias, act, hw, sxs)
    num_splits, chunk = plan_splits(n * c, hw, block, target_programs(x))
    if num_splits == 1:
        _instance_norm_act_bwd_kernel[(n * c,)](
            dy, x, dx, scale_t, bias_t, mean, rstd, dscale, dbias, c, hw, *strides, alpha, gain,
            SINGLE=block >= hw, **meta,
        )  # fmt: skip
    else:
        part = x.new_empty((2, n * c, num_splits), dtype=dscale.dtype)
        _instance_norm_act_bwd_sums_kernel[(n * c, num_splits)](
            dy, x, scale_t, bias_t, mean, rstd, part, c, hw, chunk, *strides, alpha, gain, **meta
        )
        _instance_norm_act_bwd_apply_kernel[(n * c, num_splits)](
            dy, x, dx, scale_t, bias_t, mean, rstd, part, dscale, dbias, c, hw, chunk, *strides, alpha, gain,
            SPLITS=triton.next_power_of_2(num_splits), **meta,
        )  # fmt: skip
    return restore_layout(dx, x_in, relaid), dscale, dbias
