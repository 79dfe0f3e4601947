"""The accumulation rule every op and loss follows: float16 and bfloat16 accumulate in float32.

float32 and float64 keep their own precision (float64 so that gradcheck exercises the exact code path).
"""

from __future__ import annotations

import torch

LOW_PRECISION: tuple[torch.dtype, ...] = (torch.float16, torch.bfloat16)


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype in which sums over values of ``dtype`` are taken."""
    return torch.float32 if dtype in LOW_PRECISION else dtype


def upcast(x: torch.Tensor) -> torch.Tensor:
    """``x`` in its accumulation dtype (no copy when it already is)."""
    return x.to(accumulation_dtype(x.dtype))
