"""inject_noise: numerics against an independent formula, both backends, every order of gradient."""

from __future__ import annotations

import math
from typing import Optional

import pytest
import torch
from helpers import TRITON_DEVICE, assert_close, requires_triton

from ganblocks.functional import inject_noise
from ganblocks.functional import ACTIVATION_NAMES

_SA, _SS = 1.6732632423543772, 1.0507009873554805


def _scalar_act(act: str, a: float, v: float) -> float:
    return {
        "linear": lambda: v,
        "relu": lambda: max(v, 0.0),
        "lrelu": lambda: v if v > 0 else a * v,
        "tanh": lambda: math.tanh(v),
        "sigmoid": lambda: 1 / (1 + math.exp(-v)),
        "elu": lambda: v if v > 0 else a * (math.exp(v) - 1),
        "selu": lambda: _SS * (v if v > 0 else _SA * (math.exp(v) - 1)),
        "softplus": lambda: v if v > 20 else math.log1p(math.exp(v)),
        "swish": lambda: v / (1 + math.exp(-v)),
    }[act]()


def formula(x: torch.Tensor, s: torch.Tensor, noise: torch.Tensor, b: Optional[torch.Tensor], act: str = "linear",
            clamp: Optional[float] = None) -> torch.Tensor:  # fmt: skip
    """StyleGAN's noise injection + bias_act, element by element in float64 with default alpha and gain."""
    x, s, noise = x.cpu(), s.cpu(), noise.cpu()
    n_, c_, h_, w_ = x.shape
    a = {"lrelu": 0.2, "elu": 1.0}.get(act, 0.0)
    gain = {"relu": 2**0.5, "lrelu": 2**0.5, "swish": 2**0.5}.get(act, 1.0)
    sv = s.double().flatten().tolist()
    out = torch.empty(x.shape, dtype=torch.float64)
    for n in range(n_):
        for c in range(c_):
            for h in range(h_):
                for w in range(w_):
                    z = float(x[n, c, h, w]) + sv[c if len(sv) > 1 else 0] * float(noise[n, 0, h, w])
                    z += float(b[c].cpu()) if b is not None else 0.0
                    y = gain * _scalar_act(act, a, z)
                    out[n, c, h, w] = min(max(y, -clamp), clamp) if clamp is not None else y
    return out


def _inputs(shape: tuple[int, int, int, int], per_channel: bool, dtype: torch.dtype = torch.float64,
            device: str = "cpu") -> tuple[torch.Tensor, ...]:  # fmt: skip
    n, c, h, w = shape
    x = torch.randn(shape, dtype=dtype, device=device)
    s = torch.randn((c,) if per_channel else (), dtype=dtype, device=device)
    noise = torch.randn(n, 1, h, w, dtype=dtype, device=device)
    b = torch.randn(c, dtype=dtype, device=device)
    return x, s, noise, b


BACKENDS = ["torch", pytest.param("triton", marks=requires_triton)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("act", "clamp", "per_channel"), [("linear", None, False), ("lrelu", 0.7, True),
                                                           ("tanh", None, True), ("swish", 1.0, False)])  # fmt: skip
def test_matches_formula(backend: str, act: str, clamp: Optional[float], per_channel: bool) -> None:
    device = TRITON_DEVICE if backend == "triton" else "cpu"
    x, s, noise, b = _inputs((2, 3, 4, 5), per_channel, device=device)
    y = inject_noise(x, s, noise, bias=b, act=act, clamp=clamp, backend=backend)  # type: ignore[arg-type]
    # Triton passes gain and clamp as float32 scalars: float64 results agree to ~1e-8.
    assert_close(y.cpu(), formula(x, s, noise, b, act, clamp), scale=1e4 if backend == "triton" else 1.0)


def test_plain_noise_injection_is_x_plus_strength_times_noise() -> None:
    x = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2)
    noise = torch.tensor([[[[10.0, -10.0]]]])
    y = inject_noise(x, torch.tensor([0.5, 2.0]), noise, backend="torch")
    torch.testing.assert_close(y, torch.tensor([[[[6.0, -3.0]], [[23.0, -16.0]]]]), rtol=0, atol=0)
    y = inject_noise(x, torch.tensor(0.5), noise, backend="torch")
    torch.testing.assert_close(y, torch.tensor([[[[6.0, -3.0]], [[8.0, -1.0]]]]), rtol=0, atol=0)


def test_drawn_noise_is_shared_by_channels_and_follows_the_generator() -> None:
    x = torch.zeros(2, 3, 4, 4)
    y1 = inject_noise(x, torch.tensor(1.0), generator=torch.Generator().manual_seed(7), backend="torch")
    y2 = inject_noise(x, torch.tensor(1.0), generator=torch.Generator().manual_seed(7), backend="torch")
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    torch.testing.assert_close(y1, y1[:, :1].expand_as(y1), rtol=0, atol=0)  # one map per sample
    assert not torch.equal(y1[0], y1[1])
    expected = torch.randn((2, 1, 4, 4), generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(y1[:, :1], expected, rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("act", "per_channel"), [("linear", False), ("lrelu", True), ("swish", True), ("tanh", False)]
)
def test_gradcheck_and_gradgradcheck(backend: str, act: str, per_channel: bool) -> None:
    device = TRITON_DEVICE if backend == "triton" else "cpu"
    leaves = [t.requires_grad_() for t in _inputs((2, 3, 1, 2), per_channel, device=device)]

    def fn(x: torch.Tensor, s: torch.Tensor, noise: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return inject_noise(x, s, noise, bias=b, act=act, clamp=1.5, backend=backend)  # type: ignore[arg-type]

    # The interpreted kernels are slow: on CPU the Triton backend checks random projections (fast mode).
    fast = backend == "triton" and TRITON_DEVICE == "cpu"
    assert torch.autograd.gradcheck(fn, tuple(leaves), fast_mode=fast)
    assert torch.autograd.gradgradcheck(fn, tuple(leaves), fast_mode=fast)


def _run_all_orders(inputs: tuple[torch.Tensor, ...], backend: str, **kw: object) -> list[torch.Tensor]:
    leaves = [t.detach().requires_grad_() for t in inputs]
    x, s, noise, b = leaves
    y = inject_noise(x, s, noise, bias=b, backend=backend, **kw)  # type: ignore[arg-type]
    weight = torch.linspace(-1, 1, y.numel(), dtype=torch.float32, device=y.device).reshape(y.shape)
    grads = torch.autograd.grad((y.float() ** 2 * weight).sum(), leaves, create_graph=True)
    second = torch.autograd.grad(sum((g.float() ** 2).sum() for g in grads), leaves, allow_unused=True)
    return [y, *grads, *(g if g is not None else torch.zeros_like(t) for g, t in zip(second, leaves))]


SHAPES = [(1, 1, 1, 1), (3, 5, 7, 9)]


@requires_triton
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    ("act", "per_channel", "channels_last"), [("lrelu", True, False), ("swish", False, True)]
)
def test_triton_matches_reference(
    shape: tuple[int, int, int, int], dtype: torch.dtype, act: str, per_channel: bool, channels_last: bool
) -> None:
    inputs = _inputs(shape, per_channel, torch.float32, TRITON_DEVICE)
    if channels_last:
        inputs = (inputs[0].contiguous(memory_format=torch.channels_last), *inputs[1:])
    low = tuple(t.to(dtype) for t in inputs)
    ref = _run_all_orders(tuple(t.double() for t in low), "torch", act=act, clamp=2.0)
    out = _run_all_orders(low, "triton", act=act, clamp=2.0)
    assert out[0].is_contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )
    # Against float64: the output is rounded once to ``dtype``; each order of gradient rounds its incoming
    # gradient once more, and the strength/noise/bias gradients sum many rounded products, hence the scales.
    # Second-order values reach ~1e3 and are sums of such products, so errors are measured relative to the
    # largest magnitude of each tensor (the reference run in ``dtype`` itself errs as much).
    scales = (1.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0)
    for o, r, scale in zip(out, ref, scales):
        assert o.dtype == dtype
        m = max(1.0, r.abs().max().item())
        assert_close(o.double() / m, r / m, dtype, scale=scale)


@requires_triton
@pytest.mark.parametrize("act", ACTIVATION_NAMES)
def test_triton_float64_every_activation(act: str) -> None:
    inputs = _inputs((2, 3, 4, 5), True, device=TRITON_DEVICE)
    inputs = (inputs[0] * 3, *inputs[1:])
    ref = _run_all_orders(inputs, "torch", act=act, clamp=4.0)
    out = _run_all_orders(inputs, "triton", act=act, clamp=4.0)
    for o, r in zip(out, ref):
        # Triton passes Python floats (alpha, gain, clamp) as float32 scalars: float64 results agree to ~1e-8.
        torch.testing.assert_close(o, r, rtol=1e-6, atol=1e-6)


@requires_triton
def test_triton_strided_input_expanded_noise_and_gradient() -> None:
    base = torch.randn(2, 3, 8, 5, device=TRITON_DEVICE)
    x = base[:, :, ::2].requires_grad_()  # H and W do not merge: the launcher copies
    noise = torch.randn(1, 1, 4, 5, device=TRITON_DEVICE).expand(2, 1, 4, 5)  # stride 0 over the batch
    s = torch.randn(3, device=TRITON_DEVICE)
    y = inject_noise(x, s, noise, act="relu", backend="triton")
    assert_close(y.cpu(), formula(x.detach(), s, noise, None, "relu"), torch.float32)
    y.sum().backward()  # the incoming gradient is an expanded (stride 0) tensor
    assert x.grad is not None
    assert_close(x.grad, (y.detach() > 0).double() * 2**0.5, torch.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_low_precision_activations_with_float32_parameters_keep_dtype(backend: str) -> None:
    device = TRITON_DEVICE if backend == "triton" else "cpu"
    x, s, noise, b = _inputs((2, 3, 4, 4), True, torch.float32, device)
    y = inject_noise(x.bfloat16(), s, noise, bias=b, act="lrelu", backend=backend)  # type: ignore[arg-type]
    assert y.dtype == torch.bfloat16
    assert_close(y.cpu(), formula(x.bfloat16(), s, noise, b, "lrelu"), torch.bfloat16, scale=2.0)


@requires_triton
def test_triton_compiles_without_graph_break() -> None:
    x, s, noise, b = _inputs((2, 3, 4, 4), True, torch.float32, TRITON_DEVICE)

    @torch.compile(fullgraph=True, backend="eager" if TRITON_DEVICE == "cpu" else "inductor")
    def fn(x: torch.Tensor, s: torch.Tensor, noise: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return inject_noise(x, s, noise, bias=b, act="lrelu", backend="triton") * 2

    assert_close(fn(x, s, noise, b).cpu(), 2 * formula(x, s, noise, b, "lrelu"), torch.float32)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((torch.zeros(3), torch.zeros(())), {}, ValueError, r"x must have 4 dimensions, got shape \(3,\)"),
        ((torch.zeros(2, 3, 4, 4), torch.zeros(2)), {}, ValueError,
         r"strength must be a scalar tensor .* or have shape \(C,\) = \(3,\), got \(2,\)"),
        ((torch.zeros(2, 3, 4, 4), torch.zeros(1, 3)), {}, ValueError, r"strength must be .*got \(1, 3\)"),
        ((torch.zeros(2, 3, 4, 4), torch.zeros(()), torch.zeros(2, 3, 4, 4)), {}, ValueError,
         r"noise must have shape \(N, 1, H, W\) = \(2, 1, 4, 4\), got \(2, 3, 4, 4\)"),
        ((torch.zeros(2, 3, 4, 4), torch.zeros(())), {"bias": torch.zeros(4)}, ValueError,
         r"bias must have shape \(C,\) = \(3,\), got \(4,\)"),
        ((torch.zeros(2, 3, 4, 4), torch.zeros(())), {"act": "gelu"}, ValueError, r"act must be one of .*'gelu'"),
        ((torch.zeros(2, 3, 4, 4), torch.zeros(())), {"clamp": -1.0}, ValueError, "clamp must be None or >= 0"),
        ((torch.zeros(2, 3, 4, 4), 0.5), {}, TypeError, "strength must be a torch.Tensor, got float"),
        ((torch.zeros(2, 3, 4, 4, dtype=torch.long), torch.zeros(())), {}, TypeError,
         "x must be a floating-point tensor, got dtype torch.int64"),
    ],
)  # fmt: skip
def test_bad_inputs(
    args: tuple[object, ...], kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        inject_noise(*args, **kwargs)  # type: ignore[arg-type]


@requires_triton
def test_triton_rejects_unsupported_dtype() -> None:
    x = torch.zeros(1, 2, 2, 2, device=TRITON_DEVICE).to(torch.float8_e4m3fn)
    with pytest.raises(
        TypeError, match=r"inject_noise: backend='triton' supports x of dtype .*float8_e4m3fn"
    ):
        inject_noise(x, torch.zeros((), device=TRITON_DEVICE), torch.zeros(1, 1, 2, 2), backend="triton")
