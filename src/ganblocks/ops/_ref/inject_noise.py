from __future__ import annotations

from typing import Optional

import torch

from ..activations import ActSpec
from .bias_act import bias_act_reference


def inject_noise_reference(
    x: torch.Tensor,
    strength: torch.Tensor,
    noise: torch.Tensor,
    bias: Optional[torch.Tensor],
    *,
    spec: ActSpec,
    alpha: float,
    gain: float,
    clamp: Optional[float],
) -> torch.Tensor:
    """``clamp(gain * act(x + strength * noise + bias))``; noise (N, 1, H, W), strength () or (C,)."""
    s = strength.reshape(-1, 1, 1) if strength.ndim == 1 else strength
    return bias_act_reference(x + s * noise, bias, spec=spec, alpha=alpha, gain=gain, clamp=clamp, dim=1)
