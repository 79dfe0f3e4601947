"""Equalized learning rate as a hook on any torch layer, like ``torch.nn.utils.spectral_norm``.

The stored weight is the unscaled parameter; a parametrization multiplies it by
``lr_multiplier / sqrt(fan_in)`` on every access (Karras et al., ProGAN, ICLR 2018).
"""

from __future__ import annotations

import math
from typing import Optional, TypeVar, cast

import torch
from torch import nn
from torch.nn.utils import parametrize

from .._checks import check_positive

_Module = TypeVar("_Module", bound=nn.Module)


class EqualizedLR(nn.Module):
    r"""The parametrization behind :func:`equalized_lr`: ``effective = stored * scale``.

    ``right_inverse`` divides by ``scale``, so assigning ``module.weight = w`` stores ``w / scale`` and the
    module then computes with ``w``.

    Args:
        scale: run-time multiplier, :math:`g\lambda/\sqrt{\text{fan\_in}}` for a weight and
            :math:`\lambda` for a bias.
        lr_multiplier: the :math:`\lambda` it was built with.
        weight_gain: the weight's extra multiplier it was built with (1 for a bias).
        fan_in: the fan-in it was built with (1 for a bias).
    """

    def __init__(self, scale: float, *, lr_multiplier: float, weight_gain: float, fan_in: int) -> None:
        super().__init__()
        self.scale = float(scale)
        self.lr_multiplier = float(lr_multiplier)
        self.weight_gain = float(weight_gain)
        self.fan_in = int(fan_in)

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        return stored * self.scale

    def right_inverse(self, effective: torch.Tensor) -> torch.Tensor:
        return effective / self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale:.6g}, lr_multiplier={self.lr_multiplier}, weight_gain={self.weight_gain}, fan_in={self.fan_in}"


_HOOKABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _type_name(module: nn.Module) -> str:
    """The module's class name, not the ``Parametrized*`` subclass that parametrize swaps in."""
    cls = type(module)
    return cls.__bases__[0].__name__ if parametrize.is_parametrized(module) else cls.__name__


def _plist(module: nn.Module, name: str) -> parametrize.ParametrizationList:
    return cast(parametrize.ParametrizationList, cast(nn.ModuleDict, module.parametrizations)[name])


def _ours(module: nn.Module, name: str) -> Optional[EqualizedLR]:
    """The :class:`EqualizedLR` parametrization of ``module.<name>``, or None."""
    if not parametrize.is_parametrized(module, name):
        return None
    plist = _plist(module, name)
    found = [p for p in plist if isinstance(p, EqualizedLR)]
    if not found:
        return None
    if len(plist) != 1:
        raise ValueError(
            f"{name} of {_type_name(module)} carries other parametrizations besides equalized_lr "
            f"({[type(p).__name__ for p in plist]}); remove them first with "
            f"torch.nn.utils.parametrize.remove_parametrizations"
        )
    return found[0]


def equalized_lr(
    module: _Module,
    name: str = "weight",
    *,
    lr_multiplier: float = 1.0,
    weight_gain: float = 1.0,
    reinit: bool = True,
) -> _Module:
    r"""Give an ``nn.Linear`` or ``nn.Conv1d/2d/3d`` an equalized learning rate, in place.

    Like :func:`torch.nn.utils.parametrizations.spectral_norm`, this registers a
    :mod:`torch.nn.utils.parametrize` parametrization: the stored tensor becomes
    ``module.parametrizations.<name>.original`` and ``module.<name>`` is computed on access as

    .. math::
        W = \frac{g \lambda}{\sqrt{\text{fan\_in}}} W_\text{stored}, \qquad
        b = \lambda\, b_\text{stored} \quad (\text{only when } \lambda \ne 1),

    with fan_in = ``in_features`` or ``in_channels / groups * prod(kernel_size)``. The module then
    computes what :class:`EqualLinear` / :class:`EqualConv2d` compute from the same stored tensors,
    stays differentiable to any order (R1 and WGAN-GP penalties work) and compiles with
    ``torch.compile(fullgraph=True)``. Use :func:`torch.nn.utils.parametrize.cached` to compute the
    scaled weight once for several calls.

    Initialization: with ``reinit=True`` (the default, StyleGAN's semantics, what equalized learning
    rate is meant for) the stored weight is redrawn from :math:`\mathcal{N}(0, 1/\lambda^2)` and the
    stored bias is zeroed, as in :class:`EqualLinear` with ``bias_init=0``; the module's own
    initialization is discarded. With ``reinit=False`` the stored tensors are the current ones divided
    by their scale, so the module computes the same function as before (for converting a trained model).

    Args:
        module: an ``nn.Linear`` or a non-transposed ``nn.Conv1d/2d/3d``.
        name: the weight parameter's name.
        lr_multiplier: learning-rate multiplier :math:`\lambda`; also applied to ``bias``.
        weight_gain: extra multiplier :math:`g` of the weight.
        reinit: redraw the stored weight and zero the bias (True), or keep the effective tensors (False).

    Returns:
        ``module``, for chaining.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from ganblocks.layers import equalized_lr, remove_equalized_lr
        >>> conv = equalized_lr(nn.Conv2d(4, 8, 3))
        >>> conv.parametrizations.weight.original.shape
        torch.Size([8, 4, 3, 3])
        >>> torch.allclose(conv.weight, conv.parametrizations.weight.original / 6)
        True
        >>> type(remove_equalized_lr(conv).weight).__name__
        'Parameter'

    Reference:
        Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation",
        ICLR 2018, section 4.1.
    """
    if not isinstance(module, _HOOKABLE):
        raise TypeError(
            f"module must be an nn.Linear or nn.Conv1d/nn.Conv2d/nn.Conv3d, got {_type_name(module)}"
        )
    check_positive("lr_multiplier", lr_multiplier)
    check_positive("weight_gain", weight_gain)
    param = getattr(module, name, None)
    if not isinstance(param, torch.Tensor) or param.ndim < 2:
        raise ValueError(
            f"name must name a weight tensor of {_type_name(module)} with at least 2 dimensions, got {name!r}"
        )
    if parametrize.is_parametrized(module, name):
        existing = [type(p).__name__ for p in _plist(module, name)]
        raise ValueError(
            f"{name} of {_type_name(module)} is already parametrized ({existing}); "
            f"apply equalized_lr once, and before other parametrizations"
        )
    fan_in = param[0].numel()
    scale = weight_gain * lr_multiplier / math.sqrt(fan_in)
    weight_p = EqualizedLR(scale, lr_multiplier=lr_multiplier, weight_gain=weight_gain, fan_in=fan_in)
    bias = getattr(module, "bias", None)
    # right_inverse runs on registration, so reinit=False keeps the effective tensors as they are.
    parametrize.register_parametrization(module, name, weight_p)
    with_bias = name == "weight" and isinstance(bias, nn.Parameter)
    if with_bias and lr_multiplier != 1.0:
        parametrize.register_parametrization(
            module, "bias", EqualizedLR(lr_multiplier, lr_multiplier=lr_multiplier, weight_gain=1.0, fan_in=1)
        )
    if reinit:
        with torch.no_grad():
            _plist(module, name).original.normal_(0.0, 1.0 / lr_multiplier)
            if with_bias:
                stored_bias = _plist(module, "bias").original if lr_multiplier != 1.0 else bias
                cast(torch.Tensor, stored_bias).zero_()
    return module


def remove_equalized_lr(module: _Module, name: str = "weight") -> _Module:
    """Undo :func:`equalized_lr`: ``module.<name>`` (and ``bias``) become plain parameters again.

    The restored parameters hold the effective tensors (stored times scale), so the module computes the
    same function as before the removal.

    Args:
        module: a module given to :func:`equalized_lr`.
        name: the weight parameter's name.

    Returns:
        ``module``, for chaining.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from ganblocks.layers import equalized_lr, remove_equalized_lr
        >>> lin = equalized_lr(nn.Linear(4, 2), lr_multiplier=0.01)
        >>> x = torch.randn(3, 4)
        >>> before = lin(x)
        >>> torch.allclose(remove_equalized_lr(lin)(x), before)
        True
    """
    if _ours(module, name) is None:
        raise ValueError(f"equalized_lr of {name!r} not found in {_type_name(module)}")
    parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    if name == "weight" and _ours(module, "bias") is not None:
        parametrize.remove_parametrizations(module, "bias", leave_parametrized=True)
    return module
