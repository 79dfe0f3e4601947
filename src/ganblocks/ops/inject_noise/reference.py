from __future__ import annotations

from typing import Optional

import torch

from .._activations import ActSpec
from ..bias_act.reference import bias_act_reference


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
    """``clamp(gain * act(x + strength * noise + bias))``; noise (N, 1, H, W), strength () or (C,).

    Parameters in another dtype (float32 strength with bfloat16 activations) are cast to ``x.dtype``, so
    the result has the dtype of ``x``.
    """
    s = strength.to(x.dtype)
    s = s.reshape(-1, 1, 1) if s.ndim == 1 else s
    return bias_act_reference(
        x + s * noise.to(x.dtype), bias, spec=spec, alpha=alpha, gain=gain, clamp=clamp, dim=1
    )
