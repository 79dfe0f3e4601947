"""The markdown of one results file: set-up, speed targets, and per-area time, memory and bandwidth tables."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Optional

from . import targets
from .case import PROVIDERS
from .rows import Record, size_label

AREAS = ("ops", "layers", "discriminators", "generators", "losses", "penalties", "training", "dispatch")
DISPATCH_PROVIDERS = ("public(torch)", "public(auto)", "reference-direct")
AREA_TITLES = {
    "ops": "Fused ops",
    "layers": "Layers",
    "discriminators": "Discriminators",
    "generators": "Generators",
    "losses": "Losses",
    "penalties": "Penalties",
    "training": "Training steps",
    "dispatch": "Dispatch overhead (CPU, per call)",
}
CELL_STATUS = {"skipped": "skip", "error": "error", "timed_out": "timed out"}
STATUS_MARK = {
    "met": "met",
    "missed": "**missed**",
    "within noise": "within noise",
    "not measurable on this device": "not measurable here",
    "not measured": "not measured",
}

# The area of a speed target, from the number its record keeps (the foundation's, the discriminators' and
# the losses' targets were set together; results files store the number).
TARGET_AREAS = {2: "fused ops", 3: "discriminators", 4: "penalties, losses"}


def target_area(t: Record) -> str:
    """The area a speed target belongs to; the record's own number where it has none."""
    return TARGET_AREAS.get(t["issue"], f"#{t['issue']}")


def _ms(t: Optional[Record], scale: float = 1.0, unit: str = "") -> str:
    if not t:
        return "–"
    med, lo, hi = t["median"] * scale, t["p20"] * scale, t["p80"] * scale
    return f"{num(med)}{unit} ({num(lo)}–{num(hi)})"


def num(v: float) -> str:
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def mib(b: Optional[int]) -> str:
    if b is None:
        return "–"
    return f"{b / 2**20:.2f}" if b < 10 * 2**20 else f"{b / 2**20:.0f}"


def _gflop(f: Optional[int]) -> str:
    if f is None:
        return "–"
    return f"{f / 1e9:.3g}" if f else "0"


def _speedup(r: Optional[Record]) -> str:
    if not r or r.get("speedup_vs_plain") is None:
        return "–"
    return f"{r['speedup_vs_plain']:.2f}×"


def _group(results: list[Record], area: str) -> dict[tuple[str, str], dict[str, Record]]:
    rows: dict[tuple[str, str], dict[str, Record]] = {}
    for r in results:
        if r["area"] == area:
            rows.setdefault((r["id"], r["mode"]), {})[r["provider"]] = r
    return rows


def skips(results: list[Record], area: str) -> list[str]:
    reasons: dict[tuple[str, str, str], int] = defaultdict(int)
    for r in results:
        if r["area"] == area and r["status"] != "ok":
            reasons[(r["provider"], r["status"], r["reason"] or "")] += 1
    return [f"- {p} {s} ({n}×): {why}" for (p, s, why), n in sorted(reasons.items())]


def time_table(results: list[Record], area: str) -> list[str]:
    if area == "dispatch":
        lines = [
            "| op | public(torch) µs | public(auto) µs | reference-direct µs | overhead of public(torch) µs (p20) |",
            "|---|---|---|---|---|",
        ]
        for (_, _mode), provs in _group(results, area).items():
            any_rec = next(iter(provs.values()))
            cells = [_ms(provs.get(p, {}).get("time_ms"), 1e3) for p in DISPATCH_PROVIDERS]
            pub, ref = (
                provs.get("public(torch)", {}).get("time_ms"),
                provs.get("reference-direct", {}).get("time_ms"),
            )
            over = f"{(pub['p20'] - ref['p20']) * 1e3:.2f}" if pub and ref else "–"
            # Inputs that require grad: autograd records the call (training's path).
            label = any_rec["case"] + (" (autograd)" if any_rec["params"].get("autograd") else "")
            lines.append(f"| {label} | {' | '.join(cells)} | {over} |")
        return lines
    lines = [
        "| case | size | mode | ganblocks ms | reference ms | plain ms | compile ms | compile(ganblocks) ms "
        "| ganblocks vs plain | compile vs plain | compile(ganblocks) vs plain |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (_, mode), provs in _group(results, area).items():
        any_rec = next(iter(provs.values()))
        cells = []
        for p in PROVIDERS:
            r = provs.get(p)
            if r is None:
                cells.append("")
            elif r.get("time_ms"):
                cells.append(_ms(r["time_ms"]) + (" (cut)" if r["time_ms"].get("timed_out") else ""))
            else:
                cells.append(CELL_STATUS.get(r["status"], r["status"]))
        speedups = " | ".join(_speedup(provs.get(p)) for p in ("ganblocks", "compile", "compile(ganblocks)"))
        lines.append(
            f"| {any_rec['case']} | {size_label(any_rec['params'])} | {mode} | {' | '.join(cells)} | {speedups} |"
        )
    return lines


def memory_table(results: list[Record], area: str, cuda: bool) -> list[str]:
    head = (
        "| case | size | mode | saved activations MiB (ganblocks / plain) | parameter gradients MiB "
        "(ganblocks / plain) | GFLOP (ganblocks / plain) |"
    )
    sep = "|---|---|---|---|---|---|"
    if cuda:
        head += " peak memory MiB (ganblocks / plain) |"
        sep += "---|"
    lines = [head, sep]
    for (_, mode), provs in _group(results, area).items():
        if mode not in ("forward+backward", "step", "double_backward"):
            continue
        g, p = provs.get("ganblocks") or {}, provs.get("plain") or {}
        if not g.get("time_ms") and not p.get("time_ms"):
            continue
        any_rec = g or p
        row = (
            f"| {any_rec['case']} | {size_label(any_rec['params'])} | {mode} | "
            f"{mib(g.get('saved_bytes_activations'))} / {mib(p.get('saved_bytes_activations'))} | "
            f"{mib(g.get('param_grad_bytes'))} / {mib(p.get('param_grad_bytes'))} | "
            f"{_gflop(g.get('flops'))} / {_gflop(p.get('flops'))} |"
        )
        if cuda:
            row += f" {mib(g.get('peak_memory_bytes'))} / {mib(p.get('peak_memory_bytes'))} |"
        lines.append(row)
    return lines


def bandwidth_table(results: list[Record]) -> list[str]:
    rows = [
        r for r in results if r["area"] == "ops" and r.get("bandwidth_gbs") and r["provider"] != "reference"
    ]
    if not rows:
        return []
    lines = [
        "| case | size | mode | provider | GB/s | copy of the input GB/s | of copy |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        frac, copy = r.get("bandwidth_fraction_of_copy"), r.get("copy_bandwidth_gbs")
        lines.append(
            f"| {r['case']} | {size_label(r['params'])} | {r['mode']} | {r['provider']} | {num(r['bandwidth_gbs'])} | "
            f"{'–' if copy is None else num(copy)} | {'–' if frac is None else f'{frac * 100:.0f}%'} |"
        )
    return lines


def render_markdown(
    doc: Record,
    *,
    heading_level: int = 1,
    plots: Optional[dict[str, Path]] = None,
    md_path: Optional[Path] = None,
) -> str:
    """The results of one run as markdown: set-up, targets, per-area time and memory tables."""
    # Targets and derived figures are views of the results: recompute them with the current definitions.
    doc = {**doc, "targets": targets.evaluate(doc), "derived": targets.derived(doc)}
    h = "#" * heading_level
    meta = doc["meta"]
    results = doc["results"]
    cuda = meta["device"] == "cuda"
    gpu = meta.get("gpu") or {}
    versions = meta["versions"]
    git = meta.get("git") or {}
    commit = (git.get("commit") or "unknown")[:12] + (" (uncommitted changes)" if git.get("dirty") else "")
    lines = [
        f"{h} ganblocks benchmarks: {meta['device'].upper()}{' (quick)' if meta.get('quick') else ''}, {meta['date'][:10]}",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {meta['machine']['cpu']} ({meta['machine']['cpu_count']} cores, torch threads: {meta['machine']['torch_threads']}) |",
        f"| GPU | {gpu.get('name', 'none')}{' (CUDA ' + str(gpu.get('cuda')) + ')' if gpu else ''} |",
        f"| versions | python {versions['python']}, torch {versions['torch']}, triton {versions.get('triton')}, ganblocks {versions.get('ganblocks')} |",
        f"| commit | {commit} |",
        f"| run | `python -m benchmarks {' '.join(meta.get('argv') or [])}` in {meta.get('duration_s')} s |",
    ]
    if meta.get("copy_bandwidth_gbs"):
        lines.append(f"| device-to-device copy | {meta['copy_bandwidth_gbs']} GB/s (read + write) |")
    if meta.get("allocator"):
        lines.append(f"| memory allocator | {meta['allocator']} |")
    lines += [
        "",
        "Times are medians with the 20th–80th percentile range, in milliseconds; every provider of a case is timed "
        "in turn, repetition by repetition, so machine noise hits all alike. *ganblocks vs plain* is plain's "
        "median over ganblocks' (above 1: ganblocks is faster). *Saved activations* are the bytes autograd keeps "
        "for the backward pass beyond the inputs and parameters (exact, noise-free); *parameter gradients* are the "
        "bytes of the `.grad` tensors one step produces (each a reduction over the batch); GFLOP counts matmuls "
        "and convolutions only. On CUDA every timed repetition starts with a flushed L2 cache; bandwidth is "
        "compared with a copy of the op's own input (same size and dtype, timed the same way). "
        "*compile(ganblocks)* is `torch.compile` of the ganblocks side; *(cut)* marks a timing the case's time "
        "budget stopped early.",
        "",
        f"{h}# Speed targets",
        "",
        "| area | target | status | detail |",
        "|---|---|---|---|",
    ]
    for t in doc.get("targets", []):
        lines.append(
            f"| {target_area(t)} | {t['target']} | {STATUS_MARK.get(t['status'], t['status'])} | {t['detail']} |"
        )
    for t in doc.get("targets", []):
        if not t["rows"]:
            continue
        lines += ["", f"*{t['key']}*: {STATUS_MARK.get(t['status'], t['status'])}", ""]
        lines += [f"- {row['status']}: `{row['case']}`: {row['detail']}" for row in t["rows"]]
    for area in AREAS:
        if not any(r["area"] == area for r in results):
            continue
        lines += ["", f"{h}# {AREA_TITLES[area]}", ""]
        if plots and area in plots:
            target = plots[area]
            rel = os.path.relpath(target, md_path.parent) if md_path else target.name
            lines += [f"![{AREA_TITLES[area]} speedups]({rel})", ""]
        lines += time_table(results, area)
        if area != "dispatch":
            lines += ["", *memory_table(results, area, cuda)]
        if area == "ops":
            bw = bandwidth_table(results)
            if bw:
                lines += ["", "Achieved bandwidth (least-traffic bytes / median time):", "", *bw]
        notes = sorted({doc.get("notes", {}).get(r["id"], "") for r in results if r["area"] == area} - {""})
        skipped = skips(results, area)
        if notes or skipped:
            lines += [""]
            lines += [f"- {n}" for n in notes]
            lines += skipped
    derived = doc.get("derived") or []
    if derived:
        lines += ["", f"{h}# Derived", "", "| figure | provider | ms | vs plain |", "|---|---|---|---|"]
        for d in derived:
            sp = "–" if d.get("speedup_vs_plain") is None else f"{d['speedup_vs_plain']:.2f}×"
            lines.append(f"| `{d['id']}` ({d['formula']}) | {d['provider']} | {num(d['time_ms'])} | {sp} |")
    return "\n".join(lines) + "\n"
