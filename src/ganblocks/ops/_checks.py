"""Argument checks shared by the public functions: each error names the argument, expected and received."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import torch

Number = Union[int, float]


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


def check_shape(name: str, x: torch.Tensor, expected: Sequence[int], *, what: str = "") -> None:
    if tuple(x.shape) != tuple(expected):
        suffix = f" ({what})" if what else ""
        raise ValueError(f"{name} must have shape {tuple(expected)}{suffix}, got {tuple(x.shape)}")


def check_same_device(name: str, x: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    if x.device != ref.device:
        raise ValueError(f"{name} must be on the same device as {ref_name} ({ref.device}), got {x.device}")


def check_positive(name: str, value: Number, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")


def normalize_dim(name: str, dim: int, ndim: int) -> int:
    if not -ndim <= dim < ndim:
        raise ValueError(f"{name} must be in [{-ndim}, {ndim - 1}] for a {ndim}-dimensional input, got {dim}")
    return dim % ndim
