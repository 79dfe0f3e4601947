"""Helpers shared by the Triton launchers: layouts, accumulation dtype, block sizes."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..._precision import accumulation_dtype
from .._backend import interpreting


def acc_dtype(dtype: torch.dtype) -> tl.dtype:
    """float64 stays float64 (gradcheck runs the kernels themselves); everything else accumulates in float32."""
    return tl.float64 if accumulation_dtype(dtype) == torch.float64 else tl.float32


def is_dense(x: torch.Tensor) -> bool:
    """Whether ``x`` covers its storage without gaps or overlap, in any dimension order."""
    expected = 1
    dims = sorted((st, s) for s, st in zip(x.shape, x.stride()) if s != 1)
    for stride, size in dims:
        if stride != expected:
            return False
        expected *= size
    return True


def dense(x: torch.Tensor) -> torch.Tensor:
    """``x`` itself when it is dense (contiguous, channels_last or any permutation), else a dense copy.

    The copy is made with ``empty_like`` so its layout is the one the ops' fake kernels (``empty_like(x)``)
    promise to ``torch.compile``, channels_last views included.
    """
    return x if is_dense(x) else torch.empty_like(x).copy_(x)


def like(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``t`` with the strides of the dense tensor ``ref``: copied only when they differ.

    Autograd hands backward kernels gradients in any layout (expanded, contiguous while the saved tensor is
    channels_last); elementwise kernels index both by the same memory offset.
    """
    if t.stride() == ref.stride() and is_dense(t):
        return t
    return torch.empty_like(ref).copy_(t)


def tile_budget(gpu: int) -> int:
    """Elements per program: ``gpu`` when compiled; many more under the interpreter, which runs each
    program as one vectorized numpy step, so few large programs are faster there."""
    return 1 << 16 if interpreting() else gpu


def elementwise_block(numel: int) -> int:
    if interpreting():
        return int(max(16, min(triton.next_power_of_2(numel), tile_budget(1024))))
    return 1024
