"""Smoke runs of the example scripts (their ``--smoke`` mode, in-process) and of the code blocks in docs/.

Each example must write its outputs, and they must be valid: PNGs decode to non-empty images, JSON files
hold the documented metric keys with finite values.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")
pytest.importorskip("PIL")


@pytest.fixture(autouse=True)
def _keep_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"ganblocks_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def assert_png(path: Path) -> None:
    from PIL import Image

    assert path.is_file(), f"{path.name} was not written"
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.load()
        assert im.width > 8 and im.height > 8
        assert im.getextrema() != ((0, 0), (0, 0), (0, 0)), f"{path.name} is blank"


def assert_finite(value: object, where: str) -> None:
    assert isinstance(value, (int, float)) and math.isfinite(value), f"{where} = {value!r} is not finite"


def test_train_smoke(tmp_path: Path) -> None:
    train = load_example("train")
    out = tmp_path / "train"
    train.main(["--smoke", "--out", str(out), "--no-progress"])
    for name in ("real.png", "samples_final.png", "losses.png"):
        assert_png(out / name)
    assert sorted(out.glob("samples_0*.png")), "no intermediate sample grid"
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["evals"]) >= 2
    for entry in (metrics["initial"], metrics["final"], *metrics["evals"]):
        for key in ("fd_random", "swd_patches"):
            assert_finite(entry[key], key)
            assert entry[key] >= 0
    assert metrics["losses"], "no losses logged"
    for entry in metrics["losses"]:
        assert_finite(entry["d_loss"], "d_loss")
        assert_finite(entry["g_loss"], "g_loss")
    assert any(entry["r1"] is not None for entry in metrics["losses"]), "the lazy R1 penalty never ran"
    # The shape classifier's measures: on the samples at every evaluation and on real images (the ceiling).
    shape_keys = ("recognised", "share_disc", "share_square", "share_triangle", "balance")
    for entry in (metrics["initial"], metrics["final"], metrics["real"], *metrics["evals"]):
        for key in shape_keys:
            assert_finite(entry[key], key)
            assert 0 <= entry[key] <= 1 + 1e-9, (key, entry[key])
        shares = [entry[f"share_{c}"] for c in ("disc", "square", "triangle")]
        assert math.isclose(sum(shares), 1.0, abs_tol=1e-6) or (entry["recognised"] == 0 and sum(shares) == 0)
    # ganblocks.metrics in the classifier's feature space, and the real-vs-real baseline beside them.
    for entry in (metrics["real_baseline"], *metrics["evals"]):
        for key in ("fid", "kid", "precision", "recall", "density", "coverage"):
            assert_finite(entry[key], key)
        assert entry["fid"] >= 0 and 0 <= entry["precision"] <= 1 and 0 <= entry["recall"] <= 1
    assert metrics["real_baseline"]["precision"] > 0.5 and metrics["real_baseline"]["recall"] > 0.5
    for key in ("seconds", "cpu_seconds"):
        assert_finite(metrics[key], key)


@pytest.mark.parametrize(
    "options",
    [
        ["--no-conditional"],
        ["--synthesis", "stylegan", "--no-noise", "--lr-decay", "0.5"],
        ["--categories", "2", "--d-lr", "0.004"],
    ],
)
def test_train_smoke_variants(tmp_path: Path, options: list[str]) -> None:
    """The other generator and the unconditional pair train too, and the settings record them."""
    train = load_example("train")
    metrics = train.main(["--smoke", "--out", str(tmp_path), "--no-progress", *options])
    settings = metrics["settings"]
    # On by default for the shapes, unless a categorical code of its own is asked for.
    assert settings["conditional"] == ("--no-conditional" not in options and "--categories" not in options)
    assert settings["synthesis"] == ("stylegan" if "stylegan" in options else "progan")
    assert (settings["g_lr"], settings["d_lr"]) == (0.002, 0.004 if "--d-lr" in options else 0.002)
    for entry in metrics["losses"]:
        assert_finite(entry["d_loss"], "d_loss")
        assert_finite(entry["g_loss"], "g_loss")


def test_train_smoke_stylegan2(tmp_path: Path) -> None:
    """``--synthesis stylegan2``: ganblocks' StyleGAN2Generator, its image fed to the MSG discriminator as a
    pyramid, trains conditionally and unconditionally."""
    train = load_example("train")
    G = train.Generator(channels=(16, 16, 8, 8), synthesis="stylegan2", categories=3)
    assert G.stylegan2 is not None and G.stylegan2.c_dim == 3 and G.stylegan2.img_resolution == 32
    images = G(G.latents(2))
    assert [tuple(im.shape) for im in images] == [(2, 3, 32, 32), (2, 3, 16, 16), (2, 3, 8, 8), (2, 3, 4, 4)]
    for options in (["--conditional"], ["--no-conditional"]):
        out = tmp_path / options[0]
        metrics = train.main(
            ["--smoke", "--out", str(out), "--no-progress", "--synthesis", "stylegan2", *options]
        )
        assert metrics["settings"]["synthesis"] == "stylegan2"
        assert metrics["settings"]["conditional"] == (options == ["--conditional"])
        assert_png(out / "samples_final.png")
        for entry in metrics["losses"]:
            assert_finite(entry["d_loss"], "d_loss")
            assert_finite(entry["g_loss"], "g_loss")


def test_train_projection_discriminator() -> None:
    """The conditional logit is the unconditional one plus ⟨e_y, φ(x)⟩ / √width (Miyato & Koyama)."""
    train = load_example("train")
    torch.manual_seed(0)
    d = train.Discriminator(8, 16, classes=3)
    assert d.projection is not None
    images, labels = train.draw_shapes(8, torch.Generator().manual_seed(0), return_labels=True)
    pyramid = [images] + [torch.nn.functional.avg_pool2d(images, 2**k) for k in range(1, d.num_scales)]
    out = d.msg(pyramid, return_features=True)
    hidden = out.features[0][-1].flatten(1)  # (8, 16): the 4×4 block's last layer
    embeddings = d.projection.embeddings[0].weight / 3**0.5  # row y: e_y, an equalized embedding of K=3
    expected = out.logits[0] + (embeddings[labels] * hidden).sum(1, keepdim=True) / 16**0.5
    torch.testing.assert_close(d(pyramid, labels), expected)
    # A different label moves the logit by exactly the difference of the two projections.
    other = (labels + 1) % 3
    shift = ((embeddings[other] - embeddings[labels]) * hidden).sum(1, keepdim=True) / 16**0.5
    torch.testing.assert_close(d(pyramid, other) - d(pyramid, labels), shift)
    assert shift.abs().min() > 0
    with pytest.raises(ValueError, match="needs the labels"):
        d(pyramid)
    # Without classes the labels are not needed and the logit is the MSG discriminator's own.
    plain = train.Discriminator(8, 16)
    torch.testing.assert_close(plain(pyramid), plain.msg(pyramid).logits[0])


def test_train_generator_variants() -> None:
    train = load_example("train")
    for synthesis in ("progan", "stylegan"):
        g = train.Generator(channels=(16, 16, 8, 8), synthesis=synthesis, categories=3)
        z = g.latents(2, torch.Generator().manual_seed(0))
        assert z.shape == (2, 64 + 3) and z[:, 64:].sum(1).eq(1).all()
        images = g(z)
        assert [tuple(x.shape) for x in images] == [(2, 3, 32 // 2**k, 32 // 2**k) for k in range(4)]
        assert all(x.abs().max() <= 1 for x in images)  # tanh heads
    with pytest.raises(ValueError, match="synthesis must be"):
        train.Generator(synthesis="dcgan")


def test_train_conditional_needs_labels(tmp_path: Path) -> None:
    from PIL import Image

    train = load_example("train")
    Image.new("RGB", (32, 32), color=(200, 10, 10)).save(tmp_path / "a.png")
    with pytest.raises(SystemExit, match="--conditional needs class labels"):
        train.main(["--smoke", "--conditional", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match="--categories adds a random code"):
        train.main(["--smoke", "--conditional", "--categories", "3", "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match="--lr-decay must be"):
        train.main(["--smoke", "--lr-decay", "-0.5", "--out", str(tmp_path / "o")])
    # By default a folder of unlabelled images trains an unconditional pair.
    metrics = train.main(["--smoke", "--no-progress", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert metrics["settings"]["conditional"] is False and metrics["real"] is None


def test_shape_classifier_recognises_real_shapes() -> None:
    """A briefly trained classifier already tells the three shapes apart; the scores behave as documented."""
    train = load_example("train")
    classifier = load_example("shape_classifier")

    def draw(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return train.draw_shapes(n, g, return_labels=True)

    torch.set_num_threads(1)
    model = classifier.train_classifier(draw, steps=150, seed=0)
    images, labels = draw(256, torch.Generator().manual_seed(1))
    assert classifier.accuracy(model, images, labels) > 0.8
    real = classifier.shape_scores(model, images, threshold=0.0)
    assert real["recognised"] == 1.0 and real["balance"] > 0.9
    discs = classifier.shape_scores(model, images[labels == 0], threshold=0.0)
    assert discs["balance"] < 0.5 and discs["share_disc"] > 0.8


def test_train_folder_data(tmp_path: Path) -> None:
    """``--data DIR`` reads a folder of images of any size and mode."""
    from PIL import Image

    train = load_example("train")
    data = tmp_path / "images"
    (data / "sub").mkdir(parents=True)
    for i, (size, mode) in enumerate([((40, 30), "RGB"), ((33, 50), "L"), ((64, 64), "RGBA")]):
        Image.new(mode, size, color=(40 * i + 20,) * len(mode)).save(data / ("sub" if i else "") / f"{i}.png")
    images = train.load_folder(data)
    assert images.shape == (3, 3, 32, 32)
    assert images.min() >= -1 and images.max() <= 1


def test_mixture2d_smoke(tmp_path: Path) -> None:
    mixture2d = load_example("mixture2d")
    out = tmp_path / "mixture2d"
    returned = mixture2d.main(["--smoke", "--out", str(out), "--no-progress"])
    assert_png(out / "scatter.png")
    saved = json.loads((out / "results.json").read_text())
    assert returned == saved
    runs = saved["runs"]
    expected = [(c, d, 0) for c in mixture2d.CONFIGS for d in ("ring", "grid")]
    assert [(r["config"], r["dataset"], r["seed"]) for r in runs] == expected
    for r in runs:
        where = f"{r['dataset']}/{r['config']}"
        assert r["num_modes"] == {"ring": 8, "grid": 25}[r["dataset"]]
        assert 0 <= r["modes"] <= r["num_modes"], where
        assert_finite(r["high_quality"], f"{where} high_quality")
        assert 0 <= r["high_quality"] <= 100
        assert 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1
        assert r["history"][-1]["modes"] == r["modes"] and r["steps"] == 20
    # One seed: the summary is the run itself.
    for r in runs:
        e = saved["summary"][r["dataset"]][r["config"]]
        assert e["seeds"] == [0] and e["num_seeds"] == 1
        assert e["modes"] == {"median": r["modes"], "min": r["modes"], "max": r["modes"]}
        assert e["high_quality"]["median"] == r["high_quality"] and e["cpu_seconds"] == r["cpu_seconds"]
    table = (out / "results.md").read_text()
    assert table.startswith("| configuration | seeds |") and all(
        f"| {c} | 1 |" in table for c in mixture2d.CONFIGS
    )
    # The scatter plot's samples: every configuration and dataset's (lowest) seed, plain tensors.
    samples = torch.load(out / "samples.pt", weights_only=True)
    assert set(samples) == {f"{d}/{c}/0" for c, d, _ in expected}
    assert all(pts.shape == (500, 2) and pts.dtype == torch.float32 for pts in samples.values())


MIXTURE2D_SUBSET = ["--smoke", "--no-progress", "--configs", "gan,r1-sharpen"]


@pytest.fixture(scope="module")
def mixture2d_seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Smoke runs of two configurations: seeds 0, 1 and 2 together, and seed 0 and seeds 1, 2 in folders of their own."""
    mixture2d = load_example("mixture2d")
    root = tmp_path_factory.mktemp("mixture2d_seeds")
    folders = {"all": "0,1,2", "seed0": "0", "seed12": "1,2"}
    for name, seeds in folders.items():
        mixture2d.main([*MIXTURE2D_SUBSET, "--seeds", seeds, "--out", str(root / name)])
    return {name: root / name for name in folders}


def test_mixture2d_seeds_summary(mixture2d_seeds: dict[str, Path]) -> None:
    """Three runs per configuration and dataset; the summary's statistics are those of the runs."""
    import statistics

    saved = json.loads((mixture2d_seeds["all"] / "results.json").read_text())
    runs = saved["runs"]
    keys = [(r["config"], r["dataset"], r["seed"]) for r in runs]
    assert sorted(keys) == sorted(
        (c, d, s) for c in ("gan", "r1-sharpen") for d in ("ring", "grid") for s in (0, 1, 2)
    )
    table = (mixture2d_seeds["all"] / "results.md").read_text()
    for c in ("gan", "r1-sharpen"):
        for d in ("ring", "grid"):
            chosen = [r for r in runs if (r["config"], r["dataset"]) == (c, d)]
            e = saved["summary"][d][c]
            assert e["seeds"] == [0, 1, 2] and e["num_seeds"] == 3
            for key in ("modes", "high_quality"):
                values = [r[key] for r in chosen]
                assert e[key] == {"median": statistics.median(values), "min": min(values), "max": max(values)}
            met = [r["modes"] == r["num_modes"] and r["high_quality"] >= 95 for r in chosen]
            assert e["target_met"] == sum(met)
            assert e["cpu_seconds"] == statistics.median(r["cpu_seconds"] for r in chosen)
        row = next(line for line in table.splitlines() if line.startswith(f"| {c} |"))
        ring, grid = saved["summary"]["ring"][c], saved["summary"]["grid"][c]
        assert f"| {ring['target_met']}/3, {grid['target_met']}/3 |" in row
        q = grid["high_quality"]
        cell = (
            f"{q['median']:.2f}%"
            if q["min"] == q["max"]
            else f"{q['median']:.2f}% [{q['min']:.2f}–{q['max']:.2f}]"
        )
        assert f"| {cell} |" in row
    # Seed 0 of the three-seed run is the run of seed 0 alone (each run seeds itself).
    alone = json.loads((mixture2d_seeds["seed0"] / "results.json").read_text())["runs"]
    timing = ("seconds", "cpu_seconds")
    strip = [{k: v for k, v in r.items() if k not in timing} for r in alone]
    assert strip == [{k: v for k, v in r.items() if k not in timing} for r in runs if r["seed"] == 0]


def test_mixture2d_merge(mixture2d_seeds: dict[str, Path], tmp_path: Path) -> None:
    """Merging the folders of seed 0 and of seeds 1, 2 gives the three-seed run; a conflicting duplicate is an error."""
    mixture2d = load_example("mixture2d")
    merged = mixture2d.main(
        [
            "--merge",
            str(mixture2d_seeds["seed0"]),
            str(mixture2d_seeds["seed12"]),
            "--out",
            str(tmp_path / "m"),
        ]
    )
    both = json.loads((mixture2d_seeds["all"] / "results.json").read_text())

    def untimed(summary: dict[str, Any]) -> dict[str, Any]:
        return {
            d: {c: {k: v for k, v in e.items() if k != "cpu_seconds"} for c, e in per.items()}
            for d, per in summary.items()
        }

    assert untimed(merged["summary"]) == untimed(both["summary"])
    assert merged["settings"] == both["settings"]
    assert json.loads((tmp_path / "m" / "results.json").read_text()) == merged
    assert_png(tmp_path / "m" / "scatter.png")
    samples = torch.load(tmp_path / "m" / "samples.pt", weights_only=True)
    assert set(samples) == {f"{d}/{c}/0" for c in ("gan", "r1-sharpen") for d in ("ring", "grid")}
    # The same folder twice: its runs are identical, so they count once.
    again = mixture2d.main(
        ["--merge", str(mixture2d_seeds["seed0"])] * 2 + ["--out", str(tmp_path / "again")]
    )
    assert len(again["runs"]) == 4
    # A copy of seed 0's folder whose ring run of "gan" has other numbers.
    changed = tmp_path / "changed"
    changed.mkdir()
    saved = json.loads((mixture2d_seeds["seed0"] / "results.json").read_text())
    run = next(r for r in saved["runs"] if (r["config"], r["dataset"]) == ("gan", "ring"))
    run["high_quality"] += 1.0
    (changed / "results.json").write_text(json.dumps(saved))
    with pytest.raises(
        SystemExit, match=r"configuration 'gan' on 'ring' with seed 0 is in .* with different results"
    ):
        mixture2d.main(["--merge", str(mixture2d_seeds["all"]), str(changed), "--out", str(tmp_path / "bad")])


def test_mixture2d_table_cells() -> None:
    """Cells are "median [min–max]", the value alone where the seeds agree; an even count's median of modes
    may fall halfway; "target met" counts the seeds covering every mode at >= 95% high-quality samples."""
    mixture2d = load_example("mixture2d")

    def run(dataset: str, seed: int, modes: int, hq: float, cpu: float) -> dict[str, Any]:
        num_modes = {"ring": 8, "grid": 25}[dataset]
        return {"config": "r1", "dataset": dataset, "seed": seed, "modes": modes, "num_modes": num_modes,
                "high_quality": hq, "cpu_seconds": cpu}  # fmt: skip

    runs = [
        run("ring", 0, 8, 96.0, 70.0),
        run("ring", 1, 8, 97.0, 80.0),
        run("ring", 2, 8, 95.5, 90.0),
        run("ring", 3, 8, 94.0, 100.0),
        run("grid", 0, 25, 96.8, 200.0),
        run("grid", 1, 24, 93.6, 210.0),
        run("grid", 2, 25, 96.6, 230.0),
    ]
    summary = mixture2d.summarise(runs)
    ring, grid = summary["ring"]["r1"], summary["grid"]["r1"]
    assert ring["high_quality"] == {"median": 95.75, "min": 94.0, "max": 97.0}
    assert ring["target_met"] == 3 and ring["median_meets_target"] and ring["cpu_seconds"] == 85.0
    assert grid["modes"] == {"median": 25, "min": 24, "max": 25} and grid["target_met"] == 2
    assert grid["median_meets_target"]
    row = mixture2d.markdown_table(summary).splitlines()[2]
    assert (
        row
        == "| r1 | 4, 3 | 8 | 95.75% [94.00–97.00] | 25 [24–25] | 96.60% [93.60–96.80] | 3/4, 2/3 | 85 s + 210 s |"
    )
    summary = mixture2d.summarise(
        [*runs[:4], run("grid", 0, 24, 96.8, 200.0), run("grid", 1, 25, 96.0, 220.0)]
    )
    assert summary["grid"]["r1"]["modes"]["median"] == 24.5
    assert not summary["grid"]["r1"]["median_meets_target"]
    assert "| 24.5 [24–25] | 96.40% [96.00–96.80] | 3/4, 1/2 |" in mixture2d.markdown_table(summary)
    # Each median alone would pass (25 modes, 96.0%), but two seeds of three miss: not met.
    summary = mixture2d.summarise(
        [run("grid", 0, 25, 94.0, 200.0), run("grid", 1, 24, 97.0, 200.0), run("grid", 2, 25, 96.0, 200.0)]
    )
    e = summary["grid"]["r1"]
    assert e["modes"]["median"] == 25 and e["high_quality"]["median"] == 96.0
    assert e["target_met"] == 1 and not e["median_meets_target"]
    assert "| 94.96% |" in mixture2d.markdown_table(mixture2d.summarise([run("grid", 0, 25, 94.96, 200.0)]))


def test_mixture2d_metrics_are_right() -> None:
    """Samples on every mode centre are all high-quality and cover every mode; far samples cover none."""
    mixture2d = load_example("mixture2d")
    ring = mixture2d.make_mixture("ring")
    perfect = mixture2d.mode_metrics(ring.centers.repeat(100, 1), ring)
    assert perfect == {"modes": 8, "num_modes": 8, "high_quality": 100.0}
    off = mixture2d.mode_metrics(ring.centers.repeat(100, 1) * 1.1, ring)  # 0.2 from each centre: > 3σ
    assert off["modes"] == 0 and off["high_quality"] == 0.0
    half = torch.cat([ring.centers[:4].repeat(100, 1), torch.zeros(400, 2)])
    assert mixture2d.mode_metrics(half, ring) == {"modes": 4, "num_modes": 8, "high_quality": 50.0}


def test_pix2pixhd_mini_smoke(tmp_path: Path) -> None:
    pytest.importorskip("skimage")
    p2p = load_example("pix2pixhd_mini")
    out = tmp_path / "p2p"
    returned = p2p.main(["--smoke", "--out", str(out), "--no-progress"])
    assert_png(out / "comparison.png")
    metrics = json.loads((out / "metrics.json").read_text())
    assert returned == metrics
    assert metrics["test_crops"] > 0
    assert_finite(metrics["grayscale"]["l1"], "grayscale l1")
    assert_finite(metrics["grayscale"]["psnr"], "grayscale psnr")
    runs = {r["variant"]: r for r in metrics["runs"]}
    assert [(r["variant"], r["seed"]) for r in metrics["runs"]] == [("gan_only", 0), ("full", 0)]
    for name, r in runs.items():
        assert_finite(r["l1"], f"{name} l1")
        assert_finite(r["psnr"], f"{name} psnr")
        e = metrics["summary"][name]
        assert e["seeds"] == [0] and e["l1"] == {"median": r["l1"], "min": r["l1"], "max": r["l1"]}
    assert {"g_fm", "g_vgg"} <= set(runs["full"]["final_losses"])
    assert "g_fm" not in runs["gan_only"]["final_losses"]
    figure = torch.load(out / "comparison.pt", weights_only=True)
    assert set(figure) == {"target", "gan_only/0", "full/0"}
    assert all(t.shape == (16, 3, 32, 32) for t in figure.values())
    table = (out / "results.md").read_text()
    assert table.startswith("| variant | seeds |") and "| full | 1 |" in table


def test_pix2pixhd_mini_seeds_and_merge(tmp_path: Path) -> None:
    """Three seeds: the summary is the runs' median, min and max; the folders of seed 0 and of seeds 1, 2
    merge into the three-seed run (every run seeds itself); a conflicting duplicate is an error."""
    import statistics

    pytest.importorskip("skimage")
    p2p = load_example("pix2pixhd_mini")
    common = ["--smoke", "--no-progress", "--variants", "gan_only", "--threads", "1"]
    together = p2p.main([*common, "--seeds", "0,1,2", "--out", str(tmp_path / "all")])
    assert [(r["variant"], r["seed"]) for r in together["runs"]] == [
        ("gan_only", 0),
        ("gan_only", 1),
        ("gan_only", 2),
    ]
    e = together["summary"]["gan_only"]
    assert e["seeds"] == [0, 1, 2] and e["num_seeds"] == 3
    for key in ("l1", "psnr"):
        values = [r[key] for r in together["runs"]]
        assert len(set(values)) == 3
        assert e[key] == {"median": statistics.median(values), "min": min(values), "max": max(values)}
    row = next(
        line for line in (tmp_path / "all" / "results.md").read_text().splitlines() if "gan_only" in line
    )
    assert f"{e['l1']['median']:.4f} [{e['l1']['min']:.4f}–{e['l1']['max']:.4f}]" in row

    for seeds in ("0", "1,2"):
        p2p.main([*common, "--seeds", seeds, "--out", str(tmp_path / f"seed{seeds.replace(',', '')}")])
    merged = p2p.main(
        ["--merge", str(tmp_path / "seed0"), str(tmp_path / "seed12"), "--out", str(tmp_path / "m")]
    )
    timing = ("seconds", "cpu_seconds")
    assert [{k: v for k, v in r.items() if k not in timing} for r in merged["runs"]] == [
        {k: v for k, v in r.items() if k not in timing} for r in together["runs"]
    ]
    assert {k: v for k, v in merged["summary"]["gan_only"].items() if k != "cpu_seconds"} == {
        k: v for k, v in e.items() if k != "cpu_seconds"
    }
    assert merged["grayscale"] == together["grayscale"]
    assert_png(tmp_path / "m" / "comparison.png")
    assert set(torch.load(tmp_path / "m" / "comparison.pt", weights_only=True)) == {"target", "gan_only/0"}

    saved = json.loads((tmp_path / "seed12" / "metrics.json").read_text())
    saved["runs"][0]["l1"] *= 1.5
    (tmp_path / "seed12" / "metrics.json").write_text(json.dumps(saved))
    with pytest.raises(SystemExit, match=r"variant 'gan_only' with seed 1 is in .* with different results"):
        p2p.main(["--merge", str(tmp_path / "all"), str(tmp_path / "seed12"), "--out", str(tmp_path / "bad")])


def test_limited_data_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    limited = load_example("limited_data")
    out = tmp_path / "limited"
    figure = tmp_path / "assets" / "figure.png"
    summary = limited.main(
        ["--smoke", "--no-progress", "--sizes", "200", "--out", str(out), "--figure", str(figure)]
    )
    # Without the progress bar, every evaluation prints a line (what a long run's log shows).
    printed = capsys.readouterr().out
    assert re.search(r"200 images, +ada, seed 0, step 4: FID [0-9.]+, r_t -?[0-9.]+, p [0-9.]+", printed)
    assert printed.count("diffaugment, seed 0, step ") == 2
    assert_png(out / "limited_data.png")
    assert_png(figure)
    for augment in ("none", "diffaugment", "ada"):
        assert_png(out / f"samples_200_{augment}_seed0.png")
    saved = json.loads((out / "results.json").read_text())
    runs = saved["runs"]
    assert [(r["size"], r["augment"]) for r in runs] == [(200, a) for a in ("none", "diffaugment", "ada")]
    for r in runs:
        steps = [e["step"] for e in r["curve"]]
        assert steps == [0, 2, 4]
        for e in r["curve"]:
            assert_finite(e["fid"], "fid")
            assert_finite(e["kid"], "kid")
            assert e["fid"] >= 0
        for e in r["curve"][1:]:
            assert -1 <= e["r_t"] <= 1  # the mean sign of D's logits on reals
        assert r["best_fid"] == min(e["fid"] for e in r["curve"][1:])
        # ADA logs its probability, moved by its controller from 0.5 in steps of n / (1000 speed_kimg).
        assert (r["final_p"] is None) == (r["augment"] != "ada")
    p = runs[2]["curve"][-1]["p"]
    assert 0 <= p <= 1 and p != 0.5
    assert summary["200"]["none"]["ratio_to_none"] == 1.0
    table = (out / "results.md").read_text()
    assert table.startswith("| images | augmentation |") and "| 200 | ada | 1 |" in table
    assert math.isclose(
        summary["200"]["ada"]["ratio_to_none"], runs[2]["best_fid"] / runs[0]["best_fid"], rel_tol=1e-12
    )


def test_limited_data_merge(tmp_path: Path) -> None:
    """Two folders merged are the run of both configurations at once; a conflicting duplicate is an error."""
    limited = load_example("limited_data")
    common = ["--smoke", "--no-progress", "--sizes", "200"]
    folders = {}
    for name, augment in (("a", "none"), ("b", "diffaugment"), ("ab", "none,diffaugment")):
        folders[name] = tmp_path / name
        limited.main([*common, "--augment", augment, "--out", str(folders[name])])
    merged = limited.main(["--merge", str(folders["a"]), str(folders["b"]), "--out", str(tmp_path / "m")])
    both = json.loads((folders["ab"] / "results.json").read_text())
    assert merged == both["summary"]
    assert merged["200"]["diffaugment"]["ratio_to_none"] == (
        both["runs"][1]["best_fid"] / both["runs"][0]["best_fid"]
    )
    assert_png(tmp_path / "m" / "limited_data.png")
    saved = json.loads((folders["a"] / "results.json").read_text())
    saved["runs"][0]["best_fid"] += 1.0
    (folders["b"] / "results.json").write_text(json.dumps(saved))
    with pytest.raises(SystemExit, match=r"200 images, none, seed 0 is in .* with different results"):
        limited.main(["--merge", str(folders["a"]), str(folders["b"]), "--out", str(tmp_path / "x")])


def test_seed_spread(tmp_path: Path) -> None:
    """On train.py's own outputs, each cell is the median and range of a measure at a step, over the seeds."""
    import statistics

    train, spread = load_example("train"), load_example("seed_spread")
    folders = [tmp_path / f"seed{seed}" for seed in (0, 1, 2)]
    train.main(["--smoke", "--seed", "0", "--out", str(folders[0]), "--no-progress"])
    # Seeds 1 and 2: the same file with its seed and FIDs changed (a smoke run each would triple the time).
    for seed, scale in ((1, 0.5), (2, 3.0)):
        saved = json.loads((folders[0] / "metrics.json").read_text())
        saved["settings"]["seed"] = seed
        for e in saved["evals"]:
            e["fid"] *= scale
        folders[seed].mkdir()
        (folders[seed] / "metrics.json").write_text(json.dumps(saved))
    runs = [json.loads((f / "metrics.json").read_text()) for f in folders]
    text = spread.main([str(f) for f in folders])
    step = runs[0]["final"]["step"]
    fids = [next(e["fid"] for e in r["evals"] if e["step"] == step) for r in runs]
    assert len(set(fids)) == 3  # three seeds, three results
    cell = f"{statistics.median(fids):.1f} [{min(fids):.1f}–{max(fids):.1f}]"
    row = next(line for line in text.splitlines() if line.startswith("| `fid` |"))
    assert row.split(" | ")[-2] == cell
    assert row.endswith(f" | {runs[0]['real_baseline']['fid']:.1f} |")
    other = json.loads((folders[2] / "metrics.json").read_text())
    other["settings"]["steps"] += 1
    (folders[2] / "metrics.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit, match=r"differs from .* in more than the seed: steps"):
        spread.main([str(f) for f in folders])


# ----------------------------------------------------------------------------------------------- docs
# Blocks that need files (a weights file named by its path), a network or a slow CPU compile are shown in the
# docs but not run here (comments are ignored: a comment may mention weights="imagenet"). benchmarks.md belongs
# to benchmarks/.
SKIP_DOCS_BLOCK = re.compile(
    r"torch\.load\(|torch\.compile\(|weights=\"imagenet\"|load_stylegan2_ada_pkl\(|load_rosinality_checkpoint\("
    r"|\.(?:pth|pkl|pt)[\"']|lpips\.__file__"
)
DOC_BLOCKS = [
    pytest.param(path, i, code, id=f"{path.relative_to(DOCS)}:{i}")
    for path in sorted(DOCS.rglob("*.md"))
    if path.name != "benchmarks.md"
    for i, code in enumerate(re.findall(r"^```python\n(.*?)^```", path.read_text(), re.S | re.M))
    if not SKIP_DOCS_BLOCK.search(re.sub(r"#.*", "", code))
]


@pytest.mark.filterwarnings("ignore:VGG19 is randomly initialised")  # the docs say to pass real weights
@pytest.mark.parametrize(("path", "index", "code"), DOC_BLOCKS)
def test_docs_code_block_runs(path: Path, index: int, code: str) -> None:
    exec(compile(code, f"{path.name}[{index}]", "exec"), {"__name__": "docs_example"})
