"""inject_noise beyond the shared contract (``test_contract.py``): activations, clamps and both strength
kinds against the formula, gradients with folded and unfolded gains against the plain formula, drawn noise,
every activation on Triton, noise expanded over the batch, and each bad input's message."""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import formulas
import pytest
import torch
import torch.nn.functional as F
from helpers import TRITON_DEVICE, TRITON_FLOAT64, all_orders, assert_close, requires_triton

from ganblocks.functional import inject_noise
from ganblocks.layers import ACTIVATION_NAMES, Activation
from ganblocks.ops import Backend


def _inputs(shape: tuple[int, int, int, int], per_channel: bool, dtype: torch.dtype = torch.float64,
            device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:  # fmt: skip
    n, c, h, w = shape
    kw: dict[str, Any] = {"dtype": dtype, "device": device}
    x = torch.randn(shape, **kw)
    s = torch.randn((c,) if per_channel else (), **kw)
    noise = torch.randn(n, 1, h, w, **kw)
    b = torch.randn(c, **kw)
    return x, s, noise, b


@pytest.mark.parametrize(("act", "clamp", "per_channel"), [("linear", None, False), ("lrelu", 0.7, True),
                                                           ("tanh", None, True), ("swish", 1.0, False)])  # fmt: skip
def test_matches_formula(
    backend: Backend, device: torch.device, act: Activation, clamp: Optional[float], per_channel: bool
) -> None:
    x, s, noise, b = _inputs((2, 3, 4, 5), per_channel, device=device)
    y = inject_noise(x, s, noise, bias=b, act=act, clamp=clamp, backend=backend)
    assert_close(y, formulas.inject_noise(x, s, noise, b, act, clamp=clamp))


_PLAIN_ACTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda z: z,
    "relu": torch.relu,
    "lrelu": lambda z: F.leaky_relu(z, 0.2),
    "tanh": torch.tanh,
}


# A positive gain of lrelu / relu / linear is folded into the passes (the strength and the bias); a negative
# gain, or tanh's, is applied after the activation: every gradient must still be the plain formula's.
@pytest.mark.parametrize(("act", "gain"), [("lrelu", 2.5), ("relu", 0.7), ("linear", 3.0), ("lrelu", -1.5),
                                           ("tanh", 2.0)])  # fmt: skip
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_gradients_match_plain_formula(act: Activation, gain: float, per_channel: bool, bias: bool) -> None:
    x, s, noise, b = _inputs((2, 3, 4, 5), per_channel)
    leaves = [t.requires_grad_() for t in ((x, s, noise, b) if bias else (x, s, noise))]
    gy = torch.randn(x.shape, dtype=torch.float64)
    bias_ = b if bias else None
    y = inject_noise(x, s, noise, bias=bias_, act=act, gain=gain, backend="torch")
    sv = s.view(-1, 1, 1) if per_channel else s
    z = x + sv * noise + (b.view(-1, 1, 1) if bias else 0.0)
    expected = gain * _PLAIN_ACTS[act](z)
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad(y, leaves, gy)
    for got, want in zip(grads, torch.autograd.grad(expected, leaves, gy)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


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


@pytest.mark.triton
@requires_triton
@pytest.mark.parametrize("act", ACTIVATION_NAMES)
def test_triton_float64_every_activation(act: Activation) -> None:
    inputs = _inputs((2, 3, 4, 5), True, device=TRITON_DEVICE)
    inputs = (inputs[0] * 3, *inputs[1:])

    def run(backend: Backend) -> list[torch.Tensor]:
        call = functools.partial(inject_noise, act=act, clamp=4.0, backend=backend)
        return all_orders(lambda x, s, noise, b: call(x, s, noise, bias=b), inputs)

    for o, r in zip(run("triton"), run("torch")):
        torch.testing.assert_close(o, r, rtol=TRITON_FLOAT64[0], atol=TRITON_FLOAT64[1])


@pytest.mark.triton
@requires_triton
def test_triton_strided_input_expanded_noise_and_gradient() -> None:
    base = torch.randn(2, 3, 8, 5, device=TRITON_DEVICE)
    x = base[:, :, ::2].requires_grad_()  # H and W do not merge: the launcher copies
    noise = torch.randn(1, 1, 4, 5, device=TRITON_DEVICE).expand(2, 1, 4, 5)  # stride 0 over the batch
    s = torch.randn(3, device=TRITON_DEVICE)
    y = inject_noise(x, s, noise, act="relu", backend="triton")
    assert_close(y, formulas.inject_noise(x, s, noise, None, "relu"), torch.float32)
    y.sum().backward()  # the incoming gradient is an expanded (stride 0) tensor
    assert x.grad is not None
    assert_close(x.grad, (y.detach() > 0).double() * 2**0.5, torch.float32)


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


def test_negative_alpha_every_order(backend: Backend, device: torch.device) -> None:
    """A negative slope makes the output positive on both sides of zero: the backward must read the input."""
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, device=device)
    noise = torch.randn(2, 1, 4, 4, dtype=torch.float64, device=device)
    s, b = (
        torch.randn((), dtype=torch.float64, device=device),
        torch.randn(3, dtype=torch.float64, device=device),
    )
    fn = functools.partial(inject_noise, act="lrelu", alpha=-0.3, gain=1.5, backend=backend)

    def ours(x: torch.Tensor, s: torch.Tensor, noise: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return fn(x, s, noise, bias=b)

    def plain(x: torch.Tensor, s: torch.Tensor, noise: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return 1.5 * F.leaky_relu(x + s * noise + b.view(1, -1, 1, 1), -0.3)

    for o, r in zip(all_orders(ours, [x, s, noise, b]), all_orders(plain, [x, s, noise, b])):
        assert_close(o, r)
