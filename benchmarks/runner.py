"""The benchmark runner: collect cases, filter them, time every mode of every provider, write JSON + markdown.

Each case's records are appended to ``<out>.partial.jsonl`` as soon as the case finishes (removed once the
whole JSON is written), and every case has a wall-clock budget (``--case-timeout``).

Usage (from the repository root)::

    python -m benchmarks --device cpu --quick                # CI smoke run, under two minutes
    python -m benchmarks --device cpu                        # the CPU suite (about ten minutes on 2 cores)
    python -m benchmarks --device cuda                       # the GPU suite (sweeps 64 to 1024 px, dtypes)
    python -m benchmarks --filter 'ops/bias_act*' --list     # what would run
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, TextIO

import torch

from . import (
    allocator,
    discriminators,
    dispatch,
    env,
    generators,
    layers,
    losses,
    ops,
    penalties,
    targets,
    training,
)
from .case import Case, matches
from .config import Config, default_budget, default_case_timeout
from .harness import copy_bandwidth_gbs
from .measure import run_case, safe, summary_line
from .plots import render_plots
from .sink import SCHEMA, Sink
from .tables import render_markdown

RESULTS_DIR = Path(__file__).resolve().parent / "results"


AREAS = {
    "dispatch": dispatch,
    "ops": ops,
    "layers": layers,
    "discriminators": discriminators,
    "generators": generators,
    "losses": losses,
    "penalties": penalties,
    "training": training,
}


def collect_cases(cfg: Config) -> list[Case]:
    return [case for module in AREAS.values() for case in module.cases(cfg)]


def run_suite(
    cfg: Config, patterns: Sequence[str], log: TextIO = sys.stderr, out: Optional[Path] = None
) -> dict[str, Any]:
    """Run every matching case and return the results document.

    With ``out``, each case's records go to ``out``'s partial JSON-lines file as soon as the case finishes
    (:mod:`benchmarks.sink`) and the whole document is written to ``out`` at the end.
    """
    start = time.perf_counter()
    torch.manual_seed(0)
    cases = [c for c in collect_cases(cfg) if matches(c.id, patterns)]
    copy_gbs = None if cfg.quick and not cfg.cuda else safe(copy_bandwidth_gbs, cfg.device)
    meta = env.collect(cfg.device)
    meta.update(
        {
            "device": cfg.device.type,
            "quick": cfg.quick,
            "compile": cfg.compile,
            "filter": list(patterns),
            "budget": cfg.budget.__dict__,
            "case_timeout_s": cfg.case_timeout_s,
            "copy_bandwidth_gbs": round(copy_gbs, 2) if copy_gbs else None,
            "allocator": allocator.describe() if cfg.device.type == "cpu" else None,
            "argv": sys.argv[1:],
        }
    )
    sink = Sink(out, meta) if out is not None else None
    results: list[dict[str, Any]] = []
    for i, case in enumerate(cases, 1):
        t0 = time.perf_counter()
        print(f"[{i}/{len(cases)}] {case.id}", file=log, flush=True)
        deadline = t0 + cfg.case_timeout_s if cfg.case_timeout_s else None
        records = run_case(case, cfg, copy_gbs, deadline=deadline)
        results.extend(records)
        if sink is not None:
            sink.case(case.id, records, case.note)
        print(f"    {time.perf_counter() - t0:.1f}s  {summary_line(records)}", file=log, flush=True)
    meta["duration_s"] = round(time.perf_counter() - start, 1)
    notes = {c.id: c.note for c in cases if c.note}
    doc = {"schema": SCHEMA, "meta": meta, "results": results, "notes": notes}
    doc["targets"] = targets.evaluate(doc)
    doc["derived"] = targets.derived(doc)
    if sink is not None and out is not None:
        sink.finish(doc, out)
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
    p.add_argument(
        "--case-timeout",
        type=float,
        default=None,
        metavar="S",
        help="wall-clock seconds per case, checked between repetitions (default: 120 quick, 900 CPU, 300 CUDA;"
        " 0: none); what it cuts is recorded as timed_out",
    )
    p.add_argument(
        "--malloc",
        choices=("keep", "default"),
        default="keep",
        help="CPU, glibc: 'keep' (default for full runs) raises malloc's mmap and trim thresholds so that "
        "repetitions reuse freed memory instead of faulting fresh pages (see benchmarks/allocator.py); "
        "'default' leaves malloc as it is. --quick runs leave it as it is",
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
    if device.type == "cpu" and args.malloc == "keep" and not args.quick and not args.list:
        allocator.keep_freed_memory()
    try:
        return _run(args, device)
    finally:
        torch.set_num_threads(previous_threads)


def _run(args: argparse.Namespace, device: torch.device) -> int:
    timeout = args.case_timeout if args.case_timeout is not None else default_case_timeout(device, args.quick)
    cfg = Config(
        device=device,
        quick=args.quick,
        compile=args.compile,
        budget=default_budget(device, args.quick),
        case_timeout_s=timeout or None,
    )
    if args.list:
        for case in collect_cases(cfg):
            if matches(case.id, args.filter):
                print(case.id)
        return 0
    out = args.out or default_out(cfg)
    doc = run_suite(cfg, args.filter, out=out)
    print(f"wrote {out}", file=sys.stderr)
    if not args.no_markdown:
        md = out.with_suffix(".md")
        plots = render_plots(doc, out.parent, out.stem) if args.plots else None
        md.write_text(render_markdown(doc, plots=plots, md_path=md))
        print(f"wrote {md}", file=sys.stderr)
    return 0
