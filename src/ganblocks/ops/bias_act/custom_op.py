"""``bias_act`` as ``torch.library`` custom ops: forward kernel, backward kernel, and the backward's backward.

The backward op returns ``(dx, db)``: the kernel sums ``db`` from ``dx`` while it is in registers (see
``kernels``), so the bias gradient costs no pass of its own.

Second order: ``dx = dy * f'(z)`` and ``db = Σ dx`` over all dims but ``dim``. The cotangent of ``db``
reaches every element of its channel, so both cotangents together are one tensor ``g`` for ``dx``. The
derivative with respect to ``dy`` is the backward kernel again, applied to ``g``; with respect to ``z`` it
is ``g * dy * f''(z)``, zero almost everywhere for the piecewise-linear activations (whose backward saves
only the output) and written in differentiable PyTorch for the others, so any order works.
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


def _grad_fake(
    dy: torch.Tensor, ref: Optional[torch.Tensor], b: Optional[torch.Tensor], *args: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    dim = args[4]  # after act, alpha, gain, clamp
    t = dy if ref is None else ref
    db_shape = t.shape[dim] if b is not None else 0
    return torch.empty_like(t), t.new_empty(db_shape, dtype=accumulation_dtype(t.dtype))


# ``ref`` is the output y when ``ref_is_input`` is False (piecewise-linear activations), else the input x,
# and None for unclamped linear. A given ``b`` is added to an input ``ref``; either way ``db`` (accumulation
# dtype) is returned for it, and an empty tensor without it.
_bias_act_grad_op = fused_op(
    "bias_act_grad",
    "(Tensor dy, Tensor? ref, Tensor? b, int act, float alpha, float gain, float? clamp, int dim, "
    "bool ref_is_input) -> (Tensor, Tensor)",
    lambda *args: _kernels().bias_act_backward(*args),
    fake=_grad_fake,
)


def _saves_output(act: int, alpha: float, gain: float, clamp: Optional[float]) -> bool:
    # y determines f'(z) only for piecewise-linear activations with a positive gain and a slope alpha >= 0
    # (sign of y = sign of z; a negative slope makes y positive on both sides), and only without a clamp:
    # a clamped y == clamp hides whether |gain * f(z)| was exactly clamp (gradient 1, bounds included) or
    # above it (gradient 0).
    return _BY_CODE[act].grad_from_output and gain > 0 and alpha >= 0 and clamp is None


def _bias_shape(ndim: int, dim: int) -> list[int]:
    shape = [1] * ndim
    shape[dim] = -1
    return shape


def _reduce_to_bias(t: torch.Tensor, dim: int, dtype: torch.dtype) -> torch.Tensor:
    dims = [d for d in range(t.ndim) if d != dim]
    if not dims:  # a 1-d t: ``sum(dim=[])`` would sum over everything
        return t.to(dtype)
    return t.sum(dim=dims, dtype=accumulation_dtype(t.dtype)).to(dtype)


def _setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    x, b, act, alpha, gain, clamp, dim = inputs
    ctx.set_materialize_grads(False)  # a gradient that never arrives runs no kernel
    ctx.args = (act, alpha, gain, clamp, dim)
    ctx.ref_is_input = not _saves_output(act, alpha, gain, clamp)
    # b is saved whatever the activation (a reference, no copy): the backward kernel sums its gradient.
    if ctx.ref_is_input:
        ctx.save_for_backward(x, b)
    elif act == 0:
        ctx.save_for_backward(None, b)  # unclamped linear: dx = gain * dy needs no activation state
    else:
        ctx.save_for_backward(output, b)


def _backward(ctx: Any, dy: Optional[torch.Tensor]) -> tuple[Optional[torch.Tensor], ...]:
    if dy is None:
        return (None,) * 7
    act, alpha, gain, clamp, dim = ctx.args
    ref, b = ctx.saved_tensors
    want_db = b is not None and ctx.needs_input_grad[1]
    db = None
    if ref is None and not want_db:
        dx = dy * gain
    else:
        # b goes in where z needs it or its gradient is wanted: given b, the kernel also sums db.
        b_arg = b if ctx.ref_is_input or want_db else None
        dx, db_acc = _bias_act_grad_op(dy, ref, b_arg, act, alpha, gain, clamp, dim, ctx.ref_is_input)
        if want_db:
            db = db_acc.to(b.dtype)
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


def _grad_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    dy, ref, b, act, alpha, gain, clamp, dim, ref_is_input = inputs
    ctx.set_materialize_grads(False)
    ctx.args = (act, alpha, gain, clamp, dim, ref_is_input)
    ctx.save_for_backward(dy, ref, b)


def _grad_backward(
    ctx: Any, g: Optional[torch.Tensor], g_db: Optional[torch.Tensor]
) -> tuple[Optional[torch.Tensor], ...]:
    act, alpha, gain, clamp, dim, ref_is_input = ctx.args
    dy, ref, b = ctx.saved_tensors
    if g_db is not None and g_db.numel() > 0:
        # db = Σ dx: its cotangent joins dx's, on every element of the channel, in dx's dtype.
        dx_like = dy if ref is None else ref
        g_col = g_db.to(dx_like.dtype).reshape(_bias_shape(dx_like.ndim, dim))
        g = g_col.expand(dx_like.shape) if g is None else g + g_col
    if g is None:
        return (None,) * 9
    g_dy = None
    if ctx.needs_input_grad[0]:
        # b only where z needs it; the db summed alongside is then unused (a C-sized reduction at most).
        b_arg = b if ref_is_input else None
        g_dy = _bias_act_grad_op(g, ref, b_arg, act, alpha, gain, clamp, dim, ref_is_input)[0]
    g_ref = g_b = None
    spec = _BY_CODE[act]
    if ref_is_input and not spec.grad_from_output and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
        acc = accumulation_dtype(ref.dtype)
        z = ref.to(acc)
        if b is not None:
            z = z + b.to(acc).reshape(_bias_shape(ref.ndim, dim))
        t = g.to(acc) * dy.to(acc) * (gain * _second_derivative(z, spec, alpha))
        if clamp is not None:
            # The clamp's gradient mask: 1 on [-clamp, clamp], bounds included (the reference's).
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
