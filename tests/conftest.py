"""Test session set-up and the fixtures every test folder shares.

On a machine without CUDA the Triton kernels run under the interpreter (``TRITON_INTERPRET=1``), which
must be set before Triton compiles any kernel, so it is set here, before any test imports ganblocks.
Shared helpers (tolerances, comparisons) live in ``tests/helpers.py``, the independent formulas in
``tests/formulas.py``.
"""

from __future__ import annotations

import os

import pytest
import torch

from ganblocks.ops import Backend

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# helpers reads TRITON_INTERPRET: imported after it is set
from helpers import BACKENDS, device_for


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Both backends: ``torch`` (the reference) and ``triton`` (skipped where Triton cannot run)."""
    return str(request.param)


@pytest.fixture
def device(backend: Backend) -> torch.device:
    """Where the tensors of a ``backend`` test live: the Triton device for ``triton``, else the CPU."""
    return device_for(backend)
