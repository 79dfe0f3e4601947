"""Triton kernel for ``inject_noise``: noise, bias, activation, gain and clamp in one pass.

Each program handles one sample ``n`` and a ``(BLOCK_C, BLOCK_P)`` tile of channels × pixels (see
``planar``), so the noise row of the tile is loaded once and shared by its channels, and no index is
recovered by integer division. The backward reuses the ``bias_act`` backward kernel (``_autograd``).
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from .._triton.activations import act_forward, clamp_symmetric, scalar
from .._triton.common import acc_dtype
from .._triton.planar import planar, tiles


@triton.jit
def _inject_noise_fwd_kernel(
    x_ptr, noise_ptr, s_ptr, b_ptr, y_ptr,
    num_c, num_p, num_cb, num_pb,
    sx_n, sx_c, sx_p, sy_n, sy_c, sy_p, sn_n, sn_p, s_stride,
    alpha: tl.float64, gain: tl.float64, clamp: tl.float64,
    ACT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    # float64 scalars converted to the accumulation dtype: float64 data sees them unrounded.
    alpha = scalar(alpha, ACC)
    gain = scalar(gain, ACC)
    clamp = scalar(clamp, ACC)
    pid = tl.program_id(0)
    pb = pid % num_pb
    rest = pid // num_pb
    cb = rest % num_cb
    n = (rest // num_cb).to(tl.int64)
    c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    p = pb * BLOCK_P + tl.arange(0, BLOCK_P)
    c_mask = c < num_c
    p_mask = p < num_p
    mask = c_mask[:, None] & p_mask[None, :]
    c64 = c.to(tl.int64)[:, None]
    p64 = p.to(tl.int64)[None, :]

    z = tl.load(x_ptr + (n * sx_n + c64 * sx_c + p64 * sx_p), mask=mask, other=0.0).to(ACC)
    noise = tl.load(noise_ptr + (n * sn_n + p64 * sn_p), mask=p_mask[None, :], other=0.0).to(ACC)
    s = tl.load(s_ptr + c64 * s_stride, mask=c_mask[:, None], other=0.0).to(ACC)
    z += s * noise
    if HAS_BIAS:
        z += tl.load(b_ptr + c64, mask=c_mask[:, None], other=0.0).to(ACC)
    y = act_forward(z, alpha, ACT) * gain
    if HAS_CLAMP:
        y = clamp_symmetric(y, clamp)
    tl.store(y_ptr + (n * sy_n + c64 * sy_c + p64 * sy_p), y.to(y_ptr.dtype.element_ty), mask=mask)


def inject_noise_forward(
    x: torch.Tensor,
    strength: torch.Tensor,
    noise: torch.Tensor,
    b: Optional[torch.Tensor],
    act: int,
    alpha: float,
    gain: float,
    clamp: Optional[float],
) -> torch.Tensor:
    """``clamp(gain * act(x + strength * noise + b))`` for ``x`` (N, C, H, W) and ``noise`` (N, 1, H, W)."""
    y = torch.empty_like(x)
    num_n, num_c, h, w = x.shape
    num_p = h * w
    if y.numel() == 0:
        return y
    x, (sx_n, sx_c, sx_p) = planar(x)
    out, (sy_n, sy_c, sy_p) = planar(y)
    noise, (sn_n, _, sn_p) = planar(noise)
    s = strength.reshape(-1).contiguous()
    block_c, block_p = tiles(num_c, num_p, sx_c)
    num_cb, num_pb = triton.cdiv(num_c, block_c), triton.cdiv(num_p, block_p)
    _inject_noise_fwd_kernel[(num_n * num_cb * num_pb,)](
        x, noise, s, b.contiguous() if b is not None else s, out,
        num_c, num_p, num_cb, num_pb,
        sx_n, sx_c, sx_p, sy_n, sy_c, sy_p, sn_n, sn_p, 1 if s.numel() > 1 else 0,
        alpha, gain, clamp if clamp is not None else 0.0,
        ACT=act, HAS_BIAS=b is not None, HAS_CLAMP=clamp is not None,
        ACC=acc_dtype(x.dtype), BLOCK_C=block_c, BLOCK_P=block_p,
    )  # fmt: skip
    if out is not y:
        y.copy_(out)
    return y
