"""Turn a results JSON into markdown tables (and optional speedup plots).

Usage::

    python -m benchmarks.render benchmarks/results/cpu-2026-01-01.json                 # -> .md beside it
    python -m benchmarks.render RESULTS.json --out docs/x.md --plots --heading-level 2
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Optional

Record = dict[str, Any]

AREAS = ("ops", "layers", "discriminators", "losses", "penalties", "training", "dispatch")
PROVIDERS = ("ganblocks", "reference", "plain", "compile")
DISPATCH_PROVIDERS = ("public(torch)", "public(auto)", "reference-direct")
AREA_TITLES = {
    "ops": "Fused ops",
    "layers": "Layers",
    "discriminators": "Discriminators",
    "losses": "Losses",
    "penalties": "Penalties",
    "training": "Training steps",
    "dispatch": "Dispatch overhead (CPU, per call)",
}
DTYPE_SHORT = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}
HIDDEN_PARAMS = {"shape", "dtype", "layout", "group", "image", "tensor_device"}
STATUS_MARK = {
    "met": "met",
    "missed": "**missed**",
    "within noise": "within noise",
    "not measurable on this device": "not measurable here",
    "not measured": "not measured",
}


def size_label(params: dict[str, Any]) -> str:
    """``4×64×64×64 f32`` plus the layout when not contiguous and any other parameter."""
    parts = []
    shape = params.get("shape") or params.get("image")
    if shape:
        parts.append("×".join(str(s) for s in shape))
    if "dtype" in params:
        parts.append(DTYPE_SHORT.get(params["dtype"], params["dtype"]))
    if params.get("layout") == "channels_last":
        parts.append("channels_last")
    for k, v in params.items():
        if k not in HIDDEN_PARAMS:
            parts.append(f"{k}={v}")
    return " ".join(parts)


def _ms(t: Optional[Record], scale: float = 1.0, unit: str = "") -> str:
    if not t:
        return "–"
    med, lo, hi = t["median"] * scale, t["p20"] * scale, t["p80"] * scale
    return f"{_num(med)}{unit} ({_num(lo)}–{_num(hi)})"


def _num(v: float) -> str:
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def _mib(b: Optional[int]) -> str:
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


def _skips(results: list[Record], area: str) -> list[str]:
    reasons: dict[tuple[str, str, str], int] = defaultdict(int)
    for r in results:
        if r["area"] == area and r["status"] != "ok":
            reasons[(r["provider"], r["status"], r["reason"] or "")] += 1
    return [f"- {p} {s} ({n}×): {why}" for (p, s, why), n in sorted(reasons.items())]


def _time_table(results: list[Record], area: str) -> list[str]:
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
            lines.append(f"| {any_rec['case']} | {' | '.join(cells)} | {over} |")
        return lines
    lines = [
        "| case | size | mode | ganblocks ms | reference ms | plain ms | compile ms | ganblocks vs plain | compile vs plain |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (_, mode), provs in _group(results, area).items():
        any_rec = next(iter(provs.values()))
        cells = []
        for p in PROVIDERS:
            r = provs.get(p)
            if r is None:
                cells.append("")
            elif r.get("time_ms"):
                cells.append(_ms(r["time_ms"]))
            else:
                cells.append("skip" if r["status"] == "skipped" else "error")
        lines.append(
            f"| {any_rec['case']} | {size_label(any_rec['params'])} | {mode} | {' | '.join(cells)} | "
            f"{_speedup(provs.get('ganblocks'))} | {_speedup(provs.get('compile'))} |"
        )
    return lines


def _memory_table(results: list[Record], area: str, cuda: bool) -> list[str]:
    head = "| case | size | mode | saved activations MiB (ganblocks / plain) | GFLOP (ganblocks / plain) |"
    sep = "|---|---|---|---|---|"
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
            f"{_mib(g.get('saved_bytes_activations'))} / {_mib(p.get('saved_bytes_activations'))} | "
            f"{_gflop(g.get('flops'))} / {_gflop(p.get('flops'))} |"
        )
        if cuda:
            row += f" {_mib(g.get('peak_memory_bytes'))} / {_mib(p.get('peak_memory_bytes'))} |"
        lines.append(row)
    return lines


def _bandwidth_table(results: list[Record]) -> list[str]:
    rows = [
        r for r in results if r["area"] == "ops" and r.get("bandwidth_gbs") and r["provider"] != "reference"
    ]
    if not rows:
        return []
    lines = [
        "| case | size | mode | provider | GB/s | of copy |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        frac = r.get("bandwidth_fraction_of_copy")
        lines.append(
            f"| {r['case']} | {size_label(r['params'])} | {r['mode']} | {r['provider']} | {r['bandwidth_gbs']:.0f} | "
            f"{'–' if frac is None else f'{frac * 100:.0f}%'} |"
        )
    return lines


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _speedup_rows(doc: Record, areas: tuple[str, ...], modes: tuple[str, ...]) -> list[Record]:
    return [
        r
        for r in doc["results"]
        if r["area"] in areas
        and r["provider"] == "ganblocks"
        and r.get("speedup_vs_plain")
        and r["mode"] in modes
    ]


def _speedup_figure(plt: Any, doc: Record, rows: list[Record], title: str) -> Any:
    """Horizontal bars from 1 to ganblocks' speedup over plain, on a log axis, with the p20–p80 range."""
    by_key = {(r["id"], r["mode"], r["provider"]): r for r in doc["results"]}
    labels, values, lows, highs = [], [], [], []
    for r in rows:
        label = f"{r['case']} {size_label(r['params'])} {r['mode']}"
        labels.append(label if len(label) <= 60 else label[:57] + "...")
        base = by_key[(r["id"], r["mode"], "plain")]["time_ms"]
        ours = r["time_ms"]
        values.append(r["speedup_vs_plain"])
        lows.append(max(0.0, r["speedup_vs_plain"] - base["p20"] / ours["p80"]))
        highs.append(max(0.0, base["p80"] / ours["p20"] - r["speedup_vs_plain"]))
    fig, ax = plt.subplots(figsize=(10, 0.3 * len(rows) + 1.3))
    colors = ["#2a9d8f" if v >= 1 else "#e76f51" for v in values]
    ax.barh(
        range(len(rows)),
        [v - 1.0 for v in values],
        left=1.0,
        color=colors,
        xerr=[lows, highs],
        error_kw={"elinewidth": 0.8},
    )
    ax.axvline(1.0, color="black", linewidth=0.8)
    # A log axis shows 2x faster and 2x slower as equally far from 1.
    ax.set_xscale("log", base=2)
    lo = min(0.5, min(v - d for v, d in zip(values, lows)) * 0.9)
    hi = max(2.0, max(v + d for v, d in zip(values, highs)) * 1.1)
    ax.set_xlim(lo, hi)
    ticks = [2.0**k for k in range(-8, 9) if lo <= 2.0**k <= hi]
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(
        "ganblocks speedup over plain (×; whiskers: p20–p80 range; right of 1 is faster)", fontsize=8
    )
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def render_plots(doc: Record, out_dir: Path, stem: str) -> dict[str, Path]:
    """One PNG per area: ganblocks' speedup over plain for forward+backward / step / double backward rows."""
    plt = _plt()
    if plt is None:
        return {}
    paths: dict[str, Path] = {}
    for area in AREAS:
        if area == "dispatch":
            continue
        rows = _speedup_rows(doc, (area,), ("forward+backward", "step", "double_backward"))
        if not rows:
            continue
        fig = _speedup_figure(plt, doc, rows, f"{AREA_TITLES[area]} ({doc['meta']['device']})")
        path = out_dir / f"{stem}-{area}.png"
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        paths[area] = path
    return paths


def summary_png(doc: Record) -> Optional[bytes]:
    """One compact PNG of the whole-network rows (discriminators, losses, penalties, training steps)."""
    plt = _plt()
    rows = _speedup_rows(
        doc, ("discriminators", "losses", "penalties", "training"), ("forward+backward", "step")
    )
    if plt is None or not rows:
        return None
    fig = _speedup_figure(plt, doc, rows, f"Networks, losses and steps ({doc['meta']['device']})")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def render_markdown(
    doc: Record,
    *,
    heading_level: int = 1,
    plots: Optional[dict[str, Path]] = None,
    md_path: Optional[Path] = None,
) -> str:
    """The results of one run as markdown: set-up, targets, per-area time and memory tables."""
    from . import targets

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
    lines += [
        "",
        "Times are medians with the 20th–80th percentile range, in milliseconds; every provider of a case is timed "
        "in turn, repetition by repetition, so machine noise hits all alike. *ganblocks vs plain* is plain's "
        "median over ganblocks' (above 1: ganblocks is faster). *Saved activations* are the bytes autograd keeps "
        "for the backward pass beyond the inputs and parameters (exact, noise-free); GFLOP counts matmuls and "
        "convolutions only.",
        "",
        f"{h}# Speed targets",
        "",
        "| issue | target | status | detail |",
        "|---|---|---|---|",
    ]
    for t in doc.get("targets", []):
        lines.append(
            f"| #{t['issue']} | {t['target']} | {STATUS_MARK.get(t['status'], t['status'])} | {t['detail']} |"
        )
    for t in doc.get("targets", []):
        if not t["rows"]:
            continue
        lines += ["", f"*#{t['issue']} {t['key']}*: {STATUS_MARK.get(t['status'], t['status'])}", ""]
        lines += [f"- {row['status']}: `{row['case']}`: {row['detail']}" for row in t["rows"]]
    for area in AREAS:
        if not any(r["area"] == area for r in results):
            continue
        lines += ["", f"{h}# {AREA_TITLES[area]}", ""]
        if plots and area in plots:
            target = plots[area]
            rel = os.path.relpath(target, md_path.parent) if md_path else target.name
            lines += [f"![{AREA_TITLES[area]} speedups]({rel})", ""]
        lines += _time_table(results, area)
        if area != "dispatch":
            lines += ["", *_memory_table(results, area, cuda)]
        if area == "ops":
            bw = _bandwidth_table(results)
            if bw:
                lines += ["", "Achieved bandwidth (least-traffic bytes / median time):", "", *bw]
        notes = sorted({doc.get("notes", {}).get(r["id"], "") for r in results if r["area"] == area} - {""})
        skips = _skips(results, area)
        if notes or skips:
            lines += [""]
            lines += [f"- {n}" for n in notes]
            lines += skips
    derived = doc.get("derived") or []
    if derived:
        lines += ["", f"{h}# Derived", "", "| figure | provider | ms | vs plain |", "|---|---|---|---|"]
        for d in derived:
            sp = "–" if d.get("speedup_vs_plain") is None else f"{d['speedup_vs_plain']:.2f}×"
            lines.append(f"| `{d['id']}` ({d['formula']}) | {d['provider']} | {_num(d['time_ms'])} | {sp} |")
    return "\n".join(lines) + "\n"


def findings(doc: Record) -> list[str]:
    """Wins and losses of ganblocks against plain that the noise does not explain, and saved-memory gaps.

    A row counts only when the p20–p80 ranges of the two timings do not overlap (forward+backward, step and
    double-backward rows); saved activations differ exactly, so any gap of 20% or more is listed.
    """
    by_key = {(r["id"], r["mode"], r["provider"]): r for r in doc["results"]}
    wins, losses, memory = [], [], []
    noisy = 0
    for r in doc["results"]:
        if r["provider"] != "ganblocks" or r["mode"] not in ("forward+backward", "step", "double_backward"):
            continue
        base = by_key.get((r["id"], r["mode"], "plain"))
        if not base or not r.get("time_ms") or not base.get("time_ms"):
            continue
        ours, theirs = r["time_ms"], base["time_ms"]
        ratio = theirs["median"] / ours["median"]
        label = f"`{r['area']}/{r['case']}` {size_label(r['params'])} {r['mode']}"
        if theirs["p20"] > ours["p80"]:
            wins.append((ratio, f"{label}: {ratio:.2f}× faster than plain"))
        elif theirs["p80"] < ours["p20"]:
            losses.append((ratio, f"{label}: {1 / ratio:.2f}× slower than plain"))
        else:
            noisy += 1
        a, b = r.get("saved_bytes_activations"), base.get("saved_bytes_activations")
        if a and b and r["mode"] != "double_backward" and (a >= 1.2 * b or a <= b / 1.2):
            memory.append(
                f"{label}: saves {_mib(a)} MiB for backward vs plain's {_mib(b)} MiB ({a / b:.2f}×)"
            )
    out = []
    if wins:
        out += ["Faster than the plain formulation (beyond the noise):", ""]
        out += [f"- {text}" for _, text in sorted(wins, reverse=True)]
        out.append("")
    if losses:
        out += ["Slower than the plain formulation (beyond the noise):", ""]
        out += [f"- {text}" for _, text in sorted(losses)]
        out.append("")
    out.append(f"{noisy} more rows are within the noise (overlapping p20–p80 ranges).")
    if memory:
        out += ["", "Bytes saved for backward (exact) that differ by 20% or more:", ""]
        out += [f"- {m}" for m in sorted(set(memory))]
    return out


DOCS_INTRO = """# Benchmarks

ganblocks times its public API against the formulation users write today, in one run, and publishes the
losses beside the wins. The code is in `benchmarks/` (`python -m benchmarks --help`); raw results are JSON
files in `benchmarks/results/`, each with a markdown rendering beside it.

## What is measured

| provider | what runs |
|---|---|
| ganblocks | the public module or function with `backend="auto"` (Triton kernels on CUDA, the PyTorch reference on CPU) |
| reference | the same with `backend="torch"` (pure PyTorch reference path); on CPU it is what ganblocks runs, so whole networks skip it there |
| plain | the formulation written from the published code: pix2pixHD's `NLayerDiscriminator`, `MultiscaleDiscriminator`, `GANLoss`, feature-matching loop and `VGGLoss`; StyleGAN2's `bias_act` reference, `EqualConv2d`/`EqualLinear`/`FusedLeakyReLU`, noise injection, minibatch stddev, R1; StyleGAN's `PixelNorm`/`AdaptiveInstanceNorm`; MSG-GAN's discriminator and WGAN-GP (`benchmarks/plain/`) |
| compile | `torch.compile` of the plain formulation, where it applies (not for double backward, which AOTAutograd cannot run) |

Modes (all with autograd recording, as in training): `forward`; `backward` alone (the forward runs untimed);
`forward+backward`; `double_backward` (gradient with respect to the inputs with `create_graph=True`, then the
backward of its squared norm: what R1 and WGAN-GP do); `step` for whole loss, penalty and training steps.
Every provider starts from the same output gradients and inputs.

Metrics: median time with the 20th and 80th percentiles (providers are timed in turn, repetition by repetition,
so noise hits all alike; CUDA is timed with events after a synchronize); peak memory on CUDA; bytes saved for
backward (through `torch.autograd.graph.saved_tensors_hooks`, exact on every device); FLOPs of matmuls and
convolutions (`torch.utils.flop_counter` formulas); on GPU, achieved bandwidth as a fraction of a measured
device-to-device copy; the CPU cost of the public entry points (argument checks and backend choice) against
the reference function they end in.

Three end-to-end discriminator-side training steps run against their plain formulation: pix2pixHD-style
(3-scale D, LSGAN, feature matching, VGG with random weights), MSG-style (MSG D, WGAN + WGAN-GP + drift) and
StyleGAN-style (equalized-LR D with minibatch stddev, non-saturating loss, lazy R1 every 16 steps). A leaf
tensor stands in for the generator's output.

## Running

```bash
python -m benchmarks --device cpu --quick      # CI smoke run (under two minutes)
python -m benchmarks --device cpu              # CPU suite (about six minutes on a shared 2-core machine)
python -m benchmarks --device cuda             # GPU suite (add --plots for per-area PNGs)
python -m benchmarks --filter 'ops/bias_act*' --list
python -m benchmarks.render --docs docs/benchmarks.md benchmarks/results/cpu-DATE.json [benchmarks/results/cuda-DATE.json]
```

`--filter` takes substrings or globs of case ids (`area/name[params]`); `--threads` sets torch's CPU threads
(default 1 on CPU, which keeps ratios steady on a shared machine); `--compile all|none` overrides where
`torch.compile` runs (by default: everywhere on CUDA, ops and layers on CPU, nowhere in `--quick` on CPU).

Sizes: the CPU suite uses small shapes (ops at 4×64×64×64, networks at 64–128 px) except the multi-scale
discriminator target of issue #3 (batch 4, 512×512). The CUDA suite runs the issues' target shapes in float32,
bfloat16 and float16, channels_last, and sweeps resolution (64 to 1024 px), batch and channels; networks run at
256–1024 px with float32 and bfloat16 autocast.
"""

GPU_MISSING = """## GPU results

**Not measured yet.** No GPU was available in the session that produced the results below, so every GPU
target of the issues (fused ops ≥ 1.5× plain and ≥ 80% of copy bandwidth, multi-scale D ≥ 1.2× with no more
peak memory, R1 ≥ 1.3×, VGG ≥ 1.2×) reads "not measurable here". On an H100-class machine run

```bash
python -m benchmarks --device cuda
```

which writes `benchmarks/results/cuda-<date>.json` and `.md` (with the target table); one area at a time works
too (`--filter 'ops/*'`, `--filter 'discriminators/*'`, ...). Then regenerate this page with both result files
(last command above).
"""

CPU_NOISE = """CPU timings here come from a 2-core machine shared with other jobs: compare providers within one run, as
ratios, and read a ratio whose p20–p80 range straddles 1 as a tie. On CPU, ganblocks runs its PyTorch reference
path; the fused Triton kernels only run on CUDA, so these numbers say nothing about them. Saved bytes and FLOPs
do not depend on the noise.
"""


def render_docs(docs: list[Record]) -> str:
    """The docs page: method, commands, GPU status, findings and the full tables of each results file."""
    parts = [DOCS_INTRO]
    images: list[str] = []
    cuda = [d for d in docs if d["meta"]["device"] == "cuda"]
    if not cuda:
        parts.append(GPU_MISSING)
    for doc in sorted(docs, key=lambda d: d["meta"]["device"] != "cuda"):
        dev = doc["meta"]["device"].upper()
        parts.append(f"## {dev} findings ({doc['meta']['date'][:10]})\n")
        if dev == "CPU":
            parts.append(CPU_NOISE)
        png = summary_png(doc)
        if png is not None:
            # A data URI (defined at the end of the page): mkdocs' strict mode rejects links that leave docs/.
            ref = f"speedups-{doc['meta']['device']}"
            parts.append(f"![Speedup of ganblocks over the plain formulations][{ref}]\n")
            images.append(f"[{ref}]: data:image/png;base64,{base64.b64encode(png).decode()}")
        parts.append("\n".join(findings(doc)) + "\n")
        parts.append(render_markdown(doc, heading_level=2))
    return "\n".join(parts + images) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.render", description="results JSON -> markdown")
    p.add_argument("results", type=Path, nargs="+")
    p.add_argument("--out", type=Path, default=None, help="markdown path (default: beside the JSON)")
    p.add_argument("--plots", action="store_true", help="also write one speedup PNG per area beside the JSON")
    p.add_argument("--heading-level", type=int, default=1)
    p.add_argument("--docs", type=Path, default=None, help="write the docs page (all results files) here")
    args = p.parse_args(argv)
    docs = []
    for path in args.results:
        doc = json.loads(path.read_text())
        doc["_path"] = str(path)
        docs.append(doc)
        if args.plots:
            render_plots(doc, path.parent, path.stem)
    if args.docs is not None:
        args.docs.write_text(render_docs(docs))
        print(f"wrote {args.docs}")
        return 0
    for path, doc in zip(args.results, docs):
        out = args.out if args.out and len(docs) == 1 else path.with_suffix(".md")
        plots = (
            {a: q for a in AREAS if (q := path.with_name(f"{path.stem}-{a}.png")).exists()}
            if args.plots
            else None
        )
        out.write_text(render_markdown(doc, heading_level=args.heading_level, plots=plots, md_path=out))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
