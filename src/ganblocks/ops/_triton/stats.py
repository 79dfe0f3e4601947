"""Device functions shared by the normalization kernels."""

# No `from __future__ import annotations`: the interpreter of Triton 3.0 and 3.1 (torch 2.4, 2.5) finds
# tl.constexpr parameters only by unstringified annotations.

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


@triton.jit
def shifted_sums(ptr, stride, start, end, BLOCK: tl.constexpr, ACC: tl.constexpr):
    """``(shift, Σd, Σd², first tile, its mask)`` over elements ``[start, end)`` of a strided run, with
    ``d = v - shift`` and ``shift`` the mean of the first tile.

    Sums of raw values would lose the variance to cancellation when the mean is large; shifted by a mean
    of the data itself they are the exact two-pass sums when the run fits in one tile, and nearly so
    otherwise. The first tile is returned so a caller whose run is one tile need not load it again.
    """
    offs = tl.arange(0, BLOCK).to(tl.int64)
    i0 = start + offs
    mask0 = i0 < end
    v0 = tl.load(ptr + i0 * stride, mask=mask0, other=0.0).to(ACC)
    shift = tl.sum(v0, axis=0) / tl.minimum(end - start, BLOCK).to(ACC)
    d = tl.where(mask0, v0 - shift, 0.0)
    s1 = d
    s2 = d * d
    for t in range(start + BLOCK, end, BLOCK):
        i = t + offs
        m = i < end
        d = tl.where(m, tl.load(ptr + i * stride, mask=m, other=0.0).to(ACC) - shift, 0.0)
        s1 += d
        s2 += d * d
    return shift, tl.sum(s1, axis=0), tl.sum(s2, axis=0), v0, mask0


@triton.jit
def merge_moments(means, m2s, counts, total):
    """Mean and biased variance of ``total`` values from chunks of ``counts`` values (0 for padding),
    given each chunk's mean and ``M2`` (sum of squared deviations from its own mean).

    Chan et al.'s parallel formula: deviations of the chunk means from the merged mean, not sums of raw
    squares, so nothing cancels however large the mean.
    """
    mean = tl.sum(counts * means, axis=0) / total
    d = tl.where(counts > 0, means - mean, 0.0)
    var = (tl.sum(m2s, axis=0) + tl.sum(counts * d * d, axis=0)) / total
    return mean, var
