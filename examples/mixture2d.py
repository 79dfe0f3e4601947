"""Mode coverage on 2D Gaussian mixtures: every GAN training remedy of ganblocks, one configuration each.

The standard mode-collapse test of the VEEGAN, Unrolled-GAN and PacGAN papers:

* ``ring``: 8 Gaussians evenly spaced on a circle of radius 2, standard deviation 0.02;
* ``grid``: 25 Gaussians at ``{-4, -2, 0, 2, 4}²``, standard deviation 0.05.

Generator (2-d Gaussian latent, 3 × 128 ReLU) and discriminator (3 × 128 leaky ReLU) are small MLPs
trained with Adam (lr 1e-3 decaying linearly to 0, betas (0.5, 0.9), batch 512) for 4,000 generator steps
on the ring and 12,000 on the grid; samples come from ``ganblocks.training.ModelEMA`` of the generator
(half-life 35.3k samples: a per-step β of 0.99). One training loop serves every configuration: a
:class:`Config` (the table ``CONFIGS``) switches remedies on, and :func:`make_hooks` turns them into hooks
of the loop (fakes for D, D penalties, after-D-step, G penalties, after-G-step, G logits):

* ``gan``: non-saturating loss, nothing else;
* ``label-smoothing``: one-sided, ``AdversarialLoss("non_saturating", real_label=0.9)``;
* ``image-pool``: ``ganblocks.training.ImagePool`` (5,120 points): half of D's fakes are past ones;
* ``bcr``: balanced consistency regularization (``consistency_regularization``, λ = 10 on real and fake),
  the augmentation a Gaussian jitter of one mode σ (DiffAugment is for images);
* ``dragan``: ``dragan_penalty`` (λ = 10, c = 0.5);
* ``historical-averaging``: ``HistoricalAveraging`` of G and D (λ = 1e-3);
* ``wgan-clip``: WGAN loss, ``clip_weights_`` (c = 0.01), 5 critic steps per generator step, RMSProp with
  lr 5e-5 (the WGAN paper);
* ``wgan-gp``: WGAN loss + ``gradient_penalty`` (λ = 0.1, the WGAN-GP paper's toy setting), 5 critic
  steps per generator step, Adam betas (0, 0.9) (the WGAN-GP paper);
* ``unrolled``: the generator's loss through 5 differentiable SGD steps (lr 0.01) of the discriminator
  (``ganblocks.training.unrolled_discriminator``, Metz et al.);
* ``r1``: non-saturating loss + R1 penalty on real samples, γ = 0.01 (``r1_penalty``; γ is small because
  the modes are: 10 would forbid the sharp discriminator that 0.02-wide modes need);
* ``mbstd``: the discriminator's last hidden layer gets the minibatch standard deviation
  (``minibatch_stddev`` on an ``(N, F, 1, 1)`` view, groups of 4);
* ``r1-mbstd``: both;
* ``r1-sharpen``: R1 with γ scaled by the squared mode width, γ = 0.01 (σ / 0.05)² (0.01 on the grid,
  0.0016 on the ring: a discriminator sharp at the modes' scale has gradients ~ 1/σ), for the first 70% of
  training, then no penalty: a sharpening phase at the low end of the learning-rate decay (R1 spreads the
  generator over every mode, the free discriminator then pulls the samples into them);
* ``no-ema``: ``r1`` sampled from the generator itself (the EMA ablation).

Metrics, on 2,500 samples:

* **high-quality** (%): share of samples within 3σ (Euclidean distance) of the nearest mode centre;
* **modes covered**: modes that receive at least 20% of their fair share (``N / K``) of high-quality
  samples: 62 samples for a ring mode, 20 for a grid mode;
* **precision** and **recall** (``ganblocks.metrics.precision_recall``, k = 3, in the plane) against 2,500
  fresh samples of the mixture: the share of samples inside the data's k-NN balls, and the share of data
  points inside the samples' (in ``results.json``).

Run ``python examples/mixture2d.py`` (every configuration on both datasets, seed 0: about 1 h 55 min of one
CPU core; ``unrolled`` and the 5-critic-step WGANs cost 4-10× a plain GAN), with ``--seeds 0,1,2`` for one
run per configuration, dataset and seed, ``--jobs N`` to spread the runs over N processes (the same
results: every run seeds itself, so seed s gives the same run alone or among others), ``--configs
r1-sharpen`` for the best one alone (~5 minutes of one idle core per seed), ``--configs gan r1`` (or
``gan,r1``) for a subset, run in the order given, or ``--smoke`` for a seconds-long check. Outputs in
``--out`` (default ``runs/mixture2d``), rewritten after every finished run:

* ``results.json``: ``settings``; ``runs``, one entry per run (``config``, ``dataset``, ``seed``, the
  metrics, ``history``, ``seconds``, ``cpu_seconds``, ``steps``); ``summary[dataset][config]``, over the
  seeds: ``seeds``, ``num_seeds``, ``num_modes``, ``modes`` and ``high_quality`` as ``{median, min, max}``,
  ``target_met`` (how many seeds cover every mode with ≥ 95% high-quality samples),
  ``median_meets_target`` (the medians of both do) and the median ``cpu_seconds``;
* ``results.md``: the table, "median [min–max]" over the seeds and the target met as "k/n";
* ``samples.pt``: the 2-d samples of each configuration and dataset's lowest seed (plain tensors, keys
  ``"dataset/config/seed"``) and ``scatter.png``, their scatter plots.

``--merge DIR [DIR ...]`` trains nothing: it combines the runs of earlier output folders (the same
settings; a run present in two folders must be the same run, its timing aside) and writes the outputs of
all of them to ``--out``, e.g. after ``--seeds 0,1,2,3,4 --configs r1-sharpen label-smoothing --out A``
and ``--seeds 0,1,2 --configs gan r1 ... --out B``: ``--merge A B --out C``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import statistics
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.func import functional_call
from tqdm import tqdm

from ganblocks import AdversarialLoss
from ganblocks.functional import (
    clip_weights_,
    consistency_regularization,
    dragan_penalty,
    gradient_penalty,
    minibatch_stddev,
    r1_penalty,
    unrolled_discriminator,
)
from ganblocks.metrics import precision_recall
from ganblocks.penalties import HistoricalAveraging
from ganblocks.training import ImagePool, ModelEMA

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the examples' shared helpers next to this file
from seeds import load_saved, median_range, merge_runs, spread

DATASETS = ("ring", "grid")
STEPS = {"ring": 4000, "grid": 12000}  # default training steps; the grid needs more to cover 25 modes
CPU = torch.device("cpu")


# ----------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Mixture:
    """An equal-weight mixture of isotropic Gaussians."""

    name: str
    centers: torch.Tensor  # (K, 2)
    std: float

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        idx = torch.randint(len(self.centers), (n,), generator=generator)
        return self.centers[idx] + self.std * torch.randn(n, 2, generator=generator)


def make_mixture(name: str) -> Mixture:
    if name == "ring":
        angles = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
        return Mixture("ring", 2.0 * torch.stack([angles.cos(), angles.sin()], dim=1), 0.02)
    if name == "grid":
        axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        return Mixture("grid", torch.cartesian_prod(axis, axis), 0.05)
    raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")


# ----------------------------------------------------------------------------------------------- models
def mlp(sizes: list[int], act: Callable[[], nn.Module] = lambda: nn.LeakyReLU(0.2)) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def generator(s: Settings) -> nn.Sequential:
    # ReLU (not leaky) lets the generator map whole regions of z onto one point: sharper modes.
    return mlp([s.z_dim, *[s.width] * s.depth, 2], nn.ReLU)


class Discriminator(nn.Module):
    """MLP critic; with ``mbstd`` its last hidden layer gets one extra feature, the minibatch stddev."""

    def __init__(self, width: int, depth: int, *, mbstd: bool, group_size: int) -> None:
        super().__init__()
        self.mbstd = mbstd
        self.group_size = group_size
        self.trunk = nn.Sequential(mlp([2, *[width] * depth]), nn.LeakyReLU(0.2))
        self.head = nn.Linear(width + int(mbstd), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        if self.mbstd:
            # minibatch_stddev works on (N, C, H, W); a feature vector is a 1×1 map.
            h = minibatch_stddev(h[:, :, None, None], group_size=self.group_size).flatten(1)
        return self.head(h)


# ----------------------------------------------------------------------------------------------- metrics
def mode_metrics(samples: torch.Tensor, mixture: Mixture, *, min_share: float = 0.2) -> dict[str, float]:
    """Modes covered and share of high-quality samples (within 3σ of the nearest mode)."""
    dist = torch.cdist(samples, mixture.centers)  # (N, K)
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist <= 3 * mixture.std
    k = len(mixture.centers)
    counts = torch.bincount(nearest[good], minlength=k)
    threshold = min_share * len(samples) / k
    return {
        "modes": int((counts >= threshold).sum()),
        "num_modes": k,
        "high_quality": float(good.float().mean()) * 100,
    }


# ----------------------------------------------------------------------------------------------- configurations
@dataclass(frozen=True)
class Config:
    """One configuration: the objective and the remedies that the one training loop switches on.

    ``None`` optimizer fields take the shared :class:`Settings`; every other field's default is "off".
    """

    about: str  # one line for the docs table
    loss: str = "non_saturating"  # AdversarialLoss kind
    real_label: Optional[float] = None  # one-sided label smoothing: 0.9
    n_critic: int = 1  # discriminator steps per generator step
    optimizer: str = "adam"  # or "rmsprop" (WGAN)
    lr: Optional[float] = None
    betas: Optional[tuple[float, float]] = None
    gp_weight: float = 0.0  # WGAN-GP gradient penalty λ
    r1_gamma: float = 0.0  # R1 γ
    r1_sigma: Optional[float] = (
        None  # set: γ = r1_gamma × (mode σ / r1_sigma)², γ scales with the mode width²
    )
    r1_until: float = 1.0  # share of training with R1 on; after it a penalty-free sharpening phase
    dragan_weight: float = 0.0  # DRAGAN λ (c = 0.5)
    bcr_weight: float = 0.0  # bCR λ_real = λ_fake; augmentation: Gaussian jitter of bcr_jitter × the mode σ
    bcr_jitter: float = 1.0
    ha_weight: float = 0.0  # historical averaging λ, on both networks
    clip: Optional[float] = None  # WGAN weight clipping bound c
    mbstd: bool = False  # minibatch stddev feature in the discriminator
    pool_size: int = 0  # ImagePool of past fakes for the discriminator (0: off)
    unroll: int = 0  # unrolled discriminator steps for the generator's loss
    unroll_lr: float = 1e-2  # SGD step of the unrolling
    ema: bool = True  # sample from ModelEMA(G) (else from G)
    ema_half_life_kimg: Optional[float] = None
    steps_scale: float = 1.0  # × the dataset's steps
    batch_size: Optional[int] = None


CONFIGS: dict[str, Config] = {
    "gan": Config("non-saturating loss"),
    "label-smoothing": Config(
        "one-sided label smoothing: `AdversarialLoss(..., real_label=0.9)`", real_label=0.9
    ),
    "image-pool": Config(
        "`ImagePool(5120)`: the discriminator sees half its fakes from a pool of past ones", pool_size=5120
    ),
    "bcr": Config(
        "`consistency_regularization` (bCR, λ = 10 real and fake), augmentation: Gaussian jitter of σ",
        bcr_weight=10.0,
    ),
    "dragan": Config("`dragan_penalty` (λ = 10, c = 0.5)", dragan_weight=10.0),
    "historical-averaging": Config("`HistoricalAveraging` on G and D (λ = 1e-3)", ha_weight=1e-3),
    "wgan-clip": Config(
        "WGAN loss, `clip_weights_(D, 0.01)`, 5 critic steps, RMSProp lr 5e-5 (the WGAN paper)",
        loss="wgan",
        clip=0.01,
        n_critic=5,
        optimizer="rmsprop",
        lr=5e-5,
    ),
    "wgan-gp": Config(
        "WGAN loss + `gradient_penalty` (λ = 0.1), 5 critic steps, Adam betas (0, 0.9) (the WGAN-GP paper)",
        loss="wgan",
        gp_weight=0.1,
        n_critic=5,
        betas=(0.0, 0.9),
    ),
    "unrolled": Config(
        "the generator's loss through 5 unrolled SGD steps of D (`unrolled_discriminator`, Metz et al.)",
        unroll=5,
    ),
    "r1": Config("`r1_penalty` (γ = 0.01)", r1_gamma=0.01),
    "mbstd": Config(
        "the discriminator's last hidden layer gets `minibatch_stddev` (an `(N, F, 1, 1)` view, groups of 4)",
        mbstd=True,
    ),
    "r1-mbstd": Config("`r1` and `mbstd`", r1_gamma=0.01, mbstd=True),
    "r1-sharpen": Config(
        "`r1_penalty` with γ = 0.01 × (σ / 0.05)² (0.01 on the grid, 0.0016 on the ring) for the first 70% "
        "of training, then none: a sharpening phase at the low end of the lr decay",
        r1_gamma=0.01,
        r1_sigma=0.05,
        r1_until=0.7,
    ),
    "no-ema": Config("`r1`, sampled from G itself instead of its EMA", r1_gamma=0.01, ema=False),
}


# ----------------------------------------------------------------------------------------------- training
@dataclass
class Settings:
    steps: int = 4000  # per dataset: STEPS
    batch_size: int = 512
    z_dim: int = 2
    width: int = 128
    depth: int = 3
    lr: float = 1e-3  # decays linearly to 0 over training
    betas: tuple[float, float] = (0.5, 0.9)
    mbstd_group: int = 4
    ema_half_life_kimg: float = 35.3  # 69 steps of 512: a per-step β of 0.99
    eval_samples: int = 2500


@dataclass
class Hooks:
    """What the remedies add to the one training loop; :func:`make_hooks` fills it from a :class:`Config`."""

    d_fakes: list[Callable[[torch.Tensor], torch.Tensor]] = field(default_factory=list)  # fakes → D's fakes
    d_penalties: list[Callable[..., torch.Tensor]] = field(default_factory=list)  # (real, fake, logits…, t)
    after_d_step: list[Callable[[], None]] = field(default_factory=list)
    g_penalties: list[Callable[[], torch.Tensor]] = field(default_factory=list)
    after_g_step: list[Callable[[], None]] = field(default_factory=list)
    g_logits: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None  # (real, fake) → logits


def make_hooks(c: Config, G: nn.Module, D: nn.Module, loss: AdversarialLoss, mixture: Mixture) -> Hooks:
    h = Hooks()
    if c.pool_size:
        pool = ImagePool(c.pool_size)
        h.d_fakes.append(pool.query)
    if c.gp_weight:
        h.d_penalties.append(
            lambda real, fake, rl, fl, t: gradient_penalty(D, real, fake, weight=c.gp_weight)
        )
    if c.r1_gamma:
        # A discriminator sharp at the scale of the modes has gradients ~ 1/σ: its R1 penalty grows ~ 1/σ².
        gamma = c.r1_gamma if c.r1_sigma is None else c.r1_gamma * (mixture.std / c.r1_sigma) ** 2
        h.d_penalties.append(
            lambda real, fake, rl, fl, t: (
                r1_penalty(D, real, gamma=gamma) if t < c.r1_until else real.new_zeros(())
            )
        )
    if c.dragan_weight:
        h.d_penalties.append(lambda real, fake, rl, fl, t: dragan_penalty(D, real, weight=c.dragan_weight))
    if c.bcr_weight:
        sigma = c.bcr_jitter * mixture.std

        def jitter(x: torch.Tensor) -> torch.Tensor:
            return x + sigma * torch.randn_like(x)

        h.d_penalties.append(
            lambda real, fake, rl, fl, t: consistency_regularization(
                D,
                real,
                fake,
                augment=jitter,
                weight_real=c.bcr_weight,
                weight_fake=c.bcr_weight,
                real_pred=rl,
                fake_pred=fl,
            )
        )
    if c.clip is not None:
        h.after_d_step.append(lambda: clip_weights_(D, c.clip))
    if c.ha_weight:
        ha_d, ha_g = HistoricalAveraging(D, weight=c.ha_weight), HistoricalAveraging(G, weight=c.ha_weight)
        h.d_penalties.append(lambda real, fake, rl, fl, t: ha_d.penalty())
        h.after_d_step.append(ha_d.update)
        h.g_penalties.append(ha_g.penalty)
        h.after_g_step.append(ha_g.update)
    if c.unroll:

        def unrolled_logits(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
            params = unrolled_discriminator(D, None, loss.d_loss, real, fake, steps=c.unroll, lr=c.unroll_lr)
            return functional_call(D, params, (fake,))

        h.g_logits = unrolled_logits
    return h


def make_optimizer(c: Config, s: Settings, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    lr = s.lr if c.lr is None else c.lr
    if c.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=s.betas if c.betas is None else c.betas)


def train(
    config: str,
    mixture: Mixture,
    s: Settings,
    *,
    seed: int,
    progress: bool,
    device: torch.device = CPU,
) -> tuple[nn.Module, dict]:
    c = CONFIGS[config]
    s = dataclasses.replace(
        s,
        steps=max(1, round(s.steps * c.steps_scale)),
        batch_size=c.batch_size or s.batch_size,
        ema_half_life_kimg=c.ema_half_life_kimg or s.ema_half_life_kimg,
    )
    torch.manual_seed(seed)
    G = generator(s).to(device)
    D = Discriminator(s.width, s.depth, mbstd=c.mbstd, group_size=s.mbstd_group).to(device)
    G_ema = ModelEMA(G, half_life_kimg=s.ema_half_life_kimg, rampup=None)
    loss = AdversarialLoss(c.loss, real_label=c.real_label)
    opt_g, opt_d = make_optimizer(c, s, G.parameters()), make_optimizer(c, s, D.parameters())
    # A linear decay of the learning rate to 0 lets both networks settle: the modes get sharp.
    schedules = [torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / s.steps) for opt in (opt_g, opt_d)]
    data = torch.Generator().manual_seed(seed + 1)
    hooks = make_hooks(c, G, D, loss, mixture)

    history: list[dict[str, float]] = []
    for step in tqdm(
        range(1, s.steps + 1), desc=f"{mixture.name}/{config}", disable=not progress, leave=False
    ):
        t = (step - 1) / s.steps  # share of training done
        for _ in range(c.n_critic):
            real = mixture.sample(s.batch_size, data).to(device)
            fake = G(torch.randn(s.batch_size, s.z_dim, device=device))
            d_fake = fake.detach()
            for hook in hooks.d_fakes:
                d_fake = hook(d_fake)
            real_logits, fake_logits = D(real), D(d_fake)
            d_loss = loss.d_loss(real_logits, fake_logits)
            for penalty in hooks.d_penalties:
                d_loss = d_loss + penalty(real, d_fake, real_logits, fake_logits, t)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            for hook in hooks.after_d_step:
                hook()

        g_loss = loss.g_loss(D(fake) if hooks.g_logits is None else hooks.g_logits(real, fake))
        for penalty in hooks.g_penalties:
            g_loss = g_loss + penalty()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for hook in hooks.after_g_step:
            hook()
        for schedule in schedules:
            schedule.step()
        G_ema.update(G, batch_size=s.batch_size)

        if step % max(1, s.steps // 10) == 0 or step == s.steps:
            sampler = G_ema.module if c.ema else G
            history.append({"step": step, **evaluate(sampler, mixture, s, seed=seed, device=device)})
    return (G_ema.module if c.ema else G), {"history": history, **history[-1]}


@torch.no_grad()
def evaluate(
    G: nn.Module, mixture: Mixture, s: Settings, *, seed: int, device: torch.device = CPU
) -> dict[str, float]:
    z = torch.randn(s.eval_samples, s.z_dim, generator=torch.Generator().manual_seed(seed + 2))
    samples = G(z.to(device)).cpu()
    pr = precision_recall(mixture.sample(s.eval_samples, torch.Generator().manual_seed(seed + 3)), samples)
    return {**mode_metrics(samples, mixture), "precision": float(pr.precision), "recall": float(pr.recall)}


# ----------------------------------------------------------------------------------------------- summary
TARGET_HIGH_QUALITY = 95.0  # %, with every mode covered
TIMING = ("seconds", "cpu_seconds")  # the only fields allowed to differ between two copies of a run


def meets_target(run: dict) -> bool:
    return run["modes"] == run["num_modes"] and run["high_quality"] >= TARGET_HIGH_QUALITY


def run_order(run: dict) -> tuple[int, int, int]:
    return list(CONFIGS).index(run["config"]), DATASETS.index(run["dataset"]), run["seed"]


def summarise(runs: list[dict]) -> dict[str, dict[str, dict]]:
    """Per dataset and configuration, over seeds: median, min and max of the modes and high-quality share,
    how many seeds meet the target, whether the medians meet it, the median CPU time."""
    summary: dict[str, dict[str, dict]] = {}
    for d in DATASETS:
        per: dict[str, dict] = {}
        for c in CONFIGS:
            chosen = [r for r in runs if r["dataset"] == d and r["config"] == c]
            if not chosen:
                continue
            entry: dict = {
                "seeds": sorted(r["seed"] for r in chosen),
                "num_seeds": len(chosen),
                "num_modes": chosen[0]["num_modes"],
            }
            for key in ("modes", "high_quality"):
                entry[key] = median_range(r[key] for r in chosen)
            entry["target_met"] = sum(meets_target(r) for r in chosen)
            # The median of the seeds' pass/fail: the separate medians of modes and quality could pass with
            # most seeds failing one or the other.
            entry["median_meets_target"] = 2 * entry["target_met"] > entry["num_seeds"]
            entry["cpu_seconds"] = statistics.median(r["cpu_seconds"] for r in chosen)
            per[c] = entry
        if per:
            summary[d] = per
    return summary


def modes_cell(e: dict) -> str:
    m = e["modes"]
    # The median of an odd count of integers is one of them; of an even count it may fall halfway.
    median = f"{m['median']:.0f}" if e["num_seeds"] % 2 else f"{m['median']:.1f}"
    return f"{m['min']}" if m["min"] == m["max"] else f"{median} [{m['min']}–{m['max']}]"


def quality_cell(e: dict) -> str:
    q = e["high_quality"]
    # Two decimals: at one, 94.96% would print as the 95.0% it misses.
    return spread(q, 2, "%")


def markdown_table(summary: dict[str, dict[str, dict]]) -> str:
    lines = [
        "| configuration | seeds | ring: modes (of 8) | ring: high-quality | grid: modes (of 25) "
        "| grid: high-quality | target met (ring, grid) | CPU time per run (ring + grid) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in CONFIGS:
        entries = [summary.get(d, {}).get(c) for d in DATASETS]
        if not any(entries):
            continue
        counts = [e["num_seeds"] for e in entries if e is not None]
        seeds = f"{counts[0]}" if len(set(counts)) == 1 else ", ".join(map(str, counts))
        cells = []
        for e in entries:
            cells += ["–", "–"] if e is None else [modes_cell(e), quality_cell(e)]
        met = ["–" if e is None else f"{e['target_met']}/{e['num_seeds']}" for e in entries]
        times = ["–" if e is None else f"{e['cpu_seconds']:.0f} s" for e in entries]
        lines.append(
            f"| {c} | {seeds} | " + " | ".join(cells) + f" | {', '.join(met)} | {' + '.join(times)} |"
        )
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- outputs
def scatter_plot(samples: dict[str, dict[str, torch.Tensor]], path: Path, *, max_cols: int = 7) -> None:
    """One panel per dataset and configuration; each dataset's panels fill rows of at most ``max_cols``."""
    cols = min(max_cols, max(len(v) for v in samples.values()))
    layout = [  # (dataset, [configs of this row])
        (dname, list(per)[k : k + cols]) for dname, per in samples.items() for k in range(0, len(per), cols)
    ]
    fig, axes = plt.subplots(len(layout), cols, figsize=(2.2 * cols, 2.3 * len(layout)), squeeze=False)
    for i, (dname, row) in enumerate(layout):
        mixture = make_mixture(dname)
        lim = 3.0 if dname == "ring" else 5.5
        for j, cname in enumerate(row):
            pts = samples[dname][cname]
            ax = axes[i][j]
            ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.3, color="tab:blue", rasterized=True)
            ax.scatter(mixture.centers[:, 0], mixture.centers[:, 1], s=12, marker="x", color="tab:red")
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[], yticks=[], aspect="equal")
            ax.set_title(f"{dname} / {cname}", fontsize=9)
        for j in range(len(row), cols):
            axes[i][j].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


SampleKey = tuple[str, str, int]  # (dataset, config, seed)


def lowest_seed_samples(
    runs: list[dict], samples: dict[SampleKey, torch.Tensor]
) -> dict[SampleKey, torch.Tensor]:
    """The samples of each dataset and configuration's lowest seed (where they were kept)."""
    lowest: dict[tuple[str, str], int] = {}
    for r in runs:
        key = (r["dataset"], r["config"])
        lowest[key] = min(r["seed"], lowest.get(key, r["seed"]))
    return {(d, c, s): samples[d, c, s] for (d, c), s in lowest.items() if (d, c, s) in samples}


def write_outputs(
    runs: list[dict], samples: dict[SampleKey, torch.Tensor], settings: dict, out: Path, *, plot: bool
) -> dict:
    """results.json, results.md, samples.pt and (with ``plot``) scatter.png, in ``CONFIGS`` order; also mid-run."""
    runs = sorted(runs, key=run_order)
    summary = summarise(runs)
    saved = {"settings": settings, "summary": summary, "runs": runs}
    (out / "results.json").write_text(json.dumps(saved, indent=1))
    (out / "results.md").write_text(markdown_table(summary))
    kept = lowest_seed_samples(runs, samples)
    torch.save({f"{d}/{c}/{s}": pts for (d, c, s), pts in kept.items()}, out / "samples.pt")
    if plot and kept:
        panels: dict[str, dict[str, torch.Tensor]] = {}
        for (d, c, _), pts in sorted(
            kept.items(), key=lambda kv: (DATASETS.index(kv[0][0]), list(CONFIGS).index(kv[0][1]))
        ):
            panels.setdefault(d, {})[c] = pts
        scatter_plot(panels, out / "scatter.png")
    return saved


# ----------------------------------------------------------------------------------------------- merge
def read_outputs(folder: Path) -> tuple[dict, list[dict], dict[SampleKey, torch.Tensor]]:
    """The settings, runs and kept samples that :func:`write_outputs` wrote to ``folder``."""
    saved = load_saved(folder / "results.json")
    for r in saved["runs"]:
        if r["config"] not in CONFIGS or r["dataset"] not in DATASETS:
            raise ValueError(
                f"{folder / 'results.json'}: unknown configuration or dataset {r['config']}/{r['dataset']}"
            )
    samples: dict[SampleKey, torch.Tensor] = {}
    if (folder / "samples.pt").is_file():
        # weights_only: a file of plain tensors; nothing in it is executed.
        for key, pts in torch.load(folder / "samples.pt", map_location="cpu", weights_only=True).items():
            d, c, s = key.split("/")
            samples[d, c, int(s)] = pts
    return saved["settings"], saved["runs"], samples


def merge(folders: list[Path]) -> tuple[dict, list[dict], dict[SampleKey, torch.Tensor]]:
    """The runs of several output folders as one: the same settings, each (config, dataset, seed) once.

    A run found in two folders must be the same run (every field but the timing); the same configuration
    and dataset must have trained for the same number of steps in every folder.
    """
    settings, runs, samples = merge_runs(
        folders,
        read_outputs,
        key=lambda r: (r["config"], r["dataset"], r["seed"]),
        describe=lambda k: f"configuration {k[0]!r} on {k[1]!r} with seed {k[2]}",
        timing=TIMING,
    )
    steps: dict[tuple[str, str], set[int]] = {}
    for r in runs:
        steps.setdefault((r["config"], r["dataset"]), set()).add(r["steps"])
    for (c, d), counts in steps.items():
        if len(counts) > 1:
            raise ValueError(
                f"configuration {c!r} on {d!r} trained for different numbers of steps: {sorted(counts)}"
            )
    return settings, runs, samples


# ----------------------------------------------------------------------------------------------- main
def run_one(
    config: str, dname: str, settings: Settings, *, seed: int, device: str, progress: bool, threads: int
) -> tuple[dict, list[list[float]]]:
    """Train one configuration on one dataset with one seed: its metrics and 2-d samples (in a worker with
    ``--jobs``)."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    G, metrics = train(config, make_mixture(dname), settings, seed=seed, progress=progress, device=dev)
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    metrics["cpu_seconds"] = round(time.process_time() - cpu_start, 1)
    metrics["steps"] = max(1, round(settings.steps * CONFIGS[config].steps_scale))
    with torch.no_grad():
        z = torch.randn(settings.eval_samples, settings.z_dim, generator=torch.Generator().manual_seed(7))
        samples = G(z.to(dev)).cpu()
    return {"config": config, "dataset": dname, "seed": seed, **metrics}, samples.tolist()


def int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: Optional[list[str]] = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: ring,grid")
    parser.add_argument(
        "--configs", nargs="+", default=list(CONFIGS), help="configurations (space- or comma-separated)"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="training steps (None: ring 4000, grid 12000)"
    )
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps, ...")
    parser.add_argument(
        "--seeds",
        type=int_list,
        default="0",
        help="comma-separated seeds, e.g. 0,1,2: one run per configuration, dataset and seed "
        "(each seed seeds models, data and latents)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        metavar="DIR",
        help="train nothing: combine the results.json (and samples.pt) of these output folders into --out",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/mixture2d"), help="output folder")
    parser.add_argument("--smoke", action="store_true", help="a few steps of every configuration")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (tiny MLPs run best on one)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs in parallel processes of --threads threads each (same results as one after another)",
    )
    args = parser.parse_args(argv)

    if args.merge:
        try:
            settings, runs, samples = merge(args.merge)
        except (OSError, ValueError) as error:
            raise SystemExit(f"--merge: {error}") from None
        args.out.mkdir(parents=True, exist_ok=True)
        saved = write_outputs(runs, samples, settings, args.out, plot=True)
        print(markdown_table(saved["summary"]), end="")
        print(f"merged {len(runs)} runs into {args.out}: results.md, results.json, samples.pt, scatter.png")
        return saved

    torch.set_num_threads(args.threads)
    base = Settings(steps=20, batch_size=64, width=32, eval_samples=500) if args.smoke else Settings()
    datasets = [d for d in args.datasets.split(",") if d]
    configs = [c for arg in args.configs for c in arg.split(",") if c]
    for c in configs:
        if c not in CONFIGS:
            parser.error(f"unknown configuration {c!r}; choose from {', '.join(CONFIGS)}")
    for d in datasets:
        if d not in DATASETS:
            parser.error(f"unknown dataset {d!r}; choose from {', '.join(DATASETS)}")
    if not args.seeds or len(set(args.seeds)) < len(args.seeds):
        parser.error(f"--seeds needs distinct values, at least one (got {args.seeds})")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1 (got {args.jobs})")
    args.out.mkdir(parents=True, exist_ok=True)

    tasks = [
        (
            config,
            dname,
            seed,
            base if args.smoke else dataclasses.replace(base, steps=args.steps or STEPS[dname]),
        )
        for config in configs  # in the order given: a partial run has its first configurations
        for dname in datasets
        for seed in args.seeds
    ]
    settings = json.loads(json.dumps(dataclasses.asdict(base)))  # as read back: tuples become lists
    runs: list[dict] = []
    samples: dict[SampleKey, torch.Tensor] = {}

    def finish(run: dict, pts: list[list[float]]) -> None:
        runs.append(run)
        samples[run["dataset"], run["config"], run["seed"]] = torch.tensor(pts)
        print(
            f"{run['dataset']:>4} {run['config']:>20} seed {run['seed']}: {run['modes']}/{run['num_modes']} "
            f"modes, {run['high_quality']:.1f}% high-quality ({run['seconds']} s, {run['cpu_seconds']} s CPU)",
            flush=True,
        )
        write_outputs(runs, samples, settings, args.out, plot=args.jobs > 1)

    common = dict(device=args.device, threads=args.threads)
    if args.jobs <= 1:
        for config, dname, seed, s in tasks:
            finish(*run_one(config, dname, s, seed=seed, progress=not args.no_progress, **common))
    else:
        # Every run seeds itself: the results do not depend on the order or the process it runs in.
        # "spawn": a fresh interpreter per worker, no forked thread pools.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
            futures = [
                pool.submit(run_one, config, dname, s, seed=seed, progress=False, **common)
                for config, dname, seed, s in tasks
            ]
            for future in as_completed(futures):
                finish(*future.result())

    saved = write_outputs(runs, samples, settings, args.out, plot=True)
    print(markdown_table(saved["summary"]), end="")
    print(
        f"wrote {args.out / 'results.md'}, {args.out / 'results.json'}, {args.out / 'samples.pt'}, "
        f"{args.out / 'scatter.png'}"
    )
    return saved


if __name__ == "__main__":
    main()
