"""Backend choice for fused ops: per call, a context manager, or ``GANBLOCKS_BACKEND``.

Precedence, highest first: the ``backend=`` argument of a call, the innermost ``use_backend`` context,
the ``GANBLOCKS_BACKEND`` environment variable, ``"auto"``.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import os
import threading
from collections.abc import Iterator
from typing import Literal, Optional, TypeAlias, cast

import torch

Backend: TypeAlias = Literal["auto", "triton", "torch"]
BACKENDS: tuple[str, ...] = ("auto", "triton", "torch")
ENV_VAR = "GANBLOCKS_BACKEND"

# Float64 is supported so that gradcheck can exercise the kernels themselves.
TRITON_DTYPES: tuple[torch.dtype, ...] = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

# A ContextVar, so each thread (and each asyncio task) has its own ``use_backend`` stack.
_context: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("ganblocks_backend", default=())
# The same stack as ``torch.compile`` reads it: dynamo cannot trace ``ContextVar.get``, but it reads (and
# guards on) an attribute of a ``threading.local``, so a compiled function is traced again when the
# backend in force changes. Kept per thread; ``use_backend`` writes both.
_traced = threading.local()
_triton_importable: Optional[bool] = None


def _validate(name: str, value: str) -> Backend:
    if value not in BACKENDS:
        raise ValueError(f"{name} must be one of {BACKENDS}, got {value!r}")
    return cast(Backend, value)


def triton_available() -> bool:
    """Whether the ``triton`` package can be imported (checked once, without importing it)."""
    global _triton_importable
    if _triton_importable is None:
        try:
            _triton_importable = importlib.util.find_spec("triton") is not None
        except (ImportError, ValueError):  # blocked by an import hook, or sys.modules["triton"] = None
            _triton_importable = False
    return _triton_importable


# Dynamo of torch 2.4 cannot trace ``os.environ`` (later versions read it while tracing): there a traced
# function sees each variable as the last eager read, or the import, saw it.
_ENVIRON_TRACEABLE = tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 5)
_env_seen: dict[str, str] = {name: os.environ.get(name, "") for name in (ENV_VAR, "TRITON_INTERPRET")}


def _getenv(name: str) -> str:
    """``os.environ.get(name, "")``, also inside a function that torch.compile traces."""
    if _ENVIRON_TRACEABLE:
        return os.environ.get(name, "")
    if torch.compiler.is_compiling():
        return _env_seen.get(name, "")
    value = _env_seen[name] = os.environ.get(name, "")
    return value


def interpreting() -> bool:
    """Whether ``TRITON_INTERPRET=1`` is set, so Triton kernels run on CPU tensors."""
    return _getenv("TRITON_INTERPRET") == "1"


def _read_context() -> str:
    """The innermost ``use_backend`` choice, "" outside every block."""
    stack: tuple[str, ...] = (
        getattr(_traced, "stack", ()) if torch.compiler.is_compiling() else _context.get()
    )
    return stack[-1] if stack else ""


def _read_env() -> str:
    """The raw value of ``GANBLOCKS_BACKEND``, "" when it is not set."""
    return _getenv(ENV_VAR)


def _choice(backend: Optional[str]) -> str:
    """The backend in force, without the description that only an error message needs."""
    if backend is not None:
        return backend if backend in BACKENDS else _validate("backend", backend)
    choice = _read_context() or _read_env()
    if not choice or choice in BACKENDS:
        return choice or "auto"
    return _validate(f"environment variable {ENV_VAR}", choice.strip().lower())


def _resolve(backend: Optional[Backend]) -> tuple[Backend, str]:
    """The backend in force and where it came from, for error messages."""
    choice = cast(Backend, _choice(backend))
    if backend is not None:
        return choice, f"backend={backend!r}"
    innermost = _read_context()
    if innermost:
        return choice, f"use_backend({innermost!r})"
    env = _read_env()
    if env:
        return choice, f"the environment variable {ENV_VAR}={env!r}"
    return choice, "backend='auto'"


def get_backend() -> Backend:
    """The backend that a call without ``backend=`` uses: the innermost context, else the env variable."""
    return cast(Backend, _choice(None))


@contextlib.contextmanager
def use_backend(backend: Backend) -> Iterator[None]:
    """Run every fused op inside the ``with`` block on ``backend`` unless a call names its own.

    Args:
        backend: ``"auto"`` (Triton for supported CUDA tensors, else PyTorch), ``"triton"`` (raise if it
            cannot run) or ``"torch"`` (the pure-PyTorch reference).

    Example:
        >>> import torch
        >>> from ganblocks.ops import use_backend
        >>> from ganblocks.functional import pixel_norm
        >>> with use_backend("torch"):
        ...     y = pixel_norm(torch.ones(2, 4, 3, 3))
        >>> round(y.pow(2).mean().item(), 4)
        1.0
    """
    stack = (*_context.get(), _validate("backend", backend))
    token = _context.set(stack)
    _traced.stack = stack
    try:
        yield
    finally:
        _context.reset(token)
        _traced.stack = _context.get()


def _triton_blocker(x: torch.Tensor) -> Optional[str]:
    """Why the Triton path cannot run on ``x``, or None when it can (device and import only)."""
    if not triton_available():
        return "the triton package is not installed (pip install triton)"
    if x.device.type == "cuda":
        return None
    if x.device.type == "cpu" and interpreting():
        return None
    return (
        f"Triton kernels need CUDA tensors (or CPU tensors with TRITON_INTERPRET=1), "
        f"got a tensor on {x.device}"
    )


def use_triton(
    backend: Optional[Backend],
    x: torch.Tensor,
    *,
    op: str,
    arg: str = "x",
    dtypes: tuple[torch.dtype, ...] = TRITON_DTYPES,
) -> bool:
    """Decide whether ``op`` runs its Triton kernel on ``x``.

    ``auto`` picks Triton only for CUDA tensors of a supported dtype; an explicit ``triton`` that cannot
    run raises, naming the reason.
    """
    # The common cases first and without building the error text: ``auto`` (a CPU tensor never runs
    # Triton under ``auto``, ``is_cuda`` is the cheap test) and ``torch``.
    choice = _choice(backend)
    if choice == "auto":
        return x.is_cuda and x.dtype in dtypes and triton_available()
    if choice == "torch":
        return False
    source = _resolve(backend)[1]
    reason = _triton_blocker(x)
    if reason is not None:
        raise RuntimeError(f"{op}: the Triton backend (chosen by {source}) cannot run: {reason}")
    if x.dtype not in dtypes:
        names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(
            f"{op}: the Triton backend (chosen by {source}) supports {arg} of dtype {names}, got {x.dtype}"
        )
    return True
