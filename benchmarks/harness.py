"""Timing: interleaved timing loops, L2 flushes, deadlines, peak memory, copy bandwidth.

The exact, noise-free metrics (saved bytes, FLOPs, parameter-gradient bytes) are :mod:`benchmarks.counting`.

Everything here is independent of what is measured: a benchmark hands over pairs of callables
``(prepare, run)``; only ``run`` is timed, ``prepare`` does the untimed set-up of one repetition (for the
``backward`` mode it runs the forward pass).

On CUDA every timed repetition starts from a cold L2 cache: a buffer larger than L2 is written between
``prepare`` and the start event (:class:`L2Flush`), so neither the flush nor ``prepare`` is timed and no
repetition reads what the previous one left in the cache. A ``deadline`` (``time.perf_counter()`` value)
stops a timing loop between repetitions (no signals): the result is marked ``timed_out``.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, Union

import torch

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
    timed_out: bool = False

    def to_json(self) -> dict[str, Union[float, int, bool, None]]:
        return {
            "median": round(self.median_ms, 6),
            "p20": round(self.p20_ms, 6),
            "p80": round(self.p80_ms, 6),
            "min": round(self.min_ms, 6),
            "reps": self.reps,
            "first_call_s": None if self.first_call_s is None else round(self.first_call_s, 4),
            "timed_out": self.timed_out,
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


L2_FLUSH_BYTES = 256 << 20


class L2Flush:
    """Writes a buffer larger than the GPU's L2 cache (256 MiB; an H100/H200 has 50-60 MiB of L2).

    Called right before a repetition's start event: the write is queued ahead of the event on the same
    stream, so it evicts the cache without being timed. Allocated on first use and kept (one per device).
    """

    _cache: ClassVar[dict[str, L2Flush]] = {}

    def __init__(self, device: torch.device, nbytes: int = L2_FLUSH_BYTES) -> None:
        self.device = device
        self.nbytes = nbytes
        self.buffer: Optional[torch.Tensor] = None
        self.calls = 0

    @classmethod
    def for_device(cls, device: torch.device) -> Optional[L2Flush]:
        """The shared flush of a CUDA device; None elsewhere (no flush between CPU repetitions)."""
        if device.type != "cuda":
            return None
        key = str(device)
        if key not in cls._cache:
            cls._cache[key] = cls(device)
        return cls._cache[key]

    def __call__(self) -> None:
        if self.buffer is None:
            self.buffer = torch.empty(self.nbytes, dtype=torch.int8, device=self.device)
        self.buffer.zero_()
        self.calls += 1


class _Clock:
    """Times one call of ``run``: CUDA events on GPU (device time, after an untimed L2 flush),
    ``perf_counter`` on CPU."""

    def __init__(self, device: torch.device, flush: Optional[L2Flush] = None) -> None:
        self.device = device
        self.flush = flush

    def time_ms(self, run: Run, state: Any) -> float:
        if self.device.type == "cuda":
            if self.flush is not None:
                self.flush()
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


# Timing past the deadline still collects this many rounds, so a case cut short has a median to report.
ROUNDS_PAST_DEADLINE = 3


def _past(deadline: Optional[float]) -> bool:
    return deadline is not None and time.perf_counter() >= deadline


def time_interleaved(
    group: dict[str, tuple[Prepare, Run]],
    device: torch.device,
    budget: Budget,
    *,
    inner: Optional[dict[str, int]] = None,
    warmed: Iterable[str] = (),
    deadline: Optional[float] = None,
    flush_l2: bool = True,
) -> dict[str, Union[Timing, BaseException]]:
    """Time every provider of ``group``, one repetition of each in turn, so that machine noise hits all alike.

    Args:
        group: provider name -> (prepare, run); ``run(prepare())`` is one repetition, only ``run`` is timed.
        device: where the work runs (CUDA is timed with events, after a synchronize).
        budget: warm-up, repetition and time limits.
        inner: provider -> how many operations one ``run`` performs; times are divided by it.
        warmed: providers that already ran one repetition (one warm-up fewer for them).
        deadline: ``time.perf_counter()`` value after which a provider gets one warm-up at most and timing
            ends once :data:`ROUNDS_PAST_DEADLINE` rounds are done; such results are marked ``timed_out``.
        flush_l2: on CUDA, flush the L2 cache before every timed repetition (untimed).

    Returns:
        provider -> its :class:`Timing`, or the exception it raised (the others go on).
    """
    clock = _Clock(device, L2Flush.for_device(device) if flush_l2 else None)
    inner = inner or {}
    samples: dict[str, list[float]] = {name: [] for name in group}
    first: dict[str, float] = {}
    failed: dict[str, BaseException] = {}
    already = set(warmed)
    for name, (prepare, run) in group.items():
        try:
            count = budget.warmup - 1 if name in already else max(1, budget.warmup)
            for i in range(max(0, count)):
                if _past(deadline) and (i > 0 or name in already):
                    break  # past the deadline one warm-up is enough
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
    timed_out = False
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
        if rounds >= ROUNDS_PAST_DEADLINE and _past(deadline):
            timed_out = True
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
            timed_out=timed_out,
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


def copy_time_ms(
    device: torch.device, numel: int, dtype: torch.dtype = torch.float32, *, reps: int = 10
) -> float:
    """Median time of ``dst.copy_(src)`` for ``numel`` elements of ``dtype``, timed like the benchmarks (CUDA
    events after an untimed L2 flush on GPU)."""
    src = torch.zeros(numel, dtype=dtype, device=device)
    dst = torch.empty_like(src)
    clock = _Clock(device, L2Flush.for_device(device))
    dst.copy_(src)
    synchronize(device)
    times = [clock.time_ms(lambda _: dst.copy_(src), None) for _ in range(reps)]
    return quantile(times, 0.5)


def copy_bandwidth_gbs(
    device: torch.device,
    *,
    megabytes: int = 256,
    numel: Optional[int] = None,
    dtype: torch.dtype = torch.float32,
    reps: int = 10,
) -> float:
    """Measured device-to-device copy bandwidth, counting the bytes read plus the bytes written.

    ``numel`` elements of ``dtype`` (an op's own input size and dtype), or ``megabytes`` of them.
    """
    size = torch.empty((), dtype=dtype).element_size()
    n = numel if numel is not None else megabytes * (1 << 20) // size
    seconds = max(copy_time_ms(device, n, dtype, reps=reps), 1e-6) / 1e3
    return 2 * n * size / seconds / 1e9
