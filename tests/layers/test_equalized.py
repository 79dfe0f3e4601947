"""EqualLinear, EqualConv2d and the equalized_lr hook against the equalized-learning-rate formulas."""

from __future__ import annotations

import math
from typing import Any, Union

import formulas
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, grad_of, original
from torch import nn
from torch.func import functional_call
from torch.nn.utils import parametrize

from ganblocks.layers import (
    Activation,
    EqualConv2d,
    EqualizedLR,
    EqualLinear,
    equalized_lr,
    remove_equalized_lr,
)
from ganblocks.ops import Backend, use_backend

F64 = torch.float64


# ----------------------------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("act", ["linear", "lrelu"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("lr", "gain"), [(1.0, 1.0), (0.01, 1.0), (0.5, 2.0)])
@pytest.mark.parametrize("lead", [(5,), (2, 3)])
def test_equal_linear_matches_formula(
    act: Activation, bias: bool, lr: float, gain: float, lead: tuple[int, ...]
) -> None:
    layer = EqualLinear(
        6, 4, bias=bias, bias_init=0.3, lr_multiplier=lr, weight_gain=gain, act=act, dtype=F64
    )
    if bias:
        with torch.no_grad():
            assert layer.bias is not None
            layer.bias.normal_()
    x = torch.randn(*lead, 6, dtype=F64)
    w_eff = layer.weight * (gain * lr / math.sqrt(6))
    y = x @ w_eff.T
    if bias:
        y = y + layer.bias * lr  # type: ignore[operator]
    assert_close(layer(x), formulas.act(y, act))


def test_equal_linear_act_options_match_formula() -> None:
    layer = EqualLinear(5, 3, act="lrelu", alpha=0.1, act_gain=3.0, clamp=0.7, lr_multiplier=0.1, dtype=F64)
    x = 3 * torch.randn(8, 5, dtype=F64)
    y = x @ (layer.weight * 0.1 / math.sqrt(5)).T + 0.1 * layer.bias  # type: ignore[operator]
    expected = formulas.act(y, "lrelu", alpha=0.1, gain=3.0, clamp=0.7)
    assert_close(layer(x), expected)
    assert (expected.abs() == 0.7).any()  # the clamp is exercised


@pytest.mark.parametrize("act", ["linear", "lrelu", "tanh"])
@pytest.mark.parametrize(("lr", "gain"), [(1.0, 1.0), (0.01, math.sqrt(2))])
@pytest.mark.parametrize("bias", [True, False])
def test_equal_conv2d_matches_formula(act: Activation, lr: float, gain: float, bias: bool) -> None:
    conv = EqualConv2d(
        3,
        4,
        (3, 2),
        stride=2,
        padding=(1, 0),
        bias=bias,
        lr_multiplier=lr,
        weight_gain=gain,
        act=act,
        dtype=F64,
    )
    if bias:
        with torch.no_grad():
            assert conv.bias is not None
            conv.bias.normal_()
    x = torch.randn(2, 3, 7, 6, dtype=F64)
    w_eff = conv.weight * (gain * lr / math.sqrt(3 * 3 * 2))
    y = F.conv2d(x, w_eff, stride=2, padding=(1, 0))
    if bias:
        assert conv.bias is not None
        y = y + (conv.bias * lr).reshape(1, -1, 1, 1)
    assert_close(conv(x), formulas.act(y, act))


def test_equal_conv2d_clamp_and_gains_are_separate() -> None:
    conv = EqualConv2d(2, 3, 1, weight_gain=2.0, act="lrelu", act_gain=0.5, clamp=0.25, dtype=F64)
    x = torch.randn(1, 2, 4, 4, dtype=F64)
    assert conv.bias is not None
    y = F.conv2d(x, conv.weight * (2.0 / math.sqrt(2))) + conv.bias.reshape(1, -1, 1, 1)
    assert_close(conv(x), formulas.act(y, "lrelu", gain=0.5, clamp=0.25))


# ------------------------------------------------------------------------------------------ initialization


@pytest.mark.parametrize("lr", [1.0, 0.01])
def test_init_weight_and_bias(lr: float) -> None:
    layer = EqualLinear(256, 128, bias_init=0.5, lr_multiplier=lr)
    # 32768 N(0, 1/lr²) draws: the sample std is within 2% of 1/lr with overwhelming probability.
    assert abs(layer.weight.std().item() * lr - 1.0) < 0.02
    assert abs(layer.weight.mean().item() * lr) < 0.02
    # StyleGAN2-ADA stores bias_init and multiplies by lr at run time.
    assert torch.equal(layer.bias, torch.full((128,), 0.5))  # type: ignore[arg-type]
    assert layer.weight_scale == pytest.approx(lr / 16)
    assert layer.bias_scale == lr


@pytest.mark.parametrize("lr", [1.0, 0.01])
def test_unit_output_std_at_init(lr: float) -> None:
    # The point of equalized LR: unit-variance inputs give unit-variance outputs whatever fan-in and lr.
    lin = EqualLinear(512, 256, lr_multiplier=lr)
    y = lin(torch.randn(64, 512))
    assert abs(y.std().item() - 1.0) < 0.05
    conv = EqualConv2d(64, 64, 3, lr_multiplier=lr)  # no padding: every output sees 3*3*64 inputs
    y = conv(torch.randn(4, 64, 10, 10))
    assert abs(y.std().item() - 1.0) < 0.05
    # lrelu with its default √2 gain keeps the second moment at 2 * (1 + 0.2²) / 2 = 1.04.
    y = EqualConv2d(64, 64, 3, act="lrelu")(torch.randn(4, 64, 10, 10))
    assert abs(y.square().mean().sqrt().item() - math.sqrt(1.04)) < 0.05


@pytest.mark.parametrize("lr", [1.0, 0.1])
def test_effective_learning_rate(lr: float) -> None:
    # With W = c·V (c = gain·lr/√fan_in), dL/dV = c·dL/dW, so an SGD step of η on V moves W by -η·c²·dL/dW.
    layer = EqualLinear(8, 4, lr_multiplier=lr, weight_gain=2.0, dtype=F64)
    c = 2.0 * lr / math.sqrt(8)
    x = torch.randn(5, 8, dtype=F64)
    target = torch.randn(5, 4, dtype=F64)
    w_eff = (layer.weight.detach() * c).requires_grad_()
    assert layer.bias is not None
    b_eff = (layer.bias.detach() * lr).requires_grad_()
    F.mse_loss(x @ w_eff.T + b_eff, target).backward()
    F.mse_loss(layer(x), target).backward()
    assert w_eff.grad is not None and b_eff.grad is not None
    assert_close(grad_of(layer.weight), c * grad_of(w_eff))
    assert_close(grad_of(layer.bias), lr * grad_of(b_eff))
    eta = 0.3
    before = layer.weight.detach() * c
    torch.optim.SGD(layer.parameters(), lr=eta).step()
    assert_close(layer.weight.detach() * c - before, -eta * c**2 * w_eff.grad)


# ------------------------------------------------------------------------------------------------- hook


def _copy_stored(
    hooked: Union[nn.Linear, nn.Conv2d], ref: Union[EqualLinear, EqualConv2d], lr: float
) -> None:
    assert hooked.bias is not None and ref.bias is not None
    with torch.no_grad():
        original(hooked).copy_(ref.weight)
        if lr != 1.0:
            original(hooked, "bias").copy_(ref.bias)
        else:
            hooked.bias.copy_(ref.bias)


@pytest.mark.parametrize(("lr", "gain"), [(1.0, 1.0), (0.01, 2.0)])
def test_hook_on_linear_equals_equal_linear(lr: float, gain: float) -> None:
    ref = EqualLinear(6, 3, lr_multiplier=lr, weight_gain=gain, dtype=F64)
    with torch.no_grad():
        assert ref.bias is not None
        ref.bias.normal_()
    hooked = equalized_lr(nn.Linear(6, 3, dtype=F64), lr_multiplier=lr, weight_gain=gain)
    _copy_stored(hooked, ref, lr)
    x = torch.randn(4, 6, dtype=F64)
    assert_close(hooked(x), ref(x))
    assert parametrize.is_parametrized(hooked, "bias") == (lr != 1.0)


@pytest.mark.parametrize(("lr", "gain"), [(1.0, math.sqrt(2)), (0.1, 1.0)])
def test_hook_on_conv2d_equals_equal_conv2d(lr: float, gain: float) -> None:
    ref = EqualConv2d(3, 5, 3, stride=2, padding=1, lr_multiplier=lr, weight_gain=gain, dtype=F64)
    with torch.no_grad():
        assert ref.bias is not None
        ref.bias.normal_()
    hooked = equalized_lr(
        nn.Conv2d(3, 5, 3, stride=2, padding=1, dtype=F64), lr_multiplier=lr, weight_gain=gain
    )
    _copy_stored(hooked, ref, lr)
    x = torch.randn(2, 3, 6, 6, dtype=F64)
    assert_close(hooked(x), ref(x))


def test_hook_fan_in_of_conv1d_3d_and_groups() -> None:
    for module, fan_in in [
        (nn.Conv1d(4, 2, 5), 4 * 5),
        (nn.Conv3d(2, 2, (1, 2, 3)), 2 * 6),
        (nn.Conv2d(4, 6, 3, groups=2), 2 * 9),
    ]:
        equalized_lr(module, weight_gain=3.0)
        p = module.parametrizations.weight[0]  # type: ignore[union-attr, index]
        assert isinstance(p, EqualizedLR) and p.fan_in == fan_in
        assert_close(module.weight, original(module) * (3.0 / math.sqrt(fan_in)))


def test_hook_reinit_semantics() -> None:
    lin = equalized_lr(nn.Linear(300, 200), lr_multiplier=0.01)
    stored = original(lin)
    assert abs(stored.std().item() * 0.01 - 1.0) < 0.02  # N(0, 1/lr²), not nn.Linear's uniform init
    assert torch.equal(original(lin, "bias"), torch.zeros(200))
    plain = nn.Linear(6, 3)
    x = torch.randn(4, 6)
    before = plain(x)
    kept = equalized_lr(plain, lr_multiplier=0.01, weight_gain=2.0, reinit=False)
    assert_close(kept(x), before)
    # assigning an effective weight stores it divided by the scale (right_inverse)
    kept.weight = torch.ones(3, 6)
    assert_close(original(kept), torch.full((3, 6), math.sqrt(6) / 0.02))


@pytest.mark.parametrize("lr", [1.0, 0.01])
def test_remove_restores_plain_parameters(lr: float) -> None:
    conv = equalized_lr(nn.Conv2d(2, 3, 3), lr_multiplier=lr)
    x = torch.randn(1, 2, 5, 5)
    before = conv(x)
    assert conv.bias is not None
    effective_w, effective_b = conv.weight.detach().clone(), conv.bias.detach().clone()
    out = remove_equalized_lr(conv)
    assert out is conv
    assert not parametrize.is_parametrized(conv)
    assert type(conv.weight) is nn.Parameter and type(conv.bias) is nn.Parameter
    assert torch.equal(conv.weight, effective_w) and torch.equal(conv.bias, effective_b)
    assert_close(conv(x), before)
    assert set(conv.state_dict()) == {"weight", "bias"}


def test_state_dict_round_trip() -> None:
    a, b = EqualConv2d(2, 3, 3, lr_multiplier=0.1, bias_init=1.0), EqualConv2d(2, 3, 3, lr_multiplier=0.1)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 2, 4, 4)
    assert torch.equal(b(x), a(x))
    h1 = equalized_lr(nn.Linear(4, 2), lr_multiplier=0.1)
    h2 = equalized_lr(nn.Linear(4, 2), lr_multiplier=0.1)
    with torch.no_grad():
        original(h1, "bias").normal_()
    assert set(h1.state_dict()) == {"parametrizations.weight.original", "parametrizations.bias.original"}
    h2.load_state_dict(h1.state_dict())
    x = torch.randn(3, 4)
    assert torch.equal(h2(x), h1(x))


# ----------------------------------------------------------------------------------------------- autograd


def _check_grads(module: nn.Module, x: torch.Tensor) -> None:
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in module.named_parameters()]

    def f(x: torch.Tensor, *ps: torch.Tensor) -> Any:
        return functional_call(module, dict(zip(names, ps)), (x,))

    inputs = (x.requires_grad_(), *params)
    # fast_mode checks random projections of the Jacobian: still exact to fail, and ~10x cheaper for convs.
    assert torch.autograd.gradcheck(f, inputs, fast_mode=True)
    assert torch.autograd.gradgradcheck(f, inputs, fast_mode=True)


def test_gradcheck_equal_linear(backend: Backend, device: torch.device) -> None:
    for act in ("linear", "lrelu"):
        layer = EqualLinear(3, 2, lr_multiplier=0.5, weight_gain=2.0, act=act, dtype=F64, device=device)
        with use_backend(backend):
            _check_grads(layer, torch.randn(2, 3, dtype=F64, device=device))


def test_gradcheck_equal_conv2d(backend: Backend, device: torch.device) -> None:
    conv = EqualConv2d(2, 2, 2, padding=1, lr_multiplier=0.5, act="softplus", dtype=F64, device=device)
    with use_backend(backend):
        _check_grads(conv, torch.randn(1, 2, 2, 2, dtype=F64, device=device))


def test_gradcheck_hooked_conv2d() -> None:
    # The parametrization is plain autograd: R1/WGAN-GP's double backward reaches the stored weight.
    conv = equalized_lr(nn.Conv2d(2, 2, 2, dtype=F64), lr_multiplier=0.5, weight_gain=2.0)
    _check_grads(conv, torch.randn(1, 2, 3, 3, dtype=F64))


def test_hooked_module_compiles_fullgraph() -> None:
    conv = equalized_lr(nn.Conv2d(2, 3, 3, padding=1), lr_multiplier=0.1)
    x = torch.randn(2, 2, 4, 4)
    compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")
    assert_close(compiled(x), conv(x))


# ------------------------------------------------------------------------------------- dtypes and layout


@pytest.mark.parametrize("act", ["linear", "lrelu"])
def test_channels_last_preserved(act: Activation) -> None:
    conv = EqualConv2d(4, 6, 3, padding=1, act=act)
    x = torch.randn(2, 4, 5, 5).to(memory_format=torch.channels_last)
    y = conv(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, conv(x.contiguous()))


@pytest.mark.parametrize("act", ["linear", "lrelu"])
def test_bfloat16_forward(act: Activation) -> None:
    lin = EqualLinear(16, 8, act=act, bias_init=0.5)
    conv = EqualConv2d(4, 6, 3, padding=1, act=act, bias_init=0.5)
    x1, x2 = torch.randn(4, 16), torch.randn(2, 4, 5, 5)
    for layer, x in ((lin, x1), (conv, x2)):
        expected = layer(x)
        y = layer(x.bfloat16())  # float32 parameters serve a bfloat16 input
        assert y.dtype == torch.bfloat16
        # bf16 inputs and weights with a 16- or 36-term fp32-accumulated sum: a few bf16 ulps
        assert_close(y, expected, torch.bfloat16, scale=3)
        y = layer.to(torch.bfloat16)(x.bfloat16())
        assert y.dtype == torch.bfloat16
        assert_close(y, expected, torch.bfloat16, scale=3)


# --------------------------------------------------------------------------------------------------- repr


def test_repr() -> None:
    assert repr(EqualLinear(4, 3)) == (
        "EqualLinear(in_features=4, out_features=3, bias=True, lr_multiplier=1.0, weight_gain=1.0, act=linear)"
    )
    assert repr(EqualLinear(4, 3, bias_init=1.0, lr_multiplier=0.01, act="lrelu", clamp=256.0)) == (
        "EqualLinear(in_features=4, out_features=3, bias=True, bias_init=1.0, lr_multiplier=0.01, weight_gain=1.0, "
        "act=lrelu, clamp=256.0)"
    )
    assert repr(EqualConv2d(3, 8, 3, padding=1, bias=False, act="lrelu", act_gain=1.0)) == (
        "EqualConv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False, lr_multiplier=1.0, "
        "weight_gain=1.0, act=lrelu, act_gain=1.0)"
    )
    hooked = equalized_lr(nn.Linear(4, 2), lr_multiplier=0.5)
    assert "EqualizedLR(scale=0.25, lr_multiplier=0.5, weight_gain=1.0, fan_in=4)" in repr(hooked)


# ------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_features": 0}, ValueError, "in_features must be an int >= 1, got 0"),
        ({"out_features": 2.0}, ValueError, "out_features must be an int >= 1, got 2.0"),
        ({"lr_multiplier": 0.0}, ValueError, "lr_multiplier must be > 0, got 0.0"),
        ({"weight_gain": -1.0}, ValueError, "weight_gain must be > 0, got -1.0"),
        ({"act": "gelu"}, ValueError, "act must be one of"),
        ({"clamp": -1.0}, ValueError, "clamp must be None or >= 0, got -1.0"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    args = {"in_features": 4, "out_features": 2, **kwargs}
    with pytest.raises(error, match=match):
        EqualLinear(**args)
    conv_args = {
        "in_channels": args.pop("in_features"),
        "out_channels": args.pop("out_features"),
        "kernel_size": 3,
        **args,
    }
    with pytest.raises(
        error, match=match.replace("in_features", "in_channels").replace("out_features", "out_channels")
    ):
        EqualConv2d(**conv_args)


def test_bad_conv_geometry() -> None:
    with pytest.raises(
        ValueError, match=r"kernel_size must be an int or a pair of ints, each >= 1, got \(3, 0\)"
    ):
        EqualConv2d(2, 2, (3, 0))
    with pytest.raises(ValueError, match="stride must be an int or a pair of ints, each >= 1, got 0"):
        EqualConv2d(2, 2, 3, stride=0)
    with pytest.raises(ValueError, match="padding must be an int or a pair of ints, each >= 0, got -1"):
        EqualConv2d(2, 2, 3, padding=-1)


def test_bad_forward_inputs() -> None:
    with pytest.raises(ValueError, match=r"x must have shape \(\*, in_features\) = \(\*, 4\), got \(2, 3\)"):
        EqualLinear(4, 2)(torch.randn(2, 3))
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor, got dtype torch.int64"):
        EqualLinear(4, 2)(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor, got list"):
        EqualLinear(4, 2)([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=r"x must have 4 dimensions, got shape \(2, 5, 5\)"):
        EqualConv2d(2, 3, 3)(torch.randn(2, 5, 5))
    with pytest.raises(ValueError, match=r"in_channels = 2, got \(1, 3, 5, 5\)"):
        EqualConv2d(2, 3, 3)(torch.randn(1, 3, 5, 5))


def test_bad_hook_usage() -> None:
    with pytest.raises(
        TypeError, match=r"module must be an nn.Linear or nn.Conv1d/nn.Conv2d/nn.Conv3d, got Embedding"
    ):
        equalized_lr(nn.Embedding(3, 4))
    with pytest.raises(TypeError, match="got ConvTranspose2d"):
        equalized_lr(nn.ConvTranspose2d(3, 4, 3))
    with pytest.raises(
        ValueError, match="name must name a weight tensor of Linear with at least 2 dimensions, got 'bias'"
    ):
        equalized_lr(nn.Linear(3, 4), name="bias")
    with pytest.raises(ValueError, match="lr_multiplier must be > 0, got 0"):
        equalized_lr(nn.Linear(3, 4), lr_multiplier=0)
    lin = equalized_lr(nn.Linear(3, 4))
    with pytest.raises(ValueError, match=r"weight of Linear is already parametrized \(\['EqualizedLR'\]\)"):
        equalized_lr(lin)
    with pytest.raises(ValueError, match="equalized_lr of 'weight' not found in Conv2d"):
        remove_equalized_lr(nn.Conv2d(2, 2, 1))


def test_equal_linear_reads_its_activation_attributes_at_call_time() -> None:
    # Changing act, act_gain or clamp after construction takes effect at the next call.
    layer = EqualLinear(8, 5, act="lrelu")
    x = torch.randn(4, 8)
    z = F.linear(x, layer.weight * layer.weight_scale, layer.bias)
    layer.clamp = 0.05
    assert_close(layer(x), (math.sqrt(2) * F.leaky_relu(z, 0.2)).clamp(-0.05, 0.05))
    layer.clamp = None
    layer.act_gain = 0.5
    assert_close(layer(x), 0.5 * F.leaky_relu(z, 0.2))
    layer.act = "linear"
    layer.act_gain = None
    assert_close(layer(x), z)


def test_hook_takes_name_positionally_like_spectral_norm() -> None:
    # torch.nn.utils.parametrizations.spectral_norm(module, name="weight", ...): the same call shape.
    torch.manual_seed(0)
    a = equalized_lr(nn.Conv2d(2, 3, 3), "weight", lr_multiplier=0.5, weight_gain=2.0)
    torch.manual_seed(0)
    b = equalized_lr(nn.Conv2d(2, 3, 3), name="weight", lr_multiplier=0.5, weight_gain=2.0)
    x = torch.randn(1, 2, 5, 5)
    assert torch.equal(a(x), b(x))
    assert_close(a.weight, original(a) * (2.0 * 0.5 / math.sqrt(2 * 3 * 3)))
    assert type(remove_equalized_lr(a, "weight").weight) is nn.Parameter
