"""Activation functions, their first derivatives and the output clamp as Triton device functions.

``ACT`` codes match ``ganblocks.ops._activations.ACTIVATIONS``. Only portable ``tl`` primitives are used
(no libdevice) so the same code runs compiled on CUDA and under the CPU interpreter.

Two rules keep these bit-compatible in spirit with the PyTorch reference:

- NaN propagates as in PyTorch. ``tl.minimum``/``tl.maximum`` drop NaN on CUDA (``fminf``) and keep it in
  the interpreter, so they are not used on data; every branch is a ``tl.where`` whose comparison sends a
  NaN where PyTorch's (CPU) kernels send it: the forward of every activation and the derivative of
  ``elu``/``selu`` are NaN at NaN, the ReLU derivative passes the gradient (``result <= 0`` is false)
  and the leaky ReLU derivative is ``alpha`` (``x > 0`` is false).
- Constants take the dtype of the data. A ``tl.where`` whose branches are both scalars is float32 whatever
  the data, and a float kernel argument is float32 unless annotated; so launchers annotate ``alpha``,
  ``gain``, ``clamp`` and ``eps`` as ``tl.float64`` and kernels convert them with :func:`scalar` first.
"""

# No `from __future__ import annotations`: the interpreter of Triton 3.0 and 3.1 (torch 2.4, 2.5) finds
# tl.constexpr parameters only by unstringified annotations.

import triton
import triton.language as tl

SELU_ALPHA: tl.constexpr = tl.constexpr(1.6732632423543772)
SELU_SCALE: tl.constexpr = tl.constexpr(1.0507009873554805)


@triton.jit
def scalar(v, DTYPE: tl.constexpr):
    """The kernel argument ``v`` (a float64 scalar compiled, a Python float interpreted) in ``DTYPE``.

    ``tl.full`` converts a Python float straight to ``DTYPE``; ``tl.cast`` would round it to float32 first.
    """
    return tl.full((), v, DTYPE)


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
def _nonpositive_part(z):
    # min(z, 0) without tl.minimum (see the module docstring), NaN kept: the elu/selu derivative of a NaN
    # is NaN, as in PyTorch's CPU kernels.
    return tl.where(z > 0, 0.0, z)


@triton.jit
def act_forward(z, alpha, ACT: tl.constexpr):
    """The activation of ``z`` (before gain and clamp); ``alpha`` in ``z``'s dtype."""
    if ACT == 0:
        y = z
    elif ACT == 1:
        # torch.relu is clamp_min(z, 0): NaN stays NaN.
        y = tl.where(z < 0, 0.0, z)
    elif ACT == 2:
        y = tl.where(z > 0, z, z * alpha)
    elif ACT == 3:
        y = _tanh(z)
    elif ACT == 4:
        y = _sigmoid(z)
    elif ACT == 5:
        y = tl.where(z <= 0, alpha * (tl.exp(_nonpositive_part(z)) - 1.0), z)
    elif ACT == 6:
        # constants as tensors of z's dtype: Triton 3.0 (torch 2.4) rounds a constexpr float to float32
        # and its interpreter gives constexpr * tensor as a constexpr
        selu_alpha = tl.full(z.shape, SELU_ALPHA, z.dtype)
        selu_scale = tl.full(z.shape, SELU_SCALE, z.dtype)
        y = tl.where(z <= 0, (tl.exp(_nonpositive_part(z)) - 1.0) * selu_alpha, z) * selu_scale
    elif ACT == 7:
        # torch's softplus: linear above 20; log(1 + e^z) written to stay finite for large |z|.
        y = tl.where(z > 20.0, z, tl.where(z > 0, z, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(z))))
    else:
        y = z * _sigmoid(z)
    return y


@triton.jit
def act_grad_from_input(z, alpha, ACT: tl.constexpr):
    """d act / dz evaluated at the pre-activation ``z``; ``alpha`` in ``z``'s dtype."""
    one = tl.full(z.shape, 1.0, z.dtype)
    if ACT == 0:
        d = one
    elif ACT == 1:
        # PyTorch's ReLU backward tests ``result <= 0``: a NaN passes the gradient through.
        d = tl.where(z <= 0, 0.0, one)
    elif ACT == 2:
        d = tl.where(z > 0, one, alpha)
    elif ACT == 3:
        t = _tanh(z)
        d = 1.0 - t * t
    elif ACT == 4:
        s = _sigmoid(z)
        d = s * (1.0 - s)
    elif ACT == 5:
        d = tl.where(z > 0, one, alpha * tl.exp(_nonpositive_part(z)))
    elif ACT == 6:
        selu_alpha = tl.full(z.shape, SELU_ALPHA, z.dtype)  # as in act()
        selu_scale = tl.full(z.shape, SELU_SCALE, z.dtype)
        d = tl.where(z > 0, one, tl.exp(_nonpositive_part(z)) * selu_alpha) * selu_scale
    elif ACT == 7:
        d = tl.where(z > 20.0, one, _sigmoid(z))
    else:
        s = _sigmoid(z)
        d = s + z * s * (1.0 - s)
    return d.to(z.dtype)


@triton.jit
def act_grad_from_output(y, alpha, ACT: tl.constexpr):
    """d act / dz from the unclamped output ``y`` (linear, relu, lrelu with a positive gain only)."""
    one = tl.full(y.shape, 1.0, y.dtype)
    if ACT == 0:
        d = one
    elif ACT == 1:
        d = tl.where(y <= 0, 0.0, one)
    else:
        # lrelu keeps the sign of z, and a NaN takes the ``z > 0`` test's false branch, as in PyTorch.
        d = tl.where(y > 0, one, alpha)
    return d.to(y.dtype)


@triton.jit
def clamp_symmetric(y, clamp):
    """``torch.clamp(y, -clamp, clamp)``: NaN stays NaN, ±inf becomes ±clamp."""
    y = tl.where(y < -clamp, -clamp, y)
    return tl.where(y > clamp, clamp, y)


@triton.jit
def clamp_grad(d, y, clamp):
    """``d`` where ``torch.clamp``'s gradient is 1 (``-clamp <= y <= clamp``, the bounds included), else 0.

    ``y`` is the value before clamping. Outside, ``d * 0`` rather than 0: PyTorch multiplies the zeroed
    gradient by the activation's derivative, so a NaN derivative (tanh of NaN) stays NaN there too.
    """
    return tl.where(tl.abs(y) <= clamp, d, d * 0.0)


@triton.jit
def local_grad_from_input(z, alpha, gain, clamp, ACT: tl.constexpr, HAS_CLAMP: tl.constexpr):
    """d/dz of ``clamp(gain * act(z))`` from the pre-activation ``z`` (the clamp's bounds pass, as torch)."""
    d = act_grad_from_input(z, alpha, ACT) * gain
    if HAS_CLAMP:
        d = clamp_grad(d, act_forward(z, alpha, ACT) * gain, clamp)
    return d


@triton.jit
def local_grad_from_output(y, alpha, gain, clamp, ACT: tl.constexpr, HAS_CLAMP: tl.constexpr):
    """The same from the output ``y`` (linear, relu, lrelu with a positive gain only).

    A clamped output cannot tell ``|y| == clamp`` (gradient 1) from a clamped value (gradient 0): the bound
    counts as clamped.
    """
    d = act_grad_from_output(y, alpha, ACT) * gain
    if HAS_CLAMP:
        d = tl.where(tl.abs(y) < clamp, d, d * 0.0)
    return d
