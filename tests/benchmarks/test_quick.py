"""Smoke test of the benchmark runner: a tiny --quick run in-process, the JSON schema, and the measuring tools.

No timing is asserted (timings depend on the machine); saved bytes and FLOPs are exact and are.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.composed import style_discriminator  # noqa: E402
from benchmarks.counting import count_flops, saved_bytes  # noqa: E402
from benchmarks.dispatch import DIRECT, tensors  # noqa: E402
from benchmarks.harness import quantile  # noqa: E402
from benchmarks.ops import OPS  # noqa: E402
from benchmarks.plain import msggan, pix2pixhd  # noqa: E402
from benchmarks.plain import stylegan2 as sg2  # noqa: E402
from benchmarks.runner import SCHEMA, main, matches  # noqa: E402
from benchmarks.sink import partial_path  # noqa: E402
from benchmarks.tables import size_label  # noqa: E402
from benchmarks.targets import Row  # noqa: E402
from helpers import assert_close  # noqa: E402

import ganblocks  # noqa: E402

STATUSES = {"ok", "skipped", "error", "timed_out"}
TARGET_STATUSES = {"met", "missed", "within noise", "not measurable on this device", "not measured"}
RECORD_KEYS = {
    "id",
    "area",
    "case",
    "params",
    "mode",
    "provider",
    "status",
    "reason",
    "time_ms",
    "speedup_vs_plain",
    "peak_memory_bytes",
    "saved_bytes",
    "saved_bytes_activations",
    "saved_tensors",
    "param_grad_bytes",
    "flops",
    "io_bytes",
    "bandwidth_gbs",
    "copy_bandwidth_gbs",
    "bandwidth_fraction_of_copy",
}
TIME_KEYS = {"median", "p20", "p80", "min", "reps", "first_call_s", "timed_out"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    threads = torch.get_num_threads()
    rc = main(
        [
            "--device",
            "cpu",
            "--quick",
            "--filter",
            "ops/bias_act[",
            "--filter",
            "dispatch/pixel_norm",
            "--filter",
            "layers/equal_linear",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert torch.get_num_threads() == threads, "the runner must restore the thread count"
    assert not partial_path(out).exists(), "the partial results file goes once the whole JSON is written"
    return json.loads(out.read_text()), out


def test_meta(quick_run: tuple[dict, Path]) -> None:
    doc, _ = quick_run
    assert doc["schema"] == SCHEMA
    meta = doc["meta"]
    assert meta["device"] == "cpu" and meta["quick"] is True
    assert meta["filter"] == ["ops/bias_act[", "dispatch/pixel_norm", "layers/equal_linear"]
    assert meta["case_timeout_s"] == 120.0
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["versions"]["ganblocks"]
    assert "triton" in meta["versions"]
    assert meta["machine"]["cpu"] and meta["machine"]["cpu_count"] >= 1
    assert meta["gpu"] is None
    assert meta["allocator"] == "the C library's defaults"  # a quick run leaves malloc as it is
    assert set(meta["git"]) == {"commit", "dirty"}
    assert meta["date"][:2] == "20"


def test_records(quick_run: tuple[dict, Path]) -> None:
    doc, _ = quick_run
    results = doc["results"]
    cases = {r["case"] for r in results}
    assert cases == {"bias_act", "pixel_norm", "equal_linear"}, cases
    modes = {r["mode"] for r in results if r["area"] == "ops"}
    assert modes == {"forward", "backward", "forward+backward", "double_backward"}
    for r in results:
        assert set(r) == RECORD_KEYS, set(r) ^ RECORD_KEYS
        assert r["status"] in STATUSES
        if r["status"] != "ok":
            assert r["reason"], r
            assert r["time_ms"] is None
            continue
        t = r["time_ms"]
        assert set(t) == TIME_KEYS
        assert t["reps"] >= 3 and t["timed_out"] is False
        assert t["min"] <= t["p20"] <= t["median"] <= t["p80"]
    ops = [r for r in results if r["area"] == "ops"]
    by_provider = {(r["mode"], r["provider"]): r for r in ops}
    for mode in ("forward", "backward", "forward+backward", "double_backward"):
        for provider in ("ganblocks", "reference", "plain"):
            assert by_provider[(mode, provider)]["status"] == "ok", by_provider[(mode, provider)]
        assert by_provider[(mode, "plain")]["speedup_vs_plain"] == 1.0
        # both compiled providers are skipped in --quick on CPU, with the reason recorded
        for provider in ("compile", "compile(ganblocks)"):
            assert by_provider[(mode, provider)]["status"] == "skipped"
            assert "quick" in by_provider[(mode, provider)]["reason"]
    # bias_act on (4, 8, 16, 16) float32 with lrelu saves one input-sized tensor in every formulation
    for provider in ("ganblocks", "reference", "plain"):
        rec = by_provider[("forward", provider)]
        assert rec["saved_bytes_activations"] == 4 * 8 * 16 * 16 * 4
        assert rec["flops"] == 0
        assert rec["io_bytes"] == 2 * 4 * 8 * 16 * 16 * 4
        # compared with a copy of the op's own input (same size and dtype), measured in this case
        assert rec["copy_bandwidth_gbs"] > 0
        assert rec["bandwidth_fraction_of_copy"] == pytest.approx(
            rec["bandwidth_gbs"] / rec["copy_bandwidth_gbs"], rel=0.01, abs=1e-3
        )
        assert rec["param_grad_bytes"] is None  # an op case has no parameters
    # Parameter gradients: EqualLinear(512, 512) produces a weight and a bias gradient per step.
    layer = {(r["mode"], r["provider"]): r for r in results if r["case"] == "equal_linear"}
    for provider in ("ganblocks", "reference", "plain"):
        assert layer[("forward", provider)]["param_grad_bytes"] is None
        for mode in ("backward", "forward+backward", "double_backward"):
            assert layer[(mode, provider)]["param_grad_bytes"] == (512 * 512 + 512) * 4
    dispatch = [r for r in results if r["area"] == "dispatch"]
    assert {r["provider"] for r in dispatch} == {"public(torch)", "public(auto)", "reference-direct"}
    assert all(r["status"] == "ok" and r["mode"] == "call" for r in dispatch)
    # Each op is called on inputs without and with requires_grad (autograd recording, as in training).
    assert {r["params"]["autograd"] for r in dispatch} == {False, True}


def test_targets_and_markdown(quick_run: tuple[dict, Path]) -> None:
    doc, out = quick_run
    targets = doc["targets"]
    assert {t["issue"] for t in targets} == {2, 3, 4}
    for t in targets:
        assert t["status"] in TARGET_STATUSES
        if t["device"] == "cuda":
            assert t["status"] == "not measurable on this device"
    by_key = {t["key"]: t for t in targets}
    assert len(by_key["dispatch-overhead"]["rows"]) == 2, "public(torch) and public(auto), without autograd"
    assert len(by_key["autograd-overhead"]["rows"]) == 2, "the same two, with autograd recording"
    assert "≤ 10 µs" in by_key["autograd-overhead"]["target"]
    assert by_key["multiscale-cpu"]["status"] == "not measured"  # filtered out
    assert len(by_key["ops-reference-vs-plain-cpu"]["rows"]) == 1
    md = out.with_suffix(".md").read_text()
    assert "## Speed targets" in md and "bias_act" in md and "## Dispatch overhead" in md
    assert "compile(ganblocks) ms" in md and "parameter gradients MiB" in md
    # Both dispatch rows of pixel_norm, told apart.
    assert "\n| pixel_norm | " in md and "\n| pixel_norm (autograd) | " in md


def test_filter_matching() -> None:
    case_id = "ops/bias_act[shape=4x8x16x16,dtype=float32]"
    assert matches(case_id, [])
    assert matches(case_id, ["bias_act"])
    assert matches(case_id, ["ops/*float32*"])
    assert matches(case_id, ["ops/bias_act[shape=4x8"])
    assert matches(case_id, ["bias_act[*16x16*"])
    assert matches(case_id, ["nope", "ops/bias"])
    assert not matches(case_id, ["pixel_norm"])
    assert not matches(case_id, ["layers/*"])


def test_quantile_and_row_status() -> None:
    assert quantile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert quantile([0.0, 10.0], 0.2) == pytest.approx(2.0)
    assert Row("c", 1.1, 1.0, 1.2, 1.0).status == "met"
    assert Row("c", 0.9, 0.8, 1.05, 1.0).status == "within noise"
    assert Row("c", 0.9, 0.8, 0.95, 1.0).status == "missed"
    assert Row("c", 6.0, 4.0, 7.0, 5.0, higher_is_better=False).status == "within noise"
    assert Row("c", 6.0, 5.5, 7.0, 5.0, higher_is_better=False).status == "missed"
    assert "short by 10.0%" in Row("c", 0.9, 0.8, 0.95, 1.0).describe()
    assert "0.996×" in Row("c", 0.996, 0.9, 1.1, 1.0).describe()
    assert (
        "short by 1.00 µs (20%)" in Row("c", 6.0, 6.0, 6.0, 5.0, higher_is_better=False, unit="µs").describe()
    )


def test_saved_bytes_and_flops_are_exact() -> None:
    x = torch.randn(10, requires_grad=True)
    w = torch.randn(10, 3, requires_grad=True)
    # exp saves its output (40 bytes), matmul saves both operands (inputs: excluded from activations)
    saved = saved_bytes(lambda: x.exp() @ w, exclude=[x, w])
    assert saved.activations == 40
    assert saved.total == 40 + 120
    a, b = torch.randn(4, 5), torch.randn(5, 6)
    assert count_flops(lambda: None, lambda _: a @ b) == 2 * 4 * 5 * 6


def test_size_label() -> None:
    label = size_label(
        {"shape": [4, 3, 64, 64], "dtype": "bfloat16", "layout": "channels_last", "combine": "simple"}
    )
    assert label == "4×3×64×64 bf16 channels_last combine=simple"


# The plain formulations must compute what the ganblocks blocks compute, or the comparison means nothing.


@pytest.mark.parametrize(
    "name", ["bias_act", "pixel_norm", "instance_norm_act", "adain", "inject_noise", "minibatch_stddev"]
)
def test_plain_ops_match_ganblocks(name: str) -> None:
    spec = OPS[name]
    made = spec.make((4, 6, 5, 7), torch.Generator().manual_seed(0))
    t = {k: v.double() for k, v in made.items()}
    expected = spec.ganblocks(t, "torch")
    actual = spec.plain(**{k: v.clone() for k, v in t.items()})
    assert_close(actual, expected)


def test_plain_pix2pixhd_matches_multiscale_discriminator() -> None:
    plain = pix2pixhd.MultiscaleDiscriminator(3, num_d=3).double()
    ours = ganblocks.MultiScaleDiscriminator(3, num_scales=3, return_features=True).double()
    ours.load_pix2pixhd_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 37, 29, dtype=torch.float64)
    expected = ours(x).to_nested()
    actual = plain(x)
    assert [len(s) for s in actual] == [len(s) for s in expected]
    for a_scale, e_scale in zip(actual, expected):
        for a, e in zip(a_scale, e_scale):
            assert_close(a, e)
    assert sum(p.numel() for p in plain.parameters()) == 8_294_211


def test_plain_networks_have_the_same_parameters() -> None:
    def count(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    for combine in ("simple", "lin_cat", "cat_lin"):
        ours = ganblocks.MSGDiscriminator(
            3, resolution=32, combine=combine, base_channels=16, max_channels=64
        )
        assert count(ours) == count(
            msggan.Discriminator(32, 3, combine=combine, channel_base=512, max_channels=64)
        )
    assert count(style_discriminator(32)) == count(sg2.StyleDiscriminator(32))


def test_plain_vgg_matches_vgg_loss() -> None:
    features = pix2pixhd.vgg19_features().double()
    plain = pix2pixhd.VGGLoss(features)
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    ours = ganblocks.VGGLoss.pix2pixhd(weights=state).double()
    x, y = torch.randn(2, 1, 3, 32, 32, dtype=torch.float64)
    assert_close(plain(x, y), ours(x, y))


# The dispatch zero point writes out the reference path's arithmetic: it must compute what backend="torch" does.


@pytest.mark.parametrize("name", sorted(DIRECT))
@pytest.mark.parametrize("requires_grad", [False, True])
def test_dispatch_direct_matches_public_torch(name: str, requires_grad: bool) -> None:
    t = tensors(name, requires_grad=requires_grad)
    assert any(v.requires_grad for v in t.values()) == requires_grad
    assert_close(DIRECT[name](t), OPS[name].ganblocks(t, "torch"))
