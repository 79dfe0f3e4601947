"""Every docstring example in ganblocks runs and prints what it says (imported by module name, so each
custom op is registered once)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import ganblocks

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(ganblocks.__path__, prefix="ganblocks.")
    if "._kernels" not in m.name  # Triton kernels need triton; they carry no examples
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
