"""Run by test_ddp.py, once per rank: one DDP training step on CPU (gloo); rank 0 saves its gradients.

``python ddp_worker.py RANK WORLD INIT_FILE OUT_PATH``. Separate processes started by the test rather than
``torch.multiprocessing.spawn`` children: one interpreter start fewer, and nothing depends on how pytest
imported the test module.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ganblocks.discriminators import MSGDiscriminator, MultiScaleDiscriminator, image_pyramid

KINDS = ("multiscale", "msg")


def build(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "multiscale":
        return MultiScaleDiscriminator(3, num_scales=2, n_layers=1, base_channels=4)
    # Group size 2 on a batch of 4 puts samples {0, 2} and {1, 3} in a group: exactly each rank's share.
    return MSGDiscriminator(3, resolution=8, channel_base=32, max_channels=8, mbstd_group_size=2)


def batch() -> torch.Tensor:
    return torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def loss_fn(kind: str, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x if kind == "multiscale" else image_pyramid(x, 2))
    return torch.stack([F.softplus(-t).mean() for t in out.logits]).sum()


def worker(rank: int, world: int, init_file: str, out_path: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    x = batch()[rank::world]
    result = {}
    for kind in KINDS:
        model = build(kind)
        ddp = DistributedDataParallel(model)  # kept alive: its reducer all-reduces during backward
        loss_fn(kind, ddp, x).backward()
        result[kind] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    if rank == 0:
        torch.save(result, out_path)
    dist.destroy_process_group()


if __name__ == "__main__":
    worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
