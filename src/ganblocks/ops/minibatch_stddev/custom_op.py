"""``minibatch_stddev`` as ``torch.library`` custom ops: forward kernel, backward kernel, backward's backward.

Notation: ``G`` group size, ``M = N / G`` group slots (sample ``n = g * M + m``), ``F`` stat channels,
``K = C/F * H * W``, per element ``mean`` and ``std = sqrt(var + 1e-8)`` over the group and
``r = (x - mean) / std``. With ``D[m, f]`` the gradient of the stat channels summed over the group's
samples and pixels, the backward is

    dx = dout[:, :C] + D[m, f] / (K G) * r.

It is linear in ``dout``; its derivative with respect to ``x`` for an incoming ``γ`` (the shape of ``x``) is

    D[m, f] / (K G std) * (γ - mean_g γ - r * mean_g(γ r))

(computed as in ``_projected``, which does not cancel where ``r = ±1``),
and with respect to ``dout`` it is ``γ`` on the first ``C`` channels and ``Σ_{g,c,h,w} γ r / (K G)``
broadcast over the stat channels. Both are written in differentiable PyTorch, so every order works.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

import torch

from ..._precision import accumulation_dtype
from .._library import fused_op
from .reference import output_memory_format


def _kernels() -> ModuleType:
    from . import kernels  # imports Triton: on the first eager call only

    return kernels


def _fake_forward(x: torch.Tensor, group_size: int, num_channels: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.new_empty((n, c + num_channels, h, w)).contiguous(memory_format=output_memory_format(x))


_minibatch_stddev_op = fused_op(
    "minibatch_stddev",
    "(Tensor x, int group_size, int num_channels) -> Tensor",
    lambda *args: _kernels().minibatch_stddev_forward(*args),
    fake=_fake_forward,
)
_minibatch_stddev_grad_op = fused_op(
    "minibatch_stddev_grad",
    "(Tensor dout, Tensor x, int group_size, int num_channels) -> Tensor",
    lambda *args: _kernels().minibatch_stddev_backward(*args),
    fake=lambda dout, x, *_: torch.empty_like(x),
)


def _setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    x, group_size, num_channels = inputs
    ctx.set_materialize_grads(False)  # a gradient that never arrives runs no kernel
    ctx.args = (group_size, num_channels)
    ctx.save_for_backward(x)


def _backward(ctx: Any, dout: Optional[torch.Tensor]) -> tuple[Optional[torch.Tensor], ...]:
    if dout is None:
        return None, None, None
    (x,) = ctx.saved_tensors
    dx = _minibatch_stddev_grad_op(dout, x, *ctx.args) if ctx.needs_input_grad[0] else None
    return dx, None, None


_minibatch_stddev_op.register_autograd(_backward, setup_context=_setup)


def _grad_setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    dout, x, group_size, num_channels = inputs
    ctx.set_materialize_grads(False)
    ctx.args = (group_size, num_channels)
    ctx.save_for_backward(dout, x)


def _projected(gam: torch.Tensor, dev: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``(γ - mean_g γ - r * mean_g(γ r)) / std`` over the group dim 0, without the cancellation.

    With ``γc = γ - mean_g γ`` and ``G std² = Σ_j d_j² + G ε`` the bracket is
    ``(G ε γc_i + Σ_j d_j (γc_i d_j - d_i γc_j)) / (G std²)``. Written as the difference of ``γc`` and
    ``r mean_g(γ r)`` it cancels almost entirely where ``r = ±1`` (every group of two: the true value is
    ``O(ε)``). For two samples the cross terms vanish (``d_1 = -d_0``, ``γc_1 = -γc_0``), so they are not
    summed from rounded values there; for larger groups their sum is ``γc_i Σ d² - d_i Σ d γc``.
    """
    g = gam.shape[0]
    gc = gam - gam.mean(dim=0)
    num = (g * 1e-8) * gc
    if g > 2:
        num = num + gc * dev.square().sum(dim=0) - dev * (dev * gc).sum(dim=0)
    return num / (g * std * std.square())


def _grad_backward(ctx: Any, gamma: Optional[torch.Tensor]) -> tuple[Optional[torch.Tensor], ...]:
    if gamma is None:
        return None, None, None, None
    dout, x = ctx.saved_tensors
    g, f = ctx.args
    n, c, h, w = x.shape
    m, k = n // g, (c // f) * h * w
    acc = accumulation_dtype(x.dtype)
    grouped = (g, m, f, c // f, h, w)
    xg = x.to(acc).reshape(grouped)
    dev = xg - xg.mean(dim=0)
    std = (dev.square().mean(dim=0) + 1e-8).sqrt()
    gam = gamma.to(acc).reshape(grouped)
    g_dout = g_x = None
    if ctx.needs_input_grad[0]:
        t = (gam * (dev / std)).sum(dim=(0, 3, 4, 5)) / (k * g)  # (M, F)
        stat = t.repeat(g, 1).reshape(n, f, 1, 1).expand(n, f, h, w)
        g_dout = torch.cat([gamma.to(acc), stat], dim=1).to(dout.dtype)
    if ctx.needs_input_grad[1]:
        d_stat = dout[:, c:].to(acc).sum(dim=(2, 3)).reshape(g, m, f).sum(dim=0)
        coef = d_stat.reshape(1, m, f, 1, 1, 1) / (k * g)
        g_x = coef * _projected(gam, dev, std)
        g_x = g_x.reshape(n, c, h, w).to(x.dtype)
    return g_dout, g_x, None, None


_minibatch_stddev_grad_op.register_autograd(_grad_backward, setup_context=_grad_setup)


def minibatch_stddev_triton(x: torch.Tensor, *, group_size: int, num_channels: int) -> torch.Tensor:
    """Run ``minibatch_stddev`` through its Triton custom op (group size already resolved)."""
    y: torch.Tensor = _minibatch_stddev_op(x, group_size, num_channels)
    return y
