"""Exact metrics, independent of timing noise: bytes autograd saves for backward, FLOPs, parameter gradients.

Both counters run during a benchmark's first warm-up repetition (:func:`instrumented_run`), so they cost no
extra run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from .harness import Prepare, Run


def _storage_key(t: torch.Tensor) -> tuple[str, int]:
    return (str(t.device), t.untyped_storage().data_ptr())


def _storage_bytes(t: torch.Tensor) -> int:
    try:
        return int(t.untyped_storage().nbytes())
    except (RuntimeError, NotImplementedError):
        return t.numel() * t.element_size()


@dataclass(frozen=True)
class SavedBytes:
    """Bytes that autograd keeps alive for the backward pass, counted once per storage.

    Attributes:
        total: every distinct storage saved for backward.
        activations: the same, without the storages of the inputs and parameters (memory the forward
            pass adds; inputs and parameters exist anyway).
        tensors: how many tensors were saved (a storage saved twice counts twice here).
    """

    total: int
    activations: int
    tensors: int


def saved_bytes(fn: Callable[[], Any], exclude: Iterable[torch.Tensor] = ()) -> SavedBytes:
    """Run ``fn`` under ``torch.autograd.graph.saved_tensors_hooks`` and count what its graph saves.

    Exact on every device and independent of timing noise. ``exclude`` lists tensors (inputs,
    parameters) whose storages are reported in ``total`` but not in ``activations``.
    """
    with SavedCounter(exclude) as counter:
        out = fn()
    del out
    return counter.result()


class SavedCounter:
    """Context manager behind :func:`saved_bytes`, for counting around code that also does other things."""

    def __init__(self, exclude: Iterable[torch.Tensor] = ()) -> None:
        self.excluded = {_storage_key(t) for t in exclude}
        self.seen: dict[tuple[str, int], int] = {}
        self.count = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        self.count += 1
        try:
            key = _storage_key(t)
        except (RuntimeError, NotImplementedError):
            key = ("opaque", id(t))
        self.seen.setdefault(key, _storage_bytes(t))
        return t

    @staticmethod
    def _unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    def __enter__(self) -> SavedCounter:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)

    def result(self) -> SavedBytes:
        total = sum(self.seen.values())
        activations = sum(v for k, v in self.seen.items() if k not in self.excluded)
        return SavedBytes(total=total, activations=activations, tensors=self.count)


class _FlopCounter(TorchDispatchMode):
    """``FlopCounterMode``'s arithmetic without its module tracker, whose backward hooks break
    ``torch.autograd.grad`` on leaf inputs (every penalty)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.total += int(count(*args, **kwargs, out_val=out))
        return out


def count_flops(prepare: Prepare, run: Run) -> int:
    """FLOPs of ``run`` (matmuls and convolutions, forward and backward; elementwise ops count 0), with
    ``torch.utils.flop_counter``'s formulas."""
    return instrumented_run(prepare, run)[0]


def instrumented_run(
    prepare: Prepare, run: Run, exclude: Iterable[torch.Tensor] = ()
) -> tuple[int, SavedBytes]:
    """One repetition of ``run`` that counts its FLOPs and the bytes its graph saves for backward.

    The benchmarks use it as the first warm-up repetition, so the exact metrics cost no extra run.
    """
    state = prepare()
    with _FlopCounter() as flops, SavedCounter(exclude) as saved:
        run(state)
    del state
    return flops.total, saved.result()


def param_grad_bytes(params: Iterable[torch.Tensor]) -> Optional[int]:
    """Bytes of the parameter gradients a step produced (each one a reduction over the batch); None
    without parameters."""
    params = list(params)
    if not params:
        return None
    return sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
