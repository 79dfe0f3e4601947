"""Shared test helpers: the tolerance table, the device for Triton tests, comparison helpers."""

from __future__ import annotations

import importlib.util
import os
from typing import Optional

import pytest
import torch

HAS_TRITON = importlib.util.find_spec("triton") is not None
TRITON_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

# One table for every comparison of a low-precision or fused result against its float64/float32
# reference: (rtol, atol). Tests that need looser bounds say why at the call site.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-10, 1e-10),
    torch.float32: (1e-5, 1e-5),
    torch.float16: (1e-3, 1e-3),
    torch.bfloat16: (2e-2, 2e-2),
}

requires_triton = pytest.mark.skipif(
    not HAS_TRITON or (not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1"),
    reason="needs triton, and CUDA or TRITON_INTERPRET=1",
)


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, dtype: Optional[torch.dtype] = None, *, scale: float = 1.0
) -> None:
    """Compare with the tolerance of ``dtype`` (default: ``actual``'s dtype), loosened by ``scale``."""
    rtol, atol = TOLERANCES[dtype or actual.dtype]
    torch.testing.assert_close(actual.double(), expected.double(), rtol=rtol * scale, atol=atol * scale)
