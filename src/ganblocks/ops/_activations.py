"""Activation functions known to the fused ops: names, default slopes and gains, reference formulas.

Default gains follow StyleGAN2-ADA's ``bias_act``: √2 for ReLU-like activations so that a layer keeps
unit variance, 1 otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional, TypeAlias, get_args

import torch
import torch.nn.functional as F

Activation: TypeAlias = Literal[
    "linear", "relu", "lrelu", "leaky_relu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"
]
"""The names ``act=`` takes everywhere; ``"leaky_relu"`` (torch's name) is an alias of ``"lrelu"``."""
ACTIVATION_NAMES: tuple[Activation, ...] = get_args(Activation)


@dataclass(frozen=True)
class ActSpec:
    """How one activation is computed and differentiated.

    Attributes:
        name: public name.
        code: integer id passed to Triton kernels as a compile-time constant.
        default_alpha: slope (lrelu) or scale (elu) used when ``alpha=None``.
        default_gain: output gain used when ``gain=None``.
        grad_from_output: the derivative is a function of the output alone (piecewise linear), so the
            backward saves ``y`` and the second derivative is zero almost everywhere.
    """

    name: str
    code: int
    default_alpha: float
    default_gain: float
    grad_from_output: bool


ACTIVATIONS: dict[str, ActSpec] = {
    "linear": ActSpec("linear", 0, 0.0, 1.0, True),
    "relu": ActSpec("relu", 1, 0.0, math.sqrt(2), True),
    "lrelu": ActSpec("lrelu", 2, 0.2, math.sqrt(2), True),
    "tanh": ActSpec("tanh", 3, 0.0, 1.0, False),
    "sigmoid": ActSpec("sigmoid", 4, 0.0, 1.0, False),
    "elu": ActSpec("elu", 5, 1.0, 1.0, False),
    "selu": ActSpec("selu", 6, 0.0, 1.0, False),
    "softplus": ActSpec("softplus", 7, 0.0, 1.0, False),
    "swish": ActSpec("swish", 8, 0.0, math.sqrt(2), False),
}
# Aliases resolve to the same spec (same kernel code, defaults and gain).
ACTIVATIONS["leaky_relu"] = ACTIVATIONS["lrelu"]

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def resolve_activation(
    act: str, alpha: Optional[float], gain: Optional[float]
) -> tuple[ActSpec, float, float]:
    """Look up ``act`` and fill in its default ``alpha`` and ``gain``; raise on unknown names."""
    if not isinstance(act, str) or act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {ACTIVATION_NAMES}, got {act!r}")
    spec = ACTIVATIONS[act]
    a = spec.default_alpha if alpha is None else float(alpha)
    g = spec.default_gain if gain is None else float(gain)
    return spec, a, g


def apply_activation(x: torch.Tensor, spec: ActSpec, alpha: float) -> torch.Tensor:
    """The activation itself, differentiable to any order (the reference for every kernel)."""
    name = spec.name
    if name == "linear":
        return x
    if name == "relu":
        return F.relu(x)
    if name == "lrelu":
        return F.leaky_relu(x, alpha)
    if name == "tanh":
        return torch.tanh(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "elu":
        return F.elu(x, alpha)
    if name == "selu":
        return F.selu(x)
    if name == "softplus":
        return F.softplus(x)
    return F.silu(x)


#: Activations for which ``g * f(z) == f(g * z)`` when ``g > 0``.
HOMOGENEOUS = frozenset(("linear", "relu", "lrelu"))


def folds_gain(spec: ActSpec, gain: float) -> bool:
    """Whether ``gain`` can be applied before the activation (and so folded into a preceding affine op)."""
    return spec.name in HOMOGENEOUS and gain > 0.0


def activate_owned(z: torch.Tensor, spec: ActSpec, alpha: float) -> torch.Tensor:
    """``act(z)`` for a ``z`` that no one else holds: in place where autograd needs only the output.

    For the layers that compute a fresh tensor (a convolution's output) and activate it: autograd then keeps
    the output only, as pix2pixHD's ``LeakyReLU(inplace=True)`` does. With a negative alpha the output no
    longer tells the sign of the input (autograd refuses the in-place backward), so that runs out of place;
    under ``torch.compile`` the traced graph stays functional (inductor plans memory itself).
    """
    name = spec.name
    if name == "linear":
        return z
    if torch.compiler.is_compiling() or (name in ("lrelu", "elu") and alpha < 0):
        return apply_activation(z, spec, alpha)
    if name == "relu":
        return torch.relu_(z)
    if name == "lrelu":
        return F.leaky_relu_(z, alpha)
    if name == "tanh":
        return torch.tanh_(z)
    if name == "sigmoid":
        return torch.sigmoid_(z)
    if name == "elu":
        return F.elu_(z, alpha)
    if name == "selu":
        return torch.selu_(z)
    return apply_activation(z, spec, alpha)
