"""Every docstring example in ganblocks runs and prints what it says (imported by module name, so each
custom op is registered once)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import ganblocks

MODULES = sorted(m.name for m in pkgutil.walk_packages(ganblocks.__path__, prefix="ganblocks."))


def _imports_triton(name: str) -> bool:
    """The Triton kernels (``ops.<op>.kernels`` and the shared ``ops._triton``) import triton at import time."""
    return name.endswith(".kernels") or ".ops._triton" in name


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    if _imports_triton(name):
        pytest.importorskip("triton")
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
