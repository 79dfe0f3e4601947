"""One case measured: every mode of every provider, one record each (time, memory, saved bytes, FLOPs,
parameter-gradient bytes, bandwidth against a copy of the op's own size and dtype).

Shared by the suite (:mod:`benchmarks.runner`) and the one-shot GPU check (:mod:`benchmarks.gpu_check`).
Two ``time.perf_counter()`` values bound a case without signals:

- past ``deadline``, the case does the least that still measures: no provider is built any more, compiled
  providers (whose next compile may take minutes) stop, the exact-metric repetition is left out, and every
  other provider gets one warm-up and :data:`benchmarks.harness.ROUNDS_PAST_DEADLINE` timed rounds;
- past ``hard_deadline`` (default: ``deadline``), the modes not started are not run.

What they cut is recorded as ``timed_out`` (a record's status, or ``time_ms["timed_out"]`` for a timing
stopped early).
"""

from __future__ import annotations

import gc
import math
import time
import warnings
from contextlib import nullcontext
from typing import Any, Callable, Optional

import torch

from .case import BASELINE, COMPILED, Case, Skip, Workload, flatten_outputs, mode_callables, output_grads
from .config import Config
from .counting import SavedCounter, instrumented_run, param_grad_bytes, saved_bytes
from .harness import Timing, copy_bandwidth_gbs, peak_memory_bytes, time_interleaved

Record = dict[str, Any]
STATUSES = ("ok", "skipped", "error", "timed_out")
NEEDS_GRADS = ("backward", "forward+backward", "double_backward")
GRAD_MODES = (*NEEDS_GRADS, "step")
TIMED_OUT = "the case's time budget ran out before this ran"
COMPILE_CUT = "torch.compile stopped: the case's time budget ran out (its next compile could take minutes)"


def new_record(case: Case, mode: str, provider: str, status: str, reason: Optional[str] = None) -> Record:
    return {
        "id": case.id,
        "area": case.area,
        "case": case.name,
        "params": case.params,
        "mode": mode,
        "provider": provider,
        "status": status,
        "reason": reason,
        "time_ms": None,
        "speedup_vs_plain": None,
        "peak_memory_bytes": None,
        "saved_bytes": None,
        "saved_bytes_activations": None,
        "saved_tensors": None,
        "param_grad_bytes": None,
        "flops": None,
        "io_bytes": None,
        "bandwidth_gbs": None,
        "copy_bandwidth_gbs": None,
        "bandwidth_fraction_of_copy": None,
    }


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 300 else text[:297] + "..."


def safe(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception:  # a metric that cannot be taken is left empty, the timing still counts
        return None


def past(deadline: Optional[float]) -> bool:
    return deadline is not None and time.perf_counter() >= deadline


def _prepare_workloads(
    case: Case, cfg: Config, deadline: Optional[float]
) -> tuple[
    dict[str, Workload], dict[str, tuple[str, str]], dict[str, list[Optional[torch.Tensor]]], dict[str, Any]
]:
    """Build every provider's workload; run one forward for the output gradients (and, eagerly, count
    what it saves for backward on the way)."""
    workloads: dict[str, Workload] = {}
    unavailable: dict[str, tuple[str, str]] = {}
    grads: dict[str, list[Optional[torch.Tensor]]] = {}
    forward_saved: dict[str, Any] = {}
    needs_grads = any(m in NEEDS_GRADS for m in case.modes)
    for provider, factory in case.providers.items():
        reason = cfg.compile_skip_reason(case.area) if provider in COMPILED else None
        if reason is not None:
            unavailable[provider] = ("skipped", reason)
            continue
        if past(deadline):
            unavailable[provider] = ("timed_out", TIMED_OUT)
            continue
        try:
            torch.manual_seed(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wl = factory()
            if needs_grads:
                # Compiling under saved-tensor hooks would trace them; count a compiled forward later.
                counter = SavedCounter((*wl.inputs, *wl.params)) if not wl.compiled else nullcontext()
                with counter:
                    outs = flatten_outputs(wl.forward())
                if isinstance(counter, SavedCounter):
                    forward_saved[provider] = counter.result()
                grads[provider] = output_grads(outs)
                del outs
            workloads[provider] = wl
        except Skip as exc:
            unavailable[provider] = ("skipped", str(exc))
        except Exception as exc:
            unavailable[provider] = ("error", describe(exc))
    return workloads, unavailable, grads, forward_saved


def case_copy_gbs(case: Case, cfg: Config) -> Optional[float]:
    """Copy bandwidth at the case's own input size and dtype (None when the case names none)."""
    if case.copy_like is None:
        return None
    shape, dtype = case.copy_like
    return safe(copy_bandwidth_gbs, cfg.device, numel=math.prod(shape), dtype=dtype)


def _fill(rec: Record, wl: Workload, result: Timing, mode: str, cfg: Config, extra: dict[str, Any]) -> None:
    """The metrics of one timed (mode, provider) beyond its time."""
    rec["time_ms"] = result.to_json()
    if mode in GRAD_MODES:
        # The last timed repetition's gradients are still on the parameters (each provider has its own).
        rec["param_grad_bytes"] = param_grad_bytes(wl.params)
    if mode != "call":
        prepare, run = extra["callables"]
        rec["peak_memory_bytes"] = safe(peak_memory_bytes, prepare, run, cfg.device)
        flops, saved = extra["exact"]
        rec["flops"] = flops
        if mode in ("forward", "backward", "forward+backward"):
            saved = extra["forward_saved"]
            if saved is None and wl.compiled:
                saved = safe(saved_bytes, wl.forward, (*wl.inputs, *wl.params))
        if saved is not None:
            rec["saved_bytes"] = saved.total
            rec["saved_bytes_activations"] = saved.activations
            rec["saved_tensors"] = saved.tensors
    io = wl.io_bytes.get(mode)
    if io:
        rec["io_bytes"] = io
        gbs = io / (result.median_ms / 1e3) / 1e9
        rec["bandwidth_gbs"] = float(f"{gbs:.4g}")
        copy_gbs = extra["copy_gbs"]
        if copy_gbs:
            rec["copy_bandwidth_gbs"] = round(copy_gbs, 2)
            rec["bandwidth_fraction_of_copy"] = round(gbs / copy_gbs, 3)


def run_case(
    case: Case,
    cfg: Config,
    copy_gbs: Optional[float] = None,
    *,
    deadline: Optional[float] = None,
    hard_deadline: Optional[float] = None,
) -> list[Record]:
    """Time every mode of every provider of ``case``; one record per (mode, provider).

    ``copy_gbs`` is the bandwidth figure of cases without a ``copy_like`` of their own; the deadlines bound
    the case (see the module docstring).
    """
    hard = hard_deadline if hard_deadline is not None else deadline
    budget = case.budget or cfg.budget
    if cfg.quick and case.budget is not None:
        budget = cfg.budget
    records: list[Record] = []
    workloads, unavailable, grads, forward_saved = _prepare_workloads(case, cfg, deadline)
    own_copy = case_copy_gbs(case, cfg) if any(wl.io_bytes for wl in workloads.values()) else None
    for mode in case.modes:
        group = {}
        mode_records: dict[str, Record] = {}
        mode_past = past(hard)
        soft_past = past(deadline)
        for provider in case.providers:
            rec = new_record(case, mode, provider, "ok")
            mode_records[provider] = rec
            if provider in unavailable:
                rec["status"], rec["reason"] = unavailable[provider]
                continue
            if mode_past or (soft_past and workloads[provider].compiled):
                rec["status"], rec["reason"] = "timed_out", TIMED_OUT if mode_past else COMPILE_CUT
                continue
            try:
                group[provider] = mode_callables(workloads[provider], mode, grads.get(provider, []))
            except Skip as exc:
                rec["status"], rec["reason"] = "skipped", str(exc)
        # The first warm-up repetition of each eager provider counts FLOPs and saved bytes.
        exact: dict[str, tuple[Optional[int], Any]] = {}
        for provider, (prepare, run) in group.items():
            wl = workloads[provider]
            if mode != "call" and not wl.compiled and not past(deadline):
                exact[provider] = safe(instrumented_run, prepare, run, (*wl.inputs, *wl.params)) or (
                    None,
                    None,
                )
        warmed = [p for p, (flops, _) in exact.items() if flops is not None]
        inner = {p: workloads[p].inner for p in group}
        timings = (
            time_interleaved(group, cfg.device, budget, inner=inner, warmed=warmed, deadline=deadline)
            if group
            else {}
        )
        for provider, result in timings.items():
            rec = mode_records[provider]
            if not isinstance(result, Timing):
                rec["status"], rec["reason"] = "error", describe(result)
                continue
            wl = workloads[provider]
            extra = {
                "callables": group[provider],
                "exact": exact.get(provider, (None, None)),
                "forward_saved": forward_saved.get(provider),
                "copy_gbs": own_copy or copy_gbs,
            }
            _fill(rec, wl, result, mode, cfg, extra)
            wl.reset_grads()
        base = mode_records.get(BASELINE)
        if base is not None and base["time_ms"] is not None:
            for rec in mode_records.values():
                if rec["time_ms"] is not None:
                    rec["speedup_vs_plain"] = round(base["time_ms"]["median"] / rec["time_ms"]["median"], 4)
        records.extend(mode_records.values())
    del workloads, grads
    gc.collect()
    if cfg.cuda:
        torch.cuda.empty_cache()
    return records


def summary_line(records: list[Record]) -> str:
    parts = []
    for rec in records:
        if rec["time_ms"] is not None:
            cut = " (timed out)" if rec["time_ms"].get("timed_out") else ""
            parts.append(f"{rec['mode']}/{rec['provider']} {rec['time_ms']['median']:.3g}ms{cut}")
        elif rec["status"] != "ok":
            parts.append(f"{rec['mode']}/{rec['provider']} {rec['status']}")
    return "; ".join(parts)
