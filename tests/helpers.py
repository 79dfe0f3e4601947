"""Shared test helpers: the tolerance table, where Triton runs, comparison helpers, every order of gradient."""

from __future__ import annotations

import importlib
import os
import types
from collections.abc import Iterable, Sequence
from typing import Callable, Optional

import pytest
import torch

from ganblocks.ops import Backend, triton_available

HAS_TRITON = triton_available()
TRITON_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TRITON_RUNS = HAS_TRITON and (torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1")

# One table for every comparison of a low-precision or fused result against its float64/float32
# reference: (rtol, atol). Tests that need looser bounds say why at the call site.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-10, 1e-10),
    torch.float32: (1e-5, 1e-5),
    torch.float16: (1e-3, 1e-3),
    torch.bfloat16: (2e-2, 2e-2),
}
# A float64 Triton kernel against the float64 reference: the kernels take their scalars (eps, alpha, gain,
# clamp) as float64 and compute the same formula in another order, so results agree to ~1e-15 relative;
# 1e-12 leaves room for rounding grown through second-order chains, and fails on a scalar rounded to float32
# (~1e-8).
TRITON_FLOAT64: tuple[float, float] = (1e-12, 1e-12)

requires_triton = pytest.mark.skipif(not TRITON_RUNS, reason="needs triton, and CUDA or TRITON_INTERPRET=1")
# The marks of every Triton test, and the two backends as the ``backend`` fixture (tests/conftest.py) runs them;
# a test that narrows the fixture (``indirect=["backend"]``) gives its Triton params these marks too.
TRITON_MARKS = (pytest.mark.triton, requires_triton)
BACKENDS = ("torch", pytest.param("triton", marks=TRITON_MARKS))


# Test-only oracles (pytorch-fid, clean-fid, torch-fidelity, lpips, kornia) need torchvision, which does not
# import beside torch's CPU wheel: CI runs the tests marked ``oracle`` in a venv of its own (torch 2.14.1 with
# torchvision 0.29.1) with GANBLOCKS_REQUIRE_ORACLES=1, where a missing oracle is an error, not a skip.
REQUIRE_ORACLES = os.environ.get("GANBLOCKS_REQUIRE_ORACLES") == "1"


def oracle(name: str) -> types.ModuleType:
    """Import the test-only oracle package ``name``: skip the test without it, unless CI requires it."""
    if REQUIRE_ORACLES:
        return importlib.import_module(name)
    try:
        return importlib.import_module(name)
    except Exception as error:  # torchvision's import fails beside the CPU wheel with a RuntimeError
        pytest.skip(
            f"oracle {name!r} unavailable here ({type(error).__name__}); CI runs it in its oracle venv"
        )


def device_for(backend: Backend) -> torch.device:
    """Where a test of ``backend`` puts its tensors: the Triton device for ``triton``, else the CPU."""
    return torch.device(TRITON_DEVICE if backend == "triton" else "cpu")


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, dtype: Optional[torch.dtype] = None, *, scale: float = 1.0
) -> None:
    """Compare with the tolerance of ``dtype`` (default: ``actual``'s dtype), loosened by ``scale``."""
    rtol, atol = TOLERANCES[dtype or actual.dtype]
    torch.testing.assert_close(
        actual.double().cpu(), expected.double().cpu(), rtol=rtol * scale, atol=atol * scale
    )


def assert_close_to_largest(
    actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, *, scale: float = 1.0
) -> None:
    """Compare relative to the largest magnitude of ``expected`` (at least 1), with the tolerance of ``dtype``.

    For gradients that reduce (channel and plane sums, a bias or strength summed over the batch): their
    low-precision rounding error scales with the magnitudes of the rounded terms, not with each result,
    and is unbounded relative to a result that cancels.
    """
    m = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    assert_close(actual.double() / m, expected.double() / m, dtype, scale=scale)


def _ramp(t: torch.Tensor) -> torch.Tensor:
    return torch.linspace(-1, 1, t.numel(), dtype=torch.float32, device=t.device).reshape(t.shape)


def all_orders(fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``fn(*inputs)``, its gradient with respect to every input, and the gradient of that gradient.

    The first-order loss weights the squared output with a ramp, so every element gets its own incoming
    gradient (which depends on the input); the second-order loss weights each gradient with a ramp too
    (linear, so that low-precision second-order results stay far from overflow). An input that the
    second-order loss does not depend on gets a zero gradient.
    """
    leaves = [t.detach().requires_grad_() for t in inputs]
    y = fn(*leaves)
    grads = torch.autograd.grad((y.float() ** 2 * _ramp(y)).sum(), leaves, create_graph=True)
    loss = torch.stack([(g.float() * _ramp(g)).sum() for g in grads]).sum()
    second = torch.autograd.grad(loss, leaves, allow_unused=True)
    second = tuple(torch.zeros_like(t) if g is None else g for g, t in zip(second, leaves))
    return [y.detach(), *(g.detach() for g in grads), *second]


def original(module: torch.nn.Module, name: str = "weight") -> torch.Tensor:
    """The tensor a parametrization stores for ``module.<name>`` (``module.parametrizations.<name>.original``)."""
    stored = getattr(module.parametrizations, name).original
    assert isinstance(stored, torch.Tensor)
    return stored


def tensor_sum(terms: Iterable[torch.Tensor]) -> torch.Tensor:
    """``sum(terms)`` of at least one tensor, typed as a tensor (Python's ``sum`` starts from the int 0)."""
    total = sum(terms)
    assert isinstance(total, torch.Tensor)
    return total


def grad_of(t: torch.Tensor) -> torch.Tensor:
    """``t.grad``, which a backward pass must have filled."""
    assert t.grad is not None
    return t.grad
