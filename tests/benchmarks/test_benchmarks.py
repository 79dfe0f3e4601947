"""The benchmark harness: a smoke run of one cheap row per area writes valid results, the targets and the
before/after comparison compute their ratios, gpu_check's command line parses, the render writes the page."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import gpu_check, render, targets  # noqa: E402
from benchmarks.__main__ import AREAS, compare, run  # noqa: E402
from benchmarks.common import Config  # noqa: E402

CHEAP = {"ops": "bias_act", "layers": "equal_linear", "networks": "style", "losses": "adversarial",
         "training": "stylegan/g_step", "dispatch": "pixel_norm", "augment": "augment_pipe/bgc",
         "metrics": "frechet_distance"}  # fmt: skip


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    cfg = Config(torch.device("cpu"), quick=True, min_run_time=0.001)
    mp = pytest.MonkeyPatch()
    for area, module in AREAS.items():
        rows = [r for r in module.rows(cfg) if r.name == CHEAP[area]][:1]
        mp.setattr(module, "rows", lambda cfg, rows=rows: rows)
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the CLI does: on a loaded machine, threads wait on each other
    try:
        doc = run(cfg, list(AREAS), out)
    finally:
        mp.undo()
        torch.set_num_threads(threads)
    return out, doc


def test_smoke_writes_json_and_markdown(smoke: tuple[Path, dict[str, Any]]) -> None:
    out, doc = smoke
    saved = json.loads(out.read_text())
    assert saved["results"] == json.loads(json.dumps(doc["results"]))
    timed = {
        r["area"] for r in saved["results"] if r["provider"] == "ganblocks" and r.get("median_ms", 0) > 0
    }
    assert timed == {
        "ops",
        "layers",
        "discriminators",
        "losses",
        "training",
        "dispatch",
        "augment",
        "metrics",
    }
    assert not [r for r in saved["results"] if "error" in r]
    assert all("samples" not in r and "times" not in r for r in saved["results"])
    md = out.with_suffix(".md").read_text()
    for area in timed:
        assert f"\n## {area}\n" in md
    # ops: saved-for-backward bytes of bias_act's plain formulation: leaky_relu saves its 2×8×8×8 float32 input
    plain = next(r for r in saved["results"] if r["area"] == "ops" and r["provider"] == "plain")
    assert plain["saved_bytes"] == 2 * 8 * 8 * 8 * 4


def _rec(provider: str, ms: float, iqr: float = 0.0) -> dict[str, Any]:
    return {"area": "ops", "row": "bias_act[x]", "name": "bias_act", "params": {"dtype": "bfloat16"},
            "provider": provider, "mode": "fwd+bwd", "median_ms": ms, "iqr_ms": iqr}  # fmt: skip


def test_targets_ratio_and_noise() -> None:
    doc = {"meta": {"device": "cuda"}, "results": [_rec("ganblocks", 1.0, 0.2), _rec("plain", 2.0), _rec("compile", 0.95, 0.02)]}  # fmt: skip
    by_what = {t["what"].split(" (")[0]: t for t in targets.evaluate(doc)}
    eager = by_what["fused ops fwd+bwd ≥ 1.5× plain eager"]
    assert eager["status"] == "met" and eager["rows"][0]["ratio"] == 2.0
    assert eager["rows"][0]["interval"] == [round(2.0 / 1.1, 3), round(2.0 / 0.9, 3)]
    vs_compile = by_what["fused ops fwd+bwd no slower than torch.compile of plain"]
    assert vs_compile["rows"][0]["ratio"] == 0.95 and vs_compile["status"] == "within noise"


def test_compare_before_over_after(tmp_path: Path) -> None:
    for name, ms, plain in (("a.json", 3.0, 6.0), ("b.json", 2.0, 5.0)):
        (tmp_path / name).write_text(json.dumps({"results": [_rec("ganblocks", ms), _rec("plain", plain)]}))
    table = compare(tmp_path / "a.json", tmp_path / "b.json").splitlines()
    assert table[2].endswith("| 1.500 | 2.000 | 2.500 |") and table[3].endswith("| 1.200 | 1.000 | 1.000 |")


def test_gpu_check_command_line() -> None:
    args = gpu_check.parse_args(["--area", "ops", "--area", "training", "--skip-tests", "--compile", "none"])
    assert (
        args.area == ["ops", "training"] and args.skip_tests and args.compile == "none" and not args.dry_run
    )
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--area", "nonsense"])
    if not torch.cuda.is_available():
        assert gpu_check.main([]) == 2


def test_render_writes_plot_and_page(smoke: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# B\n<!-- results -->\nold\n<!-- /results -->\nafter\n")
    assert render.main([str(smoke[0]), "--png", str(tmp_path / "p.png"), "--page", str(page)]) == 0
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    text = page.read_text()
    assert "old" not in text and text.endswith("<!-- /results -->\nafter\n")
    assert "| `smoke.json` | training | step |" in text
