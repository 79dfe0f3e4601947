"""``bias_act`` in plain PyTorch: the formula op by op, differentiable to any order by autograd."""

from __future__ import annotations

from typing import Optional

import torch

from .._activations import ActSpec, apply_activation


def bias_act_reference(
    x: torch.Tensor,
    b: Optional[torch.Tensor],
    *,
    spec: ActSpec,
    alpha: float,
    gain: float,
    clamp: Optional[float],
    dim: int,
) -> torch.Tensor:
    """``clamp(gain * act(x + b), -clamp, clamp)`` with ``b`` broadcast along ``dim``."""
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.to(x.dtype).reshape(shape)
    y = apply_activation(x, spec, alpha)
    if gain != 1.0:
        y = y * gain
    if clamp is None:
        return y
    # clamp(y, -c, c) with gradient 1 on [-c, c], bounds included, as the kernels: torch.clamp's own
    # gradient on the bounds is 1 up to torch 2.14 (StyleGAN2-ADA's reference relies on it) and 0 from 2.15.
    return torch.where(y.abs() <= clamp, y, y.clamp(-clamp, clamp))
