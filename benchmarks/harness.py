"""Measurement: interleaved timing loops, peak memory, bytes saved for backward, FLOPs, copy bandwidth.

Everything here is independent of what is measured: a benchmark hands over pairs of callables
``(prepare, run)``; only ``run`` is timed, ``prepare`` does the untimed set-up of one repetition (for the
``backward`` mode it runs the forward pass).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

Prepare = Callable[[], Any]
Run = Callable[[Any], Any]


@dataclass(frozen=True)
class Budget:
    """How long to time one group of providers (one case, one mode).

    Attributes:
        warmup: untimed repetitions per provider before timing (the first one compiles, if anything does).
        min_reps: timed repetitions per provider, at least.
        max_reps: timed repetitions per provider, at most.
        seconds: wall time after which timing stops once ``min_reps`` are done (all providers together).
    """

    warmup: int = 2
    min_reps: int = 5
    max_reps: int = 100
    seconds: float = 1.0

    def scaled(self, factor: float) -> Budget:
        return Budget(self.warmup, self.min_reps, self.max_reps, self.seconds * factor)


@dataclass(frozen=True)
class Timing:
    """Summary of the timed repetitions of one provider, in milliseconds."""

    median_ms: float
    p20_ms: float
    p80_ms: float
    min_ms: float
    reps: int
    first_call_s: Optional[float]

    def to_json(self) -> dict[str, Union[float, int, None]]:
        return {
            "median": round(self.median_ms, 6),
            "p20": round(self.p20_ms, 6),
            "p80": round(self.p80_ms, 6),
            "min": round(self.min_ms, 6),
            "reps": self.reps,
            "first_call_s": None if self.first_call_s is None else round(self.first_call_s, 4),
        }


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of a non-empty list."""
    data = sorted(values)
    pos = (len(data) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Clock:
    """Times one call of ``run``: CUDA events on GPU (device time), ``perf_counter`` on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def time_ms(self, run: Run, state: Any) -> float:
        if self.device.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            run(state)
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))
        t0 = time.perf_counter()
        run(state)
        return (time.perf_counter() - t0) * 1e3


def time_interleaved(
    group: dict[str, tuple[Prepare, Run]],
    device: torch.device,
    budget: Budget,
    *,
    inner: Optional[dict[str, int]] = None,
    warmed: Iterable[str] = (),
) -> dict[str, Union[Timing, BaseException]]:
    """Time every provider of ``group``, one repetition of each in turn, so that machine noise hits all alike.

    Args:
        group: provider name -> (prepare, run); ``run(prepare())`` is one repetition, only ``run`` is timed.
        device: where the work runs (CUDA is timed with events, after a synchronize).
        budget: warm-up, repetition and time limits.
        inner: provider -> how many operations one ``run`` performs; times are divided by it.
        warmed: providers that already ran one repetition (one warm-up fewer for them).

    Returns:
        provider -> its :class:`Timing`, or the exception it raised (the others go on).
    """
    clock = _Clock(device)
    inner = inner or {}
    samples: dict[str, list[float]] = {name: [] for name in group}
    first: dict[str, float] = {}
    failed: dict[str, BaseException] = {}
    already = set(warmed)
    for name, (prepare, run) in group.items():
        try:
            count = budget.warmup - 1 if name in already else max(1, budget.warmup)
            for i in range(max(0, count)):
                state = prepare()
                synchronize(device)
                t0 = time.perf_counter()
                run(state)
                synchronize(device)
                if i == 0:
                    first[name] = time.perf_counter() - t0
                del state
        except Exception as exc:  # a provider that fails is recorded, the others still run
            failed[name] = exc
    live = [name for name in group if name not in failed]
    start = time.perf_counter()
    rounds = 0
    while live and rounds < budget.max_reps:
        # Rotate the order so that no provider always runs right after the same neighbour.
        order = live[rounds % len(live) :] + live[: rounds % len(live)]
        for name in order:
            prepare, run = group[name]
            try:
                state = prepare()
                synchronize(device)
                samples[name].append(clock.time_ms(run, state) / inner.get(name, 1))
                del state
            except Exception as exc:
                failed[name] = exc
        live = [name for name in live if name not in failed]
        rounds += 1
        if rounds >= budget.min_reps and time.perf_counter() - start >= budget.seconds:
            break
    out: dict[str, Union[Timing, BaseException]] = dict(failed)
    for name in live:
        values = samples[name]
        out[name] = Timing(
            median_ms=quantile(values, 0.5),
            p20_ms=quantile(values, 0.2),
            p80_ms=quantile(values, 0.8),
            min_ms=min(values),
            reps=len(values),
            first_call_s=first.get(name),
        )
    return out


def peak_memory_bytes(prepare: Prepare, run: Run, device: torch.device) -> Optional[int]:
    """Peak CUDA memory of one repetition (prepare and run) above what was allocated before it; None on CPU."""
    if device.type != "cuda":
        return None
    gc.collect()
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    state = prepare()
    run(state)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - base
    del state
    return int(peak)


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


def copy_bandwidth_gbs(device: torch.device, *, megabytes: int = 256, reps: int = 10) -> float:
    """Measured device-to-device copy bandwidth, counting the bytes read plus the bytes written."""
    n = megabytes * (1 << 20) // 4
    src = torch.empty(n, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    clock = _Clock(device)
    dst.copy_(src)
    synchronize(device)
    times = [clock.time_ms(lambda _: dst.copy_(src), None) for _ in range(reps)]
    seconds = quantile(times, 0.5) / 1e3
    return 2 * src.numel() * src.element_size() / seconds / 1e9
