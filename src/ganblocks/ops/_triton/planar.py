"""Views of a 4-d ``(N, C, H, W)`` tensor as ``(N, C, P = H*W)`` for kernels that tile channels × pixels.

Contiguous and channels_last tensors (and any layout whose ``H`` and ``W`` merge) are served without a
copy: a kernel indexes ``n * s_n + c * s_c + p * s_p`` with no per-element division, which the memory-order
indexing of an elementwise kernel (``c = (i // s_c) % C`` and likewise for ``n, h, w``) would need four
times per element. Triton specializes a stride equal to 1, so the unit-stride axis is vectorized.
"""

from __future__ import annotations

import torch
import triton

from .common import elementwise_block


def _merges(t: torch.Tensor) -> bool:
    _, _, h, w = t.shape
    return h == 1 or w == 1 or t.stride(2) == w * t.stride(3)


def planar(t: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """``t`` (or a contiguous copy when its ``H`` and ``W`` do not merge) and its ``(s_n, s_c, s_p)``."""
    if not _merges(t):
        t = t.contiguous()
    _, _, h, w = t.shape
    s_p = t.stride(3) if w > 1 else t.stride(2)
    return t, (t.stride(0), t.stride(1), s_p if h * w > 1 else 1)


def tiles(num_c: int, num_p: int, channel_stride: int) -> tuple[int, int]:
    """``(BLOCK_C, BLOCK_P)``: the unit-stride axis gets the long side of the tile."""
    total = elementwise_block(num_c * num_p)
    if channel_stride == 1 and num_c > 1:
        block_c = min(triton.next_power_of_2(num_c), total)
        return block_c, min(triton.next_power_of_2(num_p), max(total // block_c, 1))
    block_p = min(triton.next_power_of_2(num_p), total)
    return min(triton.next_power_of_2(num_c), max(total // block_p, 1)), block_p
