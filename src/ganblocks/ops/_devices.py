"""The device check every fused op runs on its tensor arguments at the public boundary.

A Triton kernel reads each argument through a raw pointer: one on another device than ``x`` is read as
garbage (CPU under the interpreter) or faults (CUDA), so it is rejected before any backend runs.
"""

from __future__ import annotations

from typing import Optional

import torch


def check_device(name: str, t: Optional[torch.Tensor], x: torch.Tensor, x_name: str = "x") -> None:
    """Raise a ValueError naming ``name`` and both devices unless ``t`` is None or on the device of ``x``."""
    if t is not None and t.device != x.device:
        raise ValueError(f"{name} must be on the device of {x_name} ({x.device}), got {t.device}")
