"""``bias_act`` in plain PyTorch, and the activation helpers the other references share.

Written for speed and memory on the PyTorch path (CPU): the activation runs in place on a tensor the
reference itself allocated, so autograd keeps only what the activation's own backward needs (the output of
``relu``/``lrelu``/``tanh``/``sigmoid``/``elu``/``selu``, as pix2pixHD's in-place ``LeakyReLU`` does), and a
positive gain of a positively homogeneous activation (``linear``, ``relu``, ``lrelu``) is folded into the
pass that adds the bias: ``g * f(x + b) = f(g * x + g * b)`` for ``g > 0``. Every step is a differentiable
PyTorch op, so gradients of any order follow.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .._activations import ActSpec, apply_activation

#: Activations for which ``g * f(z) == f(g * z)`` when ``g > 0``.
HOMOGENEOUS = frozenset(("linear", "relu", "lrelu"))

# In-place forms of the activations whose derivative autograd computes from the output: applied to a
# tensor nobody else holds, they save the output only and allocate nothing. With a negative alpha the
# output no longer tells the sign of the input (autograd refuses the in-place backward): out of place.
IN_PLACE: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "relu": lambda t, a: torch.relu_(t),
    "lrelu": lambda t, a: F.leaky_relu_(t, a) if a >= 0 else F.leaky_relu(t, a),
    "tanh": lambda t, a: torch.tanh_(t),
    "sigmoid": lambda t, a: torch.sigmoid_(t),
    "elu": lambda t, a: F.elu_(t, a) if a >= 0 else F.elu(t, a),
    "selu": lambda t, a: torch.selu_(t),
}


_BIAS_SHAPES: dict[tuple[int, int], tuple[int, ...]] = {}


def _bias_shape(ndim: int, dim: int) -> tuple[int, ...]:
    """``(1, .., -1, .., 1)``: the shape a bias along ``dim`` broadcasts as (cached: built once per pair)."""
    shape = _BIAS_SHAPES.get((ndim, dim))
    if shape is None:
        shape = _BIAS_SHAPES[(ndim, dim)] = tuple(-1 if i == dim else 1 for i in range(ndim))
    return shape


def folds_gain(spec: ActSpec, gain: float) -> bool:
    """Whether ``gain`` can be applied before the activation (and so folded into a preceding affine op)."""
    return spec.name in HOMOGENEOUS and gain > 0.0


def activate_owned(z: torch.Tensor, spec: ActSpec, alpha: float) -> torch.Tensor:
    """``act(z)`` for a ``z`` this module allocated (in place where autograd needs only the output)."""
    name = spec.name
    if name == "linear":
        return z
    if torch.compiler.is_compiling():
        # Inductor plans memory itself, and in-place activations on these views have traced to wrong
        # values (a compiled EqualLinear with lrelu): keep the traced graph functional.
        return apply_activation(z, spec, alpha)
    inplace = IN_PLACE.get(name)
    if inplace is not None:
        return inplace(z, alpha)
    return apply_activation(z, spec, alpha)


def bias_act_reference(
    x: torch.Tensor,
    b: Optional[torch.Tensor],
    *,
    spec: ActSpec,
    alpha: float,
    gain: float,
    clamp: Optional[float],
    dim: int,
) -> torch.Tensor:
    """``clamp(gain * act(x + b), -clamp, clamp)`` with ``b`` broadcast along ``dim``."""
    if torch.compiler.is_compiling():
        # Inductor fuses ``torch.add(..., alpha=)`` after a matmul into wrong values (torch 2.13, CPU)
        # and plans memory itself: trace the plain formula.
        return _bias_act_functional(x, b, spec=spec, alpha=alpha, gain=gain, clamp=clamp, dim=dim)
    # Eager, in few Python steps (activate_owned and _finish inlined, the compile check made once): on
    # the small tensors of a generator's early layers, host time is most of the cost.
    name = spec.name
    fold = gain > 0.0 and name in HOMOGENEOUS
    scale = fold and gain != 1.0
    if b is not None:
        shape = _bias_shape(x.ndim, dim)
        # A 1-D tensor views as this shape whatever its stride (the public function checked b is 1-D).
        # Unpacked: view(list) parses slower than view(*ints), a few µs per call in a real loop.
        bv = b.view(*shape) if b.ndim == 1 else b.reshape(shape)
        if bv.dtype != x.dtype:
            bv = bv.to(x.dtype)
        # gain * (x + b) in one pass as (gain * b) + gain * x.
        z = torch.add(bv * gain, x, alpha=gain) if scale else x + bv
    elif scale:
        z = x * gain
    else:
        return _finish(apply_activation(x, spec, alpha), gain, fold, clamp)
    if name != "linear":
        inplace = IN_PLACE.get(name)
        z = inplace(z, alpha) if inplace is not None else apply_activation(z, spec, alpha)
    if not fold and gain != 1.0:
        z = z * gain
    return z if clamp is None else z.clamp(-clamp, clamp)


def _finish(y: torch.Tensor, gain: float, folded: bool, clamp: Optional[float]) -> torch.Tensor:
    if not folded and gain != 1.0:
        y = y * gain
    return y if clamp is None else y.clamp(-clamp, clamp)


def _bias_act_functional(
    x: torch.Tensor,
    b: Optional[torch.Tensor],
    *,
    spec: ActSpec,
    alpha: float,
    gain: float,
    clamp: Optional[float],
    dim: int,
) -> torch.Tensor:
    """The formula op by op, out of place."""
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.to(x.dtype).reshape(shape)
    y = apply_activation(x, spec, alpha)
    if gain != 1.0:
        y = y * gain
    return y if clamp is None else y.clamp(-clamp, clamp)
