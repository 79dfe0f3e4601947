"""The benchmark runner: collect cases, filter them, time every mode of every provider, write JSON + markdown.

Usage (from the repository root)::

    python -m benchmarks --device cpu --quick                # CI smoke run, under two minutes
    python -m benchmarks --device cpu                        # the CPU suite (about ten minutes on 2 cores)
    python -m benchmarks --device cuda                       # the GPU suite (sweeps 64 to 1024 px, dtypes)
    python -m benchmarks --filter 'ops/bias_act*' --list     # what would run
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import gc
import json
import sys
import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Optional, TextIO

import torch

from . import discriminators, dispatch, env, layers, losses, ops, penalties, targets, training
from .case import BASELINE, Case, Skip, Workload, flatten_outputs, mode_callables, output_grads
from .config import Config, default_budget
from .harness import (
    SavedCounter,
    Timing,
    copy_bandwidth_gbs,
    instrumented_run,
    peak_memory_bytes,
    saved_bytes,
    time_interleaved,
)
from .plots import render_plots
from .tables import render_markdown

SCHEMA = "ganblocks-benchmarks/1"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


AREAS = {
    "dispatch": dispatch,
    "ops": ops,
    "layers": layers,
    "discriminators": discriminators,
    "losses": losses,
    "penalties": penalties,
    "training": training,
}


def collect_cases(cfg: Config) -> list[Case]:
    return [case for module in AREAS.values() for case in module.cases(cfg)]


def matches(case_id: str, patterns: Sequence[str]) -> bool:
    """Substring match, or a glob when the pattern has ``*`` or ``?`` (``[`` is literal: case ids have it);
    any pattern may match."""
    if not patterns:
        return True
    for p in patterns:
        if "*" in p or "?" in p:
            glob = p.replace("[", "[[]")
            if fnmatch.fnmatchcase(case_id, glob) or fnmatch.fnmatchcase(case_id, f"*{glob}*"):
                return True
        elif p in case_id:
            return True
    return False


def _record(
    case: Case, mode: str, provider: str, status: str, reason: Optional[str] = None
) -> dict[str, Any]:
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
        "flops": None,
        "io_bytes": None,
        "bandwidth_gbs": None,
        "bandwidth_fraction_of_copy": None,
    }


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 300 else text[:297] + "..."


def _safe(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:  # a metric that cannot be taken is left empty, the timing still counts
        return None


NEEDS_GRADS = ("backward", "forward+backward", "double_backward")


def _prepare_workloads(
    case: Case, cfg: Config
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
        reason = cfg.compile_skip_reason(case.area) if provider == "compile" else None
        if reason is not None:
            unavailable[provider] = ("skipped", reason)
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
            unavailable[provider] = ("error", _describe(exc))
    return workloads, unavailable, grads, forward_saved


def run_case(case: Case, cfg: Config, copy_gbs: Optional[float]) -> list[dict[str, Any]]:
    """Time every mode of every provider of ``case``; one record per (mode, provider)."""
    budget = case.budget or cfg.budget
    if cfg.quick and case.budget is not None:
        budget = cfg.budget
    records: list[dict[str, Any]] = []
    workloads, unavailable, grads, forward_saved = _prepare_workloads(case, cfg)
    for mode in case.modes:
        group = {}
        mode_records: dict[str, dict[str, Any]] = {}
        for provider in case.providers:
            rec = _record(case, mode, provider, "ok")
            mode_records[provider] = rec
            if provider in unavailable:
                rec["status"], rec["reason"] = unavailable[provider]
                continue
            try:
                group[provider] = mode_callables(workloads[provider], mode, grads.get(provider, []))
            except Skip as exc:
                rec["status"], rec["reason"] = "skipped", str(exc)
        # The first warm-up repetition of each eager provider counts FLOPs and saved bytes.
        exact: dict[str, tuple[Optional[int], Any]] = {}
        for provider, (prepare, run) in group.items():
            wl = workloads[provider]
            if mode != "call" and not wl.compiled:
                exact[provider] = _safe(instrumented_run, prepare, run, (*wl.inputs, *wl.params)) or (
                    None,
                    None,
                )
        warmed = [p for p, (flops, _) in exact.items() if flops is not None]
        inner = {p: workloads[p].inner for p in group}
        timings = time_interleaved(group, cfg.device, budget, inner=inner, warmed=warmed) if group else {}
        for provider, result in timings.items():
            rec = mode_records[provider]
            if not isinstance(result, Timing):
                rec["status"], rec["reason"] = "error", _describe(result)
                continue
            wl = workloads[provider]
            prepare, run = group[provider]
            rec["time_ms"] = result.to_json()
            if mode != "call":
                rec["peak_memory_bytes"] = _safe(peak_memory_bytes, prepare, run, cfg.device)
                flops, saved = exact.get(provider, (None, None))
                rec["flops"] = flops
                if mode in ("forward", "backward", "forward+backward"):
                    saved = forward_saved.get(provider)
                    if saved is None and wl.compiled:
                        saved = _safe(saved_bytes, wl.forward, (*wl.inputs, *wl.params))
                if saved is not None:
                    rec["saved_bytes"] = saved.total
                    rec["saved_bytes_activations"] = saved.activations
                    rec["saved_tensors"] = saved.tensors
            io = wl.io_bytes.get(mode)
            if io:
                rec["io_bytes"] = io
                gbs = io / (result.median_ms / 1e3) / 1e9
                rec["bandwidth_gbs"] = round(gbs, 2)
                if copy_gbs:
                    rec["bandwidth_fraction_of_copy"] = round(gbs / copy_gbs, 3)
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


def _summary_line(case: Case, records: list[dict[str, Any]]) -> str:
    parts = []
    for rec in records:
        if rec["time_ms"] is not None:
            parts.append(f"{rec['mode']}/{rec['provider']} {rec['time_ms']['median']:.3g}ms")
        elif rec["status"] != "ok":
            parts.append(f"{rec['mode']}/{rec['provider']} {rec['status']}")
    return "; ".join(parts)


def run_suite(cfg: Config, patterns: Sequence[str], log: TextIO = sys.stderr) -> dict[str, Any]:
    """Run every matching case and return the results document (not yet written)."""
    start = time.perf_counter()
    torch.manual_seed(0)
    cases = [c for c in collect_cases(cfg) if matches(c.id, patterns)]
    copy_gbs = None if cfg.quick and not cfg.cuda else _safe(copy_bandwidth_gbs, cfg.device)
    meta = env.collect(cfg.device)
    meta.update(
        {
            "device": cfg.device.type,
            "quick": cfg.quick,
            "compile": cfg.compile,
            "filter": list(patterns),
            "budget": cfg.budget.__dict__,
            "copy_bandwidth_gbs": round(copy_gbs, 2) if copy_gbs else None,
            "argv": sys.argv[1:],
        }
    )
    results: list[dict[str, Any]] = []
    for i, case in enumerate(cases, 1):
        t0 = time.perf_counter()
        print(f"[{i}/{len(cases)}] {case.id}", file=log, flush=True)
        records = run_case(case, cfg, copy_gbs)
        results.extend(records)
        print(f"    {time.perf_counter() - t0:.1f}s  {_summary_line(case, records)}", file=log, flush=True)
    meta["duration_s"] = round(time.perf_counter() - start, 1)
    notes = {c.id: c.note for c in cases if c.note}
    doc = {"schema": SCHEMA, "meta": meta, "results": results, "notes": notes}
    doc["targets"] = targets.evaluate(doc)
    doc["derived"] = targets.derived(doc)
    return doc


def default_out(cfg: Config) -> Path:
    date = datetime.date.today().isoformat()
    kind = f"{cfg.device.type}-quick" if cfg.quick else cfg.device.type
    return RESULTS_DIR / f"{kind}-{date}.json"


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument(
        "--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu"
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes, short timing: a smoke run for CI")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="NAME",
        help="run cases whose id contains NAME, or matches it as a glob (repeatable)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results JSON (default benchmarks/results/<device>-<date>.json)",
    )
    p.add_argument("--no-markdown", action="store_true", help="do not write the markdown next to the JSON")
    p.add_argument(
        "--plots", action="store_true", help="also write one speedup PNG per area (needs matplotlib)"
    )
    p.add_argument(
        "--compile", choices=("auto", "all", "none"), default="auto", help="which cases get torch.compile"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads; default 1 on CPU (steady ratios on a shared machine), torch's choice on CUDA; 0 = torch's choice",
    )
    p.add_argument("--list", action="store_true", help="list the matching case ids and exit")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is available", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    threads = args.threads if args.threads is not None else (1 if device.type == "cpu" else 0)
    previous_threads = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        return _run(args, device)
    finally:
        torch.set_num_threads(previous_threads)


def _run(args: argparse.Namespace, device: torch.device) -> int:
    cfg = Config(
        device=device, quick=args.quick, compile=args.compile, budget=default_budget(device, args.quick)
    )
    if args.list:
        for case in collect_cases(cfg):
            if matches(case.id, args.filter):
                print(case.id)
        return 0
    doc = run_suite(cfg, args.filter)
    out = args.out or default_out(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    if not args.no_markdown:
        md = out.with_suffix(".md")
        plots = render_plots(doc, out.parent, out.stem) if args.plots else None
        md.write_text(render_markdown(doc, plots=plots, md_path=md))
        print(f"wrote {md}", file=sys.stderr)
    return 0
