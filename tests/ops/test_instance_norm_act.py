"""instance_norm_act and adain: numerics against an independent formula, both backends, every order."""

from __future__ import annotations

import math
from typing import Callable, Optional

import pytest
import torch
import torch.nn.functional as F
from helpers import TRITON_DEVICE, assert_close, requires_triton

from ganblocks.functional import adain
from ganblocks.functional import instance_norm_act
from ganblocks.functional import ACTIVATION_NAMES

SCALAR_ACTS: dict[str, Callable[[float], float]] = {
    "linear": lambda v: v,
    "relu": lambda v: max(v, 0.0),
    "lrelu": lambda v: v if v > 0 else 0.2 * v,
    "tanh": math.tanh,
    "swish": lambda v: v / (1 + math.exp(-v)),
}
DEFAULT_GAINS = {"relu": 2**0.5, "lrelu": 2**0.5, "swish": 2**0.5}


def formula(
    x: torch.Tensor,
    scale: Optional[torch.Tensor] = None,
    bias: Optional[torch.Tensor] = None,
    *,
    eps: float = 1e-5,
    act: str = "linear",
    gain: Optional[float] = None,
) -> torch.Tensor:
    """Instance norm + affine + activation + gain, one plane at a time with math, in float64."""
    n, c = x.shape[:2]
    g = DEFAULT_GAINS.get(act, 1.0) if gain is None else gain
    planes = x.double().reshape(n, c, -1).tolist()
    out = []
    for i in range(n):
        for j in range(c):
            plane = planes[i][j]
            mu = sum(plane) / len(plane)
            var = sum((v - mu) ** 2 for v in plane) / len(plane)
            s = 1.0 if scale is None else float(scale[j] if scale.ndim == 1 else scale[i, j])
            b = 0.0 if bias is None else float(bias[j] if bias.ndim == 1 else bias[i, j])
            out.append([g * SCALAR_ACTS[act](s * (v - mu) / math.sqrt(var + eps) + b) for v in plane])
    return torch.tensor(out, dtype=torch.float64).reshape(x.shape)


AFFINES = ["none", "channel", "sample"]


def _affine(kind: str, n: int, c: int, **kw: object) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    if kind == "none":
        return None, None
    shape = (c,) if kind == "channel" else (n, c)
    return torch.randn(shape, **kw) + 1, torch.randn(shape, **kw)  # type: ignore[call-overload]


@pytest.mark.parametrize("affine", AFFINES)
@pytest.mark.parametrize("act", ["linear", "lrelu", "tanh", "swish"])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 3, 6), (1, 2, 2, 3, 2)])
def test_reference_matches_formula(affine: str, act: str, shape: tuple[int, ...]) -> None:
    x = torch.randn(shape, dtype=torch.float64) * 2 + 1
    scale, bias = _affine(affine, shape[0], shape[1], dtype=torch.float64)
    y = instance_norm_act(x, scale, bias, act=act, backend="torch")  # type: ignore[arg-type]
    assert_close(y, formula(x, scale, bias, act=act))


def test_pix2pixhd_instance_norm_lrelu() -> None:
    # pix2pixHD's InstanceNorm2d(affine=False) + LeakyReLU(0.2) is act="lrelu" with gain 1.
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    expected = F.leaky_relu(F.instance_norm(x, eps=1e-5), 0.2)
    assert_close(instance_norm_act(x, act="lrelu", gain=1.0), expected)


def test_adain_matches_formula_and_instance_norm_act() -> None:
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    scale, bias = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    y = adain(x, scale, bias, eps=1e-3)
    assert_close(y, formula(x, scale, bias, eps=1e-3))
    assert torch.equal(y, instance_norm_act(x, scale, bias, eps=1e-3))


BACKENDS = ["torch", pytest.param("triton", marks=requires_triton)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", ["lrelu", "tanh"])
def test_gradcheck_and_gradgradcheck(backend: str, act: str) -> None:
    device = TRITON_DEVICE if backend == "triton" else "cpu"
    kw = {"dtype": torch.float64, "device": device, "requires_grad": True}
    x = torch.randn(2, 2, 2, 3, **kw)  # type: ignore[arg-type]
    scale = torch.randn(2, **kw)  # type: ignore[arg-type]
    bias = torch.randn(2, 2, **kw)  # type: ignore[arg-type]

    def fn(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return instance_norm_act(x, scale, bias, act=act, backend=backend)  # type: ignore[arg-type]

    assert torch.autograd.gradcheck(fn, (x, scale, bias))
    # Random projections only (fast_mode) on Triton: the interpreter is slow; the torch case checks in full.
    assert torch.autograd.gradgradcheck(fn, (x, scale, bias), fast_mode=backend == "triton")


@requires_triton
def test_triton_adain_gradgradcheck_channels_last() -> None:
    kw = {"dtype": torch.float64, "device": TRITON_DEVICE}
    x = torch.randn(2, 3, 2, 2, **kw).to(memory_format=torch.channels_last).requires_grad_()  # type: ignore[arg-type]
    scale = torch.randn(2, 3, **kw).requires_grad_()  # type: ignore[arg-type]
    bias = torch.randn(2, 3, **kw).requires_grad_()  # type: ignore[arg-type]

    def fn(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return adain(x, scale, bias, backend="triton")

    assert torch.autograd.gradcheck(fn, (x, scale, bias), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x, scale, bias), fast_mode=True)


def _run_all_orders(
    x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, backend: str, **kw: object
) -> list[torch.Tensor]:
    x, scale, bias = (t.detach().requires_grad_() for t in (x, scale, bias))
    y = instance_norm_act(x, scale, bias, backend=backend, **kw)  # type: ignore[arg-type]
    weight = torch.linspace(-1, 1, y.numel(), dtype=torch.float32, device=y.device).reshape(y.shape)
    gx, gs, gb = torch.autograd.grad((y.float() ** 2 * weight).sum(), (x, scale, bias), create_graph=True)
    loss = (gx.float() ** 2).sum() + (gs.float() ** 2).sum() + (gb.float() ** 2).sum()
    ggx, ggs, ggb = torch.autograd.grad(loss, (x, scale, bias))
    return [y, gx, gs, gb, ggx, ggs, ggb]


def _assert_close_to_largest(out: list[torch.Tensor], ref: list[torch.Tensor], dtype: torch.dtype) -> None:
    for o, r in zip(out, ref):
        # Gradients of a norm subtract plane sums of rounded terms, so the error of a low-precision
        # result scales with its largest entry, not with each entry: compare relative to that.
        m = r.abs().max().clamp(min=1.0)
        assert_close(o.double() / m, r / m, dtype, scale=4.0)


CASES = [
    ((1, 1, 1, 1), "channel", False),
    ((3, 5, 7, 9), "sample", False),
    ((3, 5, 7, 9), "channel", True),
    ((2, 3, 5), "channel", False),
]


@requires_triton
@pytest.mark.parametrize(("shape", "affine", "channels_last"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_triton_matches_reference(
    shape: tuple[int, ...], affine: str, channels_last: bool, dtype: torch.dtype
) -> None:
    x = (torch.randn(shape, device=TRITON_DEVICE) * 2 + 1).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    scale, bias = _affine(affine, shape[0], shape[1], device=TRITON_DEVICE)
    assert scale is not None and bias is not None
    # float32 parameters with low-precision activations, as under autocast.
    ref = _run_all_orders(x.double(), scale.double(), bias.double(), "torch", act="lrelu")
    out = _run_all_orders(x, scale, bias, "triton", act="lrelu")
    assert out[0].dtype == dtype and out[1].dtype == dtype and out[2].dtype == torch.float32
    _assert_close_to_largest(out, ref, dtype)


@requires_triton
@pytest.mark.parametrize("act", ACTIVATION_NAMES)
def test_triton_float64_every_activation(act: str) -> None:
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, device=TRITON_DEVICE) * 3
    scale, bias = _affine("sample", 2, 3, dtype=torch.float64, device=TRITON_DEVICE)
    assert scale is not None and bias is not None
    out = _run_all_orders(x, scale, bias, "triton", act=act)
    ref = _run_all_orders(x, scale, bias, "torch", act=act)
    for o, r in zip(out, ref):
        # Triton passes eps, alpha and gain as float32 scalars: float64 results agree to ~1e-7.
        torch.testing.assert_close(o, r, rtol=1e-6, atol=1e-6)


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
    out = _run_all_orders(x, scale, bias, "triton", act="swish")
    ref = _run_all_orders(x, scale, bias, "torch", act="swish")
    for o, r in zip(out, ref):
        torch.testing.assert_close(o, r, rtol=1e-6, atol=1e-6)


@requires_triton
def test_triton_third_order() -> None:
    kw = {"dtype": torch.float64, "device": TRITON_DEVICE}
    x0 = torch.randn(2, 2, 3, 3, **kw)  # type: ignore[arg-type]
    s0 = torch.randn(2, **kw)  # type: ignore[arg-type]

    def third(backend: str) -> tuple[torch.Tensor, ...]:
        x, s = x0.clone().requires_grad_(), s0.clone().requires_grad_()
        y = instance_norm_act(x, s, act="tanh", backend=backend)  # type: ignore[arg-type]
        (gx,) = torch.autograd.grad((y**3).sum(), x, create_graph=True)
        (ggx,) = torch.autograd.grad((gx**2).sum(), x, create_graph=True)
        return torch.autograd.grad((ggx**2).sum(), (x, s))

    for o, r in zip(third("triton"), third("torch")):
        torch.testing.assert_close(o, r, rtol=1e-6, atol=1e-6)


@requires_triton
def test_triton_layouts_preserved() -> None:
    x = torch.randn(2, 5, 3, 4, device=TRITON_DEVICE).to(memory_format=torch.channels_last)
    y = instance_norm_act(x, act="lrelu", gain=1.0, backend="triton")
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, formula(x, act="lrelu", gain=1.0), torch.float32)
    x3 = torch.randn(2, 3, 2, 3, 4, device=TRITON_DEVICE).to(memory_format=torch.channels_last_3d)
    y3 = instance_norm_act(x3, backend="triton")
    assert y3.is_contiguous(memory_format=torch.channels_last_3d)
    assert_close(y3, formula(x3), torch.float32)
    assert instance_norm_act(x.contiguous(), backend="triton").is_contiguous()


@requires_triton
def test_triton_non_dense_input_and_expanded_gradient() -> None:
    base = torch.randn(2, 3, 8, 5, dtype=torch.float64, device=TRITON_DEVICE)
    x = base[:, :, ::2].requires_grad_()  # a strided view
    y = instance_norm_act(x, act="swish", backend="triton")
    assert_close(y, formula(x.detach(), act="swish"), torch.float32)
    y.sum().backward()  # the incoming gradient is an expanded (stride 0) tensor
    xr = x.detach().requires_grad_()
    instance_norm_act(xr, act="swish", backend="torch").sum().backward()
    assert x.grad is not None and xr.grad is not None
    assert_close(x.grad, xr.grad, torch.float32)


@requires_triton
def test_triton_adain_compiles_without_graph_break() -> None:
    x = torch.randn(2, 3, 4, 4, device=TRITON_DEVICE)
    scale, bias = torch.randn(2, 3, device=TRITON_DEVICE), torch.randn(2, 3, device=TRITON_DEVICE)

    @torch.compile(fullgraph=True, backend="eager" if TRITON_DEVICE == "cpu" else "inductor")
    def fn(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return adain(x, scale, bias, backend="triton") * 2

    assert_close(fn(x, scale, bias), 2 * formula(x, scale, bias), torch.float32)


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "match"),
    [
        (torch.zeros(2, 3), {}, ValueError, r"x must have at least 3 dimensions, got shape \(2, 3\)"),
        (torch.zeros(2, 3, 4), {"scale": torch.ones(4)}, ValueError, r"scale must have shape \(C,\) = \(3,\) or \(N, C\) = \(2, 3\) .*got \(4,\)"),
        (torch.zeros(2, 3, 4), {"bias": torch.ones(3, 3)}, ValueError, r"bias must have shape .*got \(3, 3\)"),
        (torch.zeros(2, 3, 4), {"act": "gelu"}, ValueError, r"act must be one of .*got 'gelu'"),
        (torch.zeros(2, 3, 4), {"eps": -1.0}, ValueError, r"eps must be >= 0, got -1.0"),
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


@requires_triton
def test_triton_rejects_unsupported_dtype() -> None:
    x = torch.zeros(2, 3, 4, device=TRITON_DEVICE).to(torch.float8_e4m3fn)
    match = r"instance_norm_act: backend='triton' supports x of dtype .*got torch.float8_e4m3fn"
    with pytest.raises(TypeError, match=match):
        instance_norm_act(x, backend="triton")


def test_low_precision_keeps_dtype() -> None:
    x = torch.randn(2, 3, 4, 4, dtype=torch.bfloat16)
    scale, bias = torch.randn(2, 3), torch.randn(2, 3)  # float32 styles with bf16 activations
    y = adain(x, scale, bias)
    assert y.dtype == torch.bfloat16
    assert_close(y, formula(x, scale, bias), torch.bfloat16, scale=2.0)
