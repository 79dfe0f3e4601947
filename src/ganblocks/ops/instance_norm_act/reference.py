"""``instance_norm_act`` in plain PyTorch: normalize each ``(n, c)`` plane, affine, activation, gain.

The statistics are taken of ``d = x - x[first element of the plane]`` (a detached shift, so every order of
autograd is that of the unshifted formula): the mean of ``d`` is small, so neither the mean nor the
variance loses the plane's spread to cancellation however large its mean (``1e4 + N(0, 0.01²)``), and a
constant plane gives ``d = 0`` exactly (its output is exactly the bias).
"""

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
    """``gain * act(scale * (x - mean) / sqrt(var + eps) + bias)``, biased variance over dims 2 and up.

    float16/bfloat16 inputs are computed in float32 and rounded once.
    """
    n, c = x.shape[0], x.shape[1]
    dims = tuple(range(2, x.ndim))
    acc = upcast(x)
    flat = acc.detach().reshape(n, c, -1) if x.numel() else acc.new_zeros(n, c, 1)
    d = acc - flat[:, :, :1].reshape(n, c, *(1 for _ in dims))
    d = d - d.mean(dim=dims, keepdim=True)
    z = d * torch.rsqrt(d.square().mean(dim=dims, keepdim=True) + eps)
    if scale is not None:
        z = z * _per_sample(scale.to(acc.dtype), x)
    if bias is not None:
        z = z + _per_sample(bias.to(acc.dtype), x)
    y = apply_activation(z, spec, alpha)
    if gain != 1.0:
        y = y * gain
    return y.to(x.dtype)
