"""``bias_act`` as ``torch.library`` custom ops: forward kernel, backward kernel, and the backward's backward.

Second order: ``dx = dy * f'(z)``. Its derivative with respect to ``dy`` is the backward kernel again; with
respect to ``z`` it is ``dy * f''(z)``, zero almost everywhere for the piecewise-linear activations (whose
backward saves only the output) and written in differentiable PyTorch for the others, so any order works.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

import torch

from ..._precision import accumulation_dtype
from .._activations import ACTIVATIONS, SELU_ALPHA, SELU_SCALE, ActSpec, apply_activation
from .._library import fused_op, like_first

_BY_CODE = {spec.code: spec for spec in ACTIVATIONS.values()}


def _kernels() -> ModuleType:
    from . import kernels  # imports Triton: on the first eager call only

    return kernels


_bias_act_op = fused_op(
    "bias_act",
    "(Tensor x, Tensor? b, int act, float alpha, float gain, float? clamp, int dim) -> Tensor",
    lambda *args: _kernels().bias_act_forward(*args),
    fake=like_first,
)
# ``ref`` is the output y when ``ref_is_input`` is False (piecewise-linear activations), else the input x.
_bias_act_grad_op = fused_op(
    "bias_act_grad",
    "(Tensor dy, Tensor ref, Tensor? b, int act, float alpha, float gain, float? clamp, int dim, "
    "bool ref_is_input) -> Tensor",
    lambda *args: _kernels().bias_act_backward(*args),
    fake=lambda dy, ref, *_: torch.empty_like(ref),
)


def _saves_output(act: int, gain: float, clamp: Optional[float]) -> bool:
    # y determines f'(z) only for piecewise-linear activations with a positive gain (sign of y = sign of z),
    # and only without a clamp: a clamped y == clamp hides whether |gain * f(z)| was exactly clamp (gradient
    # 1, as torch.clamp) or above it (gradient 0).
    return _BY_CODE[act].grad_from_output and gain > 0 and clamp is None


def _bias_shape(ndim: int, dim: int) -> list[int]:
    shape = [1] * ndim
    shape[dim] = -1
    return shape


def _reduce_to_bias(t: torch.Tensor, dim: int, dtype: torch.dtype) -> torch.Tensor:
    dims = [d for d in range(t.ndim) if d != dim]
    return t.sum(dim=dims, dtype=accumulation_dtype(t.dtype)).to(dtype)


def _setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    x, b, act, alpha, gain, clamp, dim = inputs
    ctx.set_materialize_grads(False)  # a gradient that never arrives runs no kernel
    ctx.args = (act, alpha, gain, clamp, dim)
    ctx.b_dtype = None if b is None else b.dtype
    ctx.ref_is_input = not _saves_output(act, gain, clamp)
    if ctx.ref_is_input:
        ctx.save_for_backward(x, b)
    elif act == 0:
        ctx.save_for_backward(None, None)  # unclamped linear: dx = gain * dy needs nothing
    else:
        ctx.save_for_backward(output, None)


def _backward(ctx: Any, dy: Optional[torch.Tensor]) -> tuple[Optional[torch.Tensor], ...]:
    if dy is None:
        return (None,) * 7
    act, alpha, gain, clamp, dim = ctx.args
    ref, b = ctx.saved_tensors
    if ref is None:
        dx = dy * gain
    else:
        dx = _bias_act_grad_op(dy, ref, b, act, alpha, gain, clamp, dim, ctx.ref_is_input)
    db = None
    if ctx.needs_input_grad[1] and ctx.b_dtype is not None:
        db = _reduce_to_bias(dx, dim, ctx.b_dtype)
    return dx if ctx.needs_input_grad[0] else None, db, None, None, None, None, None


_bias_act_op.register_autograd(_backward, setup_context=_setup)


def _second_derivative(z: torch.Tensor, spec: ActSpec, alpha: float) -> torch.Tensor:
    """f''(z) in differentiable PyTorch, for the activations whose backward saves the input."""
    name = spec.name
    if name in ("linear", "relu", "lrelu"):
        return torch.zeros_like(z)
    if name == "tanh":
        t = torch.tanh(z)
        return -2.0 * t * (1.0 - t * t)
    if name == "sigmoid":
        s = torch.sigmoid(z)
        return s * (1.0 - s) * (1.0 - 2.0 * s)
    if name == "elu":
        return torch.where(z > 0, torch.zeros_like(z), alpha * torch.exp(z.clamp(max=0)))
    if name == "selu":
        return torch.where(z > 0, torch.zeros_like(z), SELU_SCALE * SELU_ALPHA * torch.exp(z.clamp(max=0)))
    s = torch.sigmoid(z)
    if name == "softplus":
        return torch.where(z > 20.0, torch.zeros_like(z), s * (1.0 - s))
    return s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))


def _grad_setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    dy, ref, b, act, alpha, gain, clamp, dim, ref_is_input = inputs
    ctx.set_materialize_grads(False)
    ctx.args = (act, alpha, gain, clamp, dim, ref_is_input)
    ctx.save_for_backward(dy, ref, b)


def _grad_backward(ctx: Any, g: Optional[torch.Tensor]) -> tuple[Optional[torch.Tensor], ...]:
    if g is None:
        return (None,) * 9
    act, alpha, gain, clamp, dim, ref_is_input = ctx.args
    dy, ref, b = ctx.saved_tensors
    g_dy = (
        _bias_act_grad_op(g, ref, b, act, alpha, gain, clamp, dim, ref_is_input)
        if ctx.needs_input_grad[0]
        else None
    )
    g_ref = g_b = None
    spec = _BY_CODE[act]
    if ref_is_input and not spec.grad_from_output and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
        acc = accumulation_dtype(ref.dtype)
        z = ref.to(acc)
        if b is not None:
            z = z + b.to(acc).reshape(_bias_shape(ref.ndim, dim))
        t = g.to(acc) * dy.to(acc) * (gain * _second_derivative(z, spec, alpha))
        if clamp is not None:
            # torch.clamp's gradient mask: 1 on [-clamp, clamp], bounds included.
            y = gain * apply_activation(z, spec, alpha)
            t = torch.where(y.abs() <= clamp, t, torch.zeros_like(t))
        g_ref = t.to(ref.dtype) if ctx.needs_input_grad[1] else None
        if b is not None and ctx.needs_input_grad[2]:
            g_b = _reduce_to_bias(t, dim, b.dtype)
    return g_dy, g_ref, g_b, None, None, None, None, None, None


_bias_act_grad_op.register_autograd(_grad_backward, setup_context=_grad_setup)


def bias_act_triton(
    x: torch.Tensor,
    b: Optional[torch.Tensor],
    *,
    spec: ActSpec,
    alpha: float,
    gain: float,
    clamp: Optional[float],
    dim: int,
) -> torch.Tensor:
    """Run ``bias_act`` through its Triton custom op (arguments already checked)."""
    y: torch.Tensor = _bias_act_op(x, b, spec.code, alpha, gain, clamp, dim)
    return y
