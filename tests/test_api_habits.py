"""Habits carried over from torch and the original code: positional layer arguments, torch's activation name."""

from __future__ import annotations

import inspect

import pytest
import torch
from helpers import assert_close
from torch import nn

from ganblocks import BiasAct, EqualConv2d, EqualLinear
from ganblocks.functional import bias_act, inject_noise, instance_norm_act
from ganblocks.generators import MSGGeneratorHeads
from ganblocks.layers import ACTIVATION_NAMES
from ganblocks.ops._activations import ACTIVATIONS, resolve_activation

# ---------------------------------------------------------------------------------------------------------
# Positional arguments, in nn.Conv2d's and nn.Linear's order


def test_equal_conv2d_takes_conv2d_positional_arguments() -> None:
    conv = EqualConv2d(3, 8, 3, 1, 1)
    ref = nn.Conv2d(3, 8, 3, 1, 1)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding) == (
        ref.in_channels,
        ref.out_channels,
        ref.kernel_size,
        ref.stride,
        ref.padding,
    )
    assert conv(torch.randn(2, 3, 9, 9)).shape == ref(torch.randn(2, 3, 9, 9)).shape == (2, 8, 9, 9)
    strided = EqualConv2d(3, 8, (3, 5), (2, 1), (1, 2))
    assert (strided.kernel_size, strided.stride, strided.padding) == ((3, 5), (2, 1), (1, 2))
    assert (
        strided(torch.randn(1, 3, 8, 8)).shape
        == nn.Conv2d(3, 8, (3, 5), (2, 1), (1, 2))(torch.randn(1, 3, 8, 8)).shape
    )


def test_equal_conv2d_positional_equals_keyword() -> None:
    torch.manual_seed(0)
    a = EqualConv2d(3, 8, 3, 2, 1, act="lrelu")
    torch.manual_seed(0)
    b = EqualConv2d(in_channels=3, out_channels=8, kernel_size=3, stride=2, padding=1, act="lrelu")
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(a(x), b(x))
    assert repr(a) == repr(b)


def test_equal_linear_takes_linear_positional_arguments() -> None:
    layer = EqualLinear(4, 3)
    assert (layer.in_features, layer.out_features) == (4, 3)
    assert layer(torch.randn(2, 4)).shape == nn.Linear(4, 3)(torch.randn(2, 4)).shape


@pytest.mark.parametrize(
    ("cls", "positional", "params"),
    [
        (EqualConv2d, ["in_channels", "out_channels", "kernel_size", "stride", "padding"], 5),
        (EqualLinear, ["in_features", "out_features"], 2),
    ],
)
def test_only_the_torch_positional_arguments_are_positional(
    cls: type[nn.Module], positional: list[str], params: int
) -> None:
    sig = inspect.signature(cls.__init__)
    names = [n for n, p in sig.parameters.items() if n != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
    assert names == positional
    assert all(
        p.kind is p.KEYWORD_ONLY for n, p in sig.parameters.items() if n != "self" and n not in positional
    )
    # Everything after them is keyword-only: a sixth positional argument (nn.Conv2d's dilation) is an error.
    with pytest.raises(TypeError):
        cls(*range(2, 2 + params), True)


# ---------------------------------------------------------------------------------------------------------
# act="leaky_relu", torch's name, beside "lrelu"


def test_leaky_relu_is_an_activation_name_resolving_to_lrelu() -> None:
    assert "leaky_relu" in ACTIVATION_NAMES and "lrelu" in ACTIVATION_NAMES
    assert ACTIVATIONS["leaky_relu"] is ACTIVATIONS["lrelu"]
    assert resolve_activation("leaky_relu", None, None) == resolve_activation("lrelu", None, None)
    assert resolve_activation("leaky_relu", 0.1, 1.0) == resolve_activation("lrelu", 0.1, 1.0)


def test_bias_act_leaky_relu_matches_torch() -> None:
    x, b = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    expected = torch.nn.functional.leaky_relu(x + b.view(1, 3, 1, 1), 0.2) * 2**0.5
    assert_close(bias_act(x, b, act="leaky_relu"), expected)
    assert_close(bias_act(x, b, act="leaky_relu"), bias_act(x, b, act="lrelu"))
    assert_close(
        bias_act(x, b, act="leaky_relu", alpha=0.1, gain=1.0),
        bias_act(x, b, act="lrelu", alpha=0.1, gain=1.0),
    )


def test_fused_functions_accept_leaky_relu() -> None:
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    strength, noise = torch.tensor(0.5, dtype=torch.float64), torch.randn(2, 1, 4, 4, dtype=torch.float64)
    assert_close(
        inject_noise(x, strength, noise, act="leaky_relu"), inject_noise(x, strength, noise, act="lrelu")
    )
    assert_close(instance_norm_act(x, act="leaky_relu"), instance_norm_act(x, act="lrelu"))


def test_modules_accept_leaky_relu() -> None:
    x = torch.randn(2, 4, 5, 5)
    for make in (
        lambda act: EqualConv2d(4, 8, 3, 1, 1, act=act),
        lambda act: BiasAct(4, act=act),
    ):
        torch.manual_seed(0)
        a = make("leaky_relu")
        torch.manual_seed(0)
        b = make("lrelu")
        torch.testing.assert_close(a(x), b(x))
    torch.manual_seed(0)
    a_lin = EqualLinear(5, 3, act="leaky_relu")
    torch.manual_seed(0)
    b_lin = EqualLinear(5, 3, act="lrelu")
    torch.testing.assert_close(a_lin(x), b_lin(x))
    torch.manual_seed(0)
    heads_a = MSGGeneratorHeads([4], act="leaky_relu")
    torch.manual_seed(0)
    heads_b = MSGGeneratorHeads([4], act="lrelu")
    torch.testing.assert_close(heads_a([x])[0], heads_b([x])[0])


def test_unknown_activation_lists_every_name() -> None:
    with pytest.raises(ValueError, match="leaky_relu") as info:
        bias_act(torch.randn(2, 3), act="leakyrelu")  # type: ignore[arg-type]
    assert "got 'leakyrelu'" in str(info.value)
