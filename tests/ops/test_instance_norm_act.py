"""instance_norm_act and adain beyond the shared contract (``test_contract.py``): every affine kind,
activation and spatial rank against the formula, every activation on Triton, the tiled-plane kernel path,
the split-plane kernel path (the contract's Triton checks again), the third order, 3-d channels_last,
and each bad input's message."""

from __future__ import annotations

import functools
from typing import Any, Optional

import formulas
import pytest
import torch
import torch.nn.functional as F
from helpers import TRITON_DEVICE, TRITON_FLOAT64, all_orders, assert_close, requires_triton
from ops import test_contract as contract
from ops.cases import INSTANCE_NORM

from ganblocks.functional import adain, instance_norm_act
from ganblocks.layers import ACTIVATION_NAMES, Activation
from ganblocks.ops import Backend
from ganblocks.ops.instance_norm_act.launch import plan_splits

AFFINES = ["none", "channel", "sample"]


def _affine(kind: str, n: int, c: int, **kw: object) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    if kind == "none":
        return None, None
    shape = (c,) if kind == "channel" else (n, c)
    return torch.randn(shape, **kw) + 1, torch.randn(shape, **kw)  # type: ignore[call-overload]


@pytest.mark.parametrize("affine", AFFINES)
@pytest.mark.parametrize("act", ["linear", "lrelu", "tanh", "swish"])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 3, 6), (1, 2, 2, 3, 2)])
def test_reference_matches_formula(affine: str, act: Activation, shape: tuple[int, ...]) -> None:
    x = torch.randn(shape, dtype=torch.float64) * 2 + 1
    scale, bias = _affine(affine, shape[0], shape[1], dtype=torch.float64)
    y = instance_norm_act(x, scale, bias, act=act, backend="torch")
    assert_close(y, formulas.instance_norm_act(x, scale, bias, act=act))


def test_pix2pixhd_instance_norm_lrelu() -> None:
    # pix2pixHD's InstanceNorm2d(affine=False) + LeakyReLU(0.2) is act="lrelu" with gain 1.
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    expected = F.leaky_relu(F.instance_norm(x, eps=1e-5), 0.2)
    assert_close(instance_norm_act(x, act="lrelu", gain=1.0), expected)


def test_adain_matches_formula_and_instance_norm_act() -> None:
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    scale, bias = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    y = adain(x, scale, bias, eps=1e-3)
    assert_close(y, formulas.adain(x, scale, bias, eps=1e-3))
    assert torch.equal(y, instance_norm_act(x, scale, bias, eps=1e-3))


def _orders(inputs: tuple[torch.Tensor, ...], backend: Backend, **kw: Any) -> list[torch.Tensor]:
    return all_orders(functools.partial(instance_norm_act, backend=backend, **kw), inputs)


@pytest.mark.triton
@requires_triton
@pytest.mark.parametrize("act", ACTIVATION_NAMES)
def test_triton_float64_every_activation(act: Activation) -> None:
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, device=TRITON_DEVICE) * 3
    scale, bias = _affine("sample", 2, 3, dtype=torch.float64, device=TRITON_DEVICE)
    assert scale is not None and bias is not None
    out = _orders((x, scale, bias), "triton", act=act)
    ref = _orders((x, scale, bias), "torch", act=act)
    for o, r in zip(out, ref):
        torch.testing.assert_close(o, r, rtol=TRITON_FLOAT64[0], atol=TRITON_FLOAT64[1])


@pytest.mark.triton
@requires_triton
@pytest.mark.parametrize("channels_last", [False, True])
def test_triton_tiled_planes(monkeypatch: pytest.MonkeyPatch, channels_last: bool) -> None:
    """Force tiles smaller than a plane, as a GPU uses for large images, so the loop paths run."""
    from ganblocks.ops.instance_norm_act import kernels

    monkeypatch.setattr(kernels, "_launch_config", lambda hw: (4, 4))
    # A large mean: the statistics must not cancel catastrophically across tiles.
    x = torch.randn(2, 3, 5, 3, dtype=torch.float64, device=TRITON_DEVICE) + 100
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    scale, bias = _affine("channel", 2, 3, dtype=torch.float64, device=TRITON_DEVICE)
    assert scale is not None and bias is not None
    out = _orders((x, scale, bias), "triton", act="swish")
    ref = _orders((x, scale, bias), "torch", act="swish")
    for o, r in zip(out, ref):
        torch.testing.assert_close(o, r, rtol=TRITON_FLOAT64[0], atol=TRITON_FLOAT64[1])


# ------------------------------------------------------------------------------------ split planes


def test_plan_splits() -> None:
    # 4 x 3 x 1024 x 1024 on 132 SMs (4 programs each): 43 chunks of 6 tiles per plane, 516 programs.
    assert plan_splits(12, 1 << 20, 4096, 4 * 132) == (43, 6 * 4096)
    assert plan_splits(528, 1 << 20, 4096, 528) == (1, 1 << 20)  # the planes fill the GPU
    assert plan_splits(12, 4096, 4096, 528) == (1, 4096)  # one tile per plane: read once
    assert plan_splits(1, 3 * 4096 + 5, 4096, 528) == (4, 4096)  # at least a tile per chunk


class _Counting:
    def __init__(self, kernel: object, launches: list[str], name: str) -> None:
        self.kernel, self.launches, self.name = kernel, launches, name

    def __getitem__(self, grid: object) -> object:
        self.launches.append(self.name)
        return self.kernel[grid]  # type: ignore[index]


@pytest.fixture
def split_planes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Tiles of 4 elements and 16 programs to fill: small planes take the split path a GPU takes for few
    large ones. Returns the names of the kernels launched."""
    from ganblocks.ops.instance_norm_act import kernels

    monkeypatch.setattr(kernels, "_launch_config", lambda hw: (4, 4))
    monkeypatch.setattr(kernels, "target_programs", lambda x: 16)
    launches: list[str] = []
    for name in dir(kernels):
        if name.endswith("_kernel"):
            monkeypatch.setattr(kernels, name, _Counting(getattr(kernels, name), launches, name))
    return launches


# Few planes of several tiles each: (1, 2, 5, 7) is 2 planes of 9 tiles in 5 chunks (the last one short).
SPLIT_PARAMS = [
    pytest.param(case, shape, layout, dtype, id="-".join([case.id, "x".join(map(str, shape)), layout, str(dtype)[6:]]))
    for case in INSTANCE_NORM
    for shape in [(1, 2, 5, 7), *([(2, 1, 37)] if case is INSTANCE_NORM[0] else [])]
    for layout in contract._layouts(shape)
    for dtype in contract.DTYPES
]  # fmt: skip


@pytest.mark.triton
@requires_triton
@pytest.mark.parametrize(("case", "shape", "layout", "dtype"), SPLIT_PARAMS)
def test_triton_split_planes_match_reference(
    split_planes: list[str], case: object, shape: tuple[int, ...], layout: str, dtype: torch.dtype
) -> None:
    """The contract's Triton-vs-reference check (output, gradients, second order) on split planes."""
    contract.test_triton_matches_reference(case, shape, layout, dtype)  # type: ignore[arg-type]
    assert {"_instance_norm_act_stats_kernel", "_instance_norm_act_apply_kernel"} <= set(split_planes)
    assert {"_instance_norm_act_bwd_sums_kernel", "_instance_norm_act_bwd_apply_kernel"} <= set(split_planes)
    assert not {"_instance_norm_act_fwd_kernel", "_instance_norm_act_bwd_kernel"} & set(split_planes)


@pytest.mark.triton
@requires_triton
@pytest.mark.parametrize(
    ("case", "layout"),
    [pytest.param(c, layout, id=f"{c.id}-{layout}") for c, layout in [*((c, "contiguous") for c in INSTANCE_NORM[:3]), (INSTANCE_NORM[0], "channels_last")]],
)  # fmt: skip
def test_triton_split_planes_gradcheck(split_planes: list[str], case: object, layout: str) -> None:
    """gradcheck and gradgradcheck on split planes: (2, 2, 2, 3) is 4 planes of 2 tiles (adain's grad
    shape has planes of one tile)."""
    contract.test_gradcheck_and_gradgradcheck(case, layout, "triton")  # type: ignore[arg-type]
    assert "_instance_norm_act_bwd_sums_kernel" in split_planes


@pytest.mark.triton
@requires_triton
@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")  # inf - inf under the interpreter
def test_triton_split_planes_non_dense_and_nonfinite(split_planes: list[str]) -> None:
    contract.test_triton_non_dense_input_and_expanded_gradient(INSTANCE_NORM[0])
    x = torch.randn(2, 2, 5, 7, dtype=torch.float64, device=TRITON_DEVICE)
    x[0, 1, 4, 6] = float("nan")  # in the short last chunk
    x[1, 0, 0, 0] = float("inf")  # in the first chunk
    # A large mean: the chunk statistics must merge without cancellation.
    x[1, 1] += 1e4
    y = instance_norm_act(x, act="elu", backend="triton")
    ref = instance_norm_act(x, act="elu", backend="torch")
    assert torch.isnan(y[0, 1]).all() and torch.isnan(y[1, 0]).all()
    torch.testing.assert_close(y, ref, rtol=1e-9, atol=1e-9, equal_nan=True)
    assert "_instance_norm_act_apply_kernel" in split_planes


@pytest.mark.triton
@requires_triton
def test_triton_third_order() -> None:
    kw: dict[str, Any] = {"dtype": torch.float64, "device": TRITON_DEVICE}
    x0 = torch.randn(2, 2, 3, 3, **kw)
    s0 = torch.randn(2, **kw)

    def third(backend: Backend) -> tuple[torch.Tensor, ...]:
        x, s = x0.clone().requires_grad_(), s0.clone().requires_grad_()
        y = instance_norm_act(x, s, act="tanh", backend=backend)
        (gx,) = torch.autograd.grad((y**3).sum(), x, create_graph=True)
        (ggx,) = torch.autograd.grad((gx**2).sum(), x, create_graph=True)
        return torch.autograd.grad((ggx**2).sum(), (x, s))

    for o, r in zip(third("triton"), third("torch")):
        torch.testing.assert_close(o, r, rtol=TRITON_FLOAT64[0], atol=TRITON_FLOAT64[1])


def test_layouts_preserved(backend: Backend, device: torch.device) -> None:
    x = torch.randn(2, 5, 3, 4, device=device).to(memory_format=torch.channels_last)
    y = instance_norm_act(x, act="lrelu", gain=1.0, backend=backend)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, formulas.instance_norm_act(x, act="lrelu", gain=1.0), torch.float32)
    x3 = torch.randn(2, 3, 2, 3, 4, device=device).to(memory_format=torch.channels_last_3d)
    y3 = instance_norm_act(x3, backend=backend)
    assert y3.is_contiguous(memory_format=torch.channels_last_3d)
    assert_close(y3, formulas.instance_norm_act(x3), torch.float32)
    assert instance_norm_act(x.contiguous(), backend=backend).is_contiguous()


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "match"),
    [
        (torch.zeros(2, 3), {}, ValueError, r"x must have at least 3 dimensions, got shape \(2, 3\)"),
        (torch.zeros(2, 3, 4), {"scale": torch.ones(4)}, ValueError, r"scale must have shape \(C,\) = \(3,\) or \(N, C\) = \(2, 3\) .*got \(4,\)"),
        (torch.zeros(2, 3, 4), {"bias": torch.ones(3, 3)}, ValueError, r"bias must have shape .*got \(3, 3\)"),
        (torch.zeros(2, 3, 4), {"act": "gelu"}, ValueError, r"act must be one of .*got 'gelu'"),
        (torch.zeros(2, 3, 4), {"eps": -1.0}, ValueError, r"eps must be > 0, got -1.0"),
        (torch.zeros(2, 3, 4), {"eps": 0.0}, ValueError, r"eps must be > 0, got 0.0"),
        (torch.zeros(2, 3, 4), {"bias": torch.ones(3, device="meta")}, ValueError, r"bias must be on the device of x \(cpu\), got meta"),
        (torch.zeros(2, 3, 4), {"scale": torch.ones(2, 3, device="meta")}, ValueError, r"scale must be on the device of x \(cpu\), got meta"),
        (torch.zeros(2, 3, 4, dtype=torch.long), {}, TypeError, "x must be a floating-point tensor, got dtype torch.int64"),
    ],
)  # fmt: skip
def test_bad_inputs(x: torch.Tensor, kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        instance_norm_act(x, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("scale", "bias", "match"),
    [
        (torch.ones(3, 3), torch.ones(2, 3), r"scale must have shape \(N, C\) = \(2, 3\) .*got \(3, 3\)"),
        (torch.ones(2, 3), torch.ones(2, 4), r"bias must have shape \(N, C\) = \(2, 3\) .*got \(2, 4\)"),
        (torch.ones(3), torch.ones(2, 3), r"scale must have shape \(N, C\) = \(2, 3\) .*got \(3,\)"),
    ],
)
def test_adain_style_mismatch(scale: torch.Tensor, bias: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        adain(torch.zeros(2, 3, 4, 4), scale, bias)


@pytest.mark.parametrize("affine", AFFINES)
@pytest.mark.parametrize(
    ("act", "gain"), [("lrelu", None), ("lrelu", 0.7), ("relu", -1.0), ("tanh", 1.5), ("swish", None)]
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_cpu_fast_path_is_the_reference_in_every_order(
    affine: str, act: Activation, gain: Optional[float], channels_last: bool
) -> None:
    """``eager.py`` (group_norm, the folded gain, the in-place activation) against ``reference.py``: output,
    gradients and second-order gradients in float64, the layout kept, and bfloat16 rounded alike."""
    from ganblocks.ops._activations import resolve_activation
    from ganblocks.ops.instance_norm_act.eager import instance_norm_act_eager
    from ganblocks.ops.instance_norm_act.reference import instance_norm_act_reference

    x = torch.randn(2, 3, 4, 5, dtype=torch.float64) * 2 + 30
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    scale, bias = _affine(affine, 2, 3, dtype=torch.float64)
    spec, alpha, g = resolve_activation(act, None, gain)
    kw: dict[str, Any] = {"eps": 1e-5, "spec": spec, "alpha": alpha, "gain": g}
    inputs = (x,) if scale is None or bias is None else (x, scale, bias)

    def fast(t: torch.Tensor, *p: torch.Tensor) -> torch.Tensor:
        return instance_norm_act_eager(t, *(p or (None, None)), **kw)

    def ref(t: torch.Tensor, *p: torch.Tensor) -> torch.Tensor:
        return instance_norm_act_reference(t, *(p or (None, None)), **kw)

    y = instance_norm_act(x, scale, bias, act=act, gain=gain, backend="torch")
    assert (
        torch.equal(y, fast(*inputs)) and y.is_contiguous(memory_format=torch.channels_last) == channels_last
    )
    for o, r in zip(all_orders(fast, inputs), all_orders(ref, inputs)):
        assert_close(o, r)
    low = [t.bfloat16() for t in inputs]
    assert_close(fast(*low), ref(*low).double(), torch.bfloat16)
