"""A DDP training step on two CPU processes (gloo) gives the gradients of one process on the whole batch."""

from __future__ import annotations

from pathlib import Path

import ddp
import pytest
import torch.distributed as dist
from helpers import assert_close


@pytest.mark.slow
@pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo"
)
def test_ddp_gradients_equal_single_process(tmp_path: Path) -> None:
    ranks = ddp.run_ddp(ddp.discriminators_worker, 2, tmp_path)
    x = ddp.discriminator_batch()
    for kind in ddp.KINDS:
        model = ddp.build_discriminator(kind)
        ddp.discriminator_loss(kind, model, x).backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        assert all(g is not None for g in grads.values())
        for ddp_grads in ranks:  # every rank holds the all-reduced gradients
            assert sorted(ddp_grads[kind]) == sorted(grads)
            for name, g in grads.items():
                assert g is not None and g.abs().sum() > 0, f"{kind}: {name} has a zero gradient"
                assert_close(ddp_grads[kind][name], g)
