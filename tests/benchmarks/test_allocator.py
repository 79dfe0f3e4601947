"""``benchmarks/allocator.py``: full CPU runs keep freed memory in the process (glibc), so that repetitions
do not fault fresh pages in; a quick run and ``--malloc default`` leave malloc alone."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Frees a 64 MiB tensor (above glibc's largest automatic mmap threshold, 32 MiB) and prints how much the
# resident set shrank: the whole block where malloc gives it back to the system, nothing where it keeps it.
SCRIPT = """
import os, sys
sys.path.insert(0, sys.argv[2])
import torch
from benchmarks import allocator

def resident_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

if sys.argv[1] == "keep":
    print(allocator.keep_freed_memory())
print(allocator.describe())
x = torch.ones(64 * 2**20 // 4)
before = resident_mib()
del x
print(before - resident_mib())
"""

glibc = pytest.mark.skipif(
    platform.system() != "Linux"
    or platform.libc_ver()[0] != "glibc"
    or "LD_PRELOAD" in os.environ  # jemalloc or tcmalloc in place of glibc's malloc
    or any(k.startswith("MALLOC_") for k in os.environ),  # thresholds already set by the environment
    reason="glibc's malloc with its default settings",
)


def _run(mode: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(ROOT)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.split("\n")


@glibc
def test_kept_memory_is_reused_not_returned() -> None:
    set_to, described, released = _run("keep")[:3]
    assert set_to == described == "glibc malloc, mmap and trim thresholds 1 GiB (freed memory is reused)"
    assert float(released) < 8  # the 64 MiB stay in the heap for the next allocation


@glibc
def test_default_malloc_returns_large_blocks() -> None:
    described, released = _run("default")[:2]
    assert described == "the C library's defaults"
    assert float(released) > 56  # mapped for the tensor, unmapped when it was freed
