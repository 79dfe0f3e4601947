"""BiasAct and FusedLeakyReLU against the bias + activation + gain + clamp formula."""

from __future__ import annotations

from typing import Any

import formulas
import pytest
import torch
from helpers import assert_close

from ganblocks.layers import BiasAct, FusedLeakyReLU
from ganblocks.ops import Backend, use_backend

F64 = torch.float64


def test_bias_act_matches_formula() -> None:
    layer = BiasAct(
        3, act="lrelu", alpha=0.1, gain=2.0, clamp=1.5, bias_init=0.4, lr_multiplier=0.5, dtype=F64
    )
    x = torch.randn(2, 3, 4, 4, dtype=F64)
    b = torch.full((3,), 0.4 * 0.5, dtype=F64)  # stored bias_init, times lr_multiplier at run time
    expected = formulas.bias_act(x, b, "lrelu", alpha=0.1, gain=2.0, clamp=1.5)
    assert_close(layer(x), expected)
    assert (expected.abs() == 1.5).any()


def test_bias_act_default_gains() -> None:
    x = torch.randn(2, 3, 5, dtype=F64)
    assert_close(BiasAct(None, act="relu")(x), formulas.act(x, "relu"))
    assert_close(BiasAct(None, act="tanh")(x), formulas.act(x, "tanh"))
    assert_close(BiasAct(None)(x), x)


def test_bias_act_without_channels_owns_nothing() -> None:
    layer = BiasAct(None, act="lrelu")
    assert layer.bias is None and list(layer.parameters()) == []


def test_bias_act_along_last_dim() -> None:
    layer = BiasAct(4, act="sigmoid", dim=-1, dtype=F64)
    with torch.no_grad():
        assert layer.bias is not None
        layer.bias.copy_(torch.arange(4.0))
    x = torch.randn(3, 2, 4, dtype=F64)
    assert_close(layer(x), formulas.bias_act(x, torch.arange(4.0), "sigmoid", dim=-1))


def test_fused_leaky_relu_matches_formula() -> None:
    layer = FusedLeakyReLU(3, dtype=F64)
    with torch.no_grad():
        assert layer.bias is not None
        layer.bias.normal_()
    x = torch.randn(2, 3, 4, 4, dtype=F64)
    assert_close(layer(x), formulas.bias_act(x, layer.bias, "lrelu"))


def test_gradcheck(backend: Backend, device: torch.device) -> None:
    layer = BiasAct(3, act="softplus", gain=1.5, lr_multiplier=0.5, dtype=F64, device=device)
    x = torch.randn(2, 3, 2, dtype=F64, device=device, requires_grad=True)
    b = torch.randn(3, dtype=F64, device=device, requires_grad=True)

    def f(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(layer, {"bias": b}, (x,))

    with use_backend(backend):
        assert torch.autograd.gradcheck(f, (x, b), fast_mode=backend == "triton")
        assert torch.autograd.gradgradcheck(f, (x, b), fast_mode=backend == "triton")


def test_channels_last_and_bfloat16() -> None:
    layer = FusedLeakyReLU(4, bias_init=0.3)
    x = torch.randn(2, 4, 3, 3).to(memory_format=torch.channels_last)
    y = layer(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, layer(x.contiguous()))
    yb = layer(x.bfloat16())
    assert yb.dtype == torch.bfloat16
    assert_close(yb, y, torch.bfloat16)


def test_repr() -> None:
    assert repr(FusedLeakyReLU(8)) == "FusedLeakyReLU(8, act=lrelu)"
    assert repr(BiasAct(None, act="tanh")) == "BiasAct(None, act=tanh)"
    assert repr(
        BiasAct(4, act="lrelu", alpha=0.1, gain=1.0, clamp=256, dim=-1, bias_init=1.0, lr_multiplier=0.01)
    ) == ("BiasAct(4, act=lrelu, alpha=0.1, gain=1.0, clamp=256, dim=-1, bias_init=1.0, lr_multiplier=0.01)")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"act": "gelu"}, ValueError, "act must be one of"),
        ({"clamp": -1.0}, ValueError, "clamp must be None or >= 0, got -1.0"),
        ({"num_channels": 0}, ValueError, "num_channels must be an int >= 1, got 0"),
        ({"lr_multiplier": 0.0}, ValueError, "lr_multiplier must be > 0, got 0.0"),
        ({"dim": 1.0}, TypeError, "dim must be an int, got float"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        BiasAct(**{"num_channels": None, **kwargs})


def test_bad_input_channels() -> None:
    with pytest.raises(
        ValueError, match=r"x must have num_channels = 3 entries along dim=1, got shape \(2, 5, 4\) with 5"
    ):
        BiasAct(3)(torch.randn(2, 5, 4))
