"""Every argument check of ganblocks, one name each.

Each error names the argument, what was expected and what was received. Number checks reject NaN and
infinity: a hyperparameter that is not a finite number never reaches a kernel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, TypeVar, Union

import torch

Number = Union[int, float]
_Choice = TypeVar("_Choice", bound=str)


def check_tensor(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_ndim(
    name: str, x: torch.Tensor, *, exact: Optional[int] = None, minimum: Optional[int] = None
) -> None:
    if exact is not None and x.ndim != exact:
        raise ValueError(
            f"{name} must have {exact} dimensions, got shape {tuple(x.shape)} ({x.ndim} dimensions)"
        )
    if minimum is not None and x.ndim < minimum:
        raise ValueError(
            f"{name} must have at least {minimum} dimensions, got shape {tuple(x.shape)} ({x.ndim} dimensions)"
        )


def check_floating(name: str, x: torch.Tensor) -> None:
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_float_tensor(name: str, value: object, *, exact_ndim: Optional[int] = None) -> torch.Tensor:
    """``value`` is a floating-point tensor (of ``exact_ndim`` dimensions when given)."""
    t = check_tensor(name, value)
    check_floating(name, t)
    if exact_ndim is not None:
        check_ndim(name, t, exact=exact_ndim)
    return t


def check_images(name: str, value: object, in_channels: int) -> torch.Tensor:
    """``value`` is a floating ``(N, in_channels, H, W)`` tensor."""
    t = check_float_tensor(name, value, exact_ndim=4)
    if t.shape[1] != in_channels:
        raise ValueError(
            f"{name} must have {in_channels} channels (in_channels), got shape {tuple(t.shape)} "
            f"with {t.shape[1]} channels"
        )
    return t


def check_finite(name: str, value: object) -> float:
    """``value`` as a float; a TypeError for non-numbers (bools included), a ValueError for NaN or inf."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return float(value)


def check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a float: finite and ``> 0`` (``>= 0`` with ``allow_zero``)."""
    v = check_finite(name, value)
    if v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return v


def check_nonnegative(name: str, value: object) -> float:
    """``value`` as a float: finite and ``>= 0`` (a loss or penalty weight)."""
    return check_positive(name, value, allow_zero=True)


def check_optional_clamp(name: str, value: Optional[float]) -> Optional[float]:
    """None, or a finite number ``>= 0`` (an output clamp)."""
    return None if value is None else check_positive(name, value, allow_zero=True)


def check_probability(name: str, value: object) -> float:
    v = check_finite(name, value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return v


def check_int(name: str, value: object, *, minimum: int = 1) -> int:
    """``value`` is an int (not a bool) and at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_pair(name: str, value: Union[int, tuple[int, ...]], *, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each at least ``minimum``, as a pair."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(pair, tuple)
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in pair)
    ):
        raise ValueError(f"{name} must be an int or a pair of ints, each >= {minimum}, got {value!r}")
    return (pair[0], pair[1])


def check_choice(name: str, value: object, choices: Sequence[_Choice]) -> _Choice:
    """``value`` is one of ``choices`` (the members of a ``Literal``)."""
    for choice in choices:
        if value == choice and isinstance(value, str):
            return choice
    raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def normalize_dim(name: str, dim: int, ndim: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"{name} must be an int, got {type(dim).__name__}")
    if not -ndim <= dim < ndim:
        raise ValueError(f"{name} must be in [{-ndim}, {ndim - 1}] for a {ndim}-dimensional input, got {dim}")
    return dim % ndim


def check_param_shape(name: str, p: object, expected: Sequence[int], *, what: str) -> torch.Tensor:
    """``p`` is a tensor of shape ``expected``; ``what`` says where the shape comes from."""
    t = check_tensor(name, p)
    if tuple(t.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)} ({what}), got {tuple(t.shape)}")
    return t


def check_requires_autograd(what: str) -> None:
    """Raise when autograd is off: ``what`` differentiates through a network."""
    if not torch.is_grad_enabled():
        raise RuntimeError(
            f"{what} differentiates the discriminator's output with respect to its input and needs autograd, "
            "but it was called with gradients disabled (inside torch.no_grad() or torch.inference_mode()); "
            "call it outside that block"
        )
