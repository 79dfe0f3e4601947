"""examples/train.py checkpoints: a stopped and resumed run ends exactly where an uninterrupted one does,
and a checkpoint that is truncated, foreign or from another run is refused before anything is loaded."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")
pytest.importorskip("PIL")

# The StyleGAN synthesis draws noise from torch's generator at every layer, the conditional pair draws
# latents and class codes, the data its own generator, and the lr decay moves the schedules' state: each
# of them must come back from the checkpoint for the runs to agree. R1 runs on every other step.
OPTIONS = ["--smoke", "--no-progress", "--threads", "1", "--synthesis", "stylegan", "--lr-decay", "0.5"]
TIMING = ("seconds", "cpu_seconds", "resumed_at")


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"ganblocks_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _keep_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def train() -> ModuleType:
    return load_example("train")


@pytest.fixture(scope="module")
def finished(train: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of one uninterrupted 6-step smoke run (the reference)."""
    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("uninterrupted")
    train.main([*OPTIONS, "--out", str(out)])
    torch.set_num_threads(threads)
    return out


def assert_same(a: Any, b: Any, where: str = "checkpoint") -> None:
    """Equal structure; every tensor bit-identical (torch.equal), every other value equal."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, type(a)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, weights_only=True)


def run(train: ModuleType, out: Path, *extra: str, on_step: Callable[[int], None] | None = None) -> Any:
    return train.main([*OPTIONS, "--out", str(out), *extra], on_step=on_step)


def test_stopped_and_resumed_run_matches_uninterrupted_run(
    train: ModuleType, finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "resumed"
    handler = signal.getsignal(signal.SIGINT)

    # Ctrl-C during step 3: the step finishes, the checkpoint is written, the script exits 128 + SIGINT.
    def interrupt(step: int) -> None:
        if step == 3:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(SystemExit) as stopped:
        run(train, out, "--checkpoint-every", "2", on_step=interrupt)
    assert stopped.value.code == 128 + signal.SIGINT
    message = capsys.readouterr().err
    assert "stopped by SIGINT after step 3 of 6" in message and "--resume" in message
    assert str(out / "checkpoint.pt") in message
    assert load(out / "checkpoint.pt")["step"] == 3
    assert signal.getsignal(signal.SIGINT) is handler  # put back
    assert not (out / "metrics.json").exists()

    # Resumed, then killed hard during step 5: the periodic checkpoint of step 4 survives.
    def crash(step: int) -> None:
        if step == 5:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        run(train, out, "--checkpoint-every", "2", "--resume", on_step=crash)
    assert load(out / "checkpoint.pt")["step"] == 4
    assert not list(out.glob(".checkpoint.pt.*")), "a temporary file was left behind"

    # Resumed again, from an explicit path, to the end.
    metrics = run(train, out, "--checkpoint-every", "2", "--resume", str(out / "checkpoint.pt"))
    assert metrics["resumed_at"] == [3, 4]

    reference, resumed = load(finished / "checkpoint.pt"), load(out / "checkpoint.pt")
    assert resumed["step"] == reference["step"] == 6
    assert set(reference["states"]) == {
        "G", "D", "ema", "opt_g", "opt_d", "schedule_g", "schedule_d", "classifier"
    }  # fmt: skip
    assert reference["states"]["opt_d"]["state"], "no optimizer state to compare"
    for key in ("states", "rng", "history"):
        assert_same(reference[key], resumed[key], key)
    expected = json.loads((finished / "metrics.json").read_text())
    found = json.loads((out / "metrics.json").read_text())
    for key in TIMING:
        expected.pop(key)
        found.pop(key)
    assert found == expected
    assert found["losses"] and len(found["evals"]) == 3  # steps 0, 3 and 6


def test_a_resumed_finished_run_changes_nothing(train: ModuleType, finished: Path, tmp_path: Path) -> None:
    out = tmp_path / "again"
    shutil.copytree(finished, out)
    metrics = run(train, out, "--resume")
    assert metrics["resumed_at"] == [6]
    assert_same(load(finished / "checkpoint.pt")["states"], load(out / "checkpoint.pt")["states"])


def tamper(checkpoint: dict[str, Any], change: str) -> object:
    if change == "foreign dict":
        return {"model": checkpoint["states"]["G"], "epoch": 3}
    if change == "not a dict":
        return torch.zeros(3)
    if change == "pickled module":
        return nn.Linear(2, 2)
    if change == "other version":
        return {**checkpoint, "version": 99}
    if change == "missing part":
        del checkpoint["states"]["ema"]
    elif change == "wrong shape":
        key = next(k for k, v in checkpoint["states"]["D"].items() if v.dim() == 4)
        checkpoint["states"]["D"][key] = checkpoint["states"]["D"][key][:, :1]
    elif change == "optimizer state":
        state = checkpoint["states"]["opt_g"]["state"]
        state[0]["exp_avg"] = state[0]["exp_avg"].flatten()
    elif change == "rng":
        checkpoint["rng"]["data"] = checkpoint["rng"]["data"][:100]
    elif change == "history":
        checkpoint["history"]["losses"].pop()
    return checkpoint


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("truncated", r"cannot be read as a PyTorch checkpoint; is it truncated or corrupt\?"),
        ("foreign dict", r"not a ganblocks-examples-train checkpoint \(it holds a dict with keys \['epoch'"),
        ("not a dict", r"not a ganblocks-examples-train checkpoint \(it holds a Tensor"),
        (
            "pickled module",
            r"it holds a pickled torch.nn.modules.linear.Linear, which torch.load\(weights_only=True\)",
        ),
        ("other version", r"format version 99, this script reads version 1"),
        ("missing part", r"states: missing states \['ema'\]"),
        ("wrong shape", r"states\['D'\]\['msg\..*'\]: expected tensor \(\d+, \d+, \d+, \d+\)"),
        ("optimizer state", r"states\['opt_g'\]\['state'\]\[0\]\['exp_avg'\]: expected tensor"),
        ("rng", r"rng\['data'\]: expected tensor \(5056,\) torch.uint8, found tensor \(100,\)"),
        ("history", r"history\['losses'\] must hold one entry per step \(6\)"),
    ],
)
def test_a_bad_checkpoint_is_refused_naming_the_file(
    train: ModuleType, finished: Path, tmp_path: Path, change: str, error: str
) -> None:
    path = tmp_path / "bad.pt"
    original = (finished / "checkpoint.pt").read_bytes()
    if change == "truncated":
        path.write_bytes(original[: len(original) // 2])
    else:
        torch.save(tamper(load(finished / "checkpoint.pt"), change), path)
    before = path.read_bytes()
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=rf"^--resume: {re.escape(str(path))}: .*{error}"):
        run(train, out, "--resume", str(path))
    assert path.read_bytes() == before
    assert not out.exists() or not any(out.iterdir()), "a refused resume wrote outputs"


def test_a_checkpoint_of_other_options_or_none_is_refused(
    train: ModuleType, finished: Path, tmp_path: Path
) -> None:
    path = finished / "checkpoint.pt"
    other = r"other options \(r1_gamma 1.0 there, 2.0 here; seed 0 there, 1 here\)"
    with pytest.raises(
        SystemExit, match=rf"^--resume: {re.escape(str(path))}: written by a run with {other}"
    ):
        run(train, tmp_path, "--resume", str(path), "--r1-gamma", "2", "--seed", "1")
    missing = re.escape(str(tmp_path / "checkpoint.pt"))
    with pytest.raises(SystemExit, match=rf"^--resume: {missing}: no such checkpoint file"):
        run(train, tmp_path, "--resume")


def test_states_are_checked_before_any_is_loaded() -> None:
    """A checkpoint whose second part does not fit leaves the first part's live object untouched."""
    checkpointing = load_example("checkpointing")
    first, second = nn.Linear(3, 2), nn.Linear(2, 1)
    optimizer = torch.optim.Adam([*first.parameters(), *second.parameters()])
    live = {"first": first, "second": second, "optimizer": optimizer}
    good = {
        "first": nn.Linear(3, 2).state_dict(),
        "second": {"weight": torch.ones(1, 2), "bias": torch.ones(1)},
        "optimizer": optimizer.state_dict(),
    }
    checkpointing.check_states(good, live, "ckpt")
    before = {k: v.clone() for k, v in first.state_dict().items()}
    bad = {**good, "second": {"weight": torch.ones(1, 3), "bias": torch.ones(1)}}
    with pytest.raises(
        checkpointing.CheckpointError, match=r"ckpt\['second'\]\['weight'\]: expected tensor \(1, 2\)"
    ):
        checkpointing.check_states(bad, live, "ckpt")
    bad = {**good, "second": {"weight": torch.ones(1, 2, dtype=torch.float64), "bias": torch.ones(1)}}
    with pytest.raises(
        checkpointing.CheckpointError, match=r"torch.float32, found tensor \(1, 2\) torch.float64"
    ):
        checkpointing.check_states(bad, live, "ckpt")
    assert_same(before, first.state_dict())
    checkpointing.load_states(good, live)
    assert_same(good["first"], first.state_dict())


def test_save_atomic_keeps_the_old_file_when_a_write_fails(tmp_path: Path) -> None:
    checkpointing = load_example("checkpointing")
    path = tmp_path / "checkpoint.pt"
    checkpointing.save_atomic({"step": 1}, path)

    class Unpicklable:
        def __reduce__(self) -> Any:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        checkpointing.save_atomic({"step": 2, "x": Unpicklable()}, path)
    assert load(path) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
