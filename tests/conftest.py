"""Test session set-up.

On a machine without CUDA the Triton kernels run under the interpreter (``TRITON_INTERPRET=1``), which
must be set before Triton compiles any kernel, so it is set here, before any test imports ganblocks.
Shared helpers (tolerances, comparisons) live in ``tests/helpers.py``.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
