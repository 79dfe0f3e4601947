"""bias_act: numerics against an independent formula, both backends, every order of gradient."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import TRITON_DEVICE, assert_close, requires_triton

from ganblocks.functional import bias_act
from ganblocks.functional import ACTIVATION_NAMES


def formula(x: torch.Tensor, b: torch.Tensor | None, act: str, alpha: float | None, gain: float | None,
            clamp: float | None, dim: int) -> torch.Tensor:  # fmt: skip
    """StyleGAN2-ADA's bias_act written out element by element with math, in float64."""
    xs = x.double()
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        xs = xs + b.double().reshape(shape)
    a = {"lrelu": 0.2, "elu": 1.0}.get(act, 0.0) if alpha is None else alpha
    sa, ss = 1.6732632423543772, 1.0507009873554805
    scalar = {
        "linear": lambda v: v,
        "relu": lambda v: max(v, 0.0),
        "lrelu": lambda v: v if v > 0 else a * v,
        "tanh": math.tanh,
        "sigmoid": lambda v: 1 / (1 + math.exp(-v)),
        "elu": lambda v: v if v > 0 else a * (math.exp(v) - 1),
        "selu": lambda v: ss * (v if v > 0 else sa * (math.exp(v) - 1)),
        "softplus": lambda v: v if v > 20 else math.log1p(math.exp(v)),
        "swish": lambda v: v / (1 + math.exp(-v)),
    }[act]
    g = ({"relu": 2**0.5, "lrelu": 2**0.5, "swish": 2**0.5}.get(act, 1.0)) if gain is None else gain
    out = torch.tensor([g * scalar(v) for v in xs.flatten().tolist()], dtype=torch.float64).reshape(x.shape)
    return out.clamp(-clamp, clamp) if clamp is not None else out


@pytest.mark.parametrize("act", ACTIVATION_NAMES)
@pytest.mark.parametrize("clamp", [None, 0.7])
def test_reference_matches_formula(act: str, clamp: float | None) -> None:
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64) * 3
    b = torch.randn(3, dtype=torch.float64)
    y = bias_act(x, b, act=act, clamp=clamp, backend="torch")  # type: ignore[arg-type]
    assert_close(y, formula(x, b, act, None, None, clamp, 1))


def test_default_gains_and_alpha() -> None:
    x = torch.tensor([-1.0, 2.0])
    torch.testing.assert_close(bias_act(x, act="lrelu", dim=0), torch.tensor([-0.2, 2.0]) * 2**0.5)
    torch.testing.assert_close(bias_act(x, act="relu", dim=0), torch.tensor([0.0, 2.0]) * 2**0.5)
    torch.testing.assert_close(
        bias_act(x, act="lrelu", alpha=0.5, gain=1.0, dim=0), torch.tensor([-0.5, 2.0])
    )
    torch.testing.assert_close(bias_act(x, act="tanh", dim=0), torch.tanh(x))


def test_bias_along_other_dim() -> None:
    x = torch.randn(4, 6, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    assert_close(bias_act(x, b, act="lrelu", dim=-1), formula(x, b, "lrelu", None, None, None, 1))


def test_clamped_elements_get_zero_gradient() -> None:
    x = torch.tensor([-3.0, -0.1, 0.1, 3.0], requires_grad=True)
    bias_act(x, act="linear", clamp=1.0, dim=0).sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, torch.tensor([0.0, 1.0, 1.0, 0.0]))


BACKENDS = ["torch", pytest.param("triton", marks=requires_triton)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", ["linear", "lrelu", "tanh", "swish", "softplus"])
def test_gradcheck_and_gradgradcheck(backend: str, act: str) -> None:
    device = TRITON_DEVICE if backend == "triton" else "cpu"
    x = torch.randn(2, 3, 2, 3, dtype=torch.float64, device=device, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, device=device, requires_grad=True)

    def fn(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return bias_act(x, b, act=act, clamp=1.5, backend=backend)  # type: ignore[arg-type]

    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


SHAPES = [(1, 1, 1, 1), (3, 5, 7, 9), (4, 6)]


def _run_all_orders(x: torch.Tensor, b: torch.Tensor, backend: str, **kw: object) -> list[torch.Tensor]:
    x = x.detach().requires_grad_()
    b = b.detach().requires_grad_()
    y = bias_act(x, b, backend=backend, **kw)  # type: ignore[arg-type]
    weight = torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=y.device).reshape(y.shape)
    gx, gb = torch.autograd.grad((y.float() ** 2 * weight.float()).sum(), (x, b), create_graph=True)
    ggx, ggb = torch.autograd.grad((gx.float() ** 2).sum() + gb.float().sum(), (x, b), allow_unused=True)
    return [y, gx, gb, ggx, ggb if ggb is not None else torch.zeros_like(b)]


@requires_triton
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("act", ["lrelu", "swish"])
def test_triton_matches_reference(shape: tuple[int, ...], dtype: torch.dtype, act: str) -> None:
    x = torch.randn(shape, device=TRITON_DEVICE).to(dtype)
    b = torch.randn(shape[1], device=TRITON_DEVICE).to(dtype)
    ref = _run_all_orders(x.double(), b.double(), "torch", act=act, clamp=2.0)
    out = _run_all_orders(x, b, "triton", act=act, clamp=2.0)
    # Against the float64 result: the output is rounded once to ``dtype``; each order of gradient rounds
    # its incoming gradient once more and the bias gradients sum many rounded terms, hence the scales.
    for o, r, scale in zip(out, ref, (1.0, 4.0, 8.0, 8.0, 8.0)):
        assert o.dtype == dtype
        assert_close(o, r, dtype, scale=scale)


@requires_triton
@pytest.mark.parametrize("act", ACTIVATION_NAMES)
def test_triton_float64_every_activation(act: str) -> None:
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, device=TRITON_DEVICE) * 3
    b = torch.randn(3, dtype=torch.float64, device=TRITON_DEVICE)
    ref = _run_all_orders(x, b, "torch", act=act)
    out = _run_all_orders(x, b, "triton", act=act)
    for o, r in zip(out, ref):
        # Triton passes Python floats (alpha, gain) as float32 scalars: float64 results agree to ~1e-8.
        torch.testing.assert_close(o, r, rtol=1e-6, atol=1e-6)


@requires_triton
def test_triton_channels_last_preserved() -> None:
    x = torch.randn(2, 5, 3, 4, device=TRITON_DEVICE).to(memory_format=torch.channels_last)
    b = torch.randn(5, device=TRITON_DEVICE)
    y = bias_act(x, b, act="lrelu", backend="triton")
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, formula(x, b, "lrelu", None, None, None, 1), torch.float32)


@requires_triton
def test_triton_non_dense_input_and_expanded_gradient() -> None:
    base = torch.randn(2, 3, 8, 5, device=TRITON_DEVICE)
    x = base[:, :, ::2].requires_grad_()  # a strided view
    y = bias_act(x, act="relu", backend="triton")
    assert_close(y, formula(x.detach(), None, "relu", None, None, None, 1), torch.float32)
    y.sum().backward()  # the incoming gradient is an expanded (stride 0) tensor
    assert x.grad is not None
    assert_close(x.grad, (x.detach() > 0).double() * 2**0.5, torch.float32)


@requires_triton
def test_triton_compiles_without_graph_break() -> None:
    x = torch.randn(2, 3, 4, 4, device=TRITON_DEVICE)
    b = torch.randn(3, device=TRITON_DEVICE)

    @torch.compile(fullgraph=True, backend="eager" if TRITON_DEVICE == "cpu" else "inductor")
    def fn(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return bias_act(x, b, act="lrelu", backend="triton") * 2

    assert_close(fn(x, b), 2 * formula(x, b, "lrelu", None, None, None, 1), torch.float32)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"b": torch.zeros(5)}, ValueError, r"b must have shape \(3,\).*got \(5,\)"),
        ({"act": "gelu"}, ValueError, r"act must be one of .*got 'gelu'"),
        ({"dim": 4}, ValueError, r"dim must be in \[-4, 3\].*got 4"),
        ({"clamp": -1.0}, ValueError, r"clamp must be None or >= 0, got -1.0"),
    ],
)
def test_bad_inputs(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        bias_act(torch.zeros(2, 3, 4, 4), **kwargs)  # type: ignore[arg-type]


def test_integer_input_rejected() -> None:
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor, got dtype torch\.int64"):
        bias_act(torch.zeros(2, 3, dtype=torch.long))


@requires_triton
def test_triton_rejects_unsupported_dtype() -> None:
    x = torch.zeros(2, 3, device=TRITON_DEVICE).to(torch.float8_e4m3fn)
    with pytest.raises(
        TypeError, match=r"bias_act: backend='triton' supports x of dtype .*got torch.float8_e4m3fn"
    ):
        bias_act(x, backend="triton")


def test_low_precision_keeps_dtype() -> None:
    x = torch.randn(2, 3, 4, 4, dtype=torch.bfloat16)
    b = torch.randn(3)  # float32 parameters with bf16 activations, as under autocast
    y = bias_act(x, b, act="lrelu")
    assert y.dtype == torch.bfloat16
    assert_close(y, formula(x, b, "lrelu", None, None, None, 1), torch.bfloat16)
