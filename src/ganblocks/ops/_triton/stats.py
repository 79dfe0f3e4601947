"""Device functions shared by the normalization kernels."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def rsqrt(v, ACC: tl.constexpr):
    """``1 / sqrt(v)`` to the precision of ``ACC``.

    ``tl.rsqrt`` lowers to ``rsqrt.approx`` on CUDA, which is fine for float32 but not for float64
    (gradcheck runs the float64 kernels); ``tl.sqrt`` of a float64 is correctly rounded.
    """
    if ACC == tl.float64:
        r = 1.0 / tl.sqrt(v)
    else:
        r = tl.rsqrt(v)
    return r
