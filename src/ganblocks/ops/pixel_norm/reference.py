r"""``pixel_norm`` in plain PyTorch: ``y = x * r`` with ``r = (mean(x², dim) + eps)^{-1/2}`` per pixel.

Two forms of one function, both differentiable to any order:

- **plain**: ``x * rsqrt(mean(x²) + eps)`` op for op, what users write. Autograd keeps only the small
  per-pixel ``r`` besides ``x``, and the result is bit for bit the plain formula's.
- **scaled** (:func:`pixel_scale`): ``s * rsqrt(mean(s²) + eps / k²)`` with ``s = x / k``. ``x²`` overflows
  float32 from ``|x| ≈ 1.8e19`` (``r`` becomes 0 and the pixel exact zeros), and the plain form's
  derivatives hold powers of ``r`` up to ``r⁵`` (double backward), which underflow long before that; the
  scaled form has neither problem, but autograd keeps the full-size ``s`` (the square's input).

On CPU the plain form runs (float16 aside, see below) unless some pixel's mean square is above :data:`_PLAIN_MAX` (or not finite),
which one ``max`` of the per-pixel means tells (a CPU tensor has no device to wait for); then the scaled
form runs instead. Elsewhere (CUDA tensors on ``backend="torch"``, ``torch.compile``) the scaled form
always runs, so that no value is read back to the host.
"""

from __future__ import annotations

import torch

from ..._precision import upcast

# The largest per-pixel mean square for which the plain form runs, per accumulation dtype: rms <= 1e6
# keeps r⁵ >= 1e-30, a normal float32 (float64: rms <= 1e50, r⁵ >= 1e-250).
_PLAIN_MAX = {torch.float32: 1e12, torch.float64: 1e100}


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
    # bfloat16: squares in bfloat16 (so autograd keeps x itself, not a float32 copy; bfloat16 has float32's
    # exponent range, so only the last bits of each square round), summed in float32. float16 squares
    # would be subnormal below |x| ≈ 8e-3 (and overflow above 256): float16 takes the scaled form.
    if dt is torch.bfloat16:
        ms = x.square().mean(dim=dim, keepdim=True, dtype=torch.float32)
    else:
        ms = x.square().mean(dim=dim, keepdim=True)
    # An overflowing square shows as an infinite mean; NaN fails the comparison too (the scaled form
    # spreads it over the vector, as documented).
    if not ms.detach().max().item() <= _PLAIN_MAX[ms.dtype]:
        return _scaled(x, eps, dim)
    y = x * torch.rsqrt(ms + eps)
    return y if dt is torch.float32 else y.to(dt)
