"""Triton kernel for ``upfirdn2d``: one program per (``n * C + c`` plane, output tile).

Each output pixel ``(oy, ox)`` is the sum over the filter taps ``(ky, kx)`` of the upsampled, padded input
at ``(oy * down_y + ky - pad_y0, ox * down_x + kx - pad_x0)``; a position of that frame holds an input pixel
when it is a multiple of ``up`` inside ``[0, in * up)`` and is zero otherwise, so the zero-inserted tensor is
never materialized (the load is masked). The filter arrives flipped (unless ``flip_filter``) and scaled by
the gain, in the accumulation dtype, so the kernel only correlates. Any strides are indexed directly:
contiguous, channels_last and expanded gradients need no copy. A separable (1-D) filter runs as two
passes, along W then along H, through a float32 (float64) intermediate.
"""

# No `from __future__ import annotations`: the interpreter of Triton 3.0 and 3.1 (torch 2.4, 2.5) finds
# tl.constexpr parameters only by unstringified annotations.

import torch
import triton
import triton.language as tl

from ..._precision import accumulation_dtype
from .._triton.common import acc_dtype, tile_budget
from .reference import output_memory_format, output_size


@triton.jit
def _upfirdn2d_kernel(
    x_ptr, w_ptr, y_ptr,
    num_c, in_h, in_w, out_h, out_w, tiles_w, num_tiles, pad_y0, pad_x0,
    sxn, sxc, sxh, sxw, syn, syc, syh, syw,
    UPX: tl.constexpr, UPY: tl.constexpr, DOWNX: tl.constexpr, DOWNY: tl.constexpr,
    FH: tl.constexpr, FW: tl.constexpr, ACC: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0).to(tl.int64)
    plane = pid // num_tiles
    tile = pid % num_tiles
    n = plane // num_c
    c = plane % num_c
    oy = (tile // tiles_w) * BLOCK_H + tl.arange(0, BLOCK_H)
    ox = (tile % tiles_w) * BLOCK_W + tl.arange(0, BLOCK_W)
    x_base = x_ptr + n * sxn + c * sxc
    acc = tl.zeros([BLOCK_H, BLOCK_W], dtype=ACC)
    for ky in tl.static_range(FH):
        # Row of the upsampled frame that tap ky reads; it holds input row uy / UPY when divisible.
        uy = oy * DOWNY + (ky - pad_y0)
        vy = (oy < out_h) & (uy >= 0) & (uy < in_h * UPY)
        if UPY > 1:
            vy = vy & (uy % UPY == 0)
        iy = tl.where(vy, uy // UPY, 0)
        for kx in tl.static_range(FW):
            ux = ox * DOWNX + (kx - pad_x0)
            vx = (ox < out_w) & (ux >= 0) & (ux < in_w * UPX)
            if UPX > 1:
                vx = vx & (ux % UPX == 0)
            ix = tl.where(vx, ux // UPX, 0)
            tap = tl.load(w_ptr + ky * FW + kx).to(ACC)
            offs = iy[:, None] * sxh + ix[None, :] * sxw
            v = tl.load(x_base + offs, mask=vy[:, None] & vx[None, :], other=0.0).to(ACC)
            acc += v * tap
    out = y_ptr + n * syn + c * syc + oy[:, None] * syh + ox[None, :] * syw
    mask = (oy < out_h)[:, None] & (ox < out_w)[None, :]
    tl.store(out, acc.to(y_ptr.dtype.element_ty), mask=mask)


def _tiles(out_h: int, out_w: int) -> tuple[int, int]:
    """``(BLOCK_H, BLOCK_W)``: rows of up to 64 pixels (W is the unit-stride axis of contiguous tensors)."""
    budget = tile_budget(1024)
    block_w = min(triton.next_power_of_2(out_w), 64 if budget <= 4096 else budget)
    block_h = max(1, min(triton.next_power_of_2(out_h), budget // block_w))
    return block_h, block_w


def _launch(
    x: torch.Tensor,
    w: torch.Tensor,
    y: torch.Tensor,
    up: tuple[int, int],
    down: tuple[int, int],
    pad_x0: int,
    pad_y0: int,
) -> None:
    """``y = correlate(upsample(pad(x)), w)[::down]`` with the 2-D filter ``w`` (already flipped and scaled)."""
    n, c, in_h, in_w = x.shape
    out_h, out_w = y.shape[2], y.shape[3]
    if y.numel() == 0:
        return
    block_h, block_w = _tiles(out_h, out_w)
    tiles_w = triton.cdiv(out_w, block_w)
    num_tiles = triton.cdiv(out_h, block_h) * tiles_w
    _upfirdn2d_kernel[(n * c * num_tiles,)](
        x, w, y,
        c, in_h, in_w, out_h, out_w, tiles_w, num_tiles, pad_y0, pad_x0,
        *x.stride(), *y.stride(),
        UPX=up[0], UPY=up[1], DOWNX=down[0], DOWNY=down[1], FH=w.shape[0], FW=w.shape[1],
        ACC=acc_dtype(x.dtype), BLOCK_H=block_h, BLOCK_W=block_w, num_warps=4,
    )  # fmt: skip


def upfirdn2d_forward(
    x: torch.Tensor,
    f: torch.Tensor,
    upx: int,
    upy: int,
    downx: int,
    downy: int,
    padx0: int,
    padx1: int,
    pady0: int,
    pady1: int,
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    up, down, padding = (upx, upy), (downx, downy), (padx0, padx1, pady0, pady1)
    n, c, in_h, in_w = x.shape
    out_h, out_w = output_size(in_h, in_w, f, up, down, padding)
    fmt = output_memory_format(x)
    y = torch.empty((n, c, out_h, out_w), device=x.device, dtype=x.dtype, memory_format=fmt)
    # The filter as the kernel reads it: flipped for a true convolution, in the accumulation dtype.
    acc = accumulation_dtype(x.dtype)
    k = f.to(device=x.device, dtype=acc)
    if not flip_filter:
        k = k.flip(list(range(f.ndim)))
    if f.ndim == 2:
        _launch(x, (k * gain).contiguous(), y, up, down, padx0, pady0)
        return y
    # Separable: along W into an accumulation-dtype intermediate, then along H with the gain.
    taps = k.shape[0]
    mid = torch.empty((n, c, in_h, out_w), device=x.device, dtype=acc, memory_format=fmt)
    _launch(x, k.reshape(1, taps).contiguous(), mid, (upx, 1), (downx, 1), padx0, 0)
    _launch(mid, (k * gain).reshape(taps, 1).contiguous(), y, (1, upy), (1, downy), 0, pady0)
    return y
