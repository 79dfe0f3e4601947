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
    return y if clamp is None else y.clamp(-clamp, clamp)
