"""One harness for the DistributedDataParallel tests, and the training steps they run.

:func:`run_ddp` spawns ``world_size`` CPU processes (``torch.multiprocessing``, spawn start method), joins
them in one gloo process group, runs a worker in each and returns what each rank returned. A worker is a
module-level function of this module: the children import it by name (``ddp``, from ``tests/`` on the
path they inherit), so nothing depends on how pytest imported the test module.

Scenarios: a step of a MultiScaleDiscriminator and of an MSGDiscriminator
(:func:`discriminators_worker`), and an R1 step on D then a feature-matching + adversarial step on G
(:func:`penalties_worker`). Each test runs the same step in one process on the whole batch and compares.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.multiprocessing.spawn import start_processes
from torch.nn.parallel import DistributedDataParallel

from ganblocks.discriminators import (
    DiscriminatorOutput,
    MSGDiscriminator,
    MultiScaleDiscriminator,
    image_pyramid,
)
from ganblocks.losses import FeatureMatchingLoss, g_loss
from ganblocks.metrics import FeatureStatistics
from ganblocks.penalties import r1_penalty

Grads = dict[str, torch.Tensor]


def run_ddp(
    worker_main: Callable[[int, int], Any], world_size: int, tmp_path: Path, *, timeout: float = 150.0
) -> list[Any]:
    """Run ``worker_main(rank, world_size)`` on ``world_size`` processes in one gloo group; their results."""
    ctx = start_processes(
        _entry,
        args=(worker_main, world_size, str(tmp_path)),
        nprocs=world_size,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + timeout
    try:
        # join raises, with the child's traceback, as soon as one rank fails
        while not ctx.join(timeout=max(0.1, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{worker_main.__name__} did not finish on {world_size} ranks in {timeout} s"
                )
    finally:
        for proc in ctx.processes:  # only after a failure: do not leave a rank waiting for its peer
            if proc.is_alive():
                proc.kill()
    return [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in range(world_size)]


def _entry(rank: int, worker_main: Callable[[int, int], Any], world_size: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    init = f"file://{Path(out_dir) / 'init'}"
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world_size)
    try:
        result = worker_main(rank, world_size)
    finally:
        dist.destroy_process_group()
    torch.save(result, Path(out_dir) / f"rank{rank}.pt")


def grads(module: nn.Module) -> Grads:
    """Each parameter's gradient; NaN where a parameter got none."""
    return {
        n: p.grad.clone() if p.grad is not None else torch.full_like(p, float("nan"))
        for n, p in module.named_parameters()
    }


# ------------------------------------------------------------------------------------------ discriminators

KINDS = ("multiscale", "msg")


def build_discriminator(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "multiscale":
        return MultiScaleDiscriminator(3, num_scales=2, num_layers=1, base_channels=4)
    # Group size 2 on a batch of 4 puts samples {0, 2} and {1, 3} in a group: exactly each rank's share.
    return MSGDiscriminator(3, resolution=8, base_channels=4, max_channels=8, mbstd_group_size=2)


def discriminator_batch() -> torch.Tensor:
    return torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def discriminator_loss(kind: str, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x if kind == "multiscale" else image_pyramid(x, 2))
    return torch.stack([F.softplus(-t).mean() for t in out.logits]).sum()


def discriminators_worker(rank: int, world_size: int) -> dict[str, Grads]:
    """One DDP step of each kind of discriminator on this rank's strided share of the batch."""
    x = discriminator_batch()[rank::world_size]
    result = {}
    for kind in KINDS:
        model = build_discriminator(kind)
        ddp = DistributedDataParallel(model)  # kept alive: its reducer all-reduces during backward
        discriminator_loss(kind, ddp, x).backward()
        result[kind] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return result


# ----------------------------------------------------------------------------------------------- penalties

BATCH = 4


class TinyD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.head = nn.Linear(4 * 4 * 4, 1)  # its bias never reaches the input gradient

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        h1 = F.leaky_relu(self.c1(x), 0.2)
        h2 = F.leaky_relu(self.c2(h1), 0.2)
        return DiscriminatorOutput([self.head(h2.flatten(1))], [[h1, h2]])


def build_gan() -> tuple[nn.Module, nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    d = TinyD()
    g = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Tanh())
    real = torch.randn(BATCH, 3, 8, 8)
    z = torch.randn(BATCH, 3, 8, 8)
    return d, g, real, z


def penalty_step(d: nn.Module, g: nn.Module, d_plain: nn.Module, real: torch.Tensor, z: torch.Tensor) -> None:
    # D regularization step alone (StyleGAN2's "Dreg"): R1 is D's only loss here.
    r1_penalty(d, real, gamma=10.0).backward()
    # G step: feature matching + adversarial loss through the (frozen) plain D.
    d_plain.requires_grad_(False)
    fake = g(z)
    out_fake, out_real = d_plain(fake), d_plain(real)
    loss = FeatureMatchingLoss.pix2pixhd(num_scales=1, num_layers=1)(out_fake, out_real)
    (loss + g_loss(out_fake, kind="non_saturating")).backward()
    d_plain.requires_grad_(True)


def penalties_worker(rank: int, world_size: int) -> dict[str, Grads]:
    """The penalty step with D and G in DDP, on this rank's contiguous share of the batch."""
    d, g, real, z = build_gan()
    ddp_d, ddp_g = DistributedDataParallel(d), DistributedDataParallel(g)
    shard = slice(rank * BATCH // world_size, (rank + 1) * BATCH // world_size)
    penalty_step(ddp_d, ddp_g, d, real[shard], z[shard])
    return {"d": grads(d), "g": grads(g)}


# ------------------------------------------------------------------------------------------------- metrics


def metrics_features() -> torch.Tensor:
    """50 samples of 6 correlated features with a nonzero mean: ranks take unequal shares of them."""
    g = torch.Generator().manual_seed(2)
    return torch.randn(50, 6, generator=g) @ torch.randn(6, 6, generator=g) + 3


def feature_statistics_worker(rank: int, world_size: int) -> dict[str, torch.Tensor]:
    """FeatureStatistics of this rank's unequal share (rank 0: 20 rows, rank 1: 30), all-reduced."""
    x = metrics_features()
    stats = FeatureStatistics()
    stats.update(x[:20] if rank == 0 else x[20:])
    stats.all_reduce()
    return {
        "num_samples": torch.tensor(stats.num_samples),
        "mean": stats.mean,
        "covariance": stats.covariance,
    }
