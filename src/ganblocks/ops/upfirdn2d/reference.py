"""``upfirdn2d`` in plain PyTorch: zero insertion, pad/crop, a depthwise FIR convolution, strided subsampling.

Every step is a differentiable PyTorch op, so the reference differentiates to any order on its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..._precision import upcast


def output_memory_format(x: torch.Tensor) -> torch.memory_format:
    """channels_last for a channels_last ``x`` (that is not also contiguous), else contiguous.

    Shared by the reference, the Triton launcher and the fake kernel, so all three return one layout.
    """
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def filter_size(f: torch.Tensor) -> tuple[int, int]:
    """``(fw, fh)``: a 1-D (separable) filter of length ``k`` acts as a ``k × k`` filter."""
    if f.ndim == 1:
        return int(f.shape[0]), int(f.shape[0])
    return int(f.shape[1]), int(f.shape[0])


def output_size(
    in_h: int,
    in_w: int,
    f: torch.Tensor,
    up: tuple[int, int],
    down: tuple[int, int],
    padding: tuple[int, ...],
) -> tuple[int, int]:
    """``(out_h, out_w)``: ``(in * up + pad0 + pad1 - taps) // down + 1`` along each axis."""
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = padding
    out_h = (in_h * up[1] + py0 + py1 - fh) // down[1] + 1
    out_w = (in_w * up[0] + px0 + px1 - fw) // down[0] + 1
    return out_h, out_w


def upfirdn2d_reference(
    x: torch.Tensor,
    f: torch.Tensor,
    *,
    up: tuple[int, int],
    down: tuple[int, int],
    padding: tuple[int, int, int, int],
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """StyleGAN2-ADA's ``_upfirdn2d_ref`` (arguments already checked; ``up``/``down`` are ``(x, y)``).

    Float16/bfloat16 inputs are computed in float32 and rounded once at the end.
    """
    n, c, h, w = x.shape
    upx, upy = up
    downx, downy = down
    px0, px1, py0, py1 = padding
    out_h, out_w = output_size(h, w, f, up, down, padding)
    fmt = output_memory_format(x)
    if x.numel() == 0:
        return x.new_zeros((n, c, out_h, out_w)).contiguous(memory_format=fmt)
    t = upcast(x)
    if upx > 1 or upy > 1:
        # Insert up - 1 zeros after every pixel along each axis.
        t = F.pad(t.reshape(n, c, h, 1, w, 1), [0, upx - 1, 0, 0, 0, upy - 1])
        t = t.reshape(n, c, h * upy, w * upx)
    # F.pad crops where a padding is negative.
    t = F.pad(t, [px0, px1, py0, py1])
    # conv2d correlates: flip the filter for a true convolution.
    k = f.to(t.dtype)
    if not flip_filter:
        k = k.flip(list(range(f.ndim)))
    if f.ndim == 2:
        weight = (k * gain).reshape(1, 1, *k.shape).expand(c, 1, *k.shape)
        y = F.conv2d(t, weight, stride=(downy, downx), groups=c)
    else:
        # Separable: along W, then along H with the gain (gain ** 0.5 per pass in the original).
        taps = k.shape[0]
        y = F.conv2d(t, k.reshape(1, 1, 1, taps).expand(c, 1, 1, taps), stride=(1, downx), groups=c)
        y = F.conv2d(y, (k * gain).reshape(1, 1, taps, 1).expand(c, 1, taps, 1), stride=(downy, 1), groups=c)
    assert y.shape[2:] == (out_h, out_w)
    return y.to(x.dtype).contiguous(memory_format=fmt)
