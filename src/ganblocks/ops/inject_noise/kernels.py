"""Triton kernels for ``inject_noise``: noise, bias, activation, gain and clamp in one pass, and back.

Each program handles one sample ``n`` and a ``(BLOCK_C, BLOCK_P)`` tile of channels × pixels (see
``planar``), so the noise row of the tile is loaded once and shared by its channels, and no index is
recovered by integer division.

The backward is one pass too: from ``dy`` and the saved input (or output) it writes ``dz`` and, while
``dz`` is in registers, reduces it three ways: ``Σ_c dz * s`` (the noise gradient) and, per channel,
``Σ dz`` (bias) and ``Σ dz * noise`` (strength). The first needs every channel of a pixel, the others
every pixel of a channel, so the tiles take one of two shapes (see ``_bwd_config``):

- ``SINGLE_C``: all channels in one tile (channels_last, or few channels). The noise gradient of a tile
  is complete; a program walks a chunk of tiles and keeps the per-channel sums in registers, storing
  one partial per chunk.
- otherwise a program loops over the channel blocks of its pixels, completing their noise gradient, and
  stores the per-channel sums of each tile as partials.

The partials are fp32 (float64 for float64 data), in a ``(2, rows, C)`` buffer that the launcher sums:
deterministic, unlike atomics.
"""

# No `from __future__ import annotations`: the interpreter of Triton 3.0 and 3.1 (torch 2.4, 2.5) finds
# tl.constexpr parameters only by unstringified annotations.

from typing import Optional

import torch
import triton
import triton.language as tl

from ..._precision import accumulation_dtype
from .._triton.activations import (
    act_forward,
    clamp_symmetric,
    local_grad_from_input,
    local_grad_from_output,
    scalar,
)
from .._triton.common import acc_dtype, elementwise_block, tile_budget
from .._triton.planar import planar, tiles

# About this many programs fill a GPU; beyond it a SINGLE_C program walks several tiles.
_PROGRAMS = 2048
# A SINGLE_C program sums at least this many pixels per channel: few partial rows.
_MIN_POSITIONS = 64


@triton.jit
def _inject_noise_fwd_kernel(
    x_ptr, noise_ptr, s_ptr, b_ptr, y_ptr,
    num_c, num_p, num_cb, num_pb,
    sx_n, sx_c, sx_p, sy_n, sy_c, sy_p, sn_n, sn_p, s_stride,
    alpha: tl.float64, gain: tl.float64, clamp: tl.float64,
    ACT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    # float64 scalars converted to the accumulation dtype: float64 data sees them unrounded.
    alpha = scalar(alpha, ACC)
    gain = scalar(gain, ACC)
    clamp = scalar(clamp, ACC)
    pid = tl.program_id(0)
    pb = pid % num_pb
    rest = pid // num_pb
    cb = rest % num_cb
    n = (rest // num_cb).to(tl.int64)
    c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    p = pb * BLOCK_P + tl.arange(0, BLOCK_P)
    c_mask = c < num_c
    p_mask = p < num_p
    mask = c_mask[:, None] & p_mask[None, :]
    c64 = c.to(tl.int64)[:, None]
    p64 = p.to(tl.int64)[None, :]

    z = tl.load(x_ptr + (n * sx_n + c64 * sx_c + p64 * sx_p), mask=mask, other=0.0).to(ACC)
    noise = tl.load(noise_ptr + (n * sn_n + p64 * sn_p), mask=p_mask[None, :], other=0.0).to(ACC)
    s = tl.load(s_ptr + c64 * s_stride, mask=c_mask[:, None], other=0.0).to(ACC)
    z += s * noise
    if HAS_BIAS:
        z += tl.load(b_ptr + c64, mask=c_mask[:, None], other=0.0).to(ACC)
    y = act_forward(z, alpha, ACT) * gain
    if HAS_CLAMP:
        y = clamp_symmetric(y, clamp)
    tl.store(y_ptr + (n * sy_n + c64 * sy_c + p64 * sy_p), y.to(y_ptr.dtype.element_ty), mask=mask)


def inject_noise_forward(
    x: torch.Tensor,
    strength: torch.Tensor,
    noise: torch.Tensor,
    b: Optional[torch.Tensor],
    act: int,
    alpha: float,
    gain: float,
    clamp: Optional[float],
) -> torch.Tensor:
    """``clamp(gain * act(x + strength * noise + b))`` for ``x`` (N, C, H, W) and ``noise`` (N, 1, H, W)."""
    y = torch.empty_like(x)
    num_n, num_c, h, w = x.shape
    num_p = h * w
    if y.numel() == 0:
        return y
    x, (sx_n, sx_c, sx_p) = planar(x)
    out, (sy_n, sy_c, sy_p) = planar(y)
    noise, (sn_n, _, sn_p) = planar(noise)
    s = strength.reshape(-1).contiguous()
    block_c, block_p = tiles(num_c, num_p, sx_c)
    num_cb, num_pb = triton.cdiv(num_c, block_c), triton.cdiv(num_p, block_p)
    _inject_noise_fwd_kernel[(num_n * num_cb * num_pb,)](
        x, noise, s, b.contiguous() if b is not None else s, out,
        num_c, num_p, num_cb, num_pb,
        sx_n, sx_c, sx_p, sy_n, sy_c, sy_p, sn_n, sn_p, 1 if s.numel() > 1 else 0,
        alpha, gain, clamp if clamp is not None else 0.0,
        ACT=act, HAS_BIAS=b is not None, HAS_CLAMP=clamp is not None,
        ACC=acc_dtype(x.dtype), BLOCK_C=block_c, BLOCK_P=block_p,
    )  # fmt: skip
    if out is not y:
        y.copy_(out)
    return y


@triton.jit
def _offsets(n, c, p, s_n, s_c, s_p):
    return n.to(tl.int64) * s_n + c.to(tl.int64)[:, None] * s_c + p.to(tl.int64)[None, :] * s_p


@triton.jit
def _pixels(n, p, s_n, s_p):
    """Offsets of the pixels ``p`` of sample ``n`` in an ``(N, 1, H, W)`` tensor."""
    return n.to(tl.int64) * s_n + p.to(tl.int64) * s_p


@triton.jit
def _dz(
    dy_ptr, ref_ptr, dz_ptr, n, c, p, mask, sd_n, sd_c, sd_p, sr_n, sr_c, sr_p, sz_n, sz_c, sz_p,
    s, noise, bias, alpha, gain, clamp,
    ACT: tl.constexpr, REF_IS_INPUT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr,
    ACC: tl.constexpr,
):  # fmt: skip
    """Store the tile's ``dz`` and return it, zero in the padding (where ``f'`` of ``s * 0 + b`` may be NaN).

    ``s`` and ``bias`` are ``(BLOCK_C, 1)``, ``noise`` is ``(1, BLOCK_P)``. As in the ``bias_act`` backward,
    an input ``ref`` gives ``z`` (summed in the forward's order, so rounded alike); an output ``ref`` gives
    ``f'`` of the piecewise-linear activations; unclamped linear reads no ``ref``.
    """
    dy = tl.load(dy_ptr + _offsets(n, c, p, sd_n, sd_c, sd_p), mask=mask, other=0.0).to(ACC)
    if REF_IS_INPUT:
        z = tl.load(ref_ptr + _offsets(n, c, p, sr_n, sr_c, sr_p), mask=mask, other=0.0).to(ACC)
        z += s * noise
        if HAS_BIAS:
            z += bias
        d = local_grad_from_input(z, alpha, gain, clamp, ACT, HAS_CLAMP)
    elif ACT == 0 and not HAS_CLAMP:
        d = gain
    else:
        ref = tl.load(ref_ptr + _offsets(n, c, p, sr_n, sr_c, sr_p), mask=mask, other=0.0).to(ACC)
        d = local_grad_from_output(ref, alpha, gain, clamp, ACT, HAS_CLAMP)
    dz = dy * d
    tl.store(dz_ptr + _offsets(n, c, p, sz_n, sz_c, sz_p), dz.to(dz_ptr.dtype.element_ty), mask=mask)
    return tl.where(mask, dz, 0.0)


@triton.jit
def _inject_noise_bwd_kernel(
    dy_ptr, ref_ptr, noise_ptr, s_ptr, b_ptr, dz_ptr, dn_ptr, part_ptr,
    num_c, num_p, num_pb, num_w, chunk, half,
    sd_n, sd_c, sd_p, sr_n, sr_c, sr_p, sz_n, sz_c, sz_p, sn_n, sn_p, sm_n, sm_p, s_stride,
    alpha: tl.float64, gain: tl.float64, clamp: tl.float64,
    ACT: tl.constexpr, REF_IS_INPUT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, SINGLE_C: tl.constexpr,
):  # fmt: skip
    # part holds Σ dz at [row, c] and Σ dz * noise at half + [row, c]; dn (s_m*) is the noise gradient.
    alpha = scalar(alpha, ACC)
    gain = scalar(gain, ACC)
    clamp = scalar(clamp, ACC)
    k = tl.program_id(0)
    w0 = k * chunk
    w1 = tl.minimum(w0 + chunk, num_w)
    cs = tl.arange(0, BLOCK_C)
    ps = tl.arange(0, BLOCK_P)
    if SINGLE_C:
        c_mask = cs < num_c
        s = tl.load(s_ptr + cs * s_stride, mask=c_mask, other=0.0).to(ACC)[:, None]
        bias = tl.load(b_ptr + cs, mask=c_mask, other=0.0).to(ACC)[:, None] if HAS_BIAS else s
        db = tl.zeros([BLOCK_C], ACC)
        ds = tl.zeros([BLOCK_C], ACC)
        for w in range(w0, w1):
            n = w // num_pb
            p = (w - n * num_pb) * BLOCK_P + ps
            p_mask = p < num_p
            noise = tl.load(noise_ptr + _pixels(n, p, sn_n, sn_p), mask=p_mask, other=0.0).to(ACC)
            dz = _dz(dy_ptr, ref_ptr, dz_ptr, n, cs, p, c_mask[:, None] & p_mask[None, :],
                     sd_n, sd_c, sd_p, sr_n, sr_c, sr_p, sz_n, sz_c, sz_p, s, noise[None, :], bias,
                     alpha, gain, clamp, ACT, REF_IS_INPUT, HAS_BIAS, HAS_CLAMP, ACC)  # fmt: skip
            db += tl.sum(dz, axis=1)
            ds += tl.sum(dz * noise[None, :], axis=1)
            dn = tl.sum(dz * s, axis=0)
            tl.store(dn_ptr + _pixels(n, p, sm_n, sm_p), dn.to(dn_ptr.dtype.element_ty), mask=p_mask)
        tl.store(part_ptr + k * num_c + cs, db, mask=c_mask)
        tl.store(part_ptr + half + k * num_c + cs, ds, mask=c_mask)
    else:
        for w in range(w0, w1):
            n = w // num_pb
            p = (w - n * num_pb) * BLOCK_P + ps
            p_mask = p < num_p
            noise = tl.load(noise_ptr + _pixels(n, p, sn_n, sn_p), mask=p_mask, other=0.0).to(ACC)
            dn = tl.zeros([BLOCK_P], ACC)
            for c0 in range(0, num_c, BLOCK_C):
                c = c0 + cs
                c_mask = c < num_c
                s = tl.load(s_ptr + c * s_stride, mask=c_mask, other=0.0).to(ACC)[:, None]
                bias = tl.load(b_ptr + c, mask=c_mask, other=0.0).to(ACC)[:, None] if HAS_BIAS else s
                dz = _dz(dy_ptr, ref_ptr, dz_ptr, n, c, p, c_mask[:, None] & p_mask[None, :],
                         sd_n, sd_c, sd_p, sr_n, sr_c, sr_p, sz_n, sz_c, sz_p, s, noise[None, :], bias,
                         alpha, gain, clamp, ACT, REF_IS_INPUT, HAS_BIAS, HAS_CLAMP, ACC)  # fmt: skip
                dn += tl.sum(dz * s, axis=0)
                row = tl.cast(w, tl.int64) * num_c + c
                tl.store(part_ptr + row, tl.sum(dz, axis=1), mask=c_mask)
                tl.store(part_ptr + half + row, tl.sum(dz * noise[None, :], axis=1), mask=c_mask)
            tl.store(dn_ptr + _pixels(n, p, sm_n, sm_p), dn.to(dn_ptr.dtype.element_ty), mask=p_mask)


def _bwd_config(num_n: int, num_c: int, num_p: int, s_c: int) -> tuple[int, int, bool, int]:
    """``(BLOCK_C, BLOCK_P, SINGLE_C, chunk)`` of the backward."""
    total = elementwise_block(num_c * num_p)
    c2, p2 = triton.next_power_of_2(num_c), triton.next_power_of_2(num_p)
    if s_c == 1 or c2 * min(p2, 64) <= total:
        # Channels contiguous (all of them, up to 4096, in one tile), or few enough channels to keep a
        # pixel row of 64 (or all pixels) beside them: SINGLE_C.
        block_c = min(c2, tile_budget(4096)) if s_c == 1 else c2
        block_p = min(p2, max(total // block_c, 1))
    else:
        # Pixels contiguous: rows of 64 or more, the fewer the more programs there are.
        block_p = min(p2, total, max(64, triton.next_power_of_2(num_n * num_p // _PROGRAMS)))
        block_c = max(total // block_p, 1)
    num_w = num_n * triton.cdiv(num_p, block_p)
    if block_c < num_c:
        return block_c, block_p, False, 1
    chunk = max(triton.cdiv(num_w, _PROGRAMS), triton.cdiv(_MIN_POSITIONS, block_p))
    return block_c, block_p, True, min(chunk, num_w)


def inject_noise_backward(
    dy: torch.Tensor,
    ref: Optional[torch.Tensor],
    strength: torch.Tensor,
    noise: torch.Tensor,
    b: Optional[torch.Tensor],
    act: int,
    alpha: float,
    gain: float,
    clamp: Optional[float],
    ref_is_input: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dz, sums, dnoise)``: ``sums[0] = Σ_{n,h,w} dz`` and ``sums[1] = Σ_{n,h,w} dz * noise`` per channel.

    ``ref`` is x (``ref_is_input``), else y for linear/relu/lrelu with a positive gain, or None for unclamped
    linear (see the ``bias_act`` backward).
    """
    if ref is None and (ref_is_input or act != 0 or clamp is not None):
        raise ValueError("inject_noise_grad: ref may be None only for unclamped linear")
    like_x = dy if ref is None else ref
    dz_out = torch.empty_like(like_x)
    dn_out = torch.empty_like(noise)
    num_n, num_c, h, w = like_x.shape
    num_p = h * w
    acc = accumulation_dtype(like_x.dtype)
    if dz_out.numel() == 0:
        return dz_out, like_x.new_zeros((2, num_c), dtype=acc), dn_out.zero_()
    dy, (sd_n, sd_c, sd_p) = planar(dy)
    r, (sr_n, sr_c, sr_p) = planar(like_x) if ref is not None else (dy, (sd_n, sd_c, sd_p))
    dz, (sz_n, sz_c, sz_p) = planar(dz_out)
    noise, (sn_n, _, sn_p) = planar(noise)
    dn, (sm_n, _, sm_p) = planar(dn_out)
    s = strength.reshape(-1).contiguous()
    block_c, block_p, single, chunk = _bwd_config(num_n, num_c, num_p, sr_c)
    num_pb = triton.cdiv(num_p, block_p)
    num_w = num_n * num_pb
    num_programs = triton.cdiv(num_w, chunk)
    rows = num_programs if single else num_w
    part = like_x.new_empty((2, rows, num_c), dtype=acc)
    _inject_noise_bwd_kernel[(num_programs,)](
        dy, r, noise, s, b.contiguous() if b is not None else s, dz, dn, part,
        num_c, num_p, num_pb, num_w, chunk, rows * num_c,
        sd_n, sd_c, sd_p, sr_n, sr_c, sr_p, sz_n, sz_c, sz_p, sn_n, sn_p, sm_n, sm_p, 1 if s.numel() > 1 else 0,
        alpha, gain, clamp if clamp is not None else 0.0,
        ACT=act, REF_IS_INPUT=ref_is_input, HAS_BIAS=ref_is_input and b is not None,
        HAS_CLAMP=clamp is not None, ACC=acc_dtype(like_x.dtype), BLOCK_C=block_c, BLOCK_P=block_p,
        SINGLE_C=single, num_warps=8 if block_c * block_p >= 4096 else 4,
    )  # fmt: skip
    if dz is not dz_out:
        dz_out.copy_(dz)
    if dn is not dn_out:
        dn_out.copy_(dn)
    # One row: the partials are the sums, no launch. Else torch's reduction, deterministic on CUDA.
    return dz_out, part.view(2, num_c) if rows == 1 else part.sum(dim=1), dn_out
