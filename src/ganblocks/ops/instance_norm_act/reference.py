"""``instance_norm_act`` in plain PyTorch: ``group_norm`` with one group per channel, then the activation.

Instance norm of ``x`` (N, C, *spatial) is group norm with ``C`` groups, and ``torch.group_norm`` computes
it with one native kernel forward and backward (any layout, channels_last included) and a native backward
that is itself differentiable to every order, saving only its input and the per-plane statistics.
(``batch_norm`` over the ``(1, N*C, *spatial)`` view, what ``F.instance_norm`` runs, is exact only up to
the second order: its double backward treats the saved statistics as constants.) A per-channel affine
becomes group norm's weight and bias; a per-sample ``(N, C)`` affine runs on the ``(1, N*C, *spatial)``
view with ``N*C`` groups; a positive gain of a homogeneous activation is folded into the weight and bias.
The activation then runs in place on group norm's output, so autograd keeps that output only
(pix2pixHD's ``InstanceNorm2d`` + ``LeakyReLU(0.2, inplace=True)`` keeps exactly that too).

Low precision on CPU: float16/bfloat16 inputs run with float32 parameters (a zero bias when there are none),
group norm's mixed-precision kernel, which computes in float32 and rounds once; the native low-precision
kernel loses bits in the backward.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..._precision import LOW_PRECISION
from .._activations import ActSpec
from ..bias_act.reference import activate_owned, folds_gain


def _per_sample(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # (C,) broadcasts over the batch, (N, C) is one value per sample and channel.
    shape = [1] * (x.ndim - 2)
    return p.reshape(*p.shape, *shape) if p.ndim == 2 else p.reshape(-1, *shape)


def _param(
    p: Optional[torch.Tensor], n: int, dtype: torch.dtype, factor: float, planes: bool
) -> Optional[torch.Tensor]:
    """A ``(C,)`` or ``(N, C)`` parameter in ``dtype``, times ``factor``; ``(N*C,)`` when ``planes``."""
    if p is None:
        return None
    if p.dtype != dtype:
        p = p.to(dtype)
    if factor != 1.0:
        p = p * factor
    if not planes:
        return p
    if p.ndim == 2:
        return p.reshape(-1)
    return p.repeat(n) if n != 1 else p


def _restore_layout(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y`` (contiguous) in the memory format of ``x`` when that is channels_last."""
    if x.is_contiguous() or y.ndim not in (4, 5):
        return y
    fmt = torch.channels_last if y.ndim == 4 else torch.channels_last_3d
    return y.contiguous(memory_format=fmt) if x.is_contiguous(memory_format=fmt) else y


def instance_norm_act_reference(
    x: torch.Tensor,
    scale: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    *,
    eps: float,
    spec: ActSpec,
    alpha: float,
    gain: float,
) -> torch.Tensor:
    """``gain * act(scale * (x - mean) / sqrt(var + eps) + bias)``, biased variance over dims 2 and up."""
    n, c = x.shape[0], x.shape[1]
    mixed = x.device.type == "cpu" and x.dtype in LOW_PRECISION
    dtype = torch.float32 if mixed else x.dtype
    fold = folds_gain(spec, gain)
    factor = gain if fold else 1.0
    # Per-sample parameters: group norm of the (1, N*C, *spatial) view, one group per plane.
    planes = (scale is not None and scale.ndim == 2) or (bias is not None and bias.ndim == 2)
    weight = _param(scale, n, dtype, factor, planes)
    shift = _param(bias, n, dtype, factor, planes)
    channels = n * c if planes else c
    if weight is None and factor != 1.0:
        weight = torch.full((channels,), factor, dtype=dtype, device=x.device)  # the folded gain
    elif weight is None and shift is None and mixed:
        # A float32 parameter selects the accurate mixed-precision kernel; a zero bias does so without
        # being saved for the backward (a weight would be).
        shift = torch.zeros((channels,), dtype=dtype, device=x.device)
    groups = max(channels, 1)  # group_norm rejects 0 groups; an empty input has nothing to normalize
    if planes:
        y = torch.group_norm(x.reshape(1, channels, *x.shape[2:]), groups, weight, shift, eps)
    else:
        y = torch.group_norm(x, groups, weight, shift, eps)
    y = activate_owned(y, spec, alpha)
    if not fold and gain != 1.0:
        y = y * gain
    if y.dtype != x.dtype:
        y = y.to(x.dtype)
    return _restore_layout(y.reshape(x.shape), x) if planes else y
