"""Every argument check of ganblocks, one name each.

Each error names the argument, what was expected and what was received. Number checks reject NaN and
infinity: a hyperparameter that is not a finite number never reaches a kernel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, TypeAlias, TypeVar, Union

import torch
from torch import nn

Number: TypeAlias = Union[int, float]
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


def check_input(name: str, x: object, *, minimum: int = 0, exact: Optional[int] = None) -> torch.Tensor:
    """``x`` is a floating-point tensor of ``exact`` (or at least ``minimum``) dimensions.

    The checks of :func:`check_float_tensor` and :func:`check_ndim` for a fused op's input, on its hot
    path (on a small tensor the host time is most of an op's cost): a valid input costs one
    ``isinstance`` and two attribute reads; the error messages come from the full checks.
    """
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        ndim = x.ndim
        if ndim >= minimum and (exact is None or ndim == exact):
            return x
    t = check_float_tensor(name, x, exact_ndim=exact)
    check_ndim(name, t, minimum=minimum)
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
    """None, or a finite number ``>= 0`` (an output clamp; None, not inf, disables it)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be None or a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be None or a finite number (None disables it), got {value}")
    if value < 0:
        raise ValueError(f"{name} must be None or >= 0, got {value}")
    return float(value)


def check_optional_finite(name: str, value: object) -> Optional[float]:
    """None (use the default), or a finite number (an activation's ``alpha`` or ``gain``)."""
    return None if value is None else check_finite(name, value)


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
    if type(dim) is int and -ndim <= dim < ndim:  # the valid case first: one type test, one comparison
        return dim % ndim
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"{name} must be an int, got {type(dim).__name__}")
    if not -ndim <= dim < ndim:
        raise ValueError(f"{name} must be in [{-ndim}, {ndim - 1}] for a {ndim}-dimensional input, got {dim}")
    return dim % ndim


def check_requires_autograd(what: str) -> None:
    """Raise when autograd is off: ``what`` differentiates through a network."""
    if not torch.is_grad_enabled():
        raise RuntimeError(
            f"{what} differentiates the discriminator's output with respect to its input and needs autograd, "
            "but it was called with gradients disabled (inside torch.no_grad() or torch.inference_mode()); "
            "call it outside that block"
        )


def check_nonempty(name: str, x: torch.Tensor) -> None:
    """``x`` holds at least one element: a mean over nothing is NaN (and a sum 0), never a loss."""
    if x.numel() == 0:
        raise ValueError(
            f"{name} must hold at least one element, got an empty tensor of shape {tuple(x.shape)}; "
            "skip the step for an empty batch"
        )


def check_same_dtype(a_name: str, a: torch.Tensor, b_name: str, b: torch.Tensor) -> None:
    """Two tensors that are combined elementwise have one dtype (torch.lerp and friends do not promote)."""
    if a.dtype != b.dtype:
        raise TypeError(
            f"{a_name} and {b_name} must have the same dtype, got {a.dtype} and {b.dtype}; "
            f"convert one of them (e.g. {b_name}.to({a_name}.dtype))"
        )


def check_input_dtype(name: str, x: torch.Tensor, module: nn.Module) -> None:
    """``x`` has the dtype of ``module``'s floating-point parameters, unless autocast chooses the dtypes.

    Every discriminator raises this one error instead of torch's "expected scalar type" from deep inside
    (or, for equalized layers, silently computing in the input's dtype).
    """
    if torch.is_autocast_enabled(x.device.type):
        return
    dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), None)
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{name} must have the dtype of {type(module).__name__}'s parameters ({dtype}), got {x.dtype}; "
            f"convert the input ({name}.to({dtype})) or the module (.to({x.dtype})), or run under torch.autocast"
        )


def check_group_size(
    n: int, group_size: Optional[int], *, arg: str, remedy: str = "", adjust: bool = False
) -> int:
    """The group ``min(group_size, n)`` (``n`` for None) when it divides the batch size ``n``, else an error
    (or, with ``adjust``, the largest divisor of ``n`` below it).

    ``arg`` is the caller's name for the group size and ``remedy`` the caller's own way out (an option
    that exists where the error is raised), appended to the message after ``str.format`` with ``g`` (the
    group size) and ``divisor`` (the largest divisor of ``n`` not above it).
    """
    if group_size is not None and (
        (type(group_size) is not int and (isinstance(group_size, bool) or not isinstance(group_size, int)))
        or group_size < 1
    ):  # the common exact int first; int subclasses pass, a bool fails
        raise ValueError(f"{arg} must be None or a positive int, got {group_size!r}")
    g = n if group_size is None else min(group_size, n)
    if g > 0 and n % g != 0:
        if adjust:
            return largest_divisor_at_most(n, g)
        hint = remedy.format(g=g, divisor=largest_divisor_at_most(n, g))
        # g < n here, so g is group_size itself.
        raise ValueError(
            f"the batch size ({n}) must be divisible by the group size ({g}) of the minibatch standard "
            f"deviation ({arg}={g}); {hint}"
        )
    return g


def check_mbstd_batch(name: str, x: torch.Tensor, group_size: Optional[int]) -> None:
    """The batch of a discriminator's input ``name`` suits its minibatch standard deviation layer.

    Checked on the discriminator's input, so that the error names it and the constructor option
    (``mbstd_group_size``) instead of an internal feature map and an option the discriminator lacks.
    """
    n = x.shape[0]
    if n == 0:
        raise ValueError(
            f"{name} must have a non-empty batch: the minibatch standard deviation of an empty batch is "
            f"undefined, got shape {tuple(x.shape)}"
        )
    check_group_size(
        n,
        group_size,
        arg="mbstd_group_size",
        remedy=(
            "pass a batch that is a multiple of {g}, or build the discriminator with mbstd_group_size={divisor} "
            "(a divisor of the batch size) or mbstd_group_size=None (the whole batch)"
        ),
    )


def largest_divisor_at_most(n: int, g: int) -> int:
    """The largest divisor of ``n`` that is at most ``g`` (an alternative group size to suggest)."""
    return next(d for d in range(min(g, n), 0, -1) if n % d == 0)


def check_device(name: str, t: Optional[torch.Tensor], x: torch.Tensor, x_name: str = "x") -> None:
    """Raise a ValueError naming ``name`` and both devices unless ``t`` is None or on the device of ``x``.

    A Triton kernel reads each argument through a raw pointer: one on another device than ``x`` is read as
    garbage (CPU under the interpreter) or faults (CUDA), so every fused op checks its tensor arguments at
    the public boundary, whatever the backend.
    """
    if t is not None and t.device != x.device:
        raise ValueError(f"{name} must be on the device of {x_name} ({x.device}), got {t.device}")


def check_rgb_pair(input: object, target: object) -> None:
    """``input`` and ``target`` of a perceptual distance: non-empty floating ``(N, 3, H, W)`` of one shape."""
    tensors = [check_tensor(name, t) for name, t in (("input", input), ("target", target))]
    for name, t in zip(("input", "target"), tensors):
        check_floating(name, t)
        check_ndim(name, t, exact=4)
        if t.shape[1] != 3:
            raise ValueError(f"{name} must have 3 channels (N, 3, H, W), got shape {tuple(t.shape)}")
    if tensors[0].shape != tensors[1].shape:
        raise ValueError(
            "input and target must have the same shape, got "
            f"{tuple(tensors[0].shape)} and {tuple(tensors[1].shape)}"
        )
    check_nonempty("input", tensors[0])
