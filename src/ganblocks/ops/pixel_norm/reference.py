r"""``pixel_norm`` in plain PyTorch: ``y = x * r`` with ``r = (mean(x², dim) + eps)^{-1/2}`` per pixel.

Two forms of one function, both differentiable to any order:

- **plain**: ``x * rsqrt(mean(x²) + eps)``, the formula users write, with the same forward values (bit for
  bit in float32 and float64) and the same saved tensors (``x`` and the small per-pixel ``r``). From
  :data:`_SMALL` elements (bfloat16: always) its backward is written out,
  :math:`dx = r\,dy - r^3\,\overline{dy\,x}\,x`: two full-size passes and one reduction where autograd's
  chain through ``mul``, ``rsqrt``, ``mean`` and ``pow`` takes six passes.
- **scaled** (:func:`pixel_scale`): ``s * rsqrt(mean(s²) + eps / k²)`` with ``s = x / k``. ``x²`` overflows
  float32 from ``|x| ≈ 1.8e19`` (``r`` becomes 0 and the pixel exact zeros), and the plain form's
  derivatives hold powers of ``r`` up to ``r⁵`` (double backward), which underflow long before that; the
  scaled form has neither problem, but autograd keeps the full-size ``s`` (the square's input).

On CPU the plain form runs (float16 aside, see below) unless some pixel's mean square is above :data:`_PLAIN_MAX` (or not finite),
which one ``max`` of the per-pixel means tells (a CPU tensor has no device to wait for); then the scaled
form runs instead. Elsewhere (CUDA tensors on ``backend="torch"``, ``torch.compile``, ``torch.func``
transforms) the scaled form always runs, so that no value is read back to the host.

bfloat16 (plain form): the squares are summed in float32 and the output is ``x`` times the float32 ``r``,
rounded once, written straight into a bfloat16 tensor (no full-size float32 copy). Autograd keeps ``r`` in
bfloat16, as the plain formula does, and the backward computes in bfloat16 from it, as the formula's does.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch

from ..._precision import upcast

# The largest per-pixel mean square for which the plain form runs, per accumulation dtype: rms <= 1e6
# keeps r⁵ >= 1e-30, a normal float32 (float64: rms <= 1e50, r⁵ >= 1e-250).
_PLAIN_MAX = {torch.float32: 1e12, torch.float64: 1e100}

# From this many elements (and for bfloat16 always) the plain form runs as :class:`_PlainPixelNorm`.
_SMALL = 4096


def pixel_scale(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Per pixel, ``max |x|`` along ``dim`` where it exceeds 1, else 1 (detached, keepdim).

    For any constant ``k``, ``(x/k) * rsqrt(mean((x/k)²) + eps/k²)`` is the same function as the unscaled
    formula, so dividing by ``k`` first cannot overflow and, with ``k`` detached, every order of autograd
    is that of the unscaled formula. Pixels with ``max |x| <= 1`` use ``k = 1``: their result is bit for
    bit the unscaled one, and small values never get scaled up (``eps/k²`` cannot overflow).
    A NaN ``max`` gives ``k = 1``; the NaN reaches the output through the mean anyway.
    """
    m = x.detach().abs().amax(dim=dim, keepdim=True)
    return torch.where(m > 1, m, torch.ones_like(m))


def _scaled(x: torch.Tensor, eps: float, dim: int) -> torch.Tensor:
    acc = upcast(x)
    k = pixel_scale(acc, dim)
    s = acc / k
    y = s * torch.rsqrt(s.square().mean(dim=dim, keepdim=True) + eps / k.square())
    return y.to(x.dtype)


def _transformed(x: torch.Tensor) -> bool:
    """Whether ``x`` is a torch.func transform's wrapper (``vmap`` cannot read a value back to the host)."""
    is_wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return bool(is_wrapped(x)) if is_wrapped is not None else False


def _mean_square(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``mean(x², dim)`` (keepdim); float32 for bfloat16 ``x``, the squares summed in float32.

    ``sum / C`` is how the CPU kernel of ``torch.mean`` computes a mean, so float32 and float64 results are
    ``torch.mean``'s bit for bit; for bfloat16, ``torch.mean`` would first copy the whole input to float32.
    """
    acc = torch.float32 if x.dtype is torch.bfloat16 else None
    return x.square().sum(dim=dim, keepdim=True, dtype=acc) / x.shape[dim]


def _coefficient(x: torch.Tensor, r_acc: torch.Tensor, t: torch.Tensor, dim: int) -> torch.Tensor:
    """``r³ · mean(t · x)`` per pixel (``r_acc``: ``r`` in its accumulation dtype), in the dtype of ``x``."""
    # bfloat16: a float32 accumulator, rounded once per pixel (the formula's own backward sums in bfloat16).
    s = (t * x).sum(dim=dim, keepdim=True)
    coef = r_acc * r_acc * r_acc * s.to(r_acc.dtype) / x.shape[dim]
    return coef if coef.dtype == x.dtype else coef.to(x.dtype)


def _linear_part(x: torch.Tensor, r: torch.Tensor, t: torch.Tensor, dim: int) -> torch.Tensor:
    """``r·t − r³·mean(t·x)·x``: the backward of ``x * r(x)`` for an incoming ``t``, and its forward tangent."""
    return t * r - x * _coefficient(x, upcast(r), t, dim)


class _PlainPixelNorm(torch.autograd.Function):
    """``x * r`` with the backward written out; ``ms`` is the (detached) per-pixel mean square of ``x``.

    Saves ``x`` and ``r`` (in the dtype of ``x``), as the plain formula does. Under ``create_graph`` the
    backward recomputes ``r`` from ``x`` in differentiable PyTorch, so every order is exact.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, ms: torch.Tensor, eps: float, dim: int) -> torch.Tensor:
        r_acc = torch.rsqrt(ms + eps)
        r = r_acc if r_acc.dtype == x.dtype else r_acc.to(x.dtype)
        ctx.save_for_backward(x, r)
        ctx.save_for_forward(x, r)
        ctx.eps, ctx.dim = eps, dim
        if r is r_acc:
            return x * r
        # bfloat16: the product with the float32 r, rounded once, written straight into a bfloat16 output.
        return torch.mul(x, r_acc, out=torch.empty_like(x))

    @staticmethod
    def jvp(ctx: Any, dx: torch.Tensor, *_: Any) -> torch.Tensor:
        # Forward-mode AD: the Jacobian is symmetric, so the tangent is the backward's formula applied to dx.
        x, r = ctx.saved_tensors
        return _linear_part(x, r, dx, ctx.dim)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[Optional[torch.Tensor], None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        x, r = ctx.saved_tensors
        dim = ctx.dim
        if torch.is_grad_enabled():
            # create_graph: r as a function of x, so that this gradient is itself differentiable in x.
            r_acc = torch.rsqrt(_mean_square(x, dim) + ctx.eps)
            r = r_acc if r_acc.dtype == x.dtype else r_acc.to(x.dtype)
        else:
            r_acc = upcast(r)
        coef = _coefficient(x, r_acc, dy, dim)
        if torch.is_grad_enabled() or (x.dtype is torch.bfloat16 and math.prod(x.shape[dim + 1 :]) < 64):
            # (bfloat16: addcmul with a broadcast factor takes a slow scalar loop when the trailing dims
            # are small, e.g. 4×4 maps of 512 channels; two products and a difference do not.)
            return dy * r - x * coef, None, None, None
        dx = dy * r
        return dx.addcmul_(x, coef, value=-1.0), None, None, None


def pixel_norm_reference(x: torch.Tensor, *, eps: float, dim: int) -> torch.Tensor:
    """``x * rsqrt(mean(x², dim) + eps)``, statistics in float32 (or float64) for low-precision inputs.

    Values near the top of the dtype's range give the right result (and finite derivatives) instead of
    zeros: see the module docstring for the two forms and when each runs.
    """
    dt = x.dtype
    if (
        not x.is_cpu
        or dt is torch.float16
        or x.numel() == 0
        or torch.compiler.is_compiling()
        or _transformed(x)
    ):
        return _scaled(x, eps, dim)
    # float16 squares would be subnormal below |x| ≈ 8e-3 (and overflow above 256): float16 takes the
    # scaled form. bfloat16 squares stay bfloat16 (float32's exponent range: only their last bits round).
    if x.numel() < _SMALL and dt is not torch.bfloat16:
        # A few thousand elements: the formula's autograd chain costs less host time than a custom
        # function. (bfloat16 always takes the function, which keeps r in bfloat16 as the formula does.)
        ms = _mean_square(x, dim)
        # An overflowing square shows as an infinite mean; NaN fails the comparison too (the scaled form
        # spreads it over the vector, as documented).
        if not ms.detach().max().item() <= _PLAIN_MAX[ms.dtype]:
            return _scaled(x, eps, dim)
        return x * torch.rsqrt(ms + eps)
    ms = _mean_square(x.detach(), dim)
    if not ms.max().item() <= _PLAIN_MAX[ms.dtype]:
        return _scaled(x, eps, dim)
    y: torch.Tensor = _PlainPixelNorm.apply(x, ms, eps, dim)  # type: ignore[no-untyped-call]
    return y
