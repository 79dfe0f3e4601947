"""What the example scripts share for results over seeds: the median and range, and merging output folders.

A GAN's result is one draw from a spread, so every measured claim of the examples is the median over seeds
with its range. Each script writes its runs as a list of records (one per configuration and seed) beside
its settings; ``merge_runs`` combines the records of several output folders, so that some configurations
can run with more seeds than others and be summarised together.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Optional


def median_range(values: Iterable[float]) -> dict[str, float]:
    """``{"median", "min", "max"}`` of ``values``."""
    values = list(values)
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def spread(stats: dict[str, float], digits: int = 2, unit: str = "") -> str:
    """``median [min–max]``, or the value alone when every seed gave it (to the digits shown)."""
    median = f"{stats['median']:.{digits}f}{unit}"
    low, high = f"{stats['min']:.{digits}f}", f"{stats['max']:.{digits}f}"
    return median if low == high else f"{median} [{low}–{high}]"


def load_saved(path: Path) -> dict[str, Any]:
    """A results file an example wrote: its ``settings`` and ``runs`` at least."""
    saved = json.loads(path.read_text())
    if not isinstance(saved, dict) or "runs" not in saved or "settings" not in saved:
        raise ValueError(f"{path} holds no 'runs': not an output of this version of the script")
    return saved


def merge_runs(
    folders: Sequence[Path],
    read: Callable[[Path], tuple[dict[str, Any], list[dict[str, Any]], dict[Any, Any]]],
    *,
    key: Callable[[dict[str, Any]], tuple[Any, ...]],
    describe: Callable[[tuple[Any, ...]], str],
    timing: Sequence[str],
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[Any, Any]]:
    """The runs of several output folders as one list, and their extras (e.g. figure tensors) as one dict.

    ``read(folder)`` gives the folder's settings, runs and extras (the first folder's entry of a key wins). Every folder must have the same settings, and
    each ``key(run)`` must appear once, or again only as the same run (every field but those in ``timing``).
    """
    settings: Optional[dict[str, Any]] = None
    runs: dict[tuple[Any, ...], dict[str, Any]] = {}
    origin: dict[tuple[Any, ...], Path] = {}
    extras: dict[Any, Any] = {}
    for folder in folders:
        folder_settings, folder_runs, folder_extras = read(folder)
        for k, v in folder_extras.items():
            extras.setdefault(k, v)
        if settings is None:
            settings = folder_settings
        elif folder_settings != settings:
            raise ValueError(f"{folder} and {folders[0]} were run with different settings")
        for run in folder_runs:
            k = key(run)
            if k not in runs:
                runs[k], origin[k] = run, folder
            elif {f: v for f, v in run.items() if f not in timing} != {
                f: v for f, v in runs[k].items() if f not in timing
            }:
                raise ValueError(f"{describe(k)} is in {origin[k]} and {folder} with different results")
    if settings is None:
        raise ValueError("no output folder given")
    return settings, list(runs.values()), extras
