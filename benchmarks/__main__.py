"""Run the benchmarks: every area (or those named), write one compact JSON and one markdown table.

python -m benchmarks --device cpu --quick --out /tmp/quick.json      # CI's smoke run
python -m benchmarks --device cpu                                    # results/cpu-DATE.{json,md}
python -m benchmarks --device cpu --area training --out /tmp/a.json  # prints the table too
python -m benchmarks --compare /tmp/a.json /tmp/b.json               # before/after, row by row
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from . import augment, dispatch, layers, losses, metrics, networks, ops, targets, training
from .common import RESULTS, Config, environment, headline, markdown, measure, speedup

AREAS = {
    "ops": ops,
    "layers": layers,
    "networks": networks,
    "losses": losses,
    "training": training,
    "augment": augment,
    "dispatch": dispatch,
    "metrics": metrics,
}


def run(cfg: Config, areas: Sequence[str], out: Path, name_filter: str = "", meta: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Measure every row of ``areas`` whose ``area/id`` contains ``name_filter``; write ``out`` and its .md."""
    start = time.perf_counter()
    rows = [r for a in areas for r in AREAS[a].rows(cfg) if name_filter in f"{r.area}/{r.id}"]
    results: list[dict[str, Any]] = []
    for i, row in enumerate(rows, 1):
        t0 = time.perf_counter()
        recs = measure(row, cfg)
        for r in recs:  # compact: 4 significant digits
            r |= {k: float(f"{r[k]:.4g}") for k in ("median_ms", "iqr_ms") if k in r}
        results += recs
        times = " ".join(
            f"{r['provider']}:{r['mode']}={r['median_ms']:.3g}" for r in recs if "median_ms" in r
        )
        print(
            f"[{i}/{len(rows)}] {row.area}/{row.id} {time.perf_counter() - t0:.1f}s {times}", file=sys.stderr
        )
    meta = (
        environment(cfg.device)
        | {"quick": cfg.quick, "compile": cfg.compile, "areas": list(areas)}
        | (meta or {})
    )
    meta["seconds"] = round(time.perf_counter() - start)
    doc = {"meta": meta, "results": results, "notes": {f"{r.area}/{r.id}": r.note for r in rows if r.note}}
    doc |= {"targets": targets.evaluate(doc), "headline": headline(results)}
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    out.with_suffix(".json").write_text(text.replace(',{"area"', ',\n{"area"') + "\n")  # a record per line
    out.with_suffix(".md").write_text(markdown(doc))
    return doc


def compare(before: Path, after: Path) -> str:
    """Before's median over after's for every record both have (> 1: after is faster), and ganblocks' speedup
    over plain in each run: the ratio that machine drift between the two runs leaves alone."""
    a, b = (json.loads(p.read_text())["results"] for p in (before, after))
    old = {(r["area"], r["row"], r["provider"], r["mode"]): r for r in a if "median_ms" in r}
    lines = [
        "| row | provider | mode | before ms | after ms | before/after | × plain before | × plain after |"
    ]
    lines.append("|---|---|---|---:|---:|---:|---:|---:|")
    for r in b:
        if (o := old.get((r["area"], r["row"], r["provider"], r["mode"]))) and "median_ms" in r:
            times = f"{o['median_ms']:.4g} ± {o['iqr_ms']:.2g} | {r['median_ms']:.4g} ± {r['iqr_ms']:.2g}"
            ratios = [f"{x:.3f}" if x else "" for x in (speedup(a, o), speedup(b, r))]
            lines.append(f"| {r['area']}/{r['row']} | {r['provider']} | {r['mode']} | {times} | {o['median_ms'] / r['median_ms']:.3f} | {' | '.join(ratios)} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument(
        "--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu"
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes and short timing: CI's smoke run")
    p.add_argument("--area", action="append", choices=tuple(AREAS), help="only this area (repeatable)")
    p.add_argument("--filter", default="", help="only rows whose 'area/name[params]' contains this")
    p.add_argument(
        "--out", type=Path, help="results .json (a .md beside it); default results/<device>-<date>"
    )
    p.add_argument("--min-run-time", type=float, help="CPU: seconds per timing (default 0.5, quick 0.01)")
    p.add_argument(
        "--threads", type=int, default=1, help="CPU threads (default 1: steady ratios; 0: torch's)"
    )
    p.add_argument(
        "--compile",
        choices=("none", "blocks", "all"),
        default="blocks",
        help="torch.compile (CUDA): ops and layers (default), all, or none",
    )
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="compare two results")
    args = p.parse_args(argv)
    if args.compare:
        print(compare(*args.compare))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is available", file=sys.stderr)
        return 2
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    mrt = args.min_run_time or (0.01 if args.quick else 0.5)
    cfg = Config(torch.device(args.device), args.quick, mrt, compile=args.compile)
    kind = f"{args.device}-quick" if args.quick else args.device
    out = args.out or RESULTS / f"{kind}-{datetime.date.today().isoformat()}.json"
    print(markdown(run(cfg, args.area or list(AREAS), out, args.filter)))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
