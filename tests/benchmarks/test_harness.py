"""The harness's CUDA-only and time-bound branches, exercised on CPU: the L2 flush around CUDA events (with
stand-in events), deadlines, the copy baseline, parameter-gradient bytes, and results written as they come."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import harness, render  # noqa: E402
from benchmarks.case import Case, Workload  # noqa: E402
from benchmarks.config import Config  # noqa: E402
from benchmarks.counting import param_grad_bytes  # noqa: E402
from benchmarks.harness import Budget, L2Flush, Timing, copy_bandwidth_gbs, time_interleaved  # noqa: E402
from benchmarks.measure import run_case  # noqa: E402
from benchmarks.ops import OPS, op_case  # noqa: E402
from benchmarks.sink import Sink, load_partial, partial_path  # noqa: E402

CPU = torch.device("cpu")


class _Events:
    """Stand-ins for ``torch.cuda.Event`` that log what happens in which order."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def __call__(self, enable_timing: bool = False) -> Any:
        log = self.log

        class Event:
            def record(self) -> None:
                log.append("record")
                self.t = time.perf_counter()

            def synchronize(self) -> None:
                log.append("sync")

            def elapsed_time(self, end: Any) -> float:
                return (end.t - self.t) * 1e3

        return Event()


def test_cuda_clock_flushes_l2_before_the_start_event(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    flush = L2Flush(CPU, nbytes=1 << 16)
    monkeypatch.setattr(L2Flush, "for_device", classmethod(lambda cls, device: _Logged(flush, log)))
    monkeypatch.setattr(torch.cuda, "Event", _Events(log))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)

    def run(_: Any) -> None:
        log.append("run")

    group = {"a": (lambda: None, run), "b": (lambda: None, run)}
    out = time_interleaved(group, torch.device("cuda"), Budget(warmup=1, min_reps=3, max_reps=3, seconds=0))
    assert all(isinstance(t, Timing) and t.reps == 3 for t in out.values())
    timed = "".join(x[0] for x in log[2:])  # after the two warm-ups: flush, record, run, record, sync per rep
    assert timed == "frrrs" * 6, log
    assert flush.calls == 6 and flush.buffer is not None and int(flush.buffer.abs().sum()) == 0


class _Logged:
    def __init__(self, flush: L2Flush, log: list[str]) -> None:
        self.flush, self.log = flush, log

    def __call__(self) -> None:
        self.log.append("flush")
        self.flush()


def test_flush_is_cuda_only_and_writes_its_buffer() -> None:
    assert L2Flush.for_device(CPU) is None
    flush = L2Flush(CPU, nbytes=1 << 12)
    flush()
    assert flush.buffer is not None and flush.buffer.numel() == 1 << 12 and flush.calls == 1
    assert harness.L2_FLUSH_BYTES >= 4 * 60 * 2**20  # well above an H100/H200's L2


def _sleeper(seconds: float) -> tuple[Any, Any]:
    return (lambda: None, lambda _: time.sleep(seconds))


def test_deadline_passed_before_warm_up() -> None:
    out = time_interleaved({"a": _sleeper(0)}, CPU, Budget(warmup=5), deadline=time.perf_counter() - 1)
    assert isinstance(out["a"], Timing)
    assert out["a"].timed_out and out["a"].reps == harness.ROUNDS_PAST_DEADLINE


def test_deadline_stops_timing_between_repetitions() -> None:
    budget = Budget(warmup=1, min_reps=50, max_reps=1000, seconds=100)
    start = time.perf_counter()
    out = time_interleaved({"a": _sleeper(0.01), "b": _sleeper(0.01)}, CPU, budget, deadline=start + 0.1)
    assert time.perf_counter() - start < 5
    for t in out.values():
        assert isinstance(t, Timing)
        assert t.timed_out and harness.ROUNDS_PAST_DEADLINE <= t.reps < 50
        assert t.to_json()["timed_out"] is True
    # without a deadline the same budget is not marked
    quick = time_interleaved({"a": _sleeper(0)}, CPU, Budget(warmup=0, min_reps=2, max_reps=2, seconds=0))
    assert isinstance(quick["a"], Timing) and not quick["a"].timed_out


def test_run_case_past_its_deadline_records_timed_out() -> None:
    cfg = Config(CPU, quick=True, compile="none", budget=Budget(warmup=1, min_reps=1, max_reps=1, seconds=0))
    case = op_case(cfg, OPS["bias_act"], (2, 4, 4, 4), torch.float32)
    records = run_case(case, cfg, deadline=time.perf_counter() - 1)
    status = {(r["mode"], r["provider"]): r["status"] for r in records}
    assert status[("forward", "ganblocks")] == "timed_out"
    assert status[("forward", "compile")] == "skipped"
    assert all(r["time_ms"] is None for r in records)


def _slow(compiled: bool) -> Workload:
    def work() -> torch.Tensor:
        time.sleep(0.03)
        return torch.zeros(1)

    return Workload(forward=work, step=work, compiled=compiled)


def test_past_the_soft_deadline_a_case_keeps_measuring_its_eager_providers() -> None:
    cfg = Config(
        CPU, quick=False, compile="all", budget=Budget(warmup=1, min_reps=50, max_reps=100, seconds=100)
    )
    providers = {
        "ganblocks": lambda: _slow(False),
        "plain": lambda: _slow(False),
        "compile": lambda: _slow(True),
    }
    case = Case("ops", "fake", {}, ("forward", "step"), providers)
    now = time.perf_counter()
    records = run_case(case, cfg, deadline=now + 0.05, hard_deadline=now + 120)
    assert time.perf_counter() - now < 30
    by_key = {(r["mode"], r["provider"]): r for r in records}
    for key in (("forward", "ganblocks"), ("forward", "plain"), ("step", "ganblocks"), ("step", "plain")):
        rec = by_key[key]
        assert rec["status"] == "ok" and rec["time_ms"]["timed_out"], rec
        assert rec["time_ms"]["reps"] == harness.ROUNDS_PAST_DEADLINE
    # compile was timed in the first mode (the deadline passed during it), then cut
    assert by_key[("forward", "compile")]["time_ms"]["timed_out"]
    assert by_key[("step", "compile")]["status"] == "timed_out"
    assert "torch.compile stopped" in by_key[("step", "compile")]["reason"]
    # the hard deadline drops the modes not started
    records = run_case(case, cfg, deadline=now, hard_deadline=now)
    assert {r["status"] for r in records} == {"timed_out"}


def test_copy_baseline_at_the_ops_size_and_dtype() -> None:
    gbs = copy_bandwidth_gbs(CPU, numel=2 * 8 * 16 * 16, dtype=torch.bfloat16, reps=3)
    assert gbs > 0
    assert copy_bandwidth_gbs(CPU, megabytes=1, reps=3) > 0


def test_param_grad_bytes() -> None:
    m = torch.nn.Linear(4, 3)
    assert param_grad_bytes(m.parameters()) == 0
    m(torch.randn(2, 4)).sum().backward()
    assert param_grad_bytes(m.parameters()) == (12 + 3) * 4
    assert param_grad_bytes([]) is None


def test_partial_results_survive_a_kill_and_render(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    source = json.loads((ROOT / "benchmarks" / "results" / "cpu-2026-11-22.json").read_text())
    sink = Sink(out, source["meta"])
    first = [r for r in source["results"] if r["area"] == "ops"][:10]
    sink.case(first[0]["id"], first, "a note")
    sink.section("extra", {"k": 1})
    with partial_path(out).open("a") as f:
        f.write('{"kind": "case", "id": "cut sh')  # the line a kill cut short
    doc = load_partial(partial_path(out))
    assert doc["meta"]["partial"] is True and doc["results"] == first and doc["extra"] == {"k": 1}
    assert doc["notes"] == {first[0]["id"]: "a note"}
    assert render.main([str(partial_path(out))]) == 0
    assert "Fused ops" in (tmp_path / "run.partial.md").read_text()
    sink.finish({**doc, "meta": source["meta"]}, out)
    assert out.exists() and not partial_path(out).exists()
