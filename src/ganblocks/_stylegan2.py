"""What StyleGAN2's generator and discriminator share: the architecture names, the channel and reduced-precision
rules of StyleGAN2-ADA, and the translation of its recorded init kwargs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, get_args

import torch

Architecture = Literal["orig", "skip", "resnet"]
ARCHITECTURES: tuple[Architecture, ...] = get_args(Architecture)
LOW_PRECISION = (torch.float16, torch.bfloat16)


def check_fp16_dtype(dtype: torch.dtype) -> torch.dtype:
    """``fp16_dtype`` is float16 or bfloat16."""
    if dtype not in LOW_PRECISION:
        raise ValueError(f"fp16_dtype must be torch.float16 or torch.bfloat16, got {dtype!r}")
    return dtype


def check_resolution(name: str, value: int) -> int:
    """A power of two, at least 4."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 4 or value & (value - 1):
        raise ValueError(f"{name} must be a power of two >= 4, got {value!r}")
    return value


def block_channels(resolution: int, channel_base: int, channel_max: int) -> int:
    """StyleGAN2-ADA's channel rule: ``min(channel_base // resolution, channel_max)``."""
    return min(channel_base // resolution, channel_max)


def fp16_resolution(img_resolution: int, num_fp16_res: int) -> int:
    """The lowest resolution that runs in reduced precision: the ``num_fp16_res`` highest, never below 8."""
    return max(1 << max(int(math.log2(img_resolution)) + 1 - num_fp16_res, 0), 8)


def block_dtype(use_fp16: bool, fp16_dtype: torch.dtype, param_dtype: torch.dtype, device: torch.device,
                force_fp32: bool) -> torch.dtype:  # fmt: skip
    """Reduced precision only on CUDA (StyleGAN2-ADA's mixed precision), else the parameters' dtype."""
    return fp16_dtype if use_fp16 and not force_fp32 and device.type == "cuda" else param_dtype


def translate_kwargs(where: str, kwargs: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """Rename StyleGAN2-ADA's keys with ``names``; an unknown key raises a ValueError naming it."""
    if not isinstance(kwargs, Mapping):
        raise TypeError(f"{where} must be a mapping, got {type(kwargs).__name__}")
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        raise ValueError(f"{where} has keys that ganblocks does not know: {unknown}; known: {sorted(names)}")
    return {names[k]: v for k, v in kwargs.items()}
