"""The one command for a lent GPU: the GPU tests, then the CUDA benchmarks, results under benchmarks/results/.

    python -m benchmarks.gpu_check                        # tests (capped), then every area on CUDA
    python -m benchmarks.gpu_check --area ops --area training --skip-tests
    python -m benchmarks.gpu_check --dry-run              # rehearsal on CPU: quick sizes, no tests

Tests: ``pytest -m triton tests/ops tests/layers`` (every test that runs a Triton kernel, on CUDA) with a time
cap; the log goes beside the results and its last line (pytest's summary) into the results' ``meta``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from .__main__ import AREAS, run
from .common import RESULTS, Config, markdown

ROOT = RESULTS.parent.parent


def run_tests(log: Path, timeout_s: float) -> str:
    """pytest's summary line, or why there is none; the whole output goes to ``log``."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "-m",
        "triton",
        "tests/ops",
        "tests/layers",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
    }
    try:
        done = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        out, summary = done.stdout + done.stderr, (done.stdout.strip().splitlines() or ["no output"])[-1]
    except subprocess.TimeoutExpired as e:
        out, summary = str(e.stdout or ""), f"stopped after {timeout_s:.0f} s (--tests-timeout)"
    log.write_text(out)
    return summary


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n")[0])
    p.add_argument("--area", action="append", choices=tuple(AREAS), help="only this area (repeatable)")
    p.add_argument("--skip-tests", action="store_true", help="benchmarks only")
    p.add_argument("--tests-timeout", type=float, default=180.0, help="seconds the tests may take")
    p.add_argument(
        "--compile",
        choices=("none", "blocks", "all"),
        default="blocks",
        help="torch.compile: ops and layers (default), all, or none",
    )
    p.add_argument("--dry-run", action="store_true", help="rehearse on CPU at the quick sizes (no tests)")
    p.add_argument(
        "--out", type=Path, default=RESULTS, help="folder of the results (default benchmarks/results)"
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device (rehearse on CPU with --dry-run)", file=sys.stderr)
        return 2
    stem = args.out / f"{'cpu-quick' if args.dry_run else 'cuda'}-{datetime.date.today().isoformat()}"
    args.out.mkdir(parents=True, exist_ok=True)
    tests = (
        "skipped"
        if args.skip_tests or args.dry_run
        else run_tests(stem.with_name(stem.name + "-pytest.log"), args.tests_timeout)
    )
    print(f"tests: {tests}", file=sys.stderr)
    if args.dry_run:
        torch.set_num_threads(1)  # as the CPU suite runs
    cfg = Config(
        torch.device("cpu" if args.dry_run else "cuda"),
        quick=args.dry_run,
        min_run_time=0.01,
        compile=args.compile,
    )
    doc = run(cfg, args.area or list(AREAS), stem.with_suffix(".json"), meta={"tests": tests})
    print(markdown(doc))
    return 1 if "failed" in tests or "error" in tests else 0


if __name__ == "__main__":
    raise SystemExit(main())
