"""Triton kernels for ``bias_act``: one elementwise pass forward, one backward.

Both walk the tensor in memory order, so contiguous, channels_last and any other dense layout are served
without a copy; the bias channel of the element at memory offset ``i`` is ``(i // stride_c) % C``.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from .._triton.activations import (
    act_forward,
    act_grad_from_input,
    act_grad_from_output,
    clamp_grad,
    clamp_symmetric,
    scalar,
)
from .._triton.common import acc_dtype, dense, elementwise_block, like


# alpha, gain and clamp are float64 arguments (float32 by default) so that float64 data sees them unrounded.
@triton.jit
def _bias_act_fwd_kernel(
    x_ptr, b_ptr, y_ptr, numel, stride_c, num_c, alpha: tl.float64, gain: tl.float64, clamp: tl.float64,
    ACT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr,
    ACC: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    alpha = scalar(alpha, ACC)
    gain = scalar(gain, ACC)
    clamp = scalar(clamp, ACC)
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    z = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
    if HAS_BIAS:
        c = (offs // stride_c) % num_c
        z += tl.load(b_ptr + c, mask=mask, other=0.0).to(ACC)
    y = act_forward(z, alpha, ACT) * gain
    if HAS_CLAMP:
        y = clamp_symmetric(y, clamp)
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _bias_act_bwd_kernel(
    dy_ptr, ref_ptr, b_ptr, dx_ptr, numel, stride_c, num_c, alpha: tl.float64, gain: tl.float64,
    clamp: tl.float64,
    ACT: tl.constexpr, REF_IS_INPUT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr,
    ACC: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    # With a clamp the autograd glue always passes the input: the output cannot tell |y| == clamp (gradient
    # 1, as torch.clamp) from a clamped |y| > clamp (gradient 0). Called directly with the output and a
    # clamp, the op treats |y| == clamp as clamped.
    alpha = scalar(alpha, ACC)
    gain = scalar(gain, ACC)
    clamp = scalar(clamp, ACC)
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
    ref = tl.load(ref_ptr + offs, mask=mask, other=0.0).to(ACC)
    if REF_IS_INPUT:
        z = ref
        if HAS_BIAS:
            c = (offs // stride_c) % num_c
            z += tl.load(b_ptr + c, mask=mask, other=0.0).to(ACC)
        d = act_grad_from_input(z, alpha, ACT) * gain
        if HAS_CLAMP:
            d = clamp_grad(d, act_forward(z, alpha, ACT) * gain, clamp)
    else:
        d = act_grad_from_output(ref, alpha, ACT) * gain
        if HAS_CLAMP:
            d = tl.where(tl.abs(ref) < clamp, d, d * 0.0)
    tl.store(dx_ptr + offs, (dy * d).to(dx_ptr.dtype.element_ty), mask=mask)


def _channel_layout(x: torch.Tensor, dim: int) -> tuple[int, int]:
    return max(x.stride(dim), 1), x.shape[dim]


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
    numel = x.numel()
    if numel == 0:
        return y
    stride_c, num_c = _channel_layout(x, dim)
    block = elementwise_block(numel)
    _bias_act_fwd_kernel[(triton.cdiv(numel, block),)](
        x, b.contiguous() if b is not None else x, y, numel, stride_c, num_c,
        alpha, gain, clamp if clamp is not None else 0.0,
        ACT=act, HAS_BIAS=b is not None, HAS_CLAMP=clamp is not None,
        ACC=acc_dtype(x.dtype), BLOCK=block,
    )  # fmt: skip
    return y


def bias_act_backward(
    dy: torch.Tensor,
    ref: torch.Tensor,
    b: Optional[torch.Tensor],
    act: int,
    alpha: float,
    gain: float,
    clamp: Optional[float],
    dim: int,
    ref_is_input: bool,
) -> torch.Tensor:
    ref = dense(ref)
    dy = like(dy, ref)
    dx = torch.empty_like(ref)
    numel = ref.numel()
    if numel == 0:
        return dx
    stride_c, num_c = _channel_layout(ref, dim)
    has_bias = ref_is_input and b is not None
    block = elementwise_block(numel)
    _bias_act_bwd_kernel[(triton.cdiv(numel, block),)](
        dy, ref, b.contiguous() if has_bias and b is not None else ref, dx, numel, stride_c, num_c,
        alpha, gain, clamp if clamp is not None else 0.0,
        ACT=act, REF_IS_INPUT=ref_is_input, HAS_BIAS=has_bias, HAS_CLAMP=clamp is not None,
        ACC=acc_dtype(ref.dtype), BLOCK=block,
    )  # fmt: skip
    return dx
