r"""``instance_norm_act`` as ``torch.library`` custom ops: forward kernel, backward kernel, and its backward.

The forward op returns ``(y, mean, rstd)``; the per-plane statistics are saved with ``x`` (not the
normalized tensor) and are not differentiable. The backward op returns ``dx`` and the affine gradients per
``(n, c)`` plane, which the autograd glue reduces over the batch for ``(C,)`` parameters.

Second order: the backward op's own backward is the vector-Jacobian product (``torch.func.vjp``) of the
first-order gradient written in differentiable PyTorch, recomputed from ``dy``, ``x``, the affine
parameters and the forward kernel's statistics (made differentiable in ``x`` by ``_Normalized``, so they
are not recomputed and a low-precision ``x`` is not copied to float32), so every order of gradient works.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, Optional

import torch

from ..._precision import accumulation_dtype
from .._activations import ACTIVATIONS, ActSpec, apply_activation
from .._library import fused_op
from .reference import _per_sample

_BY_CODE = {spec.code: spec for spec in ACTIVATIONS.values()}


def _new_stats(x: torch.Tensor) -> torch.Tensor:
    return x.new_empty((x.shape[0], x.shape[1]), dtype=accumulation_dtype(x.dtype))


def _kernels() -> ModuleType:
    from . import kernels  # imports Triton: on the first eager call only

    return kernels


def _fake_outputs(x: torch.Tensor, *_: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.empty_like(x), _new_stats(x), _new_stats(x)


# Forward: (y, mean, rstd) per (n, c) plane. Backward: (dx, dscale, dbias) per plane; eps is already in
# rstd there, and the second-order formula reuses rstd too: the eps argument is unused, kept so that the
# registered schema does not change.
_instance_norm_act_op = fused_op(
    "instance_norm_act",
    "(Tensor x, Tensor? scale, Tensor? bias, float eps, int act, float alpha, float gain) "
    "-> (Tensor, Tensor, Tensor)",
    lambda *args: _kernels().instance_norm_act_forward(*args),
    fake=_fake_outputs,
)
_instance_norm_act_grad_op = fused_op(
    "instance_norm_act_grad",
    "(Tensor dy, Tensor x, Tensor? scale, Tensor? bias, Tensor mean, Tensor rstd, float eps, int act, "
    "float alpha, float gain) -> (Tensor, Tensor, Tensor)",
    lambda dy, x, scale, bias, mean, rstd, eps, *rest: _kernels().instance_norm_act_backward(
        dy, x, scale, bias, mean, rstd, *rest
    ),
    fake=lambda dy, x, *_: _fake_outputs(x),
)


def _to_param(per_plane: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """A per-``(n, c)`` gradient reduced to the shape and dtype of the parameter ``p``."""
    return (per_plane.sum(dim=0) if p.ndim == 1 else per_plane).to(p.dtype)


def _setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
    x, scale, bias, eps, act, alpha, gain = inputs
    _, mean, rstd = output
    ctx.mark_non_differentiable(mean, rstd)
    # Gradients that never arrive stay None instead of becoming zero tensors (mean and rstd never get one;
    # y gets none when only the statistics reach the loss): no kernel runs on all-zero gradients.
    ctx.set_materialize_grads(False)
    ctx.args = (eps, act, alpha, gain)
    ctx.save_for_backward(x, scale, bias, mean, rstd)


def _backward(
    ctx: Any, dy: Optional[torch.Tensor], _dmean: Any, _drstd: Any
) -> tuple[Optional[torch.Tensor], ...]:
    if dy is None:
        return (None,) * 7
    eps, act, alpha, gain = ctx.args
    x, scale, bias, mean, rstd = ctx.saved_tensors
    dx, dscale, dbias = _instance_norm_act_grad_op(dy, x, scale, bias, mean, rstd, eps, act, alpha, gain)
    g_scale = _to_param(dscale, scale) if scale is not None and ctx.needs_input_grad[1] else None
    g_bias = _to_param(dbias, bias) if bias is not None and ctx.needs_input_grad[2] else None
    return dx if ctx.needs_input_grad[0] else None, g_scale, g_bias, None, None, None, None


_instance_norm_act_op.register_autograd(_backward, setup_context=_setup)


class _Normalized(torch.autograd.Function):
    """``(xhat, rstd)`` from ``x`` and the forward kernel's per-plane ``mean`` and ``rstd``, differentiable
    in ``x`` to every order as if the statistics were recomputed from it.

    The statistics come from the kernel, so the double backward makes no pass over ``x`` for them, and
    ``x - mean`` promotes a float16/bfloat16 ``x`` to the float32 of ``mean`` element by element instead
    of copying all of ``x`` to float32 first. Every use of ``x`` goes through this one node, so the
    gradient reaching ``x`` is summed in float32 and rounded to its dtype once, as the upcast copy did.
    """

    @staticmethod
    def forward(x: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # rstd cloned: autograd would treat an input returned as is as a view of it.
        return (x - mean) * rstd, rstd.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx: Any, g_xhat: torch.Tensor, g_rstd: torch.Tensor) -> tuple[Optional[torch.Tensor], ...]:
        x, mean, rstd = ctx.saved_tensors
        # Recomputed through this function again, so that this backward is differentiable in x too.
        xhat, r = _Normalized.apply(x, mean, rstd)  # type: ignore[no-untyped-call]
        dims = tuple(range(2, x.ndim))
        # d xhat / dx is the instance norm backward; d rstd / dx = -rstd^2 * xhat / hw.
        g_x = r * (
            g_xhat - g_xhat.mean(dim=dims, keepdim=True) - xhat * (g_xhat * xhat).mean(dim=dims, keepdim=True)
        )
        g_x = g_x - g_rstd * (r * r / math.prod(x.shape[2:])) * xhat
        return g_x.to(x.dtype), None, None


def _grad_reference(
    dy: torch.Tensor,
    x: torch.Tensor,
    scale: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    mean: torch.Tensor,
    rstd: torch.Tensor,
    *,
    spec: ActSpec,
    alpha: float,
    gain: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the backward kernel computes, in differentiable PyTorch: ``(dx, dscale, dbias)`` per plane.

    ``mean`` and ``rstd`` are the forward kernel's ``(N, C)`` statistics of ``x`` (see ``_Normalized``).
    """
    dims = tuple(range(2, x.ndim))
    stats = (*mean.shape, *(1 for _ in dims))
    xhat, rstd = _Normalized.apply(x, mean.reshape(stats), rstd.reshape(stats))  # type: ignore[no-untyped-call]
    z = xhat
    k = rstd
    acc = rstd.dtype
    if scale is not None:
        s = _per_sample(scale.to(acc), x)
        z = z * s
        k = k * s
    if bias is not None:
        z = z + _per_sample(bias.to(acc), x)
    act_vjp = torch.func.vjp(lambda t: apply_activation(t, spec, alpha), z)[1]
    # Times a float32 tensor (not a 0-d one, which would not promote), dy is read in float32, not copied.
    (dz,) = act_vjp(dy * rstd.new_full((1,) * x.ndim, gain))
    dzx = dz * xhat
    dx = k * (dz - dz.mean(dim=dims, keepdim=True) - xhat * dzx.mean(dim=dims, keepdim=True))
    return dx.to(x.dtype), dzx.sum(dim=dims), dz.sum(dim=dims)


def _grad_setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
    dy, x, scale, bias, mean, rstd, _eps, act, alpha, gain = inputs
    # Of (dx, dscale, dbias) usually only dx is used (R1 through a discriminator without affine): the
    # others' gradients stay None and their part of the vector-Jacobian product is not built at all.
    ctx.set_materialize_grads(False)
    ctx.args = (act, alpha, gain)
    ctx.save_for_backward(dy, x, scale, bias, mean, rstd)


def _grad_backward(
    ctx: Any, g_dx: Optional[torch.Tensor], g_dscale: Optional[torch.Tensor], g_dbias: Optional[torch.Tensor]
) -> tuple[Optional[torch.Tensor], ...]:
    act, alpha, gain = ctx.args
    dy, x, scale, bias, mean, rstd = ctx.saved_tensors
    needs = ctx.needs_input_grad
    incoming = (g_dx, g_dscale, g_dbias)
    used = tuple(i for i, g in enumerate(incoming) if g is not None)
    if not any(needs[:4]) or not used:
        return (None,) * 10
    params = tuple(p for p in (scale, bias) if p is not None)

    def first_order(dy: torch.Tensor, x: torch.Tensor, *ps: torch.Tensor) -> tuple[torch.Tensor, ...]:
        it = iter(ps)
        s = next(it) if scale is not None else None
        b = next(it) if bias is not None else None
        out = _grad_reference(dy, x, s, b, mean, rstd, spec=_BY_CODE[act], alpha=alpha, gain=gain)
        return tuple(out[i] for i in used)

    outputs, vjp_fn = torch.func.vjp(first_order, dy, x, *params)[:2]
    cotangents = tuple(incoming[i].to(o.dtype) for i, o in zip(used, outputs))  # type: ignore[union-attr]
    g_dy, g_x, *g_params = vjp_fn(cotangents)
    g_it = iter(g_params)
    g_scale = next(g_it) if scale is not None else None
    g_bias = next(g_it) if bias is not None else None
    return (
        g_dy if needs[0] else None,
        g_x if needs[1] else None,
        g_scale if needs[2] else None,
        g_bias if needs[3] else None,
        None,
        None,
        None,
        None,
        None,
        None,
    )


_instance_norm_act_grad_op.register_autograd(_grad_backward, setup_context=_grad_setup)


def instance_norm_act_triton(
    x: torch.Tensor,
    scale: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    *,
    eps: float,
    spec: ActSpec,
    alpha: float,
    gain: float,
) -> torch.Tensor:
    """Run ``instance_norm_act`` through its Triton custom op (arguments already checked)."""
    y: torch.Tensor = _instance_norm_act_op(x, scale, bias, float(eps), spec.code, alpha, gain)[0]
    return y
