"""The docs page (``python -m benchmarks.render --docs``): hand-written notes land verbatim after their device's
findings and before its tables, the speed targets are labelled by area, and docs/benchmarks.md is exactly what
the repository's results and notes files render to."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import render  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
# The results files docs/benchmarks.md is built from (its "Running" section gives the command).
PAGE_RESULTS = [RESULTS / "cpu-2026-12-01.json"]

NOTES = """### A note written by hand (2099-01-01)

Re-measured by hand: `bias_act` is still 3× faster.

| what | before | now |
|---|---|---|
| bias_act | 1.0× | 3.0× |
"""

PARAMS = {"shape": [4, 64, 64, 64], "dtype": "float32", "layout": "contiguous", "group": "target"}


def _record(provider: str, median: float, saved: int, device: str) -> dict[str, Any]:
    return {
        "id": "ops/bias_act[shape=4x64x64x64,dtype=float32,layout=contiguous,group=target]",
        "area": "ops",
        "case": "bias_act",
        "params": PARAMS,
        "mode": "forward+backward",
        "provider": provider,
        "status": "ok",
        "reason": None,
        "time_ms": {
            "median": median,
            "p20": 0.95 * median,
            "p80": 1.05 * median,
            "min": 0.9 * median,
            "reps": 9,
        },
        "speedup_vs_plain": 3.0 / median,
        "peak_memory_bytes": 2**20 if device == "cuda" else None,
        "saved_bytes": saved,
        "saved_bytes_activations": saved,
        "saved_tensors": 1,
        "flops": 0,
    }


def _doc(device: str = "cpu", date: str = "2099-01-01T00:00:00+00:00") -> dict[str, Any]:
    """A results file with one op: ganblocks 3× faster than plain and saving half its bytes."""
    return {
        "meta": {
            "date": date,
            "device": device,
            "machine": {"cpu": "Test CPU", "cpu_count": 2, "torch_threads": 1},
            "gpu": {"name": "Test GPU", "cuda": "12.0"} if device == "cuda" else None,
            "versions": {"python": "3.11", "torch": "2.0", "triton": None, "ganblocks": "0.1.0"},
            "git": {"commit": "0123456789abcdef", "dirty": False},
            "argv": ["--device", device],
            "duration_s": 1.0,
        },
        "results": [
            _record("ganblocks", 1.0, 2**20, device),
            _record("reference", 1.0, 2**20, device),
            _record("plain", 3.0, 2**21, device),
        ],
    }


def _notes(tmp_path: Path, name: str = "notes-cpu-2099-01-01.md", text: str = NOTES) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_notes_go_verbatim_after_the_findings_and_before_the_tables(tmp_path: Path) -> None:
    page = render.render_docs([_doc()], [_notes(tmp_path)])

    assert page.count(NOTES) == 1
    findings = page.index("## CPU findings (2099-01-01)")
    faster = page.index("- `ops/bias_act` 4×64×64×64 f32 forward+backward: 3.00× faster than plain")
    memory = page.index("saves 1.00 MiB for backward vs plain's 2.00 MiB (0.50×)")
    notes = page.index(NOTES)
    tables = page.index("## ganblocks benchmarks: CPU, 2099-01-01")
    fused = page.index("### Fused ops")
    assert findings < faster < memory < notes < tables < fused
    # The notes are a block of their own: without them the page is the page rendered without notes.
    assert page.replace(NOTES + "\n", "", 1) == render.render_docs([_doc()])


def test_cpu_notes_follow_the_cpu_findings_when_a_cuda_file_comes_first(tmp_path: Path) -> None:
    page = render.render_docs([_doc("cpu"), _doc("cuda")], [_notes(tmp_path)])

    assert "## GPU results" not in page  # a CUDA results file replaces the "not measured" text
    cuda, cpu = page.index("## CUDA findings (2099-01-01)"), page.index("## CPU findings (2099-01-01)")
    cpu_tables = page.index("## ganblocks benchmarks: CPU, 2099-01-01")
    assert (
        cuda < page.index("## ganblocks benchmarks: CUDA, 2099-01-01") < cpu < page.index(NOTES) < cpu_tables
    )


def test_several_notes_keep_the_order_given(tmp_path: Path) -> None:
    first = _notes(tmp_path, "notes-cpu-2099-02-01.md", "### Second by date, first given\n")
    second = _notes(tmp_path, "notes-cpu-2099-01-01.md", "### First by date, second given\n\n")
    page = render.render_docs([_doc()], [first, second])

    assert (
        "### Second by date, first given\n\n### First by date, second given\n\n## ganblocks benchmarks"
        in page
    )


def test_speed_targets_are_labelled_by_area() -> None:
    page = render.render_docs([_doc()])

    assert "| area | target | status | detail |" in page
    assert "| fused ops | Fused ops on CPU: the reference path" in page
    assert "\n*ops-reference-vs-plain-cpu*: " in page
    assert not re.search(r"^\| #\d|^\*#\d|\| issue \|", page, re.M)


def test_notes_that_would_be_dropped_or_misplaced_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no cuda results file"):
        render.render_docs([_doc("cpu")], [_notes(tmp_path, "notes-cuda-2099-01-01.md")])
    with pytest.raises(ValueError, match=r"notes-<device>-<date>\.md"):
        render.render_docs([_doc("cpu")], [_notes(tmp_path, "cpu-notes.md")])


def test_command_line_writes_the_page_with_notes(tmp_path: Path) -> None:
    results = tmp_path / "cpu-2099-01-01.json"
    results.write_text(json.dumps(_doc()))
    notes, out = _notes(tmp_path), tmp_path / "page.md"

    assert render.main(["--docs", str(out), str(results), "--notes", str(notes)]) == 0
    doc = {**_doc(), "_path": str(results)}
    assert out.read_text() == render.render_docs([doc], [notes])
    assert NOTES in out.read_text()
    with pytest.raises(SystemExit):
        render.main([str(results), "--notes", str(notes)])  # notes belong to the docs page only


def _without_images(markdown: str) -> str:
    # The speedup PNG's bytes depend on the matplotlib version; everything else must match exactly.
    return re.sub(r"^(\[speedups-\w+\]: data:image/png;base64,).*$", r"\1...", markdown, flags=re.M)


def test_the_docs_page_is_what_the_repository_renders() -> None:
    """docs/benchmarks.md is generated: edit benchmarks/results/notes-*.md or benchmarks/render.py and rerun
    ``python -m benchmarks.render --docs docs/benchmarks.md benchmarks/results/cpu-2026-12-01.json
    --notes benchmarks/results/notes-*.md``."""
    pytest.importorskip("matplotlib")  # without it the page has no speedup figure to compare
    docs = [json.loads(p.read_text()) for p in PAGE_RESULTS]
    notes = sorted(RESULTS.glob("notes-*.md"))
    assert notes, "the hand-written sections of the page live in benchmarks/results/notes-*.md"
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert _without_images(render.render_docs(docs, notes)) == _without_images(page)
