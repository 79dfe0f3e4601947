"""CPU runs keep freed memory in the process, so that repetitions time the work, not the page faults.

PyTorch's CPU tensors come from ``malloc``. With glibc's defaults a block above the mmap threshold (which
adapts, up to 32 MiB) is mapped afresh for each allocation and unmapped when freed, and free memory above
the trim threshold at the top of the heap goes back to the system: every repetition then faults its
buffers' pages in again. For an elementwise op on a few MiB that costs more than the arithmetic, and it
varies from run to run: ``upfirdn2d(up=2)`` forward+backward at 4×64×64×64 took 30-37 ms with the defaults
and 18-19 ms with both thresholds at 1 GiB (this module's setting); its ratio to the plain formulation
ranged 0.72-1.26× over five runs with the defaults and 1.00-1.04× over three with this setting. Reusing
freed blocks is what CUDA's caching allocator does, and what jemalloc or tcmalloc (the usual advice for
PyTorch CPU training) do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from typing import Optional

# mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 1 << 30

_state: Optional[str] = None


def keep_freed_memory() -> Optional[str]:
    """Raise glibc's mmap and trim thresholds to :data:`KEEP_BYTES` for this process.

    Returns what was set (recorded in the results' metadata), or None where the C library is not glibc or
    refused both; the setting lasts for the life of the process.
    """
    global _state
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return None
    mmap_set = mallopt(M_MMAP_THRESHOLD, KEEP_BYTES) == 1
    trim_set = mallopt(M_TRIM_THRESHOLD, KEEP_BYTES) == 1
    if not (mmap_set or trim_set):
        return None
    which = (
        "mmap and trim thresholds"
        if mmap_set and trim_set
        else "mmap threshold"
        if mmap_set
        else "trim threshold"
    )
    _state = f"glibc malloc, {which} {KEEP_BYTES >> 30} GiB (freed memory is reused)"
    return _state


def describe() -> str:
    """The allocator setting in force, for the results' metadata."""
    return _state or "the C library's defaults"
