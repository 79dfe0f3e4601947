"""Turn a results JSON into markdown tables (and optional speedup plots), or the docs page.

Usage::

    python -m benchmarks.render benchmarks/results/cpu-2026-01-01.json                 # -> .md beside it
    python -m benchmarks.render RESULTS.json --out docs/x.md --plots --heading-level 2
    python -m benchmarks.render --docs docs/benchmarks.md RESULTS.json [MORE.json] [--notes NOTES.md ...]
    python -m benchmarks.render RESULTS.partial.jsonl                                  # what a killed run kept

The docs page (``--docs``) is generated whole: the method and commands, the GPU status, then per device its
findings, its notes and the full tables of its results file. Notes are what a results file cannot say (a
later re-measurement, a separate run summarised by hand): markdown files named
``benchmarks/results/notes-<device>-<date>.md``, passed with ``--notes`` and copied verbatim, in the order
given, right after the findings of ``<device>`` (``cpu``, ``cuda``); a notes file whose device has no results
file among those rendered is an error, so that no note is dropped silently.

The tables are :mod:`benchmarks.tables`, the plots :mod:`benchmarks.plots`.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from .plots import render_plots, summary_png
from .sink import PARTIAL_SUFFIX, load_partial
from .tables import AREAS, Record, mib, render_markdown, size_label


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
            memory.append(f"{label}: saves {mib(a)} MiB for backward vs plain's {mib(b)} MiB ({a / b:.2f}×)")
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
| plain | the formulation written from the published code: pix2pixHD's `NLayerDiscriminator`, `MultiscaleDiscriminator`, `GANLoss`, feature-matching loop, `VGGLoss`, `GlobalGenerator` and the instance-pooling loop of its `Encoder`; StyleGAN2's `bias_act` and `_upfirdn2d_ref` references, `EqualConv2d`/`EqualLinear`/`FusedLeakyReLU`, `ModulatedConv2d` (stylegan2-pytorch, with `Blur`), noise injection, minibatch stddev, R1; StyleGAN's `PixelNorm`/`AdaptiveInstanceNorm`; MSG-GAN's discriminator and WGAN-GP (`benchmarks/plain/`) |
| compile | `torch.compile` of the plain formulation, where it applies (not for double backward, which AOTAutograd cannot run) |
| compile(ganblocks) | `torch.compile` of the ganblocks side, where `compile` runs (on CUDA: does the fused custom op, opaque to inductor, lose the fusion that compile finds around the plain formulation?) |

Modes (all with autograd recording, as in training): `forward`; `backward` alone (the forward runs untimed);
`forward+backward`; `double_backward` (gradient with respect to the inputs with `create_graph=True`, then the
backward of its squared norm: what R1 and WGAN-GP do); `step` for whole loss, penalty and training steps.
Every provider starts from the same output gradients and inputs.

Metrics: median time with the 20th and 80th percentiles (providers are timed in turn, repetition by repetition,
so noise hits all alike; CUDA is timed with events after a synchronize, each repetition starting from an L2
cache flushed by writing 256 MiB, untimed); peak memory on CUDA; bytes saved for backward (through
`torch.autograd.graph.saved_tensors_hooks`, exact on every device); the bytes of parameter gradients a step
produces; FLOPs of matmuls and convolutions (`torch.utils.flop_counter` formulas); achieved bandwidth of the
fused ops as a fraction of a copy of the op's own input (same size and dtype, timed the same way); the CPU cost of the public entry points (argument checks and backend choice) against
the arithmetic of the reference path they end in, written out in the benchmark (`reference-direct`).
Everything is timed through the public API only (`ganblocks.<Module>`, `ganblocks.functional`,
`ganblocks.ops.use_backend`), never through private modules.

Generator side: `upfirdn2d` (up=2 and down=2 with the [1, 3, 3, 1] filter, separable and 4×4) and
`instance_avg_pool` among the fused ops (group `generator`, outside the foundation's op targets),
`ModulatedConv2d` (grouped and per-sample paths, up=2) among the layers, and pix2pixHD's `GlobalGenerator`
as a whole network, each against its plain formulation.

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
python -m benchmarks.render --docs docs/benchmarks.md benchmarks/results/cpu-DATE.json [benchmarks/results/cuda-DATE.json] \\
    --notes benchmarks/results/notes-*.md
```

This page is generated by the last command, from the results files and the hand-written notes beside them
(`benchmarks/results/notes-<device>-<date>.md`, each placed after that device's findings); edit those files,
not this page.

Each case's records are appended to `<out>.partial.jsonl` as soon as it finishes (a killed run keeps them:
`python -m benchmarks.render X.partial.jsonl`), and each case has a wall-clock budget (`--case-timeout`) after
which what is left is recorded as timed out. `python -m benchmarks.gpu_check` is the one-shot GPU check: the
CUDA correctness tests and the GPU targets in under eight minutes (`--dry-run` rehearses it on CPU).

`--filter` takes substrings or globs of case ids (`area/name[params]`); `--threads` sets torch's CPU threads
(default 1 on CPU, which keeps ratios steady on a shared machine); `--compile all|none` overrides where
`torch.compile` runs (by default: everywhere on CUDA, ops and layers on CPU, nowhere in `--quick` on CPU).

Sizes: the CPU suite uses small shapes (ops at 4×64×64×64, networks at 64–128 px) except the multi-scale
discriminator target (batch 4, 512×512). The CUDA suite runs the targets' shapes in float32,
bfloat16 and float16, channels_last, and sweeps resolution (64 to 1024 px), batch and channels; networks run at
256–1024 px with float32 and bfloat16 autocast.
"""

GPU_MISSING = """## GPU results

**Not measured yet.** No GPU was available in the session that produced the results below, so every GPU
target (fused ops ≥ 1.5× plain eager, ≥ 1.0× compiled plain and ≥ 80% of copy bandwidth, multi-scale D ≥
1.2× with ≤ 0.8× the peak memory, R1 ≥ 1.3×, VGG ≥ 1.2×) reads "not measurable here". On an H100-class machine run

```bash
python -m benchmarks --device cuda
```

which writes `benchmarks/results/cuda-<date>.json` and `.md` (with the target table); one area at a time works
too (`--filter 'ops/*'`, `--filter 'discriminators/*'`, ...). `python -m benchmarks.gpu_check` checks the
GPU targets alone, with the CUDA correctness tests, in under eight minutes. Then regenerate this page with both result files
(last command above).
"""

CPU_NOISE = """CPU timings here come from a 2-core machine shared with other jobs: compare providers within one run, as
ratios, and read a ratio whose p20–p80 range straddles 1 as a tie. On CPU, ganblocks runs its PyTorch reference
path; the fused Triton kernels only run on CUDA, so these numbers say nothing about them. Saved bytes and FLOPs
do not depend on the noise. Full CPU runs keep freed memory for reuse (glibc's mmap and trim thresholds raised,
`benchmarks/allocator.py`, `--malloc default` to opt out), as CUDA's caching allocator does: otherwise every
repetition faults its buffers' pages in afresh, which costs more than an elementwise op's arithmetic and
changes from run to run.
"""


def notes_device(path: Path) -> str:
    """The device a notes file belongs to, from its name: ``notes-<device>-<anything>.md``."""
    m = re.fullmatch(r"notes-([a-z]+)-.+\.md", path.name)
    if m is None:
        raise ValueError(
            f"{path}: a notes file is named notes-<device>-<date>.md (e.g. notes-cpu-2026-12-01.md)"
        )
    return m.group(1)


def render_docs(docs: list[Record], notes: Sequence[Path] = ()) -> str:
    """The docs page: method, commands, GPU status, then per results file its findings, the notes of its
    device (verbatim, in the order given) and its full tables."""
    devices = {d["meta"]["device"] for d in docs}
    by_device: dict[str, list[str]] = {}
    for path in notes:
        dev = notes_device(path)
        if dev not in devices:
            raise ValueError(f"{path}: notes for {dev!r}, but no {dev} results file is rendered")
        by_device.setdefault(dev, []).append(path.read_text().rstrip("\n") + "\n")
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
        # A device's notes follow its first findings (one results file per device is the rule).
        parts += by_device.pop(doc["meta"]["device"], [])
        parts.append(render_markdown(doc, heading_level=2))
    return "\n".join(parts + images) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.render", description="results JSON -> markdown")
    p.add_argument("results", type=Path, nargs="+")
    p.add_argument("--out", type=Path, default=None, help="markdown path (default: beside the JSON)")
    p.add_argument("--plots", action="store_true", help="also write one speedup PNG per area beside the JSON")
    p.add_argument("--heading-level", type=int, default=1)
    p.add_argument("--docs", type=Path, default=None, help="write the docs page (all results files) here")
    p.add_argument(
        "--notes",
        type=Path,
        nargs="+",
        default=[],
        help="with --docs: hand-written notes-<device>-<date>.md files, each copied after that device's findings",
    )
    args = p.parse_args(argv)
    if args.notes and args.docs is None:
        p.error("--notes only applies to the docs page (--docs)")
    docs = []
    for path in args.results:
        doc = load_partial(path) if path.name.endswith(PARTIAL_SUFFIX) else json.loads(path.read_text())
        doc["_path"] = str(path)
        docs.append(doc)
        if args.plots:
            render_plots(doc, path.parent, path.stem)
    if args.docs is not None:
        args.docs.write_text(render_docs(docs, args.notes))
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
