"""Triton kernels for ``bias_act``: one elementwise pass forward; one backward pass that also sums ``db``.

A dense tensor in any layout is, in memory order, ``(outer, C, inner)`` with ``inner`` the stride of the
bias dim. The kernels see it as ``(N, C, P)`` planes with strides ``(s_n, s_c, s_p)`` (see ``_planes``) and
tile it ``(BLOCK_C, BLOCK_P)``, so a tile's channels come from its program id and no element's channel is
recovered by an integer division. When the channels are innermost (channels_last, a dense layer's
``(N, C)``) the positions step over all channels instead: ``N = 1, P = outer, s_p = C``.

The backward sums ``dx`` per channel while it is in registers: each program walks a chunk of tiles of
one channel block and stores one fp32 (float64 for float64 data) partial per channel; a ``(chunks, C)``
buffer, summed by the launcher. Same input, same chunks, same order: deterministic, unlike atomics.
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
from .._triton.common import acc_dtype, dense, elementwise_block, like, tile_budget
from .._triton.planar import tiles

# CUDA caps grid dims 1 and 2 at 65535: the channel blocks (axis 1) beyond it are looped over.
_MAX_GRID_1 = 65535
# The backward runs about this many programs (enough to fill a GPU); beyond it a program walks several
# tiles, which also keeps the partial buffer small: at most about _PROGRAMS * 64 values (see _bwd_tiles).
_PROGRAMS = 2048
# Each program sums at least this many positions per channel: the buffer is about 1/64 of x at most.
_MIN_POSITIONS = 64


@triton.jit
def _tile(n, c, pb, num_c, num_p, s_n, s_c, s_p, BLOCK_P: tl.constexpr):
    """Memory offsets and mask of the tile of channels ``c`` and position block ``pb`` of plane ``n``."""
    # int64 before the multiply: with channels innermost one axis can hold 2**31 or more positions.
    p = pb.to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    mask = (c < num_c)[:, None] & (p < num_p)[None, :]
    offs = n.to(tl.int64) * s_n + c.to(tl.int64)[:, None] * s_c + p.to(tl.int64)[None, :] * s_p
    return offs, mask


# alpha, gain and clamp are float64 arguments (float32 by default) so that float64 data sees them unrounded.
@triton.jit
def _bias_act_fwd_kernel(
    x_ptr, b_ptr, y_ptr, num_c, num_p, num_pb, s_n, s_c, s_p, alpha: tl.float64, gain: tl.float64,
    clamp: tl.float64,
    ACT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    alpha = scalar(alpha, ACC)
    gain = scalar(gain, ACC)
    clamp = scalar(clamp, ACC)
    w = tl.program_id(0)
    n = w // num_pb
    pb = w - n * num_pb
    for cb in range(tl.program_id(1), tl.cdiv(num_c, BLOCK_C), tl.num_programs(1)):
        c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
        offs, mask = _tile(n, c, pb, num_c, num_p, s_n, s_c, s_p, BLOCK_P)
        z = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
        if HAS_BIAS:
            z += tl.load(b_ptr + c, mask=c < num_c, other=0.0).to(ACC)[:, None]
        y = act_forward(z, alpha, ACT) * gain
        if HAS_CLAMP:
            y = clamp_symmetric(y, clamp)
        tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _bias_act_bwd_kernel(
    dy_ptr, ref_ptr, b_ptr, dx_ptr, part_ptr, num_c, num_p, num_pb, num_w, chunk, s_n, s_c, s_p,
    alpha: tl.float64, gain: tl.float64, clamp: tl.float64,
    ACT: tl.constexpr, REF_IS_INPUT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    # With a clamp the autograd glue always passes the input: the output cannot tell |y| == clamp (gradient
    # 1, bounds included) from a clamped |y| > clamp (gradient 0). Called directly with the output and a
    # clamp, the op treats |y| == clamp as clamped. A given bias is added only to an input ``ref``; either
    # way its gradient is summed. Unclamped linear never reads ``ref`` (the launcher may pass no tensor).
    alpha = scalar(alpha, ACC)
    gain = scalar(gain, ACC)
    clamp = scalar(clamp, ACC)
    k = tl.program_id(0)
    w0 = k * chunk
    w1 = tl.minimum(w0 + chunk, num_w)
    for cb in range(tl.program_id(1), tl.cdiv(num_c, BLOCK_C), tl.num_programs(1)):
        c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
        if REF_IS_INPUT and HAS_BIAS:
            bias = tl.load(b_ptr + c, mask=c < num_c, other=0.0).to(ACC)[:, None]
        db = tl.zeros([BLOCK_C], ACC)
        for w in range(w0, w1):
            n = w // num_pb
            offs, mask = _tile(n, c, w - n * num_pb, num_c, num_p, s_n, s_c, s_p, BLOCK_P)
            dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
            if REF_IS_INPUT:
                z = tl.load(ref_ptr + offs, mask=mask, other=0.0).to(ACC)
                if HAS_BIAS:
                    z += bias
                d = local_grad_from_input(z, alpha, gain, clamp, ACT, HAS_CLAMP)
            elif ACT == 0 and not HAS_CLAMP:
                d = gain
            else:
                ref = tl.load(ref_ptr + offs, mask=mask, other=0.0).to(ACC)
                d = local_grad_from_output(ref, alpha, gain, clamp, ACT, HAS_CLAMP)
            dx = dy * d
            tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)
            if HAS_BIAS:
                # Not dx itself: a padding lane has dy = 0 but z = bias, whose f' may be NaN or inf.
                db += tl.sum(tl.where(mask, dx, 0.0), axis=1)
        if HAS_BIAS:
            tl.store(part_ptr + k * num_c + c, db, mask=c < num_c)


def _planes(x: torch.Tensor, dim: int) -> tuple[int, int, int, int, int, int]:
    """``(N, C, P, s_n, s_c, s_p)`` of the dense ``x`` with its bias along ``dim`` (see the module doc)."""
    numel, num_c = x.numel(), x.shape[dim]
    if num_c == 1:  # the channel stride is arbitrary: one plane of every element
        return 1, 1, numel, 0, 0, 1
    inner = x.stride(dim)
    if inner == 1:
        return 1, num_c, numel // num_c, 0, 1, num_c
    return numel // (num_c * inner), num_c, inner, num_c * inner, inner, 1


def _bwd_tiles(num_c: int, num_p: int, s_c: int) -> tuple[int, int]:
    """``tiles`` with at most 64 channels per tile (when compiled): fewer, longer partial rows."""
    total = elementwise_block(num_c * num_p)
    if s_c != 1:
        block_c, block_p = tiles(num_c, num_p, s_c)
        return min(block_c, tile_budget(64)), block_p
    block_c = min(triton.next_power_of_2(num_c), tile_budget(64))
    return block_c, min(triton.next_power_of_2(num_p), max(total // block_c, 1))


def bias_act_forward(
    x: torch.Tensor,
    b: Optional[torch.Tensor],
    act: int,
    alpha: float,
    gain: float,
    clamp: Optional[float],
    dim: int,
) -> torch.Tensor:
    x = dense(x)
    y = torch.empty_like(x)
    if x.numel() == 0:
        return y
    num_n, num_c, num_p, s_n, s_c, s_p = _planes(x, dim)
    block_c, block_p = tiles(num_c, num_p, s_c)
    num_pb = triton.cdiv(num_p, block_p)
    grid = (num_n * num_pb, min(triton.cdiv(num_c, block_c), _MAX_GRID_1))
    _bias_act_fwd_kernel[grid](
        x, b.contiguous() if b is not None else x, y, num_c, num_p, num_pb, s_n, s_c, s_p,
        alpha, gain, clamp if clamp is not None else 0.0,
        ACT=act, HAS_BIAS=b is not None, HAS_CLAMP=clamp is not None,
        ACC=acc_dtype(x.dtype), BLOCK_C=block_c, BLOCK_P=block_p,
    )  # fmt: skip
    return y


def bias_act_backward(
    dy: torch.Tensor,
    ref: Optional[torch.Tensor],
    b: Optional[torch.Tensor],
    act: int,
    alpha: float,
    gain: float,
    clamp: Optional[float],
    dim: int,
    ref_is_input: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dx, db)``: ``db`` (accumulation dtype, shape ``(C,)``) when ``b`` is given, else empty.

    ``ref`` may be None only for unclamped linear, whose ``dx = gain * dy`` reads nothing else.
    """
    if ref is None:
        if ref_is_input or act != 0 or clamp is not None:
            raise ValueError("bias_act_grad: ref may be None only for unclamped linear")
        ref = dy = dense(dy)
    else:
        ref = dense(ref)
        dy = like(dy, ref)
    dx = torch.empty_like(ref)
    num_c = ref.shape[dim]
    acc = accumulation_dtype(ref.dtype)
    if ref.numel() == 0:
        return dx, ref.new_zeros(num_c if b is not None else 0, dtype=acc)
    num_n, _, num_p, s_n, s_c, s_p = _planes(ref, dim)
    block_c, block_p = _bwd_tiles(num_c, num_p, s_c)
    num_pb, num_cb = triton.cdiv(num_p, block_p), triton.cdiv(num_c, block_c)
    num_w = num_n * num_pb
    chunk = max(triton.cdiv(num_w * num_cb, _PROGRAMS), triton.cdiv(_MIN_POSITIONS, block_p))
    chunk = min(chunk, num_w)
    num_chunks = triton.cdiv(num_w, chunk)
    part = ref.new_empty((num_chunks, num_c) if b is not None else (0,), dtype=acc)
    _bias_act_bwd_kernel[(num_chunks, min(num_cb, _MAX_GRID_1))](
        dy, ref, b.contiguous() if b is not None else ref, dx, part,
        num_c, num_p, num_pb, num_w, chunk, s_n, s_c, s_p,
        alpha, gain, clamp if clamp is not None else 0.0,
        ACT=act, REF_IS_INPUT=ref_is_input, HAS_BIAS=b is not None, HAS_CLAMP=clamp is not None,
        ACC=acc_dtype(ref.dtype), BLOCK_C=block_c, BLOCK_P=block_p,
    )  # fmt: skip
    if b is None or num_chunks == 1:  # one chunk: the partials are the sums, no launch
        return dx, part.view(-1)
    return dx, part.sum(dim=0)  # deterministic on CUDA
