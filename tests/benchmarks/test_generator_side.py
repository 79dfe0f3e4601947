"""The generator side's benchmark rows compare like with like: each plain formulation computes what the
ganblocks block computes (float64, tiny inputs), and the quick rows run with every metric recorded.

The plain formulations (``benchmarks/plain``) are written from the published code and import nothing from
ganblocks, so these are independent checks of both sides.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import generators, layers  # noqa: E402
from benchmarks import ops as bench_ops  # noqa: E402
from benchmarks.config import Config  # noqa: E402
from benchmarks.harness import Budget  # noqa: E402
from benchmarks.measure import run_case  # noqa: E402
from benchmarks.ops import GENERATOR_OPS, QUICK_POOL, OpSpec  # noqa: E402
from benchmarks.plain import pix2pixhd  # noqa: E402
from benchmarks.plain import stylegan2 as sg2  # noqa: E402
from helpers import assert_close  # noqa: E402

import ganblocks  # noqa: E402
import ganblocks.functional as gf  # noqa: E402

SPECS = {**GENERATOR_OPS, QUICK_POOL.key: QUICK_POOL}


def _double(t: dict[str, torch.Tensor], spec: OpSpec) -> dict[str, torch.Tensor]:
    # The filter stays float32 as StyleGAN2-ADA requires; integer instance maps stay integer.
    return {k: v.double() if v.is_floating_point() and k not in spec.keep_dtype else v for k, v in t.items()}


@pytest.mark.parametrize("key", sorted(SPECS))
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (3, 2, 5, 7)], ids=["even", "odd"])
def test_plain_generator_ops_match_ganblocks(key: str, shape: tuple[int, ...]) -> None:
    spec = SPECS[key]
    t = _double(spec.make(shape, torch.Generator().manual_seed(0)), spec)
    expected = spec.ganblocks(t, "torch")
    actual = spec.plain(**{k: v.clone() for k, v in t.items()})
    assert actual.shape == expected.shape
    assert_close(actual, expected)
    # And the gradient with respect to x (the backward the rows time).
    g = torch.randn(expected.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def grad_x(call: Callable[[dict[str, torch.Tensor]], torch.Tensor]) -> torch.Tensor:
        x = t["x"].clone().requires_grad_(True)
        (gx,) = torch.autograd.grad(call({**t, "x": x}), x, g)
        return gx

    assert_close(grad_x(lambda d: spec.plain(**d)), grad_x(lambda d: spec.ganblocks(d, "torch")))


def test_upfirdn2d_specs_are_stylegan2_resampling() -> None:
    """The up/down specs are ``upsample2d`` / ``downsample2d`` with the [1, 3, 3, 1] filter (padding, gain)."""
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    for spec in GENERATOR_OPS.values():
        if spec.name != "upfirdn2d":
            continue
        params = dict(spec.params)
        f = gf.setup_filter([1, 3, 3, 1], separable=params["separable"]).double()
        resample = gf.upsample2d if "up" in params else gf.downsample2d
        assert_close(spec.ganblocks({"x": x, "f": f}, "torch"), resample(x, f, backend="torch"))
        assert sg2.setup_filter([1, 3, 3, 1], separable=params["separable"]).equal(f.float())


def test_instance_map_is_pix2pixhd_like() -> None:
    inst = bench_ops._instance_map((2, 3, 32, 32), torch.Generator().manual_seed(0), 10)
    assert inst.shape == (2, 1, 32, 32) and inst.dtype == torch.int64
    per_sample = [set(torch.unique(inst[b]).tolist()) for b in range(2)]
    assert all(len(ids) == 10 for ids in per_sample)  # every cell owns at least its own pixel
    assert per_sample[0] & per_sample[1] and per_sample[0] != per_sample[1]  # some ids shared, not all
    assert all(i // 1000 in range(24, 34) for ids in per_sample for i in ids)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("fused", [True, False])
def test_plain_modulated_conv_matches_ganblocks(up: int, fused: bool) -> None:
    plain = sg2.ModulatedConv2d(6, 5, 3, 8, upsample=up == 2, fused=fused).double()
    ours = ganblocks.ModulatedConv2d(6, 5, 3, w_dim=8, up=up).double()
    with torch.no_grad():
        # rosinality scales the weight by 1/sqrt(fan_in) before demodulating, ganblocks (like StyleGAN2-ADA)
        # does not: demodulation cancels the scale except inside rsqrt(sum + 1e-8). Storing the scaled
        # weight makes the two compute the same sums, so they agree to float64 rounding.
        ours.weight.copy_(plain.weight[0] * plain.scale)
        ours.affine.weight.copy_(plain.modulation.weight)
        assert ours.affine.bias is not None
        ours.affine.bias.copy_(plain.modulation.bias)
    x = torch.randn(3, 6, 6, 5, dtype=torch.float64)
    w = torch.randn(3, 8, dtype=torch.float64)
    expected = ours(x, w, fused_modconv=fused)
    actual = plain(x, w)
    assert actual.shape == expected.shape == (3, 5, 6 * up, 5 * up)
    assert_close(actual, expected)


def test_plain_modulated_conv_shapes_match_the_benchmarked_layers() -> None:
    for up in (1, 2):
        plain = sg2.ModulatedConv2d(16, 16, 3, 512, upsample=up == 2)
        ours = ganblocks.ModulatedConv2d(16, 16, 3, w_dim=512, up=up)
        assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in ours.parameters())


def test_plain_global_generator_matches_ganblocks() -> None:
    plain = pix2pixhd.GlobalGenerator(5, 3, ngf=4, n_downsampling=2, n_blocks=2).double()
    ours = ganblocks.GlobalGenerator(5, 3, base_channels=4, num_downsampling=2, num_blocks=2).double()
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in ours.parameters())
    ours.load_pix2pixhd_state_dict(plain.state_dict())
    x = torch.randn(2, 5, 16, 12, dtype=torch.float64)
    assert_close(plain(x), ours(x))


def test_plain_global_generator_has_pix2pixhd_parameters() -> None:
    # pix2pixHD's G1 with its option defaults (ngf 64, 4 downsamplings, 9 residual blocks) and 37 input
    # channels has the parameter count ganblocks' GlobalGenerator documents (built on the meta device).
    with torch.device("meta"):
        plain = pix2pixhd.GlobalGenerator(37, 3, ngf=64, n_downsampling=4, n_blocks=9)
    assert sum(p.numel() for p in plain.parameters()) == 182_549_891


def test_quick_generator_side_rows_run() -> None:
    """Every quick generator-side case runs on every eager provider and records time and saved bytes."""
    # One timed repetition each (the statuses and exact metrics are the point, not the timings), on one
    # thread as the runner does: two threads on a loaded machine make this ten times slower.
    budget = Budget(warmup=0, min_reps=1, max_reps=1, seconds=0.0)
    cfg = Config(torch.device("cpu"), quick=True, compile="auto", budget=budget)
    cases = [c for c in bench_ops.cases(cfg) if c.params.get("group") == "generator"]
    cases += [c for c in layers.cases(cfg) if c.name == "modulated_conv2d"]
    cases += generators.cases(cfg)
    assert {c.name for c in cases} == {
        "upfirdn2d",
        "instance_avg_pool",
        "modulated_conv2d",
        "global_generator",
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = [(case, run_case(case, cfg)) for case in cases]
    finally:
        torch.set_num_threads(threads)
    for case, records in results:
        for r in records:
            if r["provider"] in ("compile", "compile(ganblocks)"):
                assert r["status"] == "skipped", r
                continue
            if r["provider"] == "reference" and case.area == "generators":
                assert r["status"] == "skipped", r  # on CPU ganblocks (auto) is the reference path
                continue
            assert r["status"] == "ok", r
            if r["mode"] in ("forward", "forward+backward"):
                assert r["saved_bytes_activations"] is not None, r
        assert {"forward", "forward+backward"} <= {r["mode"] for r in records}
