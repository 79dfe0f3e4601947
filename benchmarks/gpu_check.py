"""One-shot GPU check: the CUDA correctness tests, then the GPU targets, in under eight minutes on one GPU.

Usage (from the repository root; nothing is installed, the current interpreter runs everything)::

    python -m benchmarks.gpu_check                       # on a CUDA machine: benchmarks/results/gpu-<date>.*
    python -m benchmarks.gpu_check --out DIR --budget-s 420
    python -m benchmarks.gpu_check --dry-run             # rehearsal on CPU at tiny sizes (CI, no GPU)
    python -m benchmarks.gpu_check --dry-run --device cuda --compile none   # a short smoke run on the GPU
    python -m benchmarks.gpu_check --render benchmarks/results/gpu-<date>.partial.jsonl   # after a kill

1. ``pytest -m triton tests/ops tests/layers`` in a subprocess, capped (``--tests-cap-s``, at most 45% of
   the budget): pass/fail counts, the failing ids and the log (:mod:`benchmarks.correctness`).
2. The multi-scale discriminator forward+backward (pix2pixHD configuration, 3 scales, 4×3×512×512 bfloat16
   channels_last) against pix2pixHD's formulation, with peak memory; the R1 step through it against R1
   written by hand through pix2pixHD's.
3. Each fused op (bias_act lrelu, pixel_norm, instance_norm_act lrelu, adain, inject_noise,
   minibatch_stddev) at 16×512×64×64 bfloat16, forward and forward+backward: ganblocks, the plain eager
   formulation, torch.compile of it and of ganblocks, and a copy of the op's input (the bandwidth reference).

The budget (``--budget-s``, default 420 s) drives everything: the tests get their cap, each case a fair
share of what is left (unused time flows to the next ones), measured by the suite's own harness
(:func:`benchmarks.measure.run_case`: L2 flush between repetitions, deadlines between repetitions). Every case
is appended to ``gpu-<date>.partial.jsonl`` as it finishes; the JSON and the markdown (each target, met or
not) are written at the end, also when the budget runs out or the run is interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import torch

from . import correctness, env, gpu_report, gpu_targets
from .case import Case, matches
from .config import Config
from .discriminators import multiscale_case
from .harness import Budget, copy_bandwidth_gbs
from .measure import describe, run_case, safe, summary_line
from .ops import OPS, op_case
from .penalties import r1_case
from .providers import skipped
from .sink import PARTIAL_SUFFIX, SCHEMA, Sink, load_partial

RESULTS_DIR = Path(__file__).resolve().parent / "results"
OP_SHAPE, DRY_OP_SHAPE = (16, 512, 64, 64), (2, 8, 8, 8)
MSD_SHAPE, DRY_MSD_SHAPE = (4, 3, 512, 512), (1, 3, 32, 32)
TESTS_SHARE = 0.45  # the tests get at most this share of the budget
WRITE_RESERVE_S = 10.0  # kept back for writing the results
MIN_CASE_S = 5.0  # a case is not started with less than this left
NOT_IN_CHECK = "not measured in the GPU check (its targets compare with plain eager)"


def check_budget(dry_run: bool) -> Budget:
    if dry_run:
        return Budget(warmup=1, min_reps=2, max_reps=2, seconds=0.0)
    return Budget(warmup=3, min_reps=10, max_reps=100, seconds=0.6)


def _without(case: Case, providers: Sequence[str], reason: str) -> Case:
    return dataclasses.replace(
        case, providers={**case.providers, **{p: skipped(reason) for p in providers if p in case.providers}}
    )


def plan(cfg: Config, dry_run: bool) -> list[tuple[Case, float]]:
    """The cases in order, each with its weight in the split of the budget: the discriminator step and R1
    first (eager, quick), then the ops (two compiles each)."""
    op_shape = DRY_OP_SHAPE if dry_run else OP_SHAPE
    msd_shape = DRY_MSD_SHAPE if dry_run else MSD_SHAPE
    # On CPU bfloat16 convolutions are emulated (seconds per step even at 32×32): a CPU rehearsal runs the
    # networks in float32, contiguous.
    dtype, layout = ("bfloat16", "channels_last") if cfg.cuda else ("float32", "contiguous")
    msd = multiscale_case(cfg, msd_shape, dtype, layout, modes=("forward+backward",))
    r1 = r1_case(cfg, "multiscale", msd_shape, dtype, layout)
    out = [
        (_without(msd, ("reference", "compile", "compile(ganblocks)"), NOT_IN_CHECK), 0.75),
        (_without(r1, ("reference",), NOT_IN_CHECK), 0.75),
    ]
    for spec in OPS.values():
        # forward+backward first: past a case's share compiled providers stop, and the compile target
        # reads forward+backward (the bandwidth target reads ganblocks' forward, which always runs).
        case = op_case(
            cfg, spec, op_shape, torch.bfloat16, modes=("forward+backward", "forward"), group="gpu_check"
        )
        out.append((_without(case, ("reference",), "not measured in the GPU check (time)"), 1.0))
    return out


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for gpu-<date>.json and .md")
    p.add_argument("--budget-s", type=float, default=420.0, help="wall-clock budget of the whole check")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes: rehearse the flow (on CPU by default)")
    p.add_argument("--device", choices=("cuda", "cpu"), default=None, help="default: cuda, cpu for --dry-run")
    p.add_argument(
        "--tests",
        choices=("auto", "run", "skip"),
        default="auto",
        help="correctness tests (auto: on CUDA, not in a dry run)",
    )
    p.add_argument("--tests-cap-s", type=float, default=150.0, help="time cap of the correctness tests")
    p.add_argument(
        "--compile",
        choices=("auto", "all", "none"),
        default="auto",
        help="torch.compile providers (auto: on CUDA; not in a CPU dry run, where each compile takes minutes)",
    )
    p.add_argument("--filter", action="append", default=[], metavar="NAME", help="only matching case ids")
    p.add_argument(
        "--render",
        type=Path,
        default=None,
        metavar="RESULTS",
        help="only write the markdown of a check's JSON, or of the .partial.jsonl a killed check left",
    )
    return p.parse_args(argv)


def render_file(path: Path) -> Path:
    """The markdown beside a check's results (a partial file too), targets recomputed."""
    doc = load_partial(path) if path.name.endswith(PARTIAL_SUFFIX) else json.loads(path.read_text())
    dry = bool((doc.get("gpu_check") or {}).get("dry_run"))
    doc["targets"] = _targets(doc, dry)
    md = path.with_name(path.name.removesuffix(PARTIAL_SUFFIX).removesuffix(".json") + ".md")
    md.write_text(gpu_report.render(doc))
    return md


def _targets(doc: dict[str, Any], dry_run: bool) -> list[dict[str, Any]]:
    targets = gpu_targets.evaluate_gpu(doc, run_device="cuda" if dry_run else None)
    if dry_run:
        for t in targets:
            t["status"], t["detail"] = "dry run", f"{t['detail']} (dry run: not a measurement)"
    return targets


def _tests(args: argparse.Namespace, cuda: bool, end: float, log: Path, notes: list[str]) -> dict[str, Any]:
    command = correctness.pytest_command()
    if args.tests == "skip" or (args.tests == "auto" and (args.dry_run or not cuda)):
        if args.tests == "skip":
            why = "--tests skip"
        elif not cuda:
            why = "no CUDA device (under TRITON_INTERPRET they take many minutes; --tests run runs them)"
        else:
            why = "a dry run (--tests run runs them)"
        notes.append(f"Correctness tests skipped: {why}.")
        return {"status": "skipped", "reason": why, "command": shlex.join(command)}
    cap = min(args.tests_cap_s, TESTS_SHARE * max(0.0, end - time.perf_counter()))
    print(f"correctness tests (cap {cap:.0f} s), log: {log}", file=sys.stderr, flush=True)
    result = correctness.run_tests(command, cap, log)
    print(f"    {result['status']}: {result.get('counts')}", file=sys.stderr, flush=True)
    return result


def _measure(
    cases: list[tuple[Case, float]],
    cfg: Config,
    end: float,
    sink: Sink,
    check: dict[str, Any],
    results: list[dict[str, Any]],
) -> None:
    min_case = 0.5 if check["dry_run"] else MIN_CASE_S
    for i, (case, _) in enumerate(cases):
        now = time.perf_counter()
        left = end - WRITE_RESERVE_S - now
        if left < min_case:
            check["not_run"] += [c.id for c, _ in cases[i:]]
            check["notes"].append(f"Budget spent: {len(cases) - i} case(s) not run.")
            return
        share = left * cases[i][1] / sum(w for _, w in cases[i:])
        print(f"[{i + 1}/{len(cases)}] {case.id} (up to {share:.0f} s)", file=sys.stderr, flush=True)
        try:
            # Past its share a case does the least that still measures; past the budget it stops.
            records = run_case(case, cfg, deadline=now + share, hard_deadline=end - WRITE_RESERVE_S)
        except Exception as exc:  # one case failing leaves the others their turn
            check["notes"].append(f"{case.id} raised {describe(exc)}")
            check["cases"].append(
                {"id": case.id, "status": "error", "seconds": 0.0, "slice_s": round(share, 1)}
            )
            continue
        cut = any(r["status"] == "timed_out" or (r["time_ms"] or {}).get("timed_out") for r in records)
        seconds = time.perf_counter() - now
        check["cases"].append(
            {
                "id": case.id,
                "status": "timed_out" if cut else "ok",
                "seconds": round(seconds, 1),
                "slice_s": round(share, 1),
            }
        )
        results.extend(records)
        sink.case(case.id, records, case.note)
        sink.section("gpu_check", check)
        print(f"    {seconds:.1f}s  {summary_line(records)}", file=sys.stderr, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    args.argv = argv
    if args.render is not None:
        print(f"wrote {render_file(args.render)}", file=sys.stderr)
        return 0
    start = time.perf_counter()
    end = start + args.budget_s
    device = torch.device(args.device or ("cpu" if args.dry_run else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        hint = "" if args.dry_run else " (rehearse on CPU with --dry-run)"
        print(f"no CUDA device is available{hint}", file=sys.stderr)
        return 2
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)  # steady ratios on a shared machine, as the suite does
    # A SIGTERM (``timeout``, a job runner) ends the check like Ctrl-C: what was measured is written.
    try:
        previous: Any = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread: leave signals alone
        previous = _interrupt
    try:
        return _run(args, device, start, end)
    finally:
        if previous is not _interrupt:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        torch.set_num_threads(threads)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run(args: argparse.Namespace, device: torch.device, start: float, end: float) -> int:
    cuda = device.type == "cuda"
    stem = f"gpu-{'dryrun-' if args.dry_run else ''}{datetime.date.today().isoformat()}"
    out = args.out / f"{stem}.json"
    compile_mode = args.compile if args.compile != "auto" else ("all" if cuda else "none")
    cfg = Config(device, quick=args.dry_run, compile=compile_mode, budget=check_budget(args.dry_run))
    copy_gbs = safe(copy_bandwidth_gbs, device, megabytes=256 if cuda else 8)
    meta = env.collect(device)
    meta.update(
        {
            "device": device.type,
            "quick": args.dry_run,
            "compile": compile_mode,
            "budget": cfg.budget.__dict__,
            "copy_bandwidth_gbs": round(copy_gbs, 2) if copy_gbs else None,
            "argv": args.argv,
        }
    )
    notes: list[str] = []
    if args.dry_run:
        notes.append(
            f"Dry run on {device.type.upper()} at tiny sizes: it rehearses the flow; its numbers mean nothing."
        )
    if not cuda:
        notes.append(
            "No CUDA: no L2 flush, no peak memory (the memory target cannot be evaluated); the networks run in "
            "float32 contiguous (bfloat16 convolutions are emulated on CPU)."
        )
    if compile_mode == "none":
        notes.append(
            "torch.compile providers skipped (--compile none, or a CPU dry run): rerun with --compile all."
        )
    check: dict[str, Any] = {
        "dry_run": args.dry_run,
        "budget_s": args.budget_s,
        "tests": None,
        "cases": [],
        "not_run": [],
        "notes": notes,
    }
    sink = Sink(out, meta)
    results: list[dict[str, Any]] = []
    cases = [(c, w) for c, w in plan(cfg, args.dry_run) if matches(c.id, args.filter)]
    try:
        check["tests"] = _tests(args, cuda, end, args.out / f"{stem}-pytest.log", notes)
        sink.section("gpu_check", check)
        _measure(cases, cfg, end, sink, check, results)
    except KeyboardInterrupt:
        notes.append("Interrupted: what was measured so far is written.")
    finally:
        meta["duration_s"] = round(time.perf_counter() - start, 1)
        doc: dict[str, Any] = {
            "schema": SCHEMA,
            "meta": meta,
            "results": results,
            "notes": {c.id: c.note for c, _ in cases if c.note},
            "gpu_check": check,
        }
        doc["targets"] = _targets(doc, args.dry_run)
        sink.finish(doc, out)
        md = out.with_suffix(".md")
        md.write_text(gpu_report.render(doc))
        print(f"wrote {out} and {md} in {meta['duration_s']} s", file=sys.stderr)
    tests = check["tests"] or {}
    return 1 if tests.get("status") in ("failed", "error") else 0


if __name__ == "__main__":
    raise SystemExit(main())
