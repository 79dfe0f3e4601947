"""``inject_noise`` as a ``torch.library`` custom op whose backward reuses the ``bias_act`` backward op.

With ``z = x + s * noise + b`` and ``y = clamp(gain * act(z))``, the backward is ``dz`` from
``ganblocks::bias_act_grad`` followed by reductions in differentiable PyTorch: ``dx = dz``,
``db = Σ_{n,h,w} dz``, ``ds = Σ dz * noise`` (over ``n, h, w`` per channel, or over everything for a scalar
strength) and ``dnoise = Σ_c dz * s``. Double backward goes through ``bias_act_grad``'s own autograd and
these PyTorch reductions.

What is saved: for ``linear``, ``relu`` and ``lrelu`` with a positive gain and no clamp the output ``y`` (as
``bias_act`` does; nothing for ``linear``), plus ``s`` and ``noise``. For the other activations ``f'`` needs
the pre-activation, so ``x, s, noise, b`` are saved and the backward materializes ``u = x + s * noise``
(one extra elementwise pass, in the dtype of ``x`` as the reference rounds it) and hands ``u`` and ``b`` to
``bias_act_grad``, whose kernel adds the bias itself; since ``u`` is built from the saved inputs by
differentiable ops, the second-order gradient with respect to ``u`` reaches ``x``, ``s`` and ``noise``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

import torch

from ..._precision import accumulation_dtype
from .._activations import ActSpec
from .._library import fused_op, like_first
from ..bias_act.custom_op import _bias_act_grad_op, _reduce_to_bias, _saves_output


def _kernels() -> ModuleType:
    from . import kernels  # imports Triton: on the first eager call only

    return kernels


_inject_noise_op = fused_op(
    "inject_noise",
    "(Tensor x, Tensor strength, Tensor noise, Tensor? b, int act, float alpha, float gain, float? clamp) "
    "-> Tensor",
    lambda *args: _kernels().inject_noise_forward(*args),
    fake=like_first,
)


def _per_channel(s: torch.Tensor) -> torch.Tensor:
    """``s`` shaped to broadcast against ``(N, C, H, W)``: ``(C, 1, 1)`` or a scalar."""
    return s.reshape(-1, 1, 1) if s.ndim == 1 else s


def _setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    x, s, noise, b, act, alpha, gain, clamp = inputs
    ctx.set_materialize_grads(False)  # a gradient that never arrives runs no kernel
    ctx.args = (act, alpha, gain, clamp)
    ctx.b_dtype = None if b is None else b.dtype
    ctx.ref_is_input = not _saves_output(act, gain, clamp)
    if ctx.ref_is_input:
        ctx.save_for_backward(x, s, noise, b)
    elif act == 0:
        ctx.save_for_backward(None, s, noise, None)  # unclamped linear: dz = gain * dy, no activation state
    else:
        ctx.save_for_backward(output, s, noise, None)


def _backward(ctx: Any, dy: Optional[torch.Tensor]) -> tuple[Optional[torch.Tensor], ...]:
    if dy is None:
        return (None,) * 8
    act, alpha, gain, clamp = ctx.args
    ref, s, noise, b = ctx.saved_tensors
    if ctx.ref_is_input:
        u = ref + _per_channel(s).to(ref.dtype) * noise.to(ref.dtype)
        dz = _bias_act_grad_op(dy, u, b, act, alpha, gain, clamp, 1, True)
    elif ref is None:
        dz = dy * gain
    else:
        dz = _bias_act_grad_op(dy, ref, None, act, alpha, gain, clamp, 1, False)
    acc = accumulation_dtype(dz.dtype)
    ds = dnoise = db = None
    if ctx.needs_input_grad[1]:
        t = dz * noise.to(dz.dtype)
        total = t.sum(dim=(0, 2, 3), dtype=acc) if s.ndim == 1 else t.sum(dtype=acc)
        ds = total.reshape(s.shape).to(s.dtype)
    if ctx.needs_input_grad[2]:
        if s.ndim == 1:
            dnoise = (dz * _per_channel(s).to(dz.dtype)).sum(dim=1, keepdim=True, dtype=acc)
        else:
            dnoise = dz.sum(dim=1, keepdim=True, dtype=acc) * s.to(acc or dz.dtype)
        dnoise = dnoise.to(noise.dtype)
    if ctx.needs_input_grad[3] and ctx.b_dtype is not None:
        db = _reduce_to_bias(dz, 1, ctx.b_dtype)
    return dz if ctx.needs_input_grad[0] else None, ds, dnoise, db, None, None, None, None


_inject_noise_op.register_autograd(_backward, setup_context=_setup)


def inject_noise_triton(
    x: torch.Tensor,
    strength: torch.Tensor,
    noise: torch.Tensor,
    bias: Optional[torch.Tensor],
    *,
    spec: ActSpec,
    alpha: float,
    gain: float,
    clamp: Optional[float],
) -> torch.Tensor:
    """Run ``inject_noise`` through its Triton custom op (arguments already checked)."""
    y: torch.Tensor = _inject_noise_op(x, strength, noise, bias, spec.code, alpha, gain, clamp)
    return y
