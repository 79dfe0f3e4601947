r"""``pixel_norm`` in plain PyTorch: ``y = x * rsqrt(mean(x², dim) + eps)`` per pixel.

Each vector is first divided by a detached per-pixel constant ``k`` (its largest ``|x|`` where that
exceeds 1): ``(x/k) * rsqrt(mean((x/k)²) + eps/k²)`` is the same function, so every order of autograd is
the formula's, but ``x²`` cannot overflow (float32 from ``|x| ≈ 1.8e19``) and the derivatives, which hold
powers of ``r`` up to ``r⁵``, cannot underflow.
"""

from __future__ import annotations

import torch

from ..._precision import upcast


def pixel_scale(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Per pixel, ``max |x|`` along ``dim`` where it exceeds 1, else 1 (detached, keepdim).

    Pixels with ``max |x| <= 1`` use ``k = 1``: small values are never scaled up (``eps/k²`` cannot
    overflow). A NaN ``max`` gives ``k = 1``; the NaN reaches the output through the mean anyway.
    """
    m = x.detach().abs().amax(dim=dim, keepdim=True)
    return torch.where(m > 1, m, torch.ones_like(m))


def pixel_norm_reference(x: torch.Tensor, *, eps: float, dim: int) -> torch.Tensor:
    """``x * rsqrt(mean(x², dim) + eps)``, computed in float32 (or float64) for low-precision inputs."""
    acc = upcast(x)
    if acc.numel() == 0:
        return x.clone()
    k = pixel_scale(acc, dim)
    s = acc / k
    y = s * torch.rsqrt(s.square().mean(dim=dim, keepdim=True) + eps / k.square())
    return y.to(x.dtype)
