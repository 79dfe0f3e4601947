"""Fixtures of the layer tests: which fused ops have a Triton path right now."""

from __future__ import annotations

from typing import Callable

import pytest
import torch
from helpers import HAS_TRITON, TRITON_DEVICE

import ganblocks.ops as ops

_PROBES: dict[str, Callable[[torch.device], object]] = {
    "bias_act": lambda d: ops.bias_act(
        torch.zeros(1, 2, device=d), torch.zeros(2, device=d), backend="triton"
    ),
    "pixel_norm": lambda d: ops.pixel_norm(torch.ones(1, 2, 1, 1, device=d), backend="triton"),
    "adain": lambda d: ops.adain(
        torch.ones(1, 1, 2, 1, device=d),
        torch.ones(1, 1, device=d),
        torch.zeros(1, 1, device=d),
        backend="triton",
    ),
    "inject_noise": lambda d: ops.inject_noise(
        torch.zeros(1, 1, 1, 1, device=d),
        torch.zeros((), device=d),
        torch.zeros(1, 1, 1, 1, device=d),
        backend="triton",
    ),
    "minibatch_stddev": lambda d: ops.minibatch_stddev(
        torch.ones(2, 1, 1, 1, device=d), group_size=2, backend="triton"
    ),
}
_cache: dict[str, bool] = {}


def triton_op_available(op: str) -> bool:
    """Whether ``op`` runs with ``backend="triton"`` here; only a missing kernel counts as unavailable."""
    if op not in _cache:
        if not HAS_TRITON or (TRITON_DEVICE == "cpu" and not ops._backend.interpreting()):
            _cache[op] = False
        else:
            try:
                _PROBES[op](torch.device(TRITON_DEVICE))
                _cache[op] = True
            except ImportError:
                _cache[op] = False
            except RuntimeError as e:
                if "cannot run" not in str(e):
                    raise
                _cache[op] = False
    return _cache[op]


@pytest.fixture(params=["torch", pytest.param("triton", marks=pytest.mark.triton)])
def backend(request: pytest.FixtureRequest) -> str:
    """Both backends; a test asks for ``backend`` and calls ``require(backend, op)`` for each op it uses."""
    return str(request.param)


@pytest.fixture
def require() -> Callable[..., torch.device]:
    """``require(backend, *ops)``: skip unless every op has a Triton path; returns the device to use."""

    def _require(backend: str, *names: str) -> torch.device:
        if backend == "torch":
            return torch.device("cpu")
        missing = [n for n in names if not triton_op_available(n)]
        if missing:
            pytest.skip(f"no Triton path yet for {missing}")
        return torch.device(TRITON_DEVICE)

    return _require
