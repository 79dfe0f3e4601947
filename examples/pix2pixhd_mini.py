"""pix2pixHD in miniature: colourise grayscale crops of real photos, with and without pix2pixHD's extra losses.

Paired image-to-image translation with pix2pixHD's recipe, shrunk to run on CPU:

* task: grayscale → colour on 32×32 crops of the colour photographs bundled with scikit-image (astronaut,
  coffee, chelsea, rocket, motorcycle, immunohistochemistry; nothing is downloaded). The left 75% of every
  photo gives the training crops, the right 25% the held-out crops;
* generator: ``GlobalGenerator`` (pix2pixHD's G1: 7×7 conv, two stride-2 convs, residual blocks, two
  transposed convs, 7×7 conv + tanh, instance norm + ReLU) in miniature, predicting the colour offset
  from the grayscale input. Its two transposed convs are replaced by resize-convolutions (``ResizeConv``:
  nearest-neighbour 2× upsampling, then a 3×3 conv, instance norm + ReLU): a stride-2 transposed conv
  overlaps its kernel unevenly and leaves checkerboard artefacts (a 2- and 4-pixel grid pattern) in the
  colours; ``GlobalGenerator`` has no option for its upsampling, so the example swaps its ``up`` layers.
  ``--upsample transposed`` keeps pix2pixHD's transposed convs, artefacts included;
* discriminator: ``MultiScaleDiscriminator`` (2 scales of PatchGANs, conditional: it sees the grayscale
  input concatenated to the colour image), LSGAN loss (``AdversarialLoss("lsgan")``);
* ``full``: adversarial + ``FeatureMatchingLoss.pix2pixhd`` + ``VGGLoss`` × 10 (pix2pixHD's generator
  objective); ``gan_only``: the adversarial loss alone (the ablation).

The VGG19 of ``VGGLoss`` has random weights unless ``--vgg-weights PATH`` points to a torchvision
``vgg19`` state dict (e.g. saved once with ``torch.save(torchvision.models.vgg19(weights="IMAGENET1K_V1")
.state_dict(), PATH)``). By default it compares relu1_1, relu2_1 and relu3_1 with pix2pixHD's weights for
them (1/32, 1/16, 1/8) to stay fast on CPU; ``--vgg-layers all`` uses pix2pixHD's full relu1_1 … relu5_1.

Metric: L1 error (on [0, 1]) and PSNR (dB) of the colourised held-out crops against the originals, next to
the "grayscale" baseline that outputs the input replicated to RGB (the held-out crops are a fixed grid: no
seed enters the baseline). ``--seeds 0,1,2`` trains every variant once per seed; each run draws its models,
training crops and batches (and, without ``--vgg-weights``, its random VGG19) from its own seed, so a
(variant, seed) run gives the same result alone, among others, or in a ``--jobs`` worker (with the same
``--threads``: the thread count changes the order of float sums). Outputs in ``--out`` (default
``runs/pix2pixhd_mini``):

* ``metrics.json``: ``settings``, ``test_crops``, ``grayscale`` (the baseline's ``l1`` and ``psnr``),
  ``runs`` (one entry per run: ``variant``, ``seed``, ``l1``, ``psnr``, ``seconds``, ``cpu_seconds``,
  ``final_losses``) and ``summary[variant]``: ``seeds``, ``num_seeds``, ``l1`` and ``psnr`` as
  ``{median, min, max}`` over the seeds, the median ``cpu_seconds``;
* ``results.md``: the table, "median [min–max]" over the seeds;
* ``comparison.png`` (labelled rows: grayscale input, ``gan_only``, ``full``, colour target; each variant's
  lowest seed) and ``comparison.pt``, its tensors (``"target"`` and ``"variant/seed"``).

``--merge DIR [DIR ...]`` trains nothing: it combines the runs of earlier output folders (the same settings;
a run present in two folders must be the same run, its timing aside) and writes the outputs of all of them
to ``--out``.

Usage::

    python examples/pix2pixhd_mini.py                # both variants, seed 0, a few minutes on CPU
    python examples/pix2pixhd_mini.py --seeds 0,1,2 --jobs 2 --threads 1 --out runs/p2p_a
    python examples/pix2pixhd_mini.py --seeds 3,4 --out runs/p2p_b
    python examples/pix2pixhd_mini.py --merge runs/p2p_a runs/p2p_b --out runs/p2p
    python examples/pix2pixhd_mini.py --smoke        # a few steps, seconds
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm import tqdm

from ganblocks import AdversarialLoss, FeatureMatchingLoss, GlobalGenerator, MultiScaleDiscriminator, VGGLoss
from ganblocks.functional import instance_norm_act

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the examples' shared helpers next to this file
from seeds import load_saved, median_range, merge_runs, spread

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle", "immunohistochemistry")
PIX2PIXHD_VGG = {"relu1_1": 1 / 32, "relu2_1": 1 / 16, "relu3_1": 1 / 8, "relu4_1": 1 / 4, "relu5_1": 1.0}


# =============================================================================================== data
def load_photos(short_side: int = 128) -> list[torch.Tensor]:
    """The bundled colour photos of scikit-image, resized to ``short_side`` pixels, in [-1, 1], (3, H, W)."""
    from skimage import data  # the examples extra; bundled files, no download

    photos = []
    for name in PHOTOS:
        image = getattr(data, name)()
        image = image[0] if isinstance(image, tuple) else image  # stereo_motorcycle: (left, right, disparity)
        im = Image.fromarray(image[..., :3])
        scale = short_side / min(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
        photos.append(torch.from_numpy(np.asarray(im, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1)
    return photos


def to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of images in [-1, 1], (N, 3, H, W) → (N, 1, H, W)."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=rgb.device).view(1, 3, 1, 1)
    return (rgb * weights).sum(1, keepdim=True)


class Crops:
    """Random training crops from the left 75% of every photo; a fixed grid of held-out crops from the rest."""

    def __init__(self, photos: list[torch.Tensor], size: int, seed: int) -> None:
        self.size = size
        self.train = [p[:, :, : int(p.shape[2] * 0.75)] for p in photos]
        tests = []
        for p in photos:
            held = p[:, :, int(p.shape[2] * 0.75) :]
            tiles = held.unfold(1, size, size // 2).unfold(2, size, size // 2)  # half-overlapping tiles
            tests.append(tiles.permute(1, 2, 0, 3, 4).reshape(-1, 3, size, size))
        self.test = torch.cat(tests)
        self.g = torch.Generator().manual_seed(seed)

    def sample(self, n: int) -> torch.Tensor:
        out = []
        for i in torch.randint(len(self.train), (n,), generator=self.g).tolist():
            p = self.train[i]
            y = int(torch.randint(p.shape[1] - self.size + 1, (), generator=self.g))
            x = int(torch.randint(p.shape[2] - self.size + 1, (), generator=self.g))
            crop = p[:, y : y + self.size, x : x + self.size]
            out.append(crop.flip(-1) if torch.rand((), generator=self.g) < 0.5 else crop)
        return torch.stack(out)


# =============================================================================================== generator
class ResizeConv(nn.Module):
    """2× nearest-neighbour upsampling, reflection pad 1, 3×3 conv, instance norm + ReLU.

    A drop-in for ``GlobalGenerator``'s upsampling layers (3×3 transposed conv, stride 2, + instance norm +
    ReLU) without their checkerboard artefacts: a stride-2 transposed 3×3 conv gives neighbouring output
    pixels different numbers of kernel taps (uneven overlap), which leaves a 2-pixel grid pattern in the
    output; upsampling first and convolving at the output resolution treats every pixel alike (Odena et
    al., "Deconvolution and Checkerboard Artifacts", Distill 2016).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, bias=False)  # instance norm removes a bias
        nn.init.normal_(self.conv.weight, 0.0, 0.02)  # pix2pixHD's initialisation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(F.interpolate(x, scale_factor=2.0, mode="nearest"), (1, 1, 1, 1), mode="reflect")
        return instance_norm_act(self.conv(x), act="relu", gain=1.0)


class Colorizer(nn.Module):
    """``GlobalGenerator`` in miniature, predicting the colour offset from the grayscale input.

    Two downsamplings and ``n_blocks`` residual blocks (pix2pixHD: four and nine). The output is the input
    replicated to RGB plus that offset, so an untrained generator starts from the grayscale image. With
    ``upsample="resize"`` (the default) the generator's transposed-conv upsampling layers are replaced by
    :class:`ResizeConv` layers (``GlobalGenerator`` has no option for it; its ``up`` layers are swapped
    here); ``"transposed"`` keeps pix2pixHD's transposed convs, checkerboard artefacts included.
    """

    def __init__(self, ngf: int = 16, n_blocks: int = 3, upsample: str = "resize") -> None:
        super().__init__()
        n_down = 2
        self.net = GlobalGenerator(1, 3, base_channels=ngf, num_downsampling=n_down, num_blocks=n_blocks)
        if upsample == "resize":
            channels = [ngf * 2**i for i in range(n_down, 0, -1)]  # ngf·2^n → ... → ngf
            self.net.up = nn.ModuleList(ResizeConv(c, c // 2) for c in channels)

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        return gray.expand(-1, 3, -1, -1) + self.net(gray)


# =============================================================================================== training
@dataclass
class Settings:
    steps: int = 1200
    batch_size: int = 8
    crop: int = 32
    ngf: int = 16
    n_blocks: int = 3
    ndf: int = 32
    num_scales: int = 2
    n_layers: int = 2
    lr: float = 2e-4
    lambda_feat: float = 10.0
    upsample: str = "resize"
    vgg_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1")


def train_variant(
    variant: str,
    crops: Crops,
    s: Settings,
    *,
    vgg: Optional[VGGLoss],
    device: torch.device,
    seed: int,
    progress: bool,
) -> tuple[nn.Module, list[dict[str, float]]]:
    torch.manual_seed(seed)
    G = Colorizer(ngf=s.ngf, n_blocks=s.n_blocks, upsample=s.upsample).to(device)
    # Conditional: D sees the grayscale input (1 channel) concatenated to the colour image (3).
    D = MultiScaleDiscriminator(
        1 + 3, num_scales=s.num_scales, num_layers=s.n_layers, base_channels=s.ndf, return_features=True
    ).to(device)
    gan = AdversarialLoss("lsgan")  # pix2pixHD's default GANLoss(use_lsgan=True)
    fm = FeatureMatchingLoss.pix2pixhd(
        num_scales=s.num_scales, num_layers=s.n_layers, lambda_feat=s.lambda_feat
    )
    opt_g = torch.optim.Adam(G.parameters(), lr=s.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=s.lr, betas=(0.5, 0.999))

    log = []
    for _ in tqdm(range(s.steps), desc=variant, disable=not progress, leave=False):
        real = crops.sample(s.batch_size).to(device)
        gray = to_gray(real)
        fake = G(gray)

        # Discriminator: pix2pixHD halves the sum of its real and fake terms.
        pred_real = D(torch.cat([gray, real], 1))
        d_loss = 0.5 * gan.d_loss(pred_real, D(torch.cat([gray, fake.detach()], 1)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        # Generator: adversarial, plus feature matching and VGG for the full objective.
        pred_fake = D(torch.cat([gray, fake], 1))
        g_adv = gan.g_loss(pred_fake)
        g_loss = g_adv
        entry = {"d_loss": d_loss.item(), "g_adv": g_adv.item()}
        if variant == "full":
            assert vgg is not None
            g_fm = fm(pred_fake, D(torch.cat([gray, real], 1)))  # real features are detached inside
            g_vgg = s.lambda_feat * vgg(fake, real)
            g_loss = g_adv + g_fm + g_vgg
            entry.update(g_fm=g_fm.item(), g_vgg=g_vgg.item())
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        log.append(entry)
    return G.eval(), log


@torch.no_grad()
def colourise(G: nn.Module, rgb: torch.Tensor, device: torch.device) -> torch.Tensor:
    return torch.cat([G(to_gray(chunk.to(device))).cpu() for chunk in rgb.split(64)])


def l1_psnr(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Mean absolute error and PSNR on [0, 1] images (PSNR of the mean squared error over all crops)."""
    p, t = (pred.clamp(-1, 1) + 1) / 2, (target + 1) / 2
    mse = float((p - t).square().mean())
    return {"l1": float((p - t).abs().mean()), "psnr": 10 * math.log10(1 / max(mse, 1e-12))}


def save_comparison(rows: list[torch.Tensor], labels: list[str], path: Path, *, zoom: int = 3) -> None:
    """Images side by side, one labelled row per tensor (N, C, H, W) in [-1, 1]; grayscale rows shown as RGB."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r.expand(-1, 3, -1, -1) if r.shape[1] == 1 else r for r in rows]
    n, _, h, w = rows[0].shape
    grid = torch.ones(3, len(rows) * (h + 2) + 2, n * (w + 2) + 2)
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            grid[:, 2 + i * (h + 2) : 2 + i * (h + 2) + h, 2 + j * (w + 2) : 2 + j * (w + 2) + w] = (
                im.clamp(-1, 1) + 1
            ) / 2
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    dpi, margin = 100, 1.3  # inches for the row labels
    width, height = array.shape[1] * zoom / dpi, array.shape[0] * zoom / dpi
    fig = plt.figure(figsize=(width + margin, height), dpi=dpi)
    ax = fig.add_axes((margin / (width + margin), 0, width / (width + margin), 1))
    ax.imshow(array, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([2 + i * (h + 2) + h / 2 for i in range(len(rows))], labels, fontsize=11)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


ROW_LABELS = {"gan_only": "GAN only", "full": "full loss\n(+FM +VGG)"}
VARIANTS = tuple(ROW_LABELS)
TIMING = ("seconds", "cpu_seconds")  # the only fields allowed to differ between two copies of a run
NUM_SHOWN = 16  # held-out crops in the comparison figure


def shown(test: torch.Tensor) -> torch.Tensor:
    """The held-out crops of the comparison figure: ``NUM_SHOWN`` spread over the photos."""
    return test[torch.linspace(0, len(test) - 1, NUM_SHOWN).round().long()]


def make_vgg(s: Settings, weights: Optional[Path], device: torch.device) -> VGGLoss:
    with warnings.catch_warnings():
        if weights is None:
            warnings.simplefilter("ignore")  # random VGG weights are this example's documented default
        return VGGLoss(
            s.vgg_layers,
            layer_weights=[PIX2PIXHD_VGG.get(name, 1.0) for name in s.vgg_layers],
            input_range="[-1,1]",
            # ImageNet statistics only mean something for trained weights.
            normalize=weights is not None,
            weights=None if weights is None else str(weights),
            device=device,
        )


def run_one(
    variant: str,
    seed: int,
    s: Settings,
    photos: list[torch.Tensor],
    *,
    vgg_weights: Optional[Path],
    device: str,
    threads: Optional[int],
    progress: bool,
) -> tuple[dict, list]:
    """Train one variant with one seed: its held-out metrics and its colourisation of the figure's crops (in a
    worker with ``--jobs``). Every run draws its own crops, weights and batches from its seed."""
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    crops = Crops(photos, s.crop, seed=seed)
    vgg = None
    if variant == "full":
        torch.manual_seed(seed + 1)  # the random VGG19 (without --vgg-weights): a draw of the run's seed
        vgg = make_vgg(s, vgg_weights, dev)
    start, cpu_start = time.perf_counter(), time.process_time()
    G, log = train_variant(variant, crops, s, vgg=vgg, device=dev, seed=seed, progress=progress)
    outputs = colourise(G, crops.test, dev)
    run = {
        "variant": variant,
        "seed": seed,
        **l1_psnr(outputs, crops.test),
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
        "final_losses": log[-1],
    }
    return run, shown(outputs).tolist()


# =============================================================================================== summary
def summarise(runs: list[dict]) -> dict[str, dict]:
    """Per variant, over seeds: the median, min and max of the held-out L1 and PSNR, the median CPU time."""
    summary: dict[str, dict] = {}
    for variant in VARIANTS:
        chosen = [r for r in runs if r["variant"] == variant]
        if not chosen:
            continue
        entry: dict = {"seeds": sorted(r["seed"] for r in chosen), "num_seeds": len(chosen)}
        for key in ("l1", "psnr"):
            entry[key] = median_range(r[key] for r in chosen)
        entry["cpu_seconds"] = statistics.median(r["cpu_seconds"] for r in chosen)
        summary[variant] = entry
    return summary


def markdown_table(grayscale: dict[str, float], summary: dict[str, dict]) -> str:
    lines = [
        "| variant | seeds | held-out L1 ↓ | held-out PSNR (dB) ↑ | CPU time per run |",
        "|---|---|---|---|---|",
        f"| grayscale | – | {grayscale['l1']:.4f} | {grayscale['psnr']:.2f} | – |",
    ]
    lines += [
        f"| {v} | {e['num_seeds']} | {spread(e['l1'], 4)} | {spread(e['psnr'], 2)} | {e['cpu_seconds']:.0f} s |"
        for v, e in summary.items()
    ]
    return "\n".join(lines) + "\n"


def write_outputs(
    head: dict, runs: list[dict], figure: dict[str, torch.Tensor], out: Path, *, plot: bool = True
) -> dict:
    """metrics.json, results.md, comparison.pt and comparison.png (the lowest seed of every variant).

    ``head`` holds the settings, the number of held-out crops and the grayscale baseline (no seed enters
    them: the held-out crops are a fixed grid); ``figure`` the colour targets of the shown crops
    (``"target"``) and the outputs of runs (``"variant/seed"``).
    """
    runs = sorted(runs, key=lambda r: (VARIANTS.index(r["variant"]), r["seed"]))
    summary = summarise(runs)
    saved = {**head, "summary": summary, "runs": runs}
    (out / "metrics.json").write_text(json.dumps(saved, indent=1))
    (out / "results.md").write_text(markdown_table(head["grayscale"], summary))
    lowest = {f"{v}/{e['seeds'][0]}": v for v, e in summary.items()}
    kept = {k: t for k, t in figure.items() if k == "target" or k in lowest}
    torch.save(kept, out / "comparison.pt")
    if plot:
        rows = {lowest[k]: t for k, t in kept.items() if k in lowest}
        variants = [v for v in summary if v in rows]
        save_comparison(
            [to_gray(kept["target"]), *[rows[v] for v in variants], kept["target"]],
            ["input\n(grayscale)", *[ROW_LABELS[v] for v in variants], "target\n(colour)"],
            out / "comparison.png",
        )
    return saved


# =============================================================================================== merge
def read_outputs(folder: Path) -> tuple[dict, list[dict], dict[str, torch.Tensor]]:
    """The head (settings, held-out crops, baseline), runs and figure tensors :func:`write_outputs` wrote."""
    saved = load_saved(folder / "metrics.json")
    for r in saved["runs"]:
        if r["variant"] not in VARIANTS:
            raise ValueError(f"{folder / 'metrics.json'}: unknown variant {r['variant']!r}")
    figure: dict[str, torch.Tensor] = {}
    if (folder / "comparison.pt").is_file():
        # weights_only: a file of plain tensors; nothing in it is executed.
        figure = torch.load(folder / "comparison.pt", map_location="cpu", weights_only=True)
    head = {k: v for k, v in saved.items() if k not in ("summary", "runs")}
    return head, saved["runs"], figure


def merge(folders: list[Path]) -> tuple[dict, list[dict], dict[str, torch.Tensor]]:
    """The runs of several output folders as one: the same settings, each (variant, seed) once; a run found in
    two folders must be the same run (every field but the timing)."""
    head, runs, figure = merge_runs(
        folders,
        read_outputs,
        key=lambda r: (r["variant"], r["seed"]),
        describe=lambda k: f"variant {k[0]!r} with seed {k[1]}",
        timing=TIMING,
    )
    if "target" not in figure:
        raise ValueError(f"none of {', '.join(map(str, folders))} holds comparison.pt")
    return head, runs, figure


# =============================================================================================== main
def int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: Optional[list[str]] = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=Settings.steps, help="training steps per variant")
    parser.add_argument("--variants", default="gan_only,full", help="comma-separated: gan_only,full")
    parser.add_argument(
        "--vgg-weights",
        type=Path,
        default=None,
        help="torchvision vgg19 state dict (.pth); None: random VGG19 weights, drawn from each run's seed",
    )
    parser.add_argument(
        "--vgg-layers",
        default=",".join(Settings.vgg_layers),
        help="VGG19 layers of the perceptual loss: comma-separated names, or 'all' (relu1_1 ... relu5_1)",
    )
    parser.add_argument(
        "--upsample",
        choices=("resize", "transposed"),
        default=Settings.upsample,
        help="generator upsampling: resize (nearest 2x + 3x3 conv, no checkerboard) or transposed "
        "(pix2pixHD's transposed convs)",
    )
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps, ...")
    parser.add_argument(
        "--seeds",
        type=int_list,
        default="0",
        help="comma-separated seeds, e.g. 0,1,2: one run per variant and seed (each seed seeds the "
        "models, the training crops and batches, and the random VGG19)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        metavar="DIR",
        help="train nothing: combine the metrics.json (and comparison.pt) of these output folders into --out",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/pix2pixhd_mini"), help="output folder")
    parser.add_argument("--smoke", action="store_true", help="a few steps of tiny models (seconds)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per run (None: PyTorch's choice; 1 with --jobs)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs in parallel processes (the same results as one after another with the same --threads)",
    )
    args = parser.parse_args(argv)

    if args.merge:
        try:
            head, runs, figure = merge(args.merge)
        except (OSError, ValueError) as error:
            raise SystemExit(f"--merge: {error}") from None
        args.out.mkdir(parents=True, exist_ok=True)
        saved = write_outputs(head, runs, figure, args.out)
        print(markdown_table(head["grayscale"], saved["summary"]), end="")
        print(
            f"merged {len(runs)} runs into {args.out}: metrics.json, results.md, comparison.pt, comparison.png"
        )
        return saved

    threads = args.threads or (1 if args.jobs > 1 else None)
    if threads:
        torch.set_num_threads(threads)
    layers = tuple(PIX2PIXHD_VGG) if args.vgg_layers == "all" else tuple(args.vgg_layers.split(","))
    s = Settings(steps=args.steps, vgg_layers=layers, upsample=args.upsample)
    if args.smoke:
        s = Settings(
            steps=3, batch_size=4, ngf=4, n_blocks=1, ndf=8, vgg_layers=("relu1_1",), upsample=args.upsample
        )
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            parser.error(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    if not args.seeds or len(set(args.seeds)) < len(args.seeds):
        parser.error(f"--seeds needs distinct values, at least one (got {args.seeds})")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1 (got {args.jobs})")
    args.out.mkdir(parents=True, exist_ok=True)

    photos = load_photos()
    test = Crops(photos, s.crop, seed=0).test  # a fixed grid: the same for every seed
    head = {
        # As read back (tuples become lists): --merge compares the settings of folders.
        "settings": json.loads(json.dumps({**asdict(s), "vgg_weights": str(args.vgg_weights)})),
        "test_crops": len(test),
        "grayscale": l1_psnr(to_gray(test).expand(-1, 3, -1, -1), test),
    }
    runs: list[dict] = []
    figure = {"target": shown(test)}

    def finish(run: dict, outputs: list) -> None:
        runs.append(run)
        figure[f"{run['variant']}/{run['seed']}"] = torch.tensor(outputs)
        print(
            f"{run['variant']:>8} seed {run['seed']}: held-out L1 {run['l1']:.4f}, PSNR {run['psnr']:.2f} dB "
            f"({run['seconds']} s, {run['cpu_seconds']} s CPU)",
            flush=True,
        )
        write_outputs(head, runs, figure, args.out, plot=False)

    tasks = [(variant, seed) for variant in variants for seed in args.seeds]
    common: dict = {"vgg_weights": args.vgg_weights, "device": args.device, "threads": threads}
    if args.jobs == 1:
        for variant, seed in tasks:
            finish(*run_one(variant, seed, s, photos, progress=not args.no_progress, **common))
    else:
        # Every run seeds itself: the results do not depend on the order or the process it runs in.
        # "spawn": a fresh interpreter per worker, no forked thread pools.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
            futures = [
                pool.submit(run_one, variant, seed, s, photos, progress=False, **common)
                for variant, seed in tasks
            ]
            for future in as_completed(futures):
                finish(*future.result())

    saved = write_outputs(head, runs, figure, args.out)
    print(markdown_table(head["grayscale"], saved["summary"]), end="")
    print(f"wrote {args.out / 'comparison.png'}, {args.out / 'metrics.json'}, {args.out / 'results.md'}")
    return saved


if __name__ == "__main__":
    main()
