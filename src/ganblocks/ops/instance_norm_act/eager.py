"""The CPU fast path of ``instance_norm_act``: ``torch.group_norm`` with one group per channel.

``group_norm`` computes instance norm with one native kernel forward and one backward (itself
differentiable to every order), where the reference's composite takes about ten passes; a per-channel
affine becomes group norm's weight and bias, a per-sample ``(N, C)`` one runs on the ``(1, N*C, *spatial)``
view, a positive gain of a homogeneous activation is folded into them, and the activation runs in place on
group norm's output, so autograd keeps that output only (as pix2pixHD's ``InstanceNorm2d`` +
``LeakyReLU(0.2, inplace=True)`` does). On a StyleGAN synthesis step (AdaIN after every layer) this
makes the whole step faster; tests compare it with the reference in every order.

``group_norm`` takes its statistics from raw values: each plane is first shifted by its first element
(detached; the function is unchanged), so a large mean does not cancel the variance away and a constant
plane normalizes to exactly 0. float16/bfloat16 inputs run with float32 parameters (a zero bias when there
are none), which selects group norm's mixed-precision kernel: it computes in float32 and rounds once; they
are not shifted, since a shift in their own precision would round them twice.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..._precision import LOW_PRECISION
from .._activations import ActSpec, activate_owned, folds_gain


def _param(
    p: Optional[torch.Tensor], n: int, dtype: torch.dtype, factor: float, planes: bool
) -> Optional[torch.Tensor]:
    """A ``(C,)`` or ``(N, C)`` parameter in ``dtype``, times ``factor``; ``(N*C,)`` when ``planes``."""
    if p is None:
        return None
    p = p.to(dtype)
    if factor != 1.0:
        p = p * factor
    if not planes:
        return p
    return p.reshape(-1) if p.ndim == 2 else p.repeat(n)


def _restore_layout(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y`` (contiguous) in the memory format of ``x`` when that is channels_last."""
    if x.is_contiguous() or y.ndim not in (4, 5):
        return y
    fmt = torch.channels_last if y.ndim == 4 else torch.channels_last_3d
    return y.contiguous(memory_format=fmt) if x.is_contiguous(memory_format=fmt) else y


def instance_norm_act_eager(
    x: torch.Tensor,
    scale: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    *,
    eps: float,
    spec: ActSpec,
    alpha: float,
    gain: float,
) -> torch.Tensor:
    """What :func:`~.reference.instance_norm_act_reference` computes, for CPU tensors."""
    n, c = x.shape[0], x.shape[1]
    mixed = x.dtype in LOW_PRECISION
    dtype = torch.float32 if mixed else x.dtype
    factor = gain if folds_gain(spec, gain) else 1.0
    planes = (scale is not None and scale.ndim == 2) or (bias is not None and bias.ndim == 2)
    weight = _param(scale, n, dtype, factor, planes)
    shift = _param(bias, n, dtype, factor, planes)
    channels = n * c if planes else c
    if weight is None and factor != 1.0:
        weight = torch.full((channels,), factor, dtype=dtype, device=x.device)
    elif weight is None and shift is None and mixed:
        # A zero bias selects the mixed-precision kernel without being saved for the backward.
        shift = torch.zeros((channels,), dtype=dtype, device=x.device)
    if x.numel() and not mixed:
        x = x - x.detach().reshape(n, c, -1)[:, :, :1].reshape(n, c, *(1 for _ in x.shape[2:]))
    groups = max(channels, 1)  # group_norm rejects 0 groups; an empty input has nothing to normalize
    if planes:
        y = torch.group_norm(x.reshape(1, channels, *x.shape[2:]), groups, weight, shift, eps)
    else:
        y = torch.group_norm(x, groups, weight, shift, eps)
    y = activate_owned(y, spec, alpha)
    if factor == 1.0 and gain != 1.0:
        y = y * gain
    y = y.to(x.dtype)
    return _restore_layout(y.reshape(x.shape), x) if planes else y
