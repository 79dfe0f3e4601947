"""Activation functions and their first derivatives as Triton device functions.

``ACT`` codes match ``ganblocks.ops.activations.ACTIVATIONS``. Only portable ``tl`` primitives are used
(no libdevice) so the same code runs compiled on CUDA and under the CPU interpreter.
"""

from __future__ import annotations

import triton
import triton.language as tl

SELU_ALPHA: tl.constexpr = tl.constexpr(1.6732632423543772)
SELU_SCALE: tl.constexpr = tl.constexpr(1.0507009873554805)


@triton.jit
def _sigmoid(z):
    return 1.0 / (1.0 + tl.exp(-z))


@triton.jit
def _tanh(z):
    # tanh(z) = sign(z) * (1 - e^{-2|z|}) / (1 + e^{-2|z|}): no overflow for any z.
    e = tl.exp(-2.0 * tl.abs(z))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(z < 0, -t, t)


@triton.jit
def act_forward(z, alpha, ACT: tl.constexpr):
    """The activation of ``z`` (before gain and clamp)."""
    if ACT == 0:
        y = z
    elif ACT == 1:
        y = tl.where(z > 0, z, 0.0)
    elif ACT == 2:
        y = tl.where(z > 0, z, z * alpha)
    elif ACT == 3:
        y = _tanh(z)
    elif ACT == 4:
        y = _sigmoid(z)
    elif ACT == 5:
        y = tl.where(z > 0, z, alpha * (tl.exp(tl.minimum(z, 0.0)) - 1.0))
    elif ACT == 6:
        y = SELU_SCALE * tl.where(z > 0, z, SELU_ALPHA * (tl.exp(tl.minimum(z, 0.0)) - 1.0))
    elif ACT == 7:
        # torch's softplus: linear above 20; log(1 + e^z) written to stay finite for large |z|.
        y = tl.where(z > 20.0, z, tl.maximum(z, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(z))))
    else:
        y = z * _sigmoid(z)
    return y


@triton.jit
def act_grad_from_input(z, alpha, ACT: tl.constexpr):
    """d act / dz evaluated at the pre-activation ``z``."""
    if ACT == 0:
        d = tl.full(z.shape, 1.0, z.dtype)
    elif ACT == 1:
        d = tl.where(z > 0, 1.0, 0.0)
    elif ACT == 2:
        d = tl.where(z > 0, 1.0, alpha)
    elif ACT == 3:
        t = _tanh(z)
        d = 1.0 - t * t
    elif ACT == 4:
        s = _sigmoid(z)
        d = s * (1.0 - s)
    elif ACT == 5:
        d = tl.where(z > 0, 1.0, alpha * tl.exp(tl.minimum(z, 0.0)))
    elif ACT == 6:
        d = SELU_SCALE * tl.where(z > 0, 1.0, SELU_ALPHA * tl.exp(tl.minimum(z, 0.0)))
    elif ACT == 7:
        d = tl.where(z > 20.0, 1.0, _sigmoid(z))
    else:
        s = _sigmoid(z)
        d = s + z * s * (1.0 - s)
    return d.to(z.dtype)


@triton.jit
def act_grad_from_output(y, alpha, ACT: tl.constexpr):
    """d act / dz from the output ``y`` (only for linear, relu, lrelu with a positive gain)."""
    if ACT == 0:
        d = tl.full(y.shape, 1.0, y.dtype)
    elif ACT == 1:
        d = tl.where(y > 0, 1.0, 0.0)
    else:
        d = tl.where(y > 0, 1.0, alpha)
    return d.to(y.dtype)
