"""The median and the range over seeds of ``train.py`` runs: one table of every evaluation's quality measures.

A GAN's result is one draw from a spread; a claim about a configuration holds when the median over seeds
meets it. Run ``train.py`` once per seed into its own folder, then summarise the folders::

    for s in 0 1 2; do python examples/train.py --seed $s --out runs/train/seed$s; done
    python examples/seed_spread.py runs/train/seed0 runs/train/seed1 runs/train/seed2

The runs must differ in their seed only (their settings are compared). Each cell is
``median [min–max]``; the last column is the real-vs-real baseline of the lowest seed's run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the examples' shared helpers next to this file
from seeds import median_range, spread

KEYS = ("fid", "kid", "precision", "recall", "coverage", "recognised", "balance")
DIGITS = {"fid": 1, "kid": 1}  # the rest: 2 or 3 digits below


def read_runs(folders: list[Path]) -> list[dict]:
    """The ``metrics.json`` of each folder, checked to differ only in the seed."""
    runs = []
    for folder in folders:
        path = folder / "metrics.json"
        try:
            runs.append(json.loads(path.read_text()))
        except (OSError, ValueError) as error:
            raise SystemExit(f"{path}: {error}") from None
    settings = [{k: v for k, v in r["settings"].items() if k != "seed"} for r in runs]
    for folder, other in zip(folders[1:], settings[1:]):
        if other != settings[0]:
            diff = sorted(k for k in other.keys() | settings[0].keys() if other.get(k) != settings[0].get(k))
            raise SystemExit(f"{folder} differs from {folders[0]} in more than the seed: {', '.join(diff)}")
    seeds = [r["settings"]["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"two folders hold the same seed: {seeds}")
    return runs


def table(runs: list[dict]) -> str:
    """Rows: the measures; columns: the evaluation steps every run has, and the real-vs-real baseline."""
    steps = sorted(set.intersection(*({e["step"] for e in r["evals"]} for r in runs)))
    by_step = [{e["step"]: e for e in r["evals"]} for r in runs]
    keys = [k for k in KEYS if all(k in r["final"] for r in runs)]
    lowest = min(runs, key=lambda r: r["settings"]["seed"])
    seeds = ", ".join(str(r["settings"]["seed"]) for r in sorted(runs, key=lambda r: r["settings"]["seed"]))
    lines = [
        f"| step (seeds {seeds}) | " + " | ".join(f"{s:,}" for s in steps) + " | real vs real |",
        "|---|" + "---|" * (len(steps) + 1),
    ]
    for key in keys:
        digits = DIGITS.get(key, 3 if key in ("recognised", "balance") else 2)
        cells = [spread(median_range(float(e[step][key]) for e in by_step), digits) for step in steps]
        base = lowest.get("real_baseline", {}).get(key, lowest.get("real", {}).get(key))
        cells.append("–" if base is None else f"{float(base):.{digits}f}")
        lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
    seconds = [float(r["seconds"]) for r in runs]
    lines.append("")
    lines.append(f"{len(runs)} runs; wall time per run {spread(median_range(seconds), 0)} s.")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("folders", type=Path, nargs="+", metavar="DIR", help="train.py output folders")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    text = table(read_runs(args.folders))
    if args.out is not None:
        args.out.write_text(text)
    print(text, end="")
    return text


if __name__ == "__main__":
    main()
