"""bias_act beyond the shared contract (``test_contract.py``): every activation with and without a clamp
against the formula, default gains, the bias dim, clamped gradients, and each bad input's message."""

from __future__ import annotations

import functools
import math
from typing import Optional

import formulas
import pytest
import torch
import torch.nn.functional as F
from helpers import all_orders, assert_close

from ganblocks.functional import bias_act
from ganblocks.layers import ACTIVATION_NAMES, Activation
from ganblocks.ops import Backend


@pytest.mark.parametrize("act", ACTIVATION_NAMES)
@pytest.mark.parametrize("clamp", [None, 0.7])
def test_reference_matches_formula(act: Activation, clamp: Optional[float]) -> None:
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64) * 3
    b = torch.randn(3, dtype=torch.float64)
    y = bias_act(x, b, act=act, clamp=clamp, backend="torch")
    assert_close(y, formulas.bias_act(x, b, act, None, None, clamp, 1))


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
    assert_close(bias_act(x, b, act="lrelu", dim=-1), formulas.bias_act(x, b, "lrelu", None, None, None, 1))


def test_clamped_elements_get_zero_gradient(backend: Backend, device: torch.device) -> None:
    x = torch.tensor([-3.0, -0.1, 0.1, 3.0], device=device, requires_grad=True)
    bias_act(x, act="linear", clamp=1.0, dim=0, backend=backend).sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad.cpu(), torch.tensor([0.0, 1.0, 1.0, 0.0]))


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


@pytest.mark.parametrize("act", ["lrelu", "elu"])
def test_negative_alpha_every_order(backend: Backend, device: torch.device, act: Activation) -> None:
    """A negative slope makes the output positive on both sides of zero: the backward must read the input."""
    x = torch.randn(3, 5, dtype=torch.float64, device=device)
    b = torch.randn(5, dtype=torch.float64, device=device)
    fn = functools.partial(bias_act, act=act, alpha=-0.3, gain=1.5, backend=backend)

    def plain(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        z = x + b
        return 1.5 * (F.leaky_relu(z, -0.3) if act == "lrelu" else F.elu(z, -0.3))

    for o, r in zip(all_orders(fn, [x, b]), all_orders(plain, [x, b])):
        assert_close(o, r)


@pytest.mark.parametrize("act", ["linear", "lrelu", "tanh"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_clamp_bounds_exactly_at_clamp_over_gain(
    backend: Backend, device: torch.device, act: Activation, dtype: torch.dtype
) -> None:
    """``x + b`` exactly at ``±clamp / gain`` (``y == ±clamp`` exactly) passes the gradient (the mask
    ``-clamp <= y <= clamp``, torch.clamp's up to torch 2.14); one step beyond gets 0. Every order, both saved forms (input: a bias
    or tanh; output: linear/lrelu without a bias cannot tell the bound, so the clamp makes it save x)."""
    gain, clamp, alpha = 2.0, 1.5, 0.25
    # lrelu's negative side reaches -clamp at x = -clamp / (gain * alpha) = -3; tanh at atanh(clamp / gain).
    neg = -clamp / gain if act == "linear" else -3.0 if act == "lrelu" else -math.atanh(clamp / gain)
    pos = clamp / gain if act != "tanh" else math.atanh(clamp / gain)
    b = torch.tensor([0.5, 0.0], dtype=dtype, device=device)
    on = torch.tensor([pos, neg], dtype=dtype)
    beyond = torch.tensor([pos, neg], dtype=dtype) * (1 + 4 * torch.finfo(dtype).eps)
    x = torch.stack([on, beyond]).to(device) - b  # rows: on the bounds, just beyond; columns: +, -

    def fn(t: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return bias_act(t, bias, act=act, alpha=alpha, gain=gain, clamp=clamp, backend=backend)

    y = fn(x, b)
    if act != "tanh":  # tanh(atanh(0.75)) * 2 rounds to within an ulp of the bound, not onto it
        assert y[0].tolist() == [clamp, -clamp]
    assert y[1].tolist() == [clamp, -clamp]
    leaf = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(fn(leaf, b).sum(), leaf)
    ref_leaf = x.clone().requires_grad_()
    z = ref_leaf + b
    z = z if act == "linear" else F.leaky_relu(z, alpha) if act == "lrelu" else torch.tanh(z)
    (ref_g,) = torch.autograd.grad((gain * z).sum(), ref_leaf)
    # Inside the bounds, included, by the backend's own unclamped output: tanh's lands within an ulp of the
    # bound, on either side depending on the last bit of its tanh (Triton 3.0's differs from torch's).
    inside = bias_act(x, b, act=act, alpha=alpha, gain=gain, backend=backend).abs() <= clamp
    assert g[1].tolist() == [0.0, 0.0]
    if act != "tanh":
        assert g[0].tolist() == [gain, gain * alpha if act == "lrelu" else gain]
    assert_close(g, torch.where(inside, ref_g, 0.0))
