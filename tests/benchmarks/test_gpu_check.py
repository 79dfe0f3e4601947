"""The one-shot GPU check, rehearsed on CPU: the dry run end to end (JSON and markdown structure), the test
runner's subprocess, cap and log parsing with stand-in commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import correctness, gpu_check  # noqa: E402
from benchmarks.ops import OPS  # noqa: E402
from benchmarks.sink import SCHEMA, Sink, partial_path  # noqa: E402

GPU_TARGETS = {
    "ops-vs-plain-gpu",
    "ops-vs-compile-gpu",
    "ops-bandwidth-gpu",
    "multiscale-gpu",
    "multiscale-gpu-memory",
    "r1-gpu",
}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, str, Path]:
    out = tmp_path_factory.mktemp("gpu_check")
    threads = torch.get_num_threads()
    rc = gpu_check.main(["--dry-run", "--out", str(out), "--budget-s", "300"])
    assert torch.get_num_threads() == threads
    (json_path,) = out.glob("gpu-dryrun-*.json")
    return rc, json.loads(json_path.read_text()), json_path.with_suffix(".md").read_text(), json_path


def test_dry_run_writes_the_document(dry_run: tuple[int, dict, str, Path]) -> None:
    rc, doc, _, path = dry_run
    assert rc == 0
    assert not partial_path(path).exists()
    assert doc["schema"] == SCHEMA
    assert doc["meta"]["device"] == "cpu" and doc["meta"]["quick"] is True
    assert doc["meta"]["argv"][:1] == ["--dry-run"]
    check = doc["gpu_check"]
    assert check["dry_run"] is True and check["budget_s"] == 300
    assert check["tests"]["status"] == "skipped" and "-m triton" in check["tests"]["command"]
    assert check["not_run"] == []
    ids = [c["id"] for c in check["cases"]]
    assert [i.split("[")[0] for i in ids] == [
        "discriminators/multiscale",
        "penalties/r1/multiscale",
        *(f"ops/{name}" for name in OPS),
    ]
    assert all(c["status"] == "ok" and c["slice_s"] > 0 for c in check["cases"])
    assert any("Dry run" in n for n in check["notes"])


def test_dry_run_records(dry_run: tuple[int, dict, str, Path]) -> None:
    _, doc, _, _ = dry_run
    by_key = {(r["case"], r["mode"], r["provider"]): r for r in doc["results"]}
    for name in OPS:
        for mode in ("forward", "forward+backward"):
            for provider in ("ganblocks", "plain"):
                rec = by_key[(name, mode, provider)]
                assert rec["status"] == "ok", rec
                assert rec["params"]["dtype"] == "bfloat16" and rec["params"]["shape"] == [2, 8, 8, 8]
                assert rec["copy_bandwidth_gbs"] > 0 and rec["bandwidth_fraction_of_copy"] is not None
            for provider in ("compile", "compile(ganblocks)"):
                assert by_key[(name, mode, provider)]["status"] == "skipped"
            assert "GPU check" in by_key[(name, mode, "reference")]["reason"]
    msd = by_key[("multiscale", "forward+backward", "ganblocks")]
    r1 = by_key[("r1/multiscale", "step", "ganblocks")]
    for rec in (msd, r1, by_key[("multiscale", "forward+backward", "plain")]):
        assert rec["status"] == "ok" and rec["param_grad_bytes"] > 0
        assert rec["peak_memory_bytes"] is None  # CUDA only


def test_dry_run_targets(dry_run: tuple[int, dict, str, Path]) -> None:
    _, doc, _, _ = dry_run
    targets = {t["key"]: t for t in doc["targets"]}
    assert set(targets) == GPU_TARGETS
    assert all(t["status"] == "dry run" for t in targets.values())
    assert len(targets["ops-vs-plain-gpu"]["rows"]) == len(OPS)
    assert len(targets["ops-bandwidth-gpu"]["rows"]) == len(OPS)
    assert all(r["case"].endswith(" forward") for r in targets["ops-bandwidth-gpu"]["rows"])
    assert len(targets["multiscale-gpu"]["rows"]) == 1 and len(targets["r1-gpu"]["rows"]) == 1
    assert targets["ops-vs-compile-gpu"]["rows"] == []  # compile is skipped in a CPU dry run
    assert "CUDA only" in targets["multiscale-gpu-memory"]["detail"]
    for t in targets.values():
        for row in t["rows"]:
            assert row["status"] in ("met", "missed", "within noise")


def test_dry_run_markdown(dry_run: tuple[int, dict, str, Path]) -> None:
    _, _, md, _ = dry_run
    for heading in (
        "# ganblocks GPU check",
        "## Targets",
        "## Correctness tests",
        "## Cases",
        "## Fused ops",
    ):
        assert heading in md
    assert "**Dry run**" in md and "## Discriminators" in md and "## Penalties" in md
    for name in OPS:
        assert f"`ops/{name} forward+backward`" in md
    assert "≥ 1.5×" in md and "≥ 80%" in md and "≤ 0.8×" in md and "≥ 1.3×" in md and "≥ 1.2×" in md


def test_render_a_killed_check(dry_run: tuple[int, dict, str, Path], tmp_path: Path) -> None:
    _, doc, _, _ = dry_run
    out = tmp_path / "gpu-x.json"
    sink = Sink(out, doc["meta"])
    first = [r for r in doc["results"] if r["area"] == "ops"]
    sink.case(first[0]["id"], first)
    sink.section("gpu_check", {**doc["gpu_check"], "cases": doc["gpu_check"]["cases"][:3]})
    assert gpu_check.main(["--render", str(partial_path(out))]) == 0
    md = (tmp_path / "gpu-x.md").read_text()
    assert "## Targets" in md and "`ops/bias_act forward+backward`" in md and "dry run" in md
    assert "multiscale" not in md.split("## Cases")[0]  # not measured before the kill


def test_no_cuda_without_dry_run(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is here")
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    assert not list(tmp_path.iterdir())


FAKE_LOG = """\
============================= test session starts ==============================
tests/ops/test_a.py::test_one[triton-float32] PASSED                      [ 25%]
tests/ops/test_a.py::test_two[triton-x y] FAILED                         [ 50%]
tests/ops/test_b.py::test_three[triton] SKIPPED (needs more)             [ 75%]
tests/ops/test_b.py::test_four[triton] ERROR                             [100%]
=========================== short test summary info ============================
FAILED tests/ops/test_a.py::test_two[triton-x y] - AssertionError: no
"""


def test_parse_log_counts_lines_then_trusts_the_summary() -> None:
    cut = correctness.parse_log(FAKE_LOG)
    assert cut["summary"] is None
    assert cut["counts"] == {"passed": 1, "failed": 1, "error": 1, "skipped": 1, "xfailed": 0, "xpassed": 0}
    assert cut["failures"] == [
        "tests/ops/test_a.py::test_two[triton-x y]",
        "tests/ops/test_b.py::test_four[triton]",
    ]
    done = correctness.parse_log(
        FAKE_LOG + "===== 1 failed, 10 passed, 2 skipped, 1 error, 500 deselected in 3.2s =====\n"
    )
    assert done["counts"]["passed"] == 10 and done["counts"]["error"] == 1 and done["counts"]["skipped"] == 2
    assert "500 deselected" in done["summary"]


def test_pytest_command() -> None:
    cmd = correctness.pytest_command()
    assert cmd[:3] == [sys.executable, "-m", "pytest"]
    assert cmd[cmd.index("-m", 3) + 1] == "triton"
    assert cmd[-2:] == ["tests/ops", "tests/layers"]
    assert all((ROOT / p).is_dir() for p in cmd[-2:])


def _script(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_run_tests_reports_failures(tmp_path: Path) -> None:
    code = f"print({FAKE_LOG!r}); print('== 1 failed, 1 passed, 1 skipped, 1 error in 0.1s ==')"
    result = correctness.run_tests(_script(code), 60, tmp_path / "log.txt")
    assert result["status"] == "failed"
    assert result["counts"]["passed"] == 1 and result["counts"]["failed"] == 1
    assert (tmp_path / "log.txt").read_text().startswith("=====")


def test_run_tests_passed_and_error(tmp_path: Path) -> None:
    ok = correctness.run_tests(_script("print('== 3 passed in 0.1s ==')"), 60, tmp_path / "a.txt")
    assert ok["status"] == "passed" and ok["counts"]["passed"] == 3 and ok["returncode"] == 0
    bad = correctness.run_tests(
        _script("import sys; print('No module named pytest'); sys.exit(1)"), 60, tmp_path / "b.txt"
    )
    assert bad["status"] == "error" and bad["tail"] == ["No module named pytest"]


def test_run_tests_cap_keeps_what_ran(tmp_path: Path) -> None:
    code = "import time; print('tests/x.py::t PASSED', flush=True); time.sleep(120)"
    result = correctness.run_tests(_script(code), 4, tmp_path / "log.txt")
    assert result["status"] == "timed_out"
    assert result["seconds"] < 60
    assert result["counts"]["passed"] <= 1
