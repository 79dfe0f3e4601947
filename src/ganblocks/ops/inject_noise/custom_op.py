"""``inject_noise`` as ``torch.library`` custom ops: forward kernel, backward kernel, and the backward's backward.

With ``z = x + s * noise + b`` and ``y = clamp(gain * act(z))``, the backward op ``inject_noise_grad``
returns, from one kernel pass (see ``kernels``), ``dz = dy * f'(z)`` (which is ``dx``), ``sums`` =
``(Σ dz, Σ dz * noise)`` per channel over ``n, h, w`` (``db``, and ``ds`` once summed over the channels
for a scalar strength) and ``dnoise = Σ_c dz * s``.

What is saved: for ``linear``, ``relu`` and ``lrelu`` with a positive gain and no clamp the output ``y`` (as
``bias_act`` does; nothing for ``linear``), plus ``s`` and ``noise``; for the other activations ``f'`` needs
the pre-activation, so ``x, s, noise, b`` are saved and the kernel recomputes ``z``.

Second order: all three outputs are linear in ``dz``, so their cotangents combine into one cotangent
``G = g_dz + g_db + g_ds * noise + g_dnoise * s`` of ``dz``. Its part through ``dy`` is the backward
kernel applied to ``G``; its part through ``z`` is ``t = G * dy * f''(z)`` (zero almost everywhere for the
activations that save the output), which reaches ``x``, ``b``, ``s`` and ``noise`` as ``z`` does; and
``ds`` and ``dnoise`` also depend on ``noise`` and ``s`` directly. All in differentiable PyTorch around the
op itself, so any order works.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

import torch

from ..._precision import accumulation_dtype
from .._activations import ActSpec, apply_activation
from .._library import fused_op, like_first
from ..bias_act.custom_op import _BY_CODE, _saves_output, _second_derivative


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


def _grad_fake(
    dy: torch.Tensor, ref: Optional[torch.Tensor], s: torch.Tensor, noise: torch.Tensor, *_: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t = dy if ref is None else ref
    sums = t.new_empty((2, t.shape[1]), dtype=accumulation_dtype(t.dtype))
    return torch.empty_like(t), sums, torch.empty_like(noise)


# ``ref`` as for ``bias_act_grad``: x when ``ref_is_input``, else y, or None for unclamped linear. ``b`` is
# read only with an input ``ref``; ``sums`` always holds both sums.
_inject_noise_grad_op = fused_op(
    "inject_noise_grad",
    "(Tensor dy, Tensor? ref, Tensor strength, Tensor noise, Tensor? b, int act, float alpha, float gain, "
    "float? clamp, bool ref_is_input) -> (Tensor, Tensor, Tensor)",
    lambda *args: _kernels().inject_noise_backward(*args),
    fake=_grad_fake,
)


def _per_channel(s: torch.Tensor) -> torch.Tensor:
    """``s`` shaped to broadcast against ``(N, C, H, W)``: ``(C, 1, 1)`` or a scalar."""
    return s.reshape(-1, 1, 1) if s.ndim == 1 else s


def _to_strength(per_channel: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """A per-channel sum ``(C,)`` as the gradient of ``s``: summed over the channels for a scalar ``s``."""
    total = per_channel if s.numel() == per_channel.numel() else per_channel.sum()
    return total.reshape(s.shape).to(s.dtype)


def _setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    x, s, noise, b, act, alpha, gain, clamp = inputs
    ctx.set_materialize_grads(False)  # a gradient that never arrives runs no kernel
    ctx.args = (act, alpha, gain, clamp)
    ctx.b_dtype = None if b is None else b.dtype
    ctx.ref_is_input = not _saves_output(act, alpha, gain, clamp)
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
    dz, sums, dnoise = _inject_noise_grad_op(dy, ref, s, noise, b, act, alpha, gain, clamp, ctx.ref_is_input)
    need = ctx.needs_input_grad
    ds = _to_strength(sums[1], s) if need[1] else None
    db = sums[0].to(ctx.b_dtype) if need[3] and ctx.b_dtype is not None else None
    return dz if need[0] else None, ds, dnoise if need[2] else None, db, None, None, None, None


_inject_noise_op.register_autograd(_backward, setup_context=_setup)


def _grad_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    dy, ref, s, noise, b, act, alpha, gain, clamp, ref_is_input = inputs
    ctx.set_materialize_grads(False)
    ctx.args = (act, alpha, gain, clamp, ref_is_input)
    ctx.save_for_backward(dy, ref, s, noise, b)


def _grad_backward(
    ctx: Any, g_dz: Optional[torch.Tensor], g_sums: Optional[torch.Tensor], g_dn: Optional[torch.Tensor]
) -> tuple[Optional[torch.Tensor], ...]:
    act, alpha, gain, clamp, ref_is_input = ctx.args
    dy, ref, s, noise, b = ctx.saved_tensors
    need = ctx.needs_input_grad
    t_like = dy if ref is None else ref
    dt = t_like.dtype
    sv = _per_channel(s).to(dt)
    # G, the cotangent of dz, in dz's dtype (the reductions cast dz up, so their backward casts down).
    parts = [] if g_dz is None else [g_dz]
    if g_sums is not None:
        parts.append(g_sums[0].to(dt).reshape(-1, 1, 1) + g_sums[1].to(dt).reshape(-1, 1, 1) * noise.to(dt))
    if g_dn is not None:
        parts.append(g_dn.to(dt) * sv)
    if not parts:
        return (None,) * 10
    g = parts[0]
    for part in parts[1:]:
        g = g + part
    g = g.expand(t_like.shape)
    g_dy = g_ref = g_s = g_noise = g_b = None
    if need[0]:
        g_dy = _inject_noise_grad_op(g, ref, s, noise, b, act, alpha, gain, clamp, ref_is_input)[0]
    spec = _BY_CODE[act]
    if ref_is_input and not spec.grad_from_output and any(need[1:5]):
        acc = accumulation_dtype(dt)
        z = ref.to(acc) + _per_channel(s).to(acc) * noise.to(acc)
        if b is not None:
            z = z + b.to(acc).reshape(-1, 1, 1)
        t = g.to(acc) * dy.to(acc) * (gain * _second_derivative(z, spec, alpha))
        if clamp is not None:
            # The clamp's gradient mask: 1 on [-clamp, clamp], bounds included (the reference's).
            t = torch.where((gain * apply_activation(z, spec, alpha)).abs() <= clamp, t, torch.zeros_like(t))
        g_ref = t.to(dt) if need[1] else None
        if need[2]:
            g_s = _to_strength((t * noise.to(acc)).sum(dim=(0, 2, 3)), s)
        if need[3]:
            g_noise = (t * _per_channel(s).to(acc)).sum(dim=1, keepdim=True)
        if need[4] and b is not None:
            g_b = t.sum(dim=(0, 2, 3)).to(b.dtype)
    if (g_sums is not None and need[3]) or (g_dn is not None and need[2]):
        # Direct terms: ds = Σ dz * noise depends on noise, dnoise = Σ_c dz * s on s.
        dz = _inject_noise_grad_op(dy, ref, s, noise, b, act, alpha, gain, clamp, ref_is_input)[0]
        acc = accumulation_dtype(dt)
        if g_sums is not None and need[3]:
            term = (dz.to(acc) * g_sums[1].to(acc).reshape(-1, 1, 1)).sum(dim=1, keepdim=True)
            g_noise = term if g_noise is None else g_noise + term
        if g_dn is not None and need[2]:
            g_s_term = _to_strength((dz.to(acc) * g_dn.to(acc)).sum(dim=(0, 2, 3)), s)
            g_s = g_s_term if g_s is None else g_s + g_s_term
    if g_noise is not None:
        g_noise = g_noise.to(noise.dtype)
    return g_dy, g_ref, g_s, g_noise, g_b, None, None, None, None, None


_inject_noise_grad_op.register_autograd(_grad_backward, setup_context=_grad_setup)


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
