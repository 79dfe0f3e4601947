from __future__ import annotations

import torch

from ..._precision import upcast


def pixel_norm_reference(x: torch.Tensor, *, eps: float, dim: int) -> torch.Tensor:
    """``x * rsqrt(mean(x², dim) + eps)``, statistics in float32 (or float64) for low-precision inputs."""
    acc = upcast(x)
    y = acc * torch.rsqrt(acc.square().mean(dim=dim, keepdim=True) + eps)
    return y.to(x.dtype)
