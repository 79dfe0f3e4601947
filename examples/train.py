"""Train a small MSG-GAN built only from ganblocks blocks, on CPU, in minutes.

The generator is MSG-GAN's (ProGAN's layers): a mapping network (``PixelNorm`` + ``EqualLinear``) turns
``z`` into ``w``, a dense ``EqualLinear`` turns ``w`` into 4×4 features, and each resolution up to 32×32 has an
``EqualConv2d`` with its bias and leaky ReLU fused, followed by ``PixelNorm``. ``MSGGeneratorHeads`` turns
the features at 32, 16, 8 and 4 pixels into images, and the ``MSGDiscriminator`` (equalized LR, minibatch
stddev in its last block) sees all four, so gradients reach every scale of the generator. The objective is
the non-saturating logistic loss with a lazy R1 penalty on the real image pyramid (every ``--r1-every``
steps, scaled accordingly, added to the loss of that step; it differentiates the forward pass the loss
already made), and an exponential moving average of the generator is kept for sampling. ``ttur_adam`` builds
G's and D's Adam, each at its own rate (``--g-lr``, ``--d-lr``: equal by default, StyleGAN2's setting; TTUR's
faster D is one flag away), D's with the lazy-regularisation correction of its learning rate and betas.

``--synthesis stylegan`` swaps in a miniature StyleGAN synthesis instead: a learned 4×4 constant and, per
resolution, a ``AdaINSynthesisLayer`` (``EqualConv2d``, ``NoiseInjection`` below 32×32, fused bias + leaky ReLU,
``AdaIN(w)``). ``--synthesis stylegan2`` uses ganblocks' ``StyleGAN2Generator`` at 32×32 (mapping network,
modulated convolutions, noise, the skip architecture; channels ``min(channel_base // r, channel_max)`` with
``channel_base`` = the 32×32 channels × 32 and ``channel_max`` = the 4×4 channels): its single image is
turned into the discriminator's pyramid with ``image_pyramid``. ``--conditional`` makes both networks class-conditional on the shape kind: a one-hot code
appended to ``z`` enters the mapping network, and the discriminator adds a projection of its last features
on a learned class embedding to its logit (Miyato & Koyama, 2018).

Data: by default an endless procedural dataset of 32×32 images generated in code (nothing is downloaded):
a disc, a square or a triangle of random colour, size and position on a shaded dark background.
``--data DIR`` trains on a folder of images instead (any Pillow-readable files, centre-cropped and resized
to 32×32, randomly flipped).

Outputs in ``--out`` (default ``runs/train``):

* ``samples_<step>.png``: a grid of samples from the EMA generator (fixed latents) at intervals, and
  ``samples_final.png`` / ``real.png``;
* ``losses.png``: discriminator and generator loss, the R1 penalty, and the quality measures;
* ``metrics.json``: the settings, the losses at every step and the quality measures at every evaluation;
* ``checkpoint.pt``: everything needed to continue the run (G, D, the EMA, the optimizers and learning-rate
  schedules, the shape classifier, the random number generators, the step and the history of losses and
  measures), written every ``--checkpoint-every`` steps, at the end, and when the run is stopped with
  Ctrl-C (SIGINT) or SIGTERM: the current step finishes, the checkpoint is written, the script exits.
  ``--resume`` continues from it (or from ``--resume PATH``) with the same options; a run stopped and
  resumed ends with the same weights and metrics as one that ran through (bit for bit on CPU with the
  same thread count).

Quality measures (lower is better; both compare 512 EMA samples with 512 real images, evaluated every
``eval_every`` steps):

* ``fd_random``: Fréchet distance between Gaussians fitted to features of a fixed, randomly initialised
  convolutional network (``ganblocks.metrics.frechet_distance`` with a random instead of an Inception
  feature extractor; its numbers are comparable only between runs of this script);
* ``swd_patches``: sliced Wasserstein distance between random 7×7 patches of real and generated images at
  32×32 and 16×16 (as in ProGAN's SWD, without its Laplacian pyramid), ×1000.

On the procedural shapes, a small shape classifier (``shape_classifier.py``, trained first on freshly drawn
shapes) also scores the samples: ``recognised``, the share it calls a disc, square or triangle with
probability ≥ 0.9, ``share_<class>`` among those, and ``balance``, their normalised entropy (1: a third each).
Its scores on real images are the ceiling (``real`` in metrics.json). In its penultimate feature space
(128 features) ``ganblocks.metrics`` also gives ``fid``, ``kid`` (100 subsets of half the samples),
``precision``, ``recall``, ``density`` and ``coverage`` of the samples against the real images, and the same
for a second, disjoint set of real images (``real_baseline`` in metrics.json): the floor that 512 samples
leave, drawn dotted in the figure.

Usage::

    python examples/train.py                   # 2,500 steps on CPU, under 4 minutes on 2 cores
    python examples/train.py --smoke           # a few steps, seconds
    python examples/train.py --resume          # continue from runs/train/checkpoint.pt (same options)
    python examples/train.py --data ~/faces --device cuda --steps 20000 --batch-size 32
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm import tqdm

from ganblocks import (
    AdaINSynthesisLayer,
    AdversarialLoss,
    ConstantInput,
    EqualConv2d,
    EqualLinear,
    LazyRegularizer,
    MappingNetwork,
    MSGDiscriminator,
    MSGGeneratorHeads,
    PixelNorm,
    ProjectionHead,
    StyleGAN2Generator,
)
from ganblocks.functional import image_pyramid, ttur_adam
from ganblocks.metrics import FeatureStatistics, frechet_distance, kernel_distance, precision_recall
from ganblocks.penalties import r1_penalty_from_outputs
from ganblocks.training import ModelEMA

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helper modules next to this file
from checkpointing import (
    CheckpointError,
    StopRequest,
    check_like,
    check_states,
    load_states,
    read_checkpoint,
    save_atomic,
)
from shape_classifier import CLASSES, ShapeClassifier, shape_features, shape_scores, train_classifier

RESOLUTION = 32
Synthesis = Literal["progan", "stylegan", "stylegan2"]


# =============================================================================================== data
def draw_shapes(n: int, g: torch.Generator, *, return_labels: bool = False):
    """``n`` images in [-1, 1] of shape (n, 3, 32, 32): one anti-aliased shape on a dark shaded background.

    Each image has a disc, a square or an upright triangle of random colour, size and position on a
    background of one random dark colour that darkens towards the bottom.
    """
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, RESOLUTION), torch.linspace(-1, 1, RESOLUTION), indexing="ij"
    )
    size = 0.3 + 0.3 * torch.rand(n, 1, 1, generator=g)
    cx, cy = ((torch.rand(2, n, 1, 1, generator=g) * 2 - 1) * (0.9 - size)).unbind(0)
    x, y = xs - cx, ys - cy
    # Signed distances (negative inside) of the three kinds of shape.
    disc = (x * x + y * y).sqrt() - size
    square = torch.maximum(x.abs(), y.abs()) - 0.85 * size
    triangle = torch.maximum(x.abs() * math.sqrt(3) / 2 - y * 0.5, y) - 0.6 * size
    kind = torch.randint(3, (n, 1, 1), generator=g)
    sdf = torch.where(kind == 0, disc, torch.where(kind == 1, square, triangle))
    alpha = (0.5 - sdf * (RESOLUTION / 2)).clamp(0, 1).unsqueeze(1)  # one-pixel anti-aliased edge
    color = 0.5 + 0.5 * torch.rand(n, 3, 1, 1, generator=g)
    background = 0.2 * torch.rand(n, 3, 1, 1, generator=g) * (1 - 0.5 * (ys + 1) / 2)
    images = torch.lerp(background, color, alpha) * 2 - 1
    return (images, kind.view(n)) if return_labels else images


def load_folder(path: Path) -> torch.Tensor:
    """Every image under ``path``, centre-cropped, resized to 32×32, in [-1, 1], as one (N, 3, 32, 32) tensor."""
    files = sorted(
        p for p in path.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
    )
    if not files:
        raise SystemExit(f"--data {path}: no .png/.jpg/.jpeg/.bmp/.webp images found")
    images = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
            side = min(im.size)
            left, top = (im.width - side) // 2, (im.height - side) // 2
            im = im.crop((left, top, left + side, top + side)).resize((RESOLUTION, RESOLUTION), Image.BICUBIC)
            images.append(np.asarray(im, dtype=np.float32))
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2) / 127.5 - 1


class ImageSource:
    """Batches of real images: procedural shapes (fresh every batch) or a fixed folder (random flips)."""

    def __init__(self, folder: Optional[Path], seed: int) -> None:
        self.images = None if folder is None else load_folder(folder)
        self.g = torch.Generator().manual_seed(seed)

    @property
    def labelled(self) -> bool:
        """Whether batches come with class labels (the procedural shapes: 0 disc, 1 square, 2 triangle)."""
        return self.images is None

    def sample(
        self, n: int, generator: Optional[torch.Generator] = None
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``n`` images in [-1, 1] and, for the procedural shapes, their labels (else None)."""
        g = self.g if generator is None else generator
        if self.images is None:
            return draw_shapes(n, g, return_labels=True)
        batch = self.images[torch.randint(len(self.images), (n,), generator=g)]
        flip = torch.rand(n, 1, 1, 1, generator=g) < 0.5
        return torch.where(flip, batch.flip(-1), batch), None


# =============================================================================================== models
class Generator(nn.Module):
    """Mapping network + synthesis from 4×4 to 32×32; returns MSG-GAN's images, finest first.

    ``synthesis="progan"`` (MSG-GAN's generator): ``w`` goes through a dense layer to 4×4 features, then
    every layer is an ``EqualConv2d`` with fused bias + leaky ReLU followed by ``PixelNorm``.
    ``synthesis="stylegan"``: a learned 4×4 constant, then every layer is a ``AdaINSynthesisLayer`` (conv, noise,
    fused bias + leaky ReLU, ``AdaIN(w)``). ``synthesis="stylegan2"``: a ``StyleGAN2Generator`` (its own
    mapping network) whose image is returned as a pyramid (``image_pyramid``).
    """

    def __init__(
        self,
        z_dim: int = 64,
        w_dim: int = 64,
        channels: tuple[int, ...] = (128, 64, 32, 16),
        layers: tuple[int, ...] = (1, 1, 1, 1),
        *,
        synthesis: Synthesis = "progan",
        upsample: str = "bilinear",
        mapping_lr: float = 1.0,
        mapping_layers: int = 2,
        categories: int = 0,
        noise: bool = True,
    ) -> None:
        super().__init__()
        if synthesis not in ("progan", "stylegan", "stylegan2"):
            raise ValueError(f"synthesis must be 'progan', 'stylegan' or 'stylegan2', got {synthesis!r}")
        self.z_dim = z_dim
        self.categories = categories
        self.synthesis = synthesis
        self.upsample = upsample
        self.num_scales = len(channels)
        self.stylegan2: Optional[StyleGAN2Generator] = None
        if synthesis == "stylegan2":
            # StyleGAN2's channel rule min(channel_base // r, channel_max), fitted to the finest and coarsest widths.
            self.stylegan2 = StyleGAN2Generator(
                z_dim,
                categories,
                w_dim,
                RESOLUTION,
                3,
                channel_base=channels[-1] * RESOLUTION,
                channel_max=channels[0],
                num_mapping_layers=mapping_layers,
                mapping_lr_multiplier=mapping_lr,
                use_noise=noise,
            )
            return
        self.mapping = MappingNetwork(
            z_dim,
            categories,
            w_dim,
            None,
            num_layers=mapping_layers,
            lr_multiplier=mapping_lr,
            w_avg_beta=None,
        )
        style = synthesis == "stylegan"
        self.input: nn.Module = (
            ConstantInput(channels[0]) if style else EqualLinear(w_dim, channels[0] * 16, act="lrelu")
        )
        self.input_norm = None if style else PixelNorm()
        self.blocks = nn.ModuleList()
        cin = channels[0]
        for i, (c, n) in enumerate(zip(channels, layers)):
            # No noise at 32×32: the shapes have no pixel-level stochastic detail.
            noise_mode = "random" if noise and i < len(channels) - 1 else "none"
            block = nn.ModuleList()
            for j in range(n):
                c_in = cin if j == 0 else c
                if style:
                    block.append(AdaINSynthesisLayer(c_in, c, w_dim, noise_mode=noise_mode))
                else:
                    block.append(nn.Sequential(EqualConv2d(c_in, c, 3, padding=1, act="lrelu"), PixelNorm()))
            self.blocks.append(block)
            cin = c
        self.heads = MSGGeneratorHeads(list(channels[::-1]), out_channels=3, act="tanh")

    def latents(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` latents: ``z_dim`` Gaussian numbers, then a random one-hot code of ``categories``."""
        z = torch.randn(n, self.z_dim, generator=generator)
        if self.categories:
            code = torch.randint(self.categories, (n,), generator=generator)
            z = torch.cat([z, F.one_hot(code, self.categories).float()], 1)
        return z

    def forward(self, z: torch.Tensor) -> list[torch.Tensor]:
        if self.stylegan2 is not None:
            c = z[:, self.z_dim :] if self.categories else None
            return image_pyramid(self.stylegan2(z[:, : self.z_dim], c), self.num_scales)
        w = self.mapping(z[:, : self.z_dim], z[:, self.z_dim :] if self.categories else None)
        if self.input_norm is None:
            x = self.input(z.shape[0])
        else:
            x = self.input_norm(self.input(w).view(z.shape[0], -1, 4, 4))
        features = []
        for i, block in enumerate(self.blocks):
            if i:
                x = F.interpolate(x, scale_factor=2, mode=self.upsample)
            for layer in block:
                x = layer(x) if self.input_norm is not None else layer(x, w)
            features.append(x)
        return self.heads(features[::-1])


class Discriminator(nn.Module):
    """``MSGDiscriminator``, optionally class-conditional through ganblocks' ``ProjectionHead``.

    With ``classes > 0`` the logit of an image of class ``y`` is ``ψ(φ(x)) + ⟨e_y, φ(x)⟩ / √width``, where
    ``φ(x)`` are the features of the 4×4 block's last layer (1×1, so the head's sum pooling keeps them as
    they are) and ``e_y`` a learned embedding of the class, scaled as StyleGAN2-ADA's conditional
    discriminator (Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018).
    """

    def __init__(self, channels: int, max_channels: int, *, classes: int = 0) -> None:
        super().__init__()
        # MSG-GAN's channel rule: channels * RESOLUTION / r at resolution r, capped at max_channels.
        self.msg = MSGDiscriminator(
            3,
            resolution=RESOLUTION,
            combine="cat_lin",
            base_channels=channels,
            max_channels=max_channels,
        )
        width = min(channels * RESOLUTION // 4, max_channels)  # the 4×4 block's channels, by the same rule
        self.projection = ProjectionHead(classes, width) if classes else None
        self.num_scales = self.msg.num_scales

    def forward(self, images: list[torch.Tensor], labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.projection is None:
            return self.msg(images).logits[0]
        if labels is None:
            raise ValueError("a class-conditional discriminator needs the labels of its images")
        return self.projection(self.msg(images, return_features=True), labels).logits[0]


# =============================================================================================== metrics
class RandomFeatures(nn.Module):
    """A fixed, randomly initialised conv net: 3 stride-2 convs + ReLU, global mean and std pooling."""

    def __init__(self, seed: int = 1234) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        widths = [3, 32, 64, 64]
        self.weights = [
            torch.randn(o, i, 4, 4, generator=g) / math.sqrt(i * 16) for i, o in zip(widths[:-1], widths[1:])
        ]

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for w in self.weights:
            x = F.relu(F.conv2d(x, w.to(x), stride=2, padding=1)) * math.sqrt(2)
            feats += [x.mean((2, 3)), x.std((2, 3))]
        return torch.cat(feats, dim=1).double()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Small eigenproblems and kernel matrices: threading only adds contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fd(a: torch.Tensor, b: torch.Tensor) -> float:
    """The Fréchet distance between Gaussians fitted to features ``(N, D)`` (ganblocks.metrics)."""
    stats = [FeatureStatistics(), FeatureStatistics()]
    for s, features in zip(stats, (a, b)):
        s.update(features)
    return float(frechet_distance(*stats))


def fid_kid(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0) -> dict[str, float]:
    """FID and KID of ``fake`` features against ``real``; KID draws 100 subsets of half the samples (seeded:
    the same draws at every evaluation and on resume)."""
    with one_thread():
        kid = kernel_distance(
            fake,
            real,
            num_subsets=100,
            subset_size=min(1000, len(real) // 2, len(fake) // 2),
            generator=torch.Generator().manual_seed(seed),
        )
        return {"fid": fd(fake, real), "kid": float(kid.mean)}


def feature_metrics(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0) -> dict[str, float]:
    """FID, KID, precision, recall, density and coverage of ``fake`` features against ``real``.

    In the shape classifier's feature space, not Inception's: numbers compare within this script only (its
    unbounded ReLU features make KID, cubic in their scale, much larger than on Inception's).
    """
    with one_thread():
        pr = precision_recall(real, fake)
    return {**fid_kid(real, fake, seed=seed), **{k: float(v) for k, v in pr._asdict().items()}}


def sliced_wasserstein_patches(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    patch: int = 7,
    per_image: int = 64,
    projections: int = 256,
    seed: int = 0,
) -> float:
    """Mean over 32×32 and 16×16 of the sliced Wasserstein distance between random 7×7 patches (×1000)."""
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for level in range(2):
        r, f = (F.avg_pool2d(t, 2**level) if level else t for t in (real, fake))
        pr, pf = (F.unfold(t, patch).transpose(1, 2) for t in (r, f))  # (N, L, 3·7·7)
        idx = torch.randint(pr.shape[1], (per_image,), generator=g)
        pr, pf = pr[:, idx].reshape(-1, pr.shape[2]), pf[:, idx].reshape(-1, pf.shape[2])
        # ProGAN normalises each descriptor channel by the real patches' statistics.
        mean, std = pr.mean(0), pr.std(0) + 1e-8
        pr, pf = (pr - mean) / std, (pf - mean) / std
        dirs = F.normalize(torch.randn(pr.shape[1], projections, generator=g), dim=0)
        proj_r, proj_f = (pr @ dirs).sort(0).values, (pf @ dirs).sort(0).values
        total += float((proj_r - proj_f).abs().mean())
    return 1000 * total / 2  # mean of the two levels, ×1000 for readable numbers


@torch.no_grad()
def sample(G: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """The finest output of ``G`` for every latent, in chunks, on the CPU."""
    return torch.cat([G(chunk)[0].clamp(-1, 1).float().cpu() for chunk in z.split(256)])


def distances(real: torch.Tensor, fake: torch.Tensor, features: RandomFeatures) -> dict[str, float]:
    real = real.float().cpu()
    with one_thread():
        fd_random = fd(features(real), features(fake))
    return {
        "fd_random": fd_random,
        "swd_patches": sliced_wasserstein_patches(real, fake),
    }


# =============================================================================================== plots
def save_grid(images: torch.Tensor, path: Path, *, nrow: int = 8) -> None:
    images = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    n, c, h, w = images.shape
    rows = math.ceil(n / nrow)
    grid = torch.zeros(c, rows * (h + 2) + 2, nrow * (w + 2) + 2, dtype=torch.uint8)
    for i, im in enumerate(images):
        y, x = 2 + (i // nrow) * (h + 2), 2 + (i % nrow) * (w + 2)
        grid[:, y : y + h, x : x + w] = im
    Image.fromarray(grid.permute(1, 2, 0).numpy()).resize(
        (grid.shape[2] * 3, grid.shape[1] * 3), Image.NEAREST
    ).save(path)


def plot_curves(
    log: list[dict], evals: list[dict], real: Optional[dict], baseline: Optional[dict], path: Path
) -> None:
    """Losses; fd_random and swd_patches; with the shape classifier (when there is one): FID and KID in its
    feature space, and its scores with precision and recall (dotted: real images)."""
    shapes = real is not None and baseline is not None
    fig, axes = plt.subplots(1, 4 if shapes else 2, figsize=(21 if shapes else 11, 3.8))
    steps = [r["step"] for r in log]

    def smooth(v: list[float], k: int = 25) -> np.ndarray:
        v_arr = np.asarray(v, dtype=float)
        return v_arr if len(v_arr) < k else np.convolve(v_arr, np.ones(k) / k, mode="valid")

    for key, label in (("d_loss", "D loss"), ("g_loss", "G loss")):
        values = smooth([r[key] for r in log])
        axes[0].plot(steps[len(steps) - len(values) :], values, label=label)
    r1 = [(r["step"], r["r1"]) for r in log if r.get("r1") is not None]
    if r1:
        axes[0].plot(*zip(*r1), ".", ms=2, alpha=0.5, label="R1 (lazy, ×k)")
    axes[0].set(xlabel="step", title="losses (moving average)")
    axes[0].legend()
    es = [e["step"] for e in evals]
    fd = axes[1].plot(es, [e["fd_random"] for e in evals], "o-", label="fd_random (left)")
    axes[1].set(xlabel="step", ylabel="Fréchet distance, random features", yscale="log")
    axes[1].set_title("distances to real images (lower is better)")
    twin = axes[1].twinx()
    swd = twin.plot(
        es, [e["swd_patches"] for e in evals], "s--", color="tab:orange", label="swd_patches (right)"
    )
    twin.set(ylabel="sliced Wasserstein ×1000, 7×7 patches", yscale="log")
    axes[1].legend(handles=fd + swd)
    if real is not None and baseline is not None:
        fid = axes[2].plot(es, [e["fid"] for e in evals], "o-", label="FID (left)")
        axes[2].axhline(baseline["fid"], color=fid[0].get_color(), ls=":", lw=1)
        axes[2].set(xlabel="step", ylabel="FID, classifier features", yscale="log")
        axes[2].set_title("classifier features (dotted: real vs real)")
        twin = axes[2].twinx()
        # symlog: KID is unbiased, so the real-vs-real baseline can sit just below 0
        kid = twin.plot(es, [e["kid"] for e in evals], "s--", color="tab:red", label="KID (right)")
        twin.axhline(baseline["kid"], color="tab:red", ls=":", lw=1)
        twin.set_yscale("symlog", linthresh=1.0)
        twin.set(ylabel="KID, classifier features (symlog)")
        axes[2].legend(handles=fid + kid)
        for key, source, color in (
            ("recognised", real, "tab:green"),
            ("balance", real, "tab:purple"),
            ("precision", baseline, "tab:blue"),
            ("recall", baseline, "tab:orange"),
        ):
            axes[3].plot(es, [e[key] for e in evals], "o-", color=color, label=key)
            axes[3].axhline(source[key], color=color, ls=":", lw=1)
        axes[3].set(xlabel="step", ylim=(0, 1.02), title="shape classifier on samples (dotted: real images)")
        axes[3].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# =============================================================================================== training
@dataclass
class Settings:
    steps: int = 2500
    batch_size: int = 32
    g_lr: float = 0.002
    d_lr: float = 0.002  # TTUR (Heusel et al.) gives D a faster rate; equal is StyleGAN2's setting
    lr_decay: float = 0.0  # fraction of the steps at the end over which both learning rates decay to 0
    r1_gamma: float = 1.0
    r1_every: int = 4
    g_channels: tuple[int, ...] = (128, 64, 32, 16)  # at 4, 8, 16, 32 pixels
    g_layers: tuple[int, ...] = (1, 1, 1, 1)  # synthesis layers at 4, 8, 16, 32 pixels
    synthesis: Synthesis = (
        "progan"  # MSG-GAN's generator (pixel norm); "stylegan": AdaIN + noise; "stylegan2"
    )
    upsample: str = "bilinear"
    mapping_lr: float = 1.0  # StyleGAN's 0.01 learns the class code too slowly for a short run
    mapping_layers: int = 2
    categories: int = 0
    noise: bool = True
    # Class-conditional G and D on the shape kind; None: whenever the data has labels (the procedural shapes).
    conditional: Optional[bool] = None
    d_channels: int = 16  # at 32 pixels, doubling at every halving up to d_max_channels
    d_max_channels: int = 64
    ema_kimg: float = 1.0  # half-life of the generator's average, thousands of images (after a ramp-up)
    eval_every: int = 500
    sample_every: int = 500
    eval_samples: int = 512
    classifier_steps: int = 300


# =============================================================================================== checkpoints
CHECKPOINT_KIND = "ganblocks-examples-train"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
LOSS_KEYS = ("step", "d_loss", "g_loss", "r1")


def random_states(source: ImageSource, device: torch.device) -> dict[str, torch.Tensor]:
    """Every random number generator a step draws from: torch's CPU generator (latents, noise
    injection), the data's own generator and, on CUDA, the device's generator (noise drawn there)."""
    states = {"torch": torch.get_rng_state(), "data": source.g.get_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_random_states(states: Mapping[str, torch.Tensor], source: ImageSource, device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    source.g.set_state(states["data"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def run_identity(s: Settings, seed: int, data: Optional[Path]) -> dict[str, Any]:
    """What a resumed run must share with the run that wrote the checkpoint."""
    return {"settings": asdict(s), "seed": seed, "data": None if data is None else str(data.resolve())}


def check_checkpoint(
    checkpoint: dict[str, Any],
    path: Path,
    *,
    identity: dict[str, Any],
    parts: Mapping[str, Any],
    rng: Mapping[str, torch.Tensor],
) -> None:
    """Raise :class:`CheckpointError` unless every part of ``checkpoint`` fits this run; loads nothing."""
    kinds: dict[str, Any] = {
        "step": int,
        "settings": dict,
        "seed": int,
        "data": (str, type(None)),
        "states": dict,
        "rng": dict,
        "history": dict,
        "elapsed": dict,
        "resumed_at": list,
    }
    missing = [k for k in kinds if k not in checkpoint]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint, missing {missing}")
    for key, kind in kinds.items():
        if not isinstance(checkpoint[key], kind) or isinstance(checkpoint[key], bool):
            raise CheckpointError(f"{path}: {key!r} has the wrong type ({type(checkpoint[key]).__name__})")
    there = {**checkpoint["settings"], "seed": checkpoint["seed"], "data": checkpoint["data"]}
    here = {**identity["settings"], "seed": identity["seed"], "data": identity["data"]}
    differences = [f"{k} {there.get(k)!r} there, {v!r} here" for k, v in here.items() if there.get(k) != v]
    if differences:
        raise CheckpointError(
            f"{path}: written by a run with other options ({'; '.join(differences)}); resume with the "
            "options of that run"
        )
    step, steps = checkpoint["step"], identity["settings"]["steps"]
    if not 0 <= step <= steps:
        raise CheckpointError(f"{path}: step {step} is outside the run's 0..{steps}")
    if not all(isinstance(k, int) and 0 <= k <= step for k in checkpoint["resumed_at"]):
        raise CheckpointError(f"{path}: 'resumed_at' must list steps up to {step}")
    check_states(checkpoint["states"], parts, f"{path}: states")
    saved_rng = checkpoint["rng"]
    check_like(rng, {k: v for k, v in saved_rng.items() if k != "cuda"}, f"{path}: rng")
    if "cuda" in saved_rng and "cuda" in rng:
        check_like(rng["cuda"], saved_rng["cuda"], f"{path}: rng['cuda']")
    check_like({"seconds": 0.0, "cpu_seconds": 0.0}, checkpoint["elapsed"], f"{path}: elapsed")
    history = checkpoint["history"]
    if set(history) != {"losses", "evals"}:
        raise CheckpointError(f"{path}: history must hold 'losses' and 'evals', found {sorted(history)}")
    losses, evals = history["losses"], history["evals"]
    if not isinstance(losses, list) or len(losses) != step:
        raise CheckpointError(f"{path}: history['losses'] must hold one entry per step ({step})")
    for i, entry in enumerate(losses, 1):
        if not isinstance(entry, dict) or set(entry) != set(LOSS_KEYS) or entry["step"] != i:
            raise CheckpointError(f"{path}: history['losses'][{i - 1}] is not the losses of step {i}")
    if (
        not isinstance(evals, list)
        or not evals
        or not all(
            isinstance(e, dict) and isinstance(e.get("step"), int) and 0 <= e["step"] <= step for e in evals
        )
    ):
        raise CheckpointError(f"{path}: history['evals'] must list the evaluations up to step {step}")


def networks(s: Settings, classes: int, device: torch.device) -> tuple[Generator, Discriminator]:
    """G and D of the settings, conditional on ``classes`` kinds (0: unconditional), on ``device``."""
    G = Generator(
        channels=s.g_channels,
        layers=s.g_layers,
        upsample=s.upsample,
        mapping_lr=s.mapping_lr,
        mapping_layers=s.mapping_layers,
        categories=classes or s.categories,  # the class code is the categorical code when conditional
        noise=s.noise,
        synthesis=s.synthesis,
    )
    # channels_last: oneDNN's convolutions are faster on NHWC tensors with few channels.
    G = G.to(device, memory_format=torch.channels_last)
    D = Discriminator(s.d_channels, s.d_max_channels, classes=classes).to(
        device, memory_format=torch.channels_last
    )
    return G, D


def objective(
    G: Generator, D: Discriminator, s: Settings
) -> tuple[ModelEMA, AdversarialLoss, LazyRegularizer, torch.optim.Optimizer, torch.optim.Optimizer]:
    """The EMA of G, the loss, lazy R1 and the two Adam optimisers the training steps use."""
    ema = ModelEMA(G, half_life_kimg=s.ema_kimg)
    loss = AdversarialLoss("non_saturating")
    r1 = LazyRegularizer(r1_penalty_from_outputs, interval=s.r1_every)
    # TTUR's two optimisers; D gets lazy R1 on top of its loss every k-th step, so its lr and betas get
    # StyleGAN2's lazy-regularisation adjustment.
    opt_g, opt_d = ttur_adam(
        G, D, g_lr=s.g_lr, d_lr=s.d_lr, g_betas=(0.0, 0.99), d_betas=(0.0, 0.99), d_reg_interval=s.r1_every
    )
    return ema, loss, r1, opt_g, opt_d


def train(
    s: Settings,
    *,
    out: Path,
    data: Optional[Path] = None,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
    quiet: bool = False,
    checkpoint_every: int = 500,
    resume: Optional[Path] = None,
    on_step: Optional[Callable[[int], None]] = None,
) -> dict:
    """Train, write the outputs into ``out`` and return the contents of ``metrics.json``.

    ``checkpoint_every``: write ``out/checkpoint.pt`` every this many steps (0: only at the end and when
    stopped). ``resume``: a checkpoint to continue from. ``on_step(step)`` runs after every step.
    """
    cpu_start, start = time.process_time(), time.perf_counter()
    if checkpoint_every < 0:
        raise SystemExit(
            f"--checkpoint-every must be >= 0 (0: only at the end and on Ctrl-C), got {checkpoint_every}"
        )
    torch.manual_seed(seed)
    dev = torch.device(device)
    out.mkdir(parents=True, exist_ok=True)

    source = ImageSource(data, seed=seed)
    # By default: conditional when the data has labels, unless a categorical code of its own is asked for.
    conditional = source.labelled and not s.categories if s.conditional is None else s.conditional
    if not 0 <= s.lr_decay <= 1:
        raise SystemExit(f"--lr-decay must be a fraction of the steps in [0, 1], got {s.lr_decay}")
    if conditional and not source.labelled:
        raise SystemExit("--conditional needs class labels: only the procedural shapes have them (no --data)")
    if conditional and s.categories:
        raise SystemExit("--categories adds a random code of its own: use it with --no-conditional")
    classes = len(CLASSES) if conditional else 0
    checkpoint = (
        None if resume is None else read_checkpoint(resume, kind=CHECKPOINT_KIND, version=CHECKPOINT_VERSION)
    )
    # The shape classifier (procedural data only): trained first, its time counts; a resumed run loads it.
    classifier = None
    if data is None and checkpoint is not None:
        classifier = ShapeClassifier().eval().requires_grad_(False)
    elif data is None:
        classifier = train_classifier(
            lambda n, g: draw_shapes(n, g, return_labels=True), steps=s.classifier_steps, seed=seed + 3
        )
    G, D = networks(s, classes, dev)
    ema, loss, r1, opt_g, opt_d = objective(G, D, s)
    decay_start = s.steps * (1 - s.lr_decay)
    schedules = [
        torch.optim.lr_scheduler.LambdaLR(
            opt, lambda i: min(1.0, (s.steps - i) / max(s.steps - decay_start, 1e-8))
        )
        for opt in (opt_g, opt_d)
    ]
    # Everything with a state that changes during training (the lazy R1 schedule and the loss have none).
    parts: dict[str, Any] = {
        "G": G,
        "D": D,
        "ema": ema,
        "opt_g": opt_g,
        "opt_d": opt_d,
        "schedule_g": schedules[0],
        "schedule_d": schedules[1],
    }
    if classifier is not None:
        parts["classifier"] = classifier
    identity = run_identity(s, seed, data)
    first_step, log, evals = 1, [], []
    elapsed, resumed_at = {"seconds": 0.0, "cpu_seconds": 0.0}, []
    if checkpoint is not None:
        # Everything is checked before anything is loaded: a file that does not fit changes nothing.
        check_checkpoint(checkpoint, resume, identity=identity, parts=parts, rng=random_states(source, dev))
        load_states(checkpoint["states"], parts)
        first_step = checkpoint["step"] + 1
        log, evals = checkpoint["history"]["losses"], checkpoint["history"]["evals"]
        elapsed, resumed_at = checkpoint["elapsed"], [*checkpoint["resumed_at"], checkpoint["step"]]
    checkpoint_path = out / CHECKPOINT_NAME

    def save_checkpoint(step: int) -> None:
        save_atomic(
            {
                "kind": CHECKPOINT_KIND,
                "version": CHECKPOINT_VERSION,
                "step": step,
                **identity,
                "device": str(dev),
                "states": {name: part.state_dict() for name, part in parts.items()},
                "rng": random_states(source, dev),
                "history": {"losses": log, "evals": evals},
                "elapsed": {
                    "seconds": elapsed["seconds"] + time.perf_counter() - start,
                    "cpu_seconds": elapsed["cpu_seconds"] + time.process_time() - cpu_start,
                },
                "resumed_at": resumed_at,
            },
            checkpoint_path,
        )

    # Fixed latents and real images for evaluation and sample grids.
    g_eval = torch.Generator().manual_seed(seed + 1)
    z_eval = G.latents(s.eval_samples, g_eval).to(dev)
    real_eval, _ = source.sample(s.eval_samples, torch.Generator().manual_seed(seed + 2))
    features = RandomFeatures()
    save_grid(real_eval[:64], out / "real.png")
    ceiling = None if classifier is None else shape_scores(classifier, real_eval)
    # In the classifier's feature space: the samples against real_eval, and the floor that sampling error
    # leaves, a second real set of the same size against real_eval (the real-vs-real baseline).
    baseline, real_features = None, None
    if classifier is not None:
        real_features = shape_features(classifier, real_eval).double()
        second_real, _ = source.sample(s.eval_samples, torch.Generator().manual_seed(seed + 5))
        baseline = feature_metrics(real_features, shape_features(classifier, second_real).double(), seed=seed)

    def evaluate_now(step: int) -> dict:
        fake = sample(ema.module, z_eval)
        result = {"step": step, **distances(real_eval, fake, features)}
        if classifier is not None:
            result.update(shape_scores(classifier, fake))
            fake_features = shape_features(classifier, fake).double()
            result.update(feature_metrics(real_features, fake_features, seed=seed))
        return result

    if not quiet:
        print(
            f"G: {sum(p.numel() for p in G.parameters()):,} parameters, "
            f"D: {sum(p.numel() for p in D.parameters()):,}"
        )
    if checkpoint is None:
        evals.append(evaluate_now(0))
    else:  # last, after everything above that draws random numbers
        set_random_states(checkpoint["rng"], source, dev)
        if not quiet:
            print(f"resuming from {resume} at step {first_step - 1}")
    bar = tqdm(
        range(first_step, s.steps + 1),
        initial=first_step - 1,
        total=s.steps,
        disable=not progress,
        dynamic_ncols=True,
    )
    stop, step = StopRequest(), first_step - 1
    with stop:
        for step in bar:
            # ---- discriminator: logistic loss on real and fake pyramids (+ lazy R1 on the real pyramid)
            real, real_labels = source.sample(s.batch_size)
            real = image_pyramid(real.to(dev, memory_format=torch.channels_last), D.num_scales)
            z = G.latents(s.batch_size).to(dev)
            fake = G(z)
            if classes:  # the real images' own labels; the fakes' are the one-hot code at the end of z
                real_labels, fake_labels = real_labels.to(dev), z[:, -classes:].argmax(1)
            else:
                real_labels = fake_labels = None
            # R1 differentiates the same forward pass the loss uses: no second forward.
            if r1.should_run(step - 1):
                real = [level.requires_grad_(True) for level in real]
            real_pred = D(real, real_labels)
            d_loss = loss.d_loss(real_pred, D([f.detach() for f in fake], fake_labels))
            # every × R1 on every k-th step, else None
            penalty = r1(step - 1, real_pred, real, gamma=s.r1_gamma)
            opt_d.zero_grad(set_to_none=True)
            (d_loss if penalty is None else d_loss + penalty).backward()
            opt_d.step()

            # ---- generator: non-saturating loss through every scale of its output (D's weights frozen)
            D.requires_grad_(False)
            g_loss = loss.g_loss(D(fake, fake_labels))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            D.requires_grad_(True)
            for schedule in schedules:
                schedule.step()
            ema.update(G, batch_size=s.batch_size)

            log.append(
                {
                    "step": step,
                    "d_loss": d_loss.item(),
                    "g_loss": g_loss.item(),
                    "r1": None if penalty is None else penalty.item(),
                }
            )
            if progress:
                bar.set_postfix(d=f"{log[-1]['d_loss']:.3f}", g=f"{log[-1]['g_loss']:.3f}")
            if step % s.sample_every == 0 or step == s.steps:
                save_grid(sample(ema.module, z_eval[:64]), out / f"samples_{step:06d}.png")
            if step % s.eval_every == 0 or step == s.steps:
                evals.append(evaluate_now(step))
                if not quiet:
                    tqdm.write(
                        f"step {step}: "
                        + ", ".join(f"{k} {v:.3f}" for k, v in evals[-1].items() if k != "step")
                    )
            if on_step is not None:
                on_step(step)
            stopping = stop.requested and step < s.steps
            if stopping or step == s.steps or (checkpoint_every and step % checkpoint_every == 0):
                save_checkpoint(step)
            if stopping:
                break
    if stop.signal is not None and step < s.steps:
        bar.close()
        print(
            f"stopped by {signal.Signals(stop.signal).name} after step {step} of {s.steps}; checkpoint "
            f"written to {checkpoint_path}. To continue, run the same command with --resume",
            file=sys.stderr,
        )
        raise SystemExit(128 + stop.signal)

    seconds = elapsed["seconds"] + time.perf_counter() - start
    cpu = elapsed["cpu_seconds"] + time.process_time() - cpu_start
    save_grid(sample(ema.module, z_eval[:64]), out / "samples_final.png")
    plot_curves(log, evals, ceiling, baseline, out / "losses.png")
    metrics = {
        "settings": {
            **asdict(s),
            "seed": seed,
            "conditional": conditional,
            "device": str(dev),
            "data": str(data or "procedural shapes"),
        },
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "threads": torch.get_num_threads(),
        "resumed_at": resumed_at,
        "final": evals[-1],
        "initial": evals[0],
        "real": ceiling,
        "real_baseline": baseline,
        "evals": evals,
        "losses": log,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def main(argv: Optional[list[str]] = None, *, on_step: Optional[Callable[[int], None]] = None) -> dict:
    """Run the script with the command-line arguments ``argv``; ``on_step(step)`` runs after every step."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="folder of images (None: procedural shapes drawn in code)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/train"), help="output folder")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps, ...")
    parser.add_argument("--steps", type=int, default=Settings.steps, help="discriminator/generator steps")
    parser.add_argument("--batch-size", type=int, default=Settings.batch_size, help="images per step")
    parser.add_argument("--g-lr", type=float, default=Settings.g_lr, help="Adam learning rate of G")
    parser.add_argument(
        "--d-lr", type=float, default=Settings.d_lr, help="Adam learning rate of D (TTUR: above --g-lr)"
    )
    parser.add_argument(
        "--r1-gamma", type=float, default=Settings.r1_gamma, help="R1 weight gamma (on the real pyramid)"
    )
    parser.add_argument(
        "--r1-every", type=int, default=Settings.r1_every, help="lazy R1: run it every this many steps"
    )
    parser.add_argument(
        "--mapping-lr",
        type=float,
        default=Settings.mapping_lr,
        help="learning-rate multiplier of the mapping network",
    )
    parser.add_argument(
        "--categories",
        type=int,
        default=Settings.categories,
        help="random one-hot categorical code appended to z (0: none); the pair is then unconditional",
    )
    parser.add_argument(
        "--synthesis",
        choices=("progan", "stylegan", "stylegan2"),
        default=Settings.synthesis,
        help="generator layers: ProGAN's conv + pixel norm (MSG-GAN), StyleGAN's AdaIN + noise, or ganblocks' "
        "StyleGAN2Generator (modulated convolutions, skip architecture)",
    )
    parser.add_argument(
        "--conditional",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="class-conditional G (one-hot code) and projection D on the shape kind; needs labels, so only "
        "the procedural shapes (default: on for them unless --categories is given, off for --data)",
    )
    parser.add_argument(
        "--no-noise", action="store_true", help="no noise injection in the synthesis layers (stylegan)"
    )
    parser.add_argument(
        "--lr-decay",
        type=float,
        default=Settings.lr_decay,
        help="fraction of the steps at the end over which the learning rates decay linearly to 0",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of models, data and latents")
    parser.add_argument("--smoke", action="store_true", help="a few steps of a tiny model (seconds)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (None: PyTorch's choice)")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=500,
        metavar="N",
        help=f"write OUT/{CHECKPOINT_NAME} every N steps (0: not periodically); it is also written after "
        "the last step and when Ctrl-C or SIGTERM stops the run (after the current step)",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="PATH",
        help=f"continue from a checkpoint: PATH, or OUT/{CHECKPOINT_NAME} when no PATH is given; the training "
        "options must be those of the run that wrote it (--out, --threads, --device may differ)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    s = Settings(
        steps=args.steps,
        batch_size=args.batch_size,
        g_lr=args.g_lr,
        d_lr=args.d_lr,
        r1_gamma=args.r1_gamma,
        r1_every=args.r1_every,
        lr_decay=args.lr_decay,
        mapping_lr=args.mapping_lr,
        categories=args.categories,
        noise=not args.no_noise,
        synthesis=args.synthesis,
        conditional=args.conditional,
    )
    if args.smoke:  # the chosen options on a tiny model, a few steps
        s = replace(
            s,
            steps=6,
            batch_size=8,
            g_channels=(16, 16, 8, 8),
            d_channels=8,
            d_max_channels=16,
            eval_every=3,
            sample_every=3,
            eval_samples=400,  # more than the 320 random features: a full-rank covariance
            r1_every=2,
            classifier_steps=5,
        )
    resume = None if args.resume is None else Path(args.resume or args.out / CHECKPOINT_NAME)
    try:
        metrics = train(
            s,
            out=args.out,
            data=args.data,
            device=args.device,
            seed=args.seed,
            progress=not args.no_progress,
            checkpoint_every=args.checkpoint_every,
            resume=resume,
            on_step=on_step,
        )
    except CheckpointError as error:
        raise SystemExit(f"--resume: {error}") from None
    first, last = metrics["initial"], metrics["final"]
    print(
        f"done in {metrics['seconds']:.0f} s ({metrics['cpu_seconds']:.0f} s CPU): "
        + ", ".join(f"{k} {first[k]:.3g} -> {last[k]:.3g}" for k in last if k != "step")
        + f"; outputs in {args.out}"
    )
    return metrics


if __name__ == "__main__":
    main()
