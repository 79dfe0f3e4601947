"""``inject_noise`` in plain PyTorch: the noise term added, then ``bias_act``'s formula."""

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

    Parameters in another dtype (float32 strength with bfloat16 activations) are cast to ``x.dtype``. A
    scalar strength scales the ``(N, 1, H, W)`` noise before it is broadcast over the channels, as the
    plain ``x + w * noise`` of StyleGAN2 does.
    """
    s = strength.to(x.dtype)
    if s.ndim == 1:
        s = s.reshape(-1, 1, 1)
    y = x + s * noise.to(x.dtype)
    return bias_act_reference(y, bias, spec=spec, alpha=alpha, gain=gain, clamp=clamp, dim=1)
