from __future__ import annotations

import torch

from ..._precision import upcast


def pixel_scale(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Per pixel, ``max |x|`` along ``dim`` where it exceeds 1, else 1 (detached, keepdim).

    ``x²`` overflows float32 from ``|x| ≈ 1.8e19``, which would make ``rsqrt`` 0 and the whole pixel
    exact zeros. For any constant ``k``, ``(x/k) * rsqrt(mean((x/k)²) + eps/k²)`` is the same function as
    the unscaled formula, so dividing by ``k`` first cannot overflow and, with ``k`` detached, every order
    of autograd is that of the unscaled formula. Pixels with ``max |x| <= 1`` use ``k = 1``: their result
    is bit for bit the unscaled one, and small values never get scaled up (``eps/k²`` cannot overflow).
    A NaN ``max`` gives ``k = 1``; the NaN reaches the output through the mean anyway.
    """
    m = x.detach().abs().amax(dim=dim, keepdim=True)
    return torch.where(m > 1, m, torch.ones_like(m))


def pixel_norm_reference(x: torch.Tensor, *, eps: float, dim: int) -> torch.Tensor:
    """``x * rsqrt(mean(x², dim) + eps)``, statistics in float32 (or float64) for low-precision inputs.

    Computed as ``s * rsqrt(mean(s²) + eps / k²)`` with ``s = x / k`` and ``k`` from :func:`pixel_scale`, so
    that values near the top of the dtype's range give the right result instead of zeros.
    """
    acc = upcast(x)
    k = pixel_scale(acc, dim)
    s = acc / k
    y = s * torch.rsqrt(s.square().mean(dim=dim, keepdim=True) + eps / k.square())
    return y.to(x.dtype)
