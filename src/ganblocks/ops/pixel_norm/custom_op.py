r"""``pixel_norm`` as ``torch.library`` custom ops: forward kernel, backward kernel, and the backward's backward.

With :math:`r = (\overline{x^2} + \epsilon)^{-1/2}` (means over the channel dim of size :math:`C`), the
backward is :math:`dx = r\,dy - r^3\,\overline{dy\,x}\,x`. It is linear in :math:`dy` with a symmetric
Jacobian, so its derivative with respect to :math:`dy` is the backward kernel again; its derivative with
respect to :math:`x` is written in differentiable PyTorch, so any order works.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

import torch

from ..._precision import accumulation_dtype
from .._library import fused_op, like_first
from .reference import pixel_scale


def _kernels() -> ModuleType:
    from . import kernels  # imports Triton: on the first eager call only

    return kernels


_pixel_norm_op = fused_op(
    "pixel_norm",
    "(Tensor x, float eps, int dim) -> Tensor",
    lambda *args: _kernels().pixel_norm_forward(*args),
    fake=like_first,
)
_pixel_norm_grad_op = fused_op(
    "pixel_norm_grad",
    "(Tensor dy, Tensor x, float eps, int dim) -> Tensor",
    lambda *args: _kernels().pixel_norm_backward(*args),
    fake=lambda dy, x, *_: torch.empty_like(x),
)


def _setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    x, eps, dim = inputs
    ctx.args = (eps, dim)
    ctx.save_for_backward(x)


def _backward(ctx: Any, dy: torch.Tensor) -> tuple[Optional[torch.Tensor], ...]:
    eps, dim = ctx.args
    (x,) = ctx.saved_tensors
    return _pixel_norm_grad_op(dy, x, eps, dim), None, None


_pixel_norm_op.register_autograd(_backward, setup_context=_setup)


def _grad_setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    dy, x, eps, dim = inputs
    ctx.args = (eps, dim)
    ctx.save_for_backward(dy, x)


def _grad_x(g: torch.Tensor, dy: torch.Tensor, x: torch.Tensor, eps: float, dim: int) -> torch.Tensor:
    r"""Derivative of :math:`\langle g, dx(dy, x)\rangle` with respect to :math:`x`, in differentiable PyTorch.

    With :math:`G_1 = \sum g\,dy`, :math:`G_2 = \sum g\,x` and :math:`a = \overline{dy\,x}`:
    :math:`r^3 (3 r^2 a G_2 - G_1)\,x / C - r^3 G_2\,dy / C - r^3 a\,g`. Evaluated with :math:`s = x / k`
    (``k`` the detached per-pixel scale of the forward, see ``reference.pixel_scale``) so that no square
    overflows: with :math:`r_s = k r`, :math:`a_s = a / k` and :math:`G_{2,s} = G_2 / k` it is
    :math:`r_s^3 / k^2 \cdot \big((3 r_s^2 a_s G_{2,s} - G_1)\,s / C - G_{2,s}\,dy / C - a_s\,g\big)`.
    """
    acc = accumulation_dtype(x.dtype)
    g, dy, xa = g.to(acc), dy.to(acc), x.to(acc)
    num_c = x.shape[dim]
    k = pixel_scale(xa, dim)
    s = xa / k
    r = torch.rsqrt(s.square().mean(dim=dim, keepdim=True) + eps / k.square())
    a = (dy * s).mean(dim=dim, keepdim=True)
    g1 = (g * dy).sum(dim=dim, keepdim=True)
    g2 = (g * s).sum(dim=dim, keepdim=True)
    out = r * r * r / k.square() * ((3.0 * r * r * a * g2 - g1) / num_c * s - g2 / num_c * dy - a * g)
    return out.to(x.dtype)


def _grad_backward(ctx: Any, g: torch.Tensor) -> tuple[Optional[torch.Tensor], ...]:
    eps, dim = ctx.args
    dy, x = ctx.saved_tensors
    g_dy = _pixel_norm_grad_op(g, x, eps, dim) if ctx.needs_input_grad[0] else None
    g_x = _grad_x(g, dy, x, eps, dim) if ctx.needs_input_grad[1] else None
    return g_dy, g_x, None, None


_pixel_norm_grad_op.register_autograd(_grad_backward, setup_context=_grad_setup)


def pixel_norm_triton(x: torch.Tensor, *, eps: float, dim: int) -> torch.Tensor:
    """Run ``pixel_norm`` through its Triton custom op (arguments already checked)."""
    y: torch.Tensor = _pixel_norm_op(x, float(eps), dim)
    return y
