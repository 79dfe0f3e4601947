"""Speedup plots (matplotlib, optional): one PNG per area, and one compact summary for the docs page."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any, Optional

from .tables import AREA_TITLES, AREAS, Record, size_label


def _plt() -> Any:
    # matplotlib is optional (the ``examples`` extra): without it there are no plots, the tables still render.
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
        # Lines of at most 38 characters (three at most): readable at the docs' column width.
        lines = textwrap.wrap(label, 38, break_on_hyphens=False)
        labels.append("\n".join(lines[:3]) + (" ..." if len(lines) > 3 else ""))
        base = by_key[(r["id"], r["mode"], "plain")]["time_ms"]
        ours = r["time_ms"]
        values.append(r["speedup_vs_plain"])
        lows.append(max(0.0, r["speedup_vs_plain"] - base["p20"] / ours["p80"]))
        highs.append(max(0.0, base["p80"] / ours["p20"] - r["speedup_vs_plain"]))
    # About as wide as the docs' content column at 100 dpi, so 10 pt text shows at reading size.
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.4))
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
    ax.set_yticks(range(len(rows)), labels, fontsize=10)
    ax.tick_params(axis="x", labelsize=10)
    ax.invert_yaxis()
    ax.set_xlabel(
        "ganblocks speedup over plain (×)\nwhiskers: p20–p80 range; right of 1 is faster", fontsize=10
    )
    ax.set_title(title, fontsize=12)
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
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        paths[area] = path
    return paths


def summary_png(doc: Record) -> Optional[bytes]:
    """One compact PNG of the whole-network rows (discriminators, generators, losses, penalties, training
    steps)."""
    plt = _plt()
    rows = _speedup_rows(
        doc, ("discriminators", "generators", "losses", "penalties", "training"), ("forward+backward", "step")
    )
    if plt is None or not rows:
        return None
    fig = _speedup_figure(plt, doc, rows, f"Networks, losses and steps ({doc['meta']['device']})")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
