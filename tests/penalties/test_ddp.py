"""A 2-process DDP step (gloo, CPU) with R1 and feature matching gives the single-process gradients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from helpers import assert_close


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo"
)
def test_ddp_step_matches_single_process(tmp_path: Path) -> None:
    worker = Path(__file__).with_name("_ddp_worker.py")
    env = {**os.environ, "GANBLOCKS_TEST_PORT": str(_free_port()), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(worker), str(tmp_path)], env=env, capture_output=True, text=True, timeout=170
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = torch.load(tmp_path / "single.pt", weights_only=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for net in ("d", "g"):
        for name, expected in single[net].items():
            for r, got in enumerate(ranks):
                # DDP averages the two half-batch gradients; R1 and the losses are batch means.
                assert torch.isfinite(got[net][name]).all(), f"rank {r} {net}.{name} has no gradient"
                assert_close(got[net][name], expected, scale=10)
    # The head's bias gets exactly zero from R1 (it is only kept in the graph for DDP).
    assert torch.equal(ranks[0]["d"]["head.bias"], torch.zeros(1))
