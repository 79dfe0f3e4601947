"""Checkpoints for ``train.py``: atomic writes, validated loads, and a clean stop on Ctrl-C.

* :func:`save_atomic` writes a checkpoint to a temporary file in the destination's folder, flushes it to
  disk and renames it over the destination, so a crash or a second Ctrl-C mid-write leaves the previous
  checkpoint intact, never a torn one.
* :func:`read_checkpoint` loads with ``torch.load(weights_only=True)`` (nothing in the file is executed)
  and turns a truncated, foreign or corrupt file into a :class:`CheckpointError` naming the file.
* :func:`check_states` compares a checkpoint's states with the live objects' (keys, tensor shapes and
  dtypes, optimizer state against its parameters) before :func:`load_states` touches any of them: a
  checkpoint that does not fit leaves every model as it was.
* :class:`StopRequest` turns the first Ctrl-C (SIGINT) or SIGTERM into a flag the loop checks after each
  step; a second Ctrl-C stops at once, without saving.
"""

from __future__ import annotations

import os
import pickle
import re
import secrets
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, Optional, Protocol

import torch


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, was not written by this script, or does not fit the run."""


class Stateful(Protocol):
    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> Any: ...


def save_atomic(obj: object, path: Path) -> None:
    """``torch.save(obj)`` to ``path`` through a temporary file in the same folder, fsync and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own ("x": never an existing file), created with the usual permissions (unlike mkstemp's).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX; Windows has no directory fds)
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_checkpoint(path: Path, *, kind: str, version: int) -> dict[str, Any]:
    """The dict saved at ``path``, checked to be a ``kind`` checkpoint of format ``version``."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        found = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # a whole pickled object, e.g. torch.save(model)
        refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        what = f"a pickled {refused[1]}" if refused else "pickled Python objects"
        raise CheckpointError(
            f"{path}: not a checkpoint of this script: it holds {what}, which torch.load(weights_only=True) "
            "does not build"
        ) from None
    except Exception as error:  # a truncated zip archive, or not a torch file at all
        detail = " ".join(str(error).split())
        if len(detail) > 300:
            detail = detail[:300] + "..."
        raise CheckpointError(
            f"{path}: cannot be read as a PyTorch checkpoint; is it truncated or corrupt? "
            f"({type(error).__name__}: {detail})"
        ) from None
    if not isinstance(found, dict) or found.get("kind") != kind:
        what = (
            f"a dict with keys {sorted(map(str, found))[:8]}"
            if isinstance(found, dict)
            else f"a {type(found).__name__}"
        )
        raise CheckpointError(f"{path}: not a {kind} checkpoint (it holds {what}, with no kind={kind!r})")
    if found.get("version") != version:
        raise CheckpointError(
            f"{path}: {kind} checkpoint of format version {found.get('version')!r}, this script reads "
            f"version {version}"
        )
    return found


def _kind(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)} {value.dtype}"
    return type(value).__name__


def check_like(expected: object, found: object, where: str) -> None:
    """Raise :class:`CheckpointError` unless ``found`` has the structure of ``expected``.

    Tensors must match in shape and dtype, mappings in keys, sequences in length; other values in type
    (an int may stand for a float; None stands for anything, as a scheduler's unsaved lambdas do).
    """
    if isinstance(expected, torch.Tensor):
        if (
            not isinstance(found, torch.Tensor)
            or found.shape != expected.shape
            or found.dtype != expected.dtype
        ):
            raise CheckpointError(f"{where}: expected {_kind(expected)}, found {_kind(found)}")
    elif isinstance(expected, Mapping):
        if not isinstance(found, Mapping):
            raise CheckpointError(f"{where}: expected a dict, found {_kind(found)}")
        missing = [k for k in expected if k not in found]
        unexpected = [k for k in found if k not in expected]
        if missing or unexpected:
            raise CheckpointError(
                f"{where}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}"
                + (" (among others)" if len(missing) > 5 or len(unexpected) > 5 else "")
            )
        for key, value in expected.items():
            check_like(value, found[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        if not isinstance(found, (list, tuple)) or len(found) != len(expected):
            raise CheckpointError(
                f"{where}: expected a sequence of {len(expected)}, found "
                + (f"one of {len(found)}" if isinstance(found, (list, tuple)) else _kind(found))
            )
        for i, (e, f) in enumerate(zip(expected, found)):
            check_like(e, f, f"{where}[{i}]")
    elif expected is not None:
        same = type(found) is type(expected) or (type(expected) is float and type(found) is int)
        if not same:
            raise CheckpointError(f"{where}: expected {_kind(expected)}, found {_kind(found)}")


def check_optimizer(optimizer: torch.optim.Optimizer, found: object, where: str) -> None:
    """``found`` must be a state dict of ``optimizer``: same groups, and per-parameter state that fits.

    A fresh optimizer has no per-parameter state to compare with, so each saved tensor of per-parameter
    state must either be a scalar (Adam's step) or have its parameter's shape and dtype.
    """
    live = optimizer.state_dict()
    if not isinstance(found, Mapping) or set(found) != set(live):
        check_like(live, found, where)  # raises, naming the keys
        return
    check_like(live["param_groups"], found["param_groups"], f"{where}['param_groups']")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = found["state"]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{where}['state']: expected a dict, found {_kind(state)}")
    for index, entry in state.items():
        if not isinstance(index, int) or not 0 <= index < len(params):
            raise CheckpointError(
                f"{where}['state']: state for parameter {index!r}, the optimizer has {len(params)}"
            )
        if not isinstance(entry, Mapping):
            raise CheckpointError(f"{where}['state'][{index}]: expected a dict, found {_kind(entry)}")
        param = params[index]
        for name, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                if value.shape != param.shape or value.dtype != param.dtype:
                    raise CheckpointError(
                        f"{where}['state'][{index}][{name!r}]: expected {_kind(param.detach())} like its "
                        f"parameter, found {_kind(value)}"
                    )


def check_states(found: object, live: Mapping[str, Stateful], where: str) -> None:
    """``found`` must map every name of ``live`` to a state that fits that object (and nothing else)."""
    if not isinstance(found, Mapping):
        raise CheckpointError(f"{where}: expected a dict, found {_kind(found)}")
    missing = [k for k in live if k not in found]
    unexpected = [k for k in found if k not in live]
    if missing or unexpected:
        raise CheckpointError(f"{where}: missing states {missing}, unexpected states {unexpected}")
    for name, obj in live.items():
        if isinstance(obj, torch.optim.Optimizer):
            check_optimizer(obj, found[name], f"{where}[{name!r}]")
        else:
            check_like(obj.state_dict(), found[name], f"{where}[{name!r}]")


def load_states(found: Mapping[str, Any], live: Mapping[str, Stateful]) -> None:
    """Load every state into its live object (after :func:`check_states`)."""
    for name, obj in live.items():
        obj.load_state_dict(found[name])


class StopRequest:
    """While entered, the first SIGINT (Ctrl-C) or SIGTERM sets :attr:`signal` instead of stopping.

    The training loop checks :attr:`requested` after each step, saves and exits; a second Ctrl-C raises
    ``KeyboardInterrupt`` at once. Outside the main thread, where Python cannot install signal handlers,
    the signals keep their usual effect.
    """

    def __init__(self) -> None:
        self.signal: Optional[int] = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum
        print(
            f"\n{signal.Signals(signum).name}: finishing this step, then saving a checkpoint"
            + (" (Ctrl-C again to stop at once, without saving)" if signum == signal.SIGINT else ""),
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
