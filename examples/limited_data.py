"""Limited data: the main job's GAN on 200 or 1,000 fixed images, without augmentation, with DiffAugment, with ADA.

The claim tested is StyleGAN2-ADA's (Karras et al., "Training Generative Adversarial Networks with Limited
Data", NeurIPS 2020): with little data the discriminator overfits (the heuristic
``r_t = E[sign(D(x_real))]`` rises towards 1), FID stalls or worsens, and augmenting every image the
discriminator sees prevents it without leaking the augmentations into the samples.

Every run trains ``train.py``'s networks (its ``Generator`` and MSG ``Discriminator``, conditional on the shape
kind, non-saturating loss, lazy R1, the EMA generator, ``train.Settings``' defaults) for the same number of
steps, batch size and seed, on a fixed training set of ``N`` procedural images (``train.draw_shapes``, drawn
once per seed), with one of:

* ``none``: no augmentation;
* ``diffaugment``: ``ganblocks.diff_augment`` with DiffAugment's ``'color,translation,cutout'`` policy at
  ``p = 1`` (Zhao et al., NeurIPS 2020);
* ``ada``: ``ganblocks.AugmentPipe.preset("bgc")`` at the probability ``p`` of
  ``ganblocks.AdaptiveAugmentProbability`` (target ``r_t`` 0.6, adjusted every 4 steps from the sign of D's
  logits on the reals it saw), as StyleGAN2-ADA. ``p`` moves from 0 to 1 in ``--ada-kimg`` thousand images:
  StyleGAN2-ADA's 500 is meant for runs of tens of millions of images, so the default here is scaled to the
  short budget.

The augmentation is applied to every image D sees, reals and fakes, in D's and G's steps, and to the reals
of R1 (whose gradient is taken with respect to the un-augmented reals, as StyleGAN2-ADA). So that the
augmentation sees one image, D gets the pyramid of the (augmented) 32×32 image (``image_pyramid``) for
reals and fakes in all three modes: G is trained through its finest output.

Every ``--eval-every`` steps, FID and KID in the shape classifier's feature space (``ganblocks.metrics``, as
``train.py``'s ``feature_metrics``) compare 1,000 samples of the EMA generator with 2,000 held-out real
images, a fresh draw disjoint from the training set; ``r_t`` (the mean over the steps since the last
evaluation) and ADA's ``p`` are logged. Two references: a fresh real set of the samples' size against the
held-out set (the floor sampling error leaves) and the training set itself against it (a generator that
reproduced exactly its N training images).

Outputs in ``--out``: ``results.json`` (settings, every run's curve, the summary), ``results.md`` (best FID per
configuration: median [min–max] over seeds), ``limited_data.png`` (FID and r_t against step, one line per
run; ``--figure PATH`` writes it there as well) and ``samples_<N>_<augment>_seed<seed>.png`` (64 final EMA
samples of each run).

Usage::

    python examples/limited_data.py --steps 1500 --jobs 2                 # 6 runs, 1 seed
    python examples/limited_data.py --seeds 0,1,2 --jobs 2 --figure docs/assets/limited_data.png
    python examples/limited_data.py --smoke                               # a few steps, seconds
    python examples/limited_data.py --merge runs/a runs/b --out runs/ab   # the runs of two folders as one
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from tqdm import tqdm

from ganblocks import AdaptiveAugmentProbability, AugmentPipe
from ganblocks.functional import image_pyramid
from ganblocks.training import diff_augment

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the main job and its helpers next to this file
import train as main_job
from seeds import load_saved, median_range, merge_runs, spread
from shape_classifier import CLASSES, shape_features, shape_scores, train_classifier

AUGMENTS = ("none", "diffaugment", "ada")
HELD_OUT_SEED = 1_000_003  # the held-out real images: one draw for every run, disjoint from any training set


@dataclass(frozen=True)
class Budget:
    """What every run shares, whatever its augmentation."""

    steps: int = 1500
    eval_every: int = 150
    eval_samples: int = 1000  # EMA samples per evaluation
    held_out: int = 2000  # held-out real images
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_kimg: float = 10.0
    ada_initial_p: float = 0.0


def run_one(
    size: int,
    augment: str,
    seed: int,
    s: main_job.Settings,
    budget: Budget,
    *,
    threads: int,
    out: Path,
    device: str = "cpu",
    progress: bool = False,
) -> dict:
    """Train one configuration with one seed; its curve of FID, KID, r_t and p (in a worker with ``--jobs``)."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    # The evaluator, trained on fresh draws (not the GAN's data), as the main job's.
    classifier = train_classifier(
        lambda n, g: main_job.draw_shapes(n, g, return_labels=True), steps=s.classifier_steps, seed=seed + 3
    )
    # The fixed training set: the same N images for the three augmentation modes of a seed.
    data, data_labels = main_job.draw_shapes(size, torch.Generator().manual_seed(seed), return_labels=True)
    held_out = main_job.draw_shapes(budget.held_out, torch.Generator().manual_seed(HELD_OUT_SEED))
    held_features = shape_features(classifier, held_out).double()
    fresh = main_job.draw_shapes(budget.eval_samples, torch.Generator().manual_seed(HELD_OUT_SEED + 1))
    references = {
        "fresh_real": main_job.fid_kid(held_features, shape_features(classifier, fresh).double(), seed=seed),
        "training_set": main_job.fid_kid(held_features, shape_features(classifier, data).double(), seed=seed),
    }

    classes = len(CLASSES)
    G, D = main_job.networks(s, classes, dev)
    ema, loss, r1, opt_g, opt_d = main_job.objective(G, D, s)
    pipe = AugmentPipe.preset("bgc").to(dev)
    ada = AdaptiveAugmentProbability(
        target=budget.ada_target,
        interval=budget.ada_interval,
        speed_kimg=budget.ada_kimg,
        initial_p=budget.ada_initial_p,
    ).to(dev)

    def augmented(x: torch.Tensor) -> list[torch.Tensor]:
        """The pyramid D sees of the 32×32 images ``x``, augmented as the mode says."""
        if augment == "diffaugment":
            x = diff_augment(x, "color,translation,cutout", p=1.0)
        elif augment == "ada":
            x = pipe(x, p=ada.p)
        return image_pyramid(x.contiguous(memory_format=torch.channels_last), D.num_scales)

    g_data = torch.Generator().manual_seed(seed + 4)
    z_eval = G.latents(budget.eval_samples, torch.Generator().manual_seed(seed + 1)).to(dev)
    data, data_labels = data.to(dev), data_labels.to(dev)

    def evaluate(step: int, r_t: Optional[float]) -> dict:
        fake = main_job.sample(ema.module, z_eval)
        scores = shape_scores(classifier, fake)
        return {
            "step": step,
            **main_job.fid_kid(held_features, shape_features(classifier, fake).double(), seed=seed),
            "recognised": scores["recognised"],
            "r_t": r_t,
            "p": float(ada.p) if augment == "ada" else None,
        }

    curve = [evaluate(0, None)]
    sign_sum, sign_count = 0.0, 0
    loop_start, eval_seconds = time.perf_counter(), 0.0
    for step in tqdm(range(1, budget.steps + 1), disable=not progress, dynamic_ncols=True):
        index = torch.randint(size, (s.batch_size,), generator=g_data).to(dev)
        real, labels = data[index], data_labels[index]
        z = G.latents(s.batch_size).to(dev)
        fake_labels = z[:, -classes:].argmax(1)
        fake = G(z)[0]
        # R1 differentiates D's output on the augmented reals with respect to the un-augmented ones.
        regularise = r1.should_run(step - 1)
        if regularise:
            real = real.detach().requires_grad_(True)
        real_pred = D(augmented(real), labels)
        d_loss = loss.d_loss(real_pred, D(augmented(fake.detach()), fake_labels))
        penalty = r1(step - 1, real_pred, real, gamma=s.r1_gamma)
        opt_d.zero_grad(set_to_none=True)
        (d_loss if penalty is None else d_loss + penalty).backward()
        opt_d.step()
        signs = real_pred.detach().sign()
        sign_sum, sign_count = sign_sum + float(signs.sum()), sign_count + signs.numel()
        if augment == "ada":
            ada.update(real_pred)

        D.requires_grad_(False)
        g_loss = loss.g_loss(D(augmented(fake), fake_labels))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
        ema.update(G, batch_size=s.batch_size)

        if step % budget.eval_every == 0 or step == budget.steps:
            eval_start = time.perf_counter()
            curve.append(evaluate(step, sign_sum / sign_count))
            if not progress:
                e = curve[-1]
                print(
                    f"{size:>5} images, {augment:>11}, seed {seed}, step {step}: FID {e['fid']:.2f}, "
                    f"r_t {e['r_t']:.2f}" + ("" if e["p"] is None else f", p {e['p']:.3f}"),
                    flush=True,
                )
            sign_sum, sign_count = 0.0, 0
            eval_seconds += time.perf_counter() - eval_start
    step_seconds = (time.perf_counter() - loop_start - eval_seconds) / budget.steps

    # The final EMA samples: augmentations leaking into them (turned, recoloured shapes) show here.
    main_job.save_grid(
        main_job.sample(ema.module, z_eval[:64]), out / f"samples_{size}_{augment}_seed{seed}.png"
    )
    best = min(curve[1:], key=lambda e: e["fid"])
    return {
        "size": size,
        "augment": augment,
        "seed": seed,
        "best_fid": best["fid"],
        "best_step": best["step"],
        "final_fid": curve[-1]["fid"],
        "final_r_t": curve[-1]["r_t"],
        "final_p": curve[-1]["p"],
        "curve": curve,
        "references": references,
        "seconds_per_step": round(step_seconds, 4),
        "seconds_per_eval": round(eval_seconds / (len(curve) - 1), 2),
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
        "threads": threads,
    }


# =============================================================================================== summary
def summarise(runs: list[dict]) -> dict[str, dict[str, dict]]:
    """Per size and augmentation, over seeds: the median, min and max of the best and the final FID."""
    summary: dict[str, dict[str, dict]] = {}
    for size in sorted({r["size"] for r in runs}):
        per: dict[str, dict] = {}
        for augment in AUGMENTS:
            chosen = [r for r in runs if r["size"] == size and r["augment"] == augment]
            if not chosen:
                continue
            entry: dict = {"seeds": sorted(r["seed"] for r in chosen)}
            for key in ("best_fid", "final_fid", "final_r_t"):
                entry[key] = median_range(r[key] for r in chosen)
            ps = [r["final_p"] for r in chosen if r["final_p"] is not None]
            entry["final_p"] = statistics.median(ps) if ps else None
            per[augment] = entry
        if "none" in per:
            base = per["none"]["best_fid"]["median"]
            for entry in per.values():
                entry["ratio_to_none"] = entry["best_fid"]["median"] / base
        summary[str(size)] = per
    return summary


def markdown_table(summary: dict[str, dict[str, dict]], runs: list[dict]) -> str:
    lines = [
        "| images | augmentation | seeds | best FID | ÷ none | final FID | final r_t | final p |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size, per in summary.items():
        for augment, e in per.items():
            p = "–" if e["final_p"] is None else f"{e['final_p']:.2f}"
            ratio = f"{e['ratio_to_none']:.2f}" if "ratio_to_none" in e else "–"
            lines.append(
                f"| {size} | {augment} | {len(e['seeds'])} | {spread(e['best_fid'])} | {ratio} | "
                f"{spread(e['final_fid'])} | {spread(e['final_r_t'], 2)} | {p} |"
            )
    ref = runs[0]["references"]
    training = statistics.median(r["references"]["training_set"]["fid"] for r in runs)
    lines.append("")
    lines.append(
        f"References (FID against the held-out set): a fresh real set of the samples' size "
        f"{ref['fresh_real']['fid']:.2f}; the training set itself (median over runs) {training:.2f}."
    )
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], path: Path) -> None:
    """FID (top) and r_t with ADA's p (bottom) against step, one column per size, one line per run."""
    sizes = sorted({r["size"] for r in runs})
    fig, axes = plt.subplots(2, len(sizes), figsize=(5.5 * len(sizes), 7), squeeze=False, sharex=True)
    colors = {"none": "tab:red", "diffaugment": "tab:blue", "ada": "tab:green"}
    for j, size in enumerate(sizes):
        top, bottom = axes[0][j], axes[1][j]
        seeds = sorted({r["seed"] for r in runs})
        for r in sorted((r for r in runs if r["size"] == size), key=lambda r: (r["augment"], r["seed"])):
            c, label = colors[r["augment"]], f"{r['augment']} (seed {r['seed']})"
            style = "os^vDP*X"[seeds.index(r["seed"]) % 8] + "-"  # one marker per seed
            steps = [e["step"] for e in r["curve"]]
            top.plot(steps, [e["fid"] for e in r["curve"]], style, ms=3, color=c, label=label)
            rt = [(e["step"], e["r_t"]) for e in r["curve"] if e["r_t"] is not None]
            bottom.plot(*zip(*rt), style, ms=3, color=c, label=f"r_t, {label}")
            if r["augment"] == "ada":
                ps = [(e["step"], e["p"]) for e in r["curve"]]
                bottom.plot(*zip(*ps), "--", color=c, alpha=0.7, label=f"ADA p, seed {r['seed']}")
        training = statistics.median(
            r["references"]["training_set"]["fid"] for r in runs if r["size"] == size
        )
        top.axhline(training, color="gray", ls=":", lw=1, label="training set vs held-out")
        top.set(yscale="log", ylabel="FID (classifier features, held-out reals)", title=f"{size} images")
        bottom.axhline(0.6, color="gray", ls=":", lw=1, label="ADA target 0.6")
        bottom.set(xlabel="step", ylabel="r_t = E[sign D(real)]  /  ADA p", ylim=(-1.05, 1.05))
        top.legend(fontsize=7)
        bottom.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(runs: list[dict], settings: dict, out: Path, figures: list[Path]) -> dict:
    runs = sorted(runs, key=lambda r: (r["size"], AUGMENTS.index(r["augment"]), r["seed"]))
    summary = summarise(runs)
    (out / "results.json").write_text(
        json.dumps({"settings": settings, "summary": summary, "runs": runs}, indent=1)
    )
    (out / "results.md").write_text(markdown_table(summary, runs))
    for path in figures:
        path.parent.mkdir(parents=True, exist_ok=True)
        plot(runs, path)
    return summary


TIMING = ("seconds_per_step", "seconds_per_eval", "seconds", "cpu_seconds")


def read_outputs(folder: Path) -> tuple[dict, list[dict], dict]:
    """The settings and runs :func:`write_outputs` wrote to ``folder`` (and no extras)."""
    saved = load_saved(folder / "results.json")
    return saved["settings"], saved["runs"], {}


def merge(folders: list[Path]) -> tuple[dict, list[dict]]:
    """The runs of several output folders as one: the same settings, each (size, augmentation, seed) once."""
    settings, runs, _ = merge_runs(
        folders,
        read_outputs,
        key=lambda r: (r["size"], r["augment"], r["seed"]),
        describe=lambda k: f"{k[0]} images, {k[1]}, seed {k[2]}",
        timing=TIMING,
    )
    return settings, runs


def int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: Optional[list[str]] = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int_list, default=[200, 1000], help="training-set sizes, e.g. 200,1000"
    )
    parser.add_argument("--augment", default=",".join(AUGMENTS), help="comma-separated: none,diffaugment,ada")
    parser.add_argument("--steps", type=int, default=Budget.steps, help="steps of every run")
    parser.add_argument(
        "--batch-size", type=int, default=main_job.Settings.batch_size, help="images per step"
    )
    parser.add_argument(
        "--eval-every", type=int, default=None, help="steps between evaluations (None: steps/10)"
    )
    parser.add_argument("--ada-kimg", type=float, default=Budget.ada_kimg, help="ADA: kimg for p from 0 to 1")
    parser.add_argument("--seeds", type=int_list, default=[0], help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument("--out", type=Path, default=Path("runs/limited_data"), help="output folder")
    parser.add_argument("--figure", type=Path, default=None, help="also write the figure to this path")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps, ...")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar (one job)")
    parser.add_argument("--smoke", action="store_true", help="a few steps of a tiny model (seconds)")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="train nothing: combine the runs in these output folders (same settings) into --out",
    )
    args = parser.parse_args(argv)
    if args.merge:
        try:
            settings, runs = merge(args.merge)
        except (OSError, ValueError) as error:
            raise SystemExit(f"--merge: {error}") from None
        args.out.mkdir(parents=True, exist_ok=True)
        figures = [args.out / "limited_data.png", *([args.figure] if args.figure else [])]
        summary = write_outputs(runs, settings, args.out, figures)
        print((args.out / "results.md").read_text(), end="")
        print(
            f"merged {len(runs)} runs into {args.out}: results.json, results.md, {', '.join(map(str, figures))}"
        )
        return summary
    augments = [a for a in args.augment.split(",") if a]
    for a in augments:
        if a not in AUGMENTS:
            parser.error(f"unknown augmentation {a!r}; choose from {', '.join(AUGMENTS)}")
    if not args.sizes or min(args.sizes) < 1 or not args.seeds or args.steps < 1 or args.jobs < 1:
        parser.error("--sizes, --seeds need at least one value (sizes >= 1); --steps, --jobs must be >= 1")
    torch.set_num_threads(args.threads)

    s = replace(main_job.Settings(), batch_size=args.batch_size)
    budget = Budget(
        steps=args.steps, eval_every=args.eval_every or max(1, args.steps // 10), ada_kimg=args.ada_kimg
    )
    if args.smoke:
        s = replace(
            s, batch_size=8, g_channels=(16, 16, 8, 8), d_channels=8, d_max_channels=16, r1_every=2,
            classifier_steps=5,
        )  # fmt: skip
        # ADA starts at p = 0.5 so that the pipe runs in the few steps.
        budget = replace(
            budget, steps=4, eval_every=2, eval_samples=200, held_out=300, ada_kimg=0.01, ada_initial_p=0.5
        )
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {"train": asdict(s), "budget": asdict(budget), "threads": args.threads}
    # ADA first: its runs cost the most, so with --jobs they start first and the rest fill in around them.
    order = sorted(augments, key=("ada", "diffaugment", "none").index)
    tasks = [(size, a, seed) for seed in args.seeds for a in order for size in args.sizes]
    runs: list[dict] = []

    def finish(run: dict) -> None:
        runs.append(run)
        print(
            f"{run['size']:>5} images, {run['augment']:>11}, seed {run['seed']}: best FID {run['best_fid']:.2f} "
            f"(step {run['best_step']}), final {run['final_fid']:.2f}, r_t {run['final_r_t']:.2f}"
            + ("" if run["final_p"] is None else f", p {run['final_p']:.3f}")
            + f" ({run['seconds']} s, {run['cpu_seconds']} s CPU, {run['seconds_per_step']:.3f} s/step)",
            flush=True,
        )
        write_outputs(runs, settings, args.out, [])

    common: dict = {"threads": args.threads, "out": args.out, "device": args.device}
    if args.jobs == 1:
        for size, a, seed in tasks:
            finish(run_one(size, a, seed, s, budget, progress=not args.no_progress, **common))
    else:
        # Every run seeds itself: the results do not depend on the order or the process it runs in.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
            futures = [pool.submit(run_one, size, a, seed, s, budget, **common) for size, a, seed in tasks]
            for future in as_completed(futures):
                finish(future.result())

    figures = [args.out / "limited_data.png", *([args.figure] if args.figure else [])]
    summary = write_outputs(runs, settings, args.out, figures)
    print((args.out / "results.md").read_text(), end="")
    print(f"wrote {args.out / 'results.json'}, {args.out / 'results.md'}, {', '.join(map(str, figures))}")
    return summary


if __name__ == "__main__":
    main()
