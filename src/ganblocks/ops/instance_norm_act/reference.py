from __future__ import annotations

from typing import Optional

import torch

from ..._precision import upcast
from .._activations import ActSpec, apply_activation


def _per_sample(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # (C,) broadcasts over the batch, (N, C) is one value per sample and channel.
    shape = [1] * (x.ndim - 2)
    return p.reshape(*p.shape, *shape) if p.ndim == 2 else p.reshape(-1, *shape)


def instance_norm_act_reference(
    x: torch.Tensor,
    scale: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    *,
    eps: float,
    spec: ActSpec,
    alpha: float,
    gain: float,
) -> torch.Tensor:
    """``gain * act(scale * (x - mean) / sqrt(var + eps) + bias)``, biased variance over dims 2 and up."""
    acc = upcast(x)
    dims = tuple(range(2, x.ndim))
    var, mean = torch.var_mean(acc, dim=dims, keepdim=True, correction=0)
    y = (acc - mean) * torch.rsqrt(var + eps)
    if scale is not None:
        y = y * _per_sample(scale, x)
    if bias is not None:
        y = y + _per_sample(bias, x)
    y = apply_activation(y, spec, alpha)
    if gain != 1.0:
        y = y * gain
    return y.to(x.dtype)
