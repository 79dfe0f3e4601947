"""A DDP training step on two CPU processes (gloo) gives the gradients of one process on the whole batch."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from helpers import assert_close

WORKER = Path(__file__).with_name("ddp_worker.py")


def load_worker():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("ddp_worker", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo"
)
def test_ddp_gradients_equal_single_process(tmp_path: Path) -> None:
    out = tmp_path / "grads.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(rank), "2", str(tmp_path / "init"), str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    errors = []
    try:
        for proc in procs:
            errors.append(proc.communicate(timeout=120)[1])
    finally:
        for proc in procs:
            if proc.poll() is None:  # only after a timeout: do not leave a rank waiting for its peer
                proc.kill()
    for rank, (proc, err) in enumerate(zip(procs, errors)):
        assert proc.returncode == 0, f"rank {rank} failed:\n{err[-3000:]}"
    ddp_grads = torch.load(out, weights_only=True)
    worker = load_worker()
    x = worker.batch()
    for kind in worker.KINDS:
        model = worker.build(kind)
        worker.loss_fn(kind, model, x).backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        assert all(g is not None for g in grads.values())
        assert sorted(ddp_grads[kind]) == sorted(grads)
        for name, g in grads.items():
            assert g.abs().sum() > 0, f"{kind}: {name} has a zero gradient"
            assert_close(ddp_grads[kind][name], g)
