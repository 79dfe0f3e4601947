"""The docs' view of results files: the plot (ganblocks' speedup over plain, row by row) and the headline table
between the ``<!-- results -->`` markers of the benchmarks page.

    python -m benchmarks.render benchmarks/results/cpu-DATE.json [benchmarks/results/cuda-DATE.json]
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import RESULTS, speedup

DOCS = RESULTS.parent.parent / "docs"


def headline_table(docs: list[tuple[Path, dict[str, Any]]]) -> str:
    lines = ["| results | area | mode | ganblocks vs plain (geometric mean) | lowest–highest | rows |", "|---|---|---|---:|---:|---:|"]  # fmt: skip
    for path, doc in docs:
        for area, h in doc["headline"].items():
            lines.append(f"| `{path.name}` | {area} | {h['mode']} | {h['geomean']:.2f}× | {h['min']:.2f}–{h['max']:.2f}× | {h['rows']} |")  # fmt: skip
    lines += [""] + [f"- `{p.name}`, {t['status']}: {t['what']}" for p, d in docs for t in d["targets"]]
    lines += [f"- `{p.name}` is a quick smoke run: tiny sizes, its ratios are not measurements" for p, d in docs if d["meta"]["quick"]]  # fmt: skip
    return "\n".join(lines)


def plot(docs: list[tuple[Path, dict[str, Any]]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(docs), figsize=(8 * len(docs), 10), squeeze=False)
    for ax, (path, doc) in zip(axes[0], docs):
        recs, labels, values = doc["results"], [], []
        for area, h in doc["headline"].items():
            for r in recs:
                if r["area"] == area and r["provider"] == "ganblocks" and r["mode"] == h["mode"]:
                    if (s := speedup(recs, r)) is not None:
                        labels.append(
                            re.sub(r",?(dtype=float32|layout=contiguous)", "", f"{area}/{r['row']}")
                        )
                        values.append(s)
        y = range(len(values))
        ax.barh(y, values, color=["tab:green" if v >= 1 else "tab:red" for v in values])
        ax.axvline(1.0, color="black", linewidth=0.8)
        quick = "\nquick smoke run: tiny sizes, not a measurement" if doc["meta"]["quick"] else ""
        title = f"{path.stem}: plain time / ganblocks time (> 1: ganblocks faster){quick}"
        ax.set(xscale="log", yticks=list(y), title=title, ylim=(len(y), -1))
        ax.set_yticklabels(labels, fontsize=6)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.render", description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+", type=Path, help="results .json files (one per device)")
    p.add_argument("--png", type=Path, default=DOCS / "assets" / "benchmarks.png")
    p.add_argument("--page", type=Path, default=DOCS / "benchmarks.md", help="page with the results markers")
    args = p.parse_args(argv)
    docs = [(path, json.loads(path.read_text())) for path in args.results]
    plot(docs, args.png)
    page = args.page.read_text()
    table = f"<!-- results -->\n{headline_table(docs)}\n<!-- /results -->"
    args.page.write_text(re.sub(r"<!-- results -->.*<!-- /results -->", lambda _: table, page, flags=re.S))
    print(f"wrote {args.png} and {args.page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
