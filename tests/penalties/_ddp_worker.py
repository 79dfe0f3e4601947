"""Run by test_ddp.py as a script: one training step (R1 on D, feature matching + adversarial on G), once
in a single process on the whole batch and once with 2 DDP processes (gloo, CPU) on half batches each;
saves both sets of gradients for the test to compare."""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ganblocks.discriminators import DiscriminatorOutput
from ganblocks.losses import FeatureMatchingLoss, g_loss
from ganblocks.penalties import r1_penalty

WORLD = 2
BATCH = 4


class TinyD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.head = nn.Linear(4 * 4 * 4, 1)  # its bias never reaches the input gradient

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        h1 = torch.nn.functional.leaky_relu(self.c1(x), 0.2)
        h2 = torch.nn.functional.leaky_relu(self.c2(h1), 0.2)
        return DiscriminatorOutput([self.head(h2.flatten(1))], [[h1, h2]])


def build() -> tuple[nn.Module, nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    d = TinyD()
    g = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh())
    real = torch.randn(BATCH, 3, 8, 8)
    z = torch.randn(BATCH, 3, 8, 8)
    return d, g, real, z


def step(d: nn.Module, g: nn.Module, d_plain: nn.Module, real: torch.Tensor, z: torch.Tensor) -> None:
    # D regularization step alone (StyleGAN2's "Dreg"): R1 is D's only loss here.
    r1_penalty(d, real, gamma=10.0).backward()
    # G step: feature matching + adversarial loss through the (frozen) plain D.
    d_plain.requires_grad_(False)
    fake = g(z)
    out_fake, out_real = d_plain(fake), d_plain(real)
    loss = FeatureMatchingLoss.pix2pixhd(num_scales=1, n_layers=1)(out_fake, out_real)
    (loss + g_loss(out_fake, kind="non_saturating")).backward()
    d_plain.requires_grad_(True)


def grads(m: nn.Module) -> dict[str, torch.Tensor]:
    return {
        n: p.grad.clone() if p.grad is not None else torch.full_like(p, float("nan"))
        for n, p in m.named_parameters()
    }


def worker(rank: int, out_dir: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = os.environ["GANBLOCKS_TEST_PORT"]
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    d, g, real, z = build()
    ddp_d, ddp_g = DistributedDataParallel(d), DistributedDataParallel(g)
    shard = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
    step(ddp_d, ddp_g, d, real[shard], z[shard])
    torch.save({"d": grads(d), "g": grads(g)}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def main() -> None:
    out_dir = sys.argv[1]
    d, g, real, z = build()
    step(d, g, d, real, z)
    torch.save({"d": grads(d), "g": grads(g)}, os.path.join(out_dir, "single.pt"))
    mp.spawn(worker, args=(out_dir,), nprocs=WORLD, join=True)


if __name__ == "__main__":
    main()
