"""A 2-process DDP step (gloo, CPU) with R1 and feature matching gives the single-process gradients."""

from __future__ import annotations

from pathlib import Path

import ddp
import pytest
import torch
import torch.distributed as dist
from helpers import assert_close


@pytest.mark.slow
@pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo"
)
def test_ddp_step_matches_single_process(tmp_path: Path) -> None:
    ranks = ddp.run_ddp(ddp.penalties_worker, 2, tmp_path)
    d, g, real, z = ddp.build_gan()
    ddp.penalty_step(d, g, d, real, z)
    single = {"d": ddp.grads(d), "g": ddp.grads(g)}
    for net in ("d", "g"):
        for name, expected in single[net].items():
            for r, got in enumerate(ranks):
                # DDP averages the two half-batch gradients; R1 and the losses are batch means.
                assert torch.isfinite(got[net][name]).all(), f"rank {r} {net}.{name} has no gradient"
                assert_close(got[net][name], expected, scale=10)
    # The head's bias gets exactly zero from R1 (it is only kept in the graph for DDP).
    assert torch.equal(ranks[0]["d"]["head.bias"], torch.zeros(1))
