"""Host-side planning for the ``instance_norm_act`` kernels: the planar view of ``x``, and how many
programs share a plane.

A GPU needs a few resident programs per SM to hide memory latency; one program per ``(n, c)`` plane
leaves most SMs idle when the planes are few and large (a batch of 4 RGB images of 1024 x 1024 is 12
planes for an H100's 132 SMs), so such planes are split into chunks of whole tiles (``plan_splits``).
"""

from __future__ import annotations

import functools
from typing import Optional

import torch

from .._backend import interpreting
from .._triton.common import dense

# Programs per SM that a split aims for: enough resident programs to hide memory latency and to keep the
# tail of the launch short.
PROGRAMS_PER_SM = 4
# The SM count assumed for tensors not on a GPU (scripts/compile_kernels.py records the launches on CPU
# tensors): an H100's.
DEFAULT_SM_COUNT = 132


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@functools.cache
def _sm_count(index: int) -> int:
    return int(torch.cuda.get_device_properties(index).multi_processor_count)


def target_programs(x: torch.Tensor) -> int:
    """How many programs a launch needs to fill the device of ``x``."""
    if interpreting():
        return 1  # the interpreter runs programs one after another, each a numpy step: never split
    sms = _sm_count(x.device.index) if x.device.type == "cuda" else DEFAULT_SM_COUNT
    return PROGRAMS_PER_SM * sms


def plan_splits(planes: int, hw: int, block: int, target: int) -> tuple[int, int]:
    """``(splits, chunk)``: programs per plane and the elements each covers, a whole number of tiles.

    A plane is split only when the planes alone fall short of ``target`` programs, into about
    ``target / planes`` chunks of at least one tile; otherwise ``(1, hw)``.
    """
    tiles = _cdiv(hw, block)
    if planes >= target or tiles < 2:
        return 1, hw
    chunk = _cdiv(tiles, min(_cdiv(target, planes), tiles)) * block
    return _cdiv(hw, chunk), chunk


def _spatial_stride(x: torch.Tensor) -> Optional[int]:
    """The one stride that walks all spatial elements of ``x`` in order, or None if there is none."""
    dims = [(size, stride) for size, stride in zip(x.shape[2:], x.stride()[2:]) if size != 1]
    if not dims:
        return 1
    for (_, outer), (size, inner) in zip(dims, dims[1:]):
        if outer != inner * size:
            return None
    return dims[-1][1]


def planar(x: torch.Tensor) -> tuple[torch.Tensor, int, bool]:
    """``x`` dense with its spatial dims one strided run, that stride, and whether that needed a new layout.

    A non-dense ``x`` is copied with ``empty_like``, so a strided channels_last view stays channels_last, as
    the fake kernels (``empty_like``) predict under torch.compile. Only a dense layout whose spatial dims
    are interleaved with the batch or channel dim gets a contiguous copy; its result is copied back.
    """
    x = dense(x)
    stride = _spatial_stride(x)
    if stride is None:
        return x.contiguous(), 1, True
    return x, stride, False


def restore_layout(t: torch.Tensor, x: torch.Tensor, relaid: bool) -> torch.Tensor:
    return torch.empty_like(x).copy_(t) if relaid else t


def affine(p: Optional[torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The parameter (or a placeholder pointer) and its batch stride: 0 for ``(C,)``, C for ``(N, C)``."""
    if p is None:
        return x, 0
    p = p.contiguous()
    return p, (p.shape[1] if p.ndim == 2 else 0)
