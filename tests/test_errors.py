"""Bad input across the blocks: each error is a ValueError/TypeError naming the argument, what was expected
and what was received, raised where the caller can act on it (not deep inside a kernel or torch.normal)."""

from __future__ import annotations

import math
from typing import Any, Callable

import pytest
import torch

from ganblocks import (
    DiscriminatorOutput,
    MSGDiscriminator,
    MultiScaleDiscriminator,
    PatchDiscriminator,
)
from ganblocks.functional import adain, bias_act, image_pyramid, inject_noise, instance_norm_act, pixel_norm
from ganblocks.layers import (
    AdaIN,
    BiasAct,
    EqualConv2d,
    EqualLinear,
    MinibatchStdDev,
    NoiseInjection,
    PixelNorm,
)

NAN, INF = float("nan"), float("inf")


# --- hyperparameters that are not finite numbers -----------------------------------------------------------

_x4 = torch.ones(2, 3, 4, 4)
_s = torch.ones(2, 3)

NON_FINITE: list[tuple[str, Callable[[], Any], str]] = [
    ("EqualLinear lr_multiplier=inf", lambda: EqualLinear(4, 2, lr_multiplier=INF), "lr_multiplier must be a finite number, got inf"),
    ("EqualLinear lr_multiplier=nan", lambda: EqualLinear(4, 2, lr_multiplier=NAN), "lr_multiplier must be a finite number, got nan"),
    ("EqualLinear weight_gain=nan", lambda: EqualLinear(4, 2, weight_gain=NAN), "weight_gain must be a finite number, got nan"),
    ("EqualLinear alpha=nan", lambda: EqualLinear(4, 2, act="lrelu", alpha=NAN), "alpha must be a finite number, got nan"),
    ("EqualLinear act_gain=inf", lambda: EqualLinear(4, 2, act="lrelu", act_gain=INF), "act_gain must be a finite number, got inf"),
    ("EqualLinear bias_init=nan", lambda: EqualLinear(4, 2, bias_init=NAN), "bias_init must be a finite number, got nan"),
    ("EqualConv2d lr_multiplier=-inf", lambda: EqualConv2d(3, 2, 3, lr_multiplier=-INF), "lr_multiplier must be a finite number, got -inf"),
    ("EqualConv2d clamp=nan", lambda: EqualConv2d(3, 2, 3, clamp=NAN), "clamp must be None or a finite number"),
    ("BiasAct alpha=nan", lambda: BiasAct(3, act="lrelu", alpha=NAN), "alpha must be a finite number, got nan"),
    ("BiasAct gain=inf", lambda: BiasAct(3, gain=INF), "gain must be a finite number, got inf"),
    ("BiasAct clamp=inf", lambda: BiasAct(3, clamp=INF), r"clamp must be None or a finite number \(None disables it\), got inf"),
    ("BiasAct bias_init=inf", lambda: BiasAct(3, bias_init=INF), "bias_init must be a finite number, got inf"),
    ("PixelNorm eps=nan", lambda: PixelNorm(eps=NAN), "eps must be a finite number, got nan"),
    ("AdaIN eps=inf", lambda: AdaIN(3, 4, eps=INF), "eps must be a finite number, got inf"),
    ("pixel_norm eps=nan", lambda: pixel_norm(_x4, eps=NAN), "eps must be a finite number, got nan"),
    ("pixel_norm eps=inf", lambda: pixel_norm(_x4, eps=INF), "eps must be a finite number, got inf"),
    ("instance_norm_act eps=inf", lambda: instance_norm_act(_x4, eps=INF), "eps must be a finite number, got inf"),
    ("instance_norm_act alpha=nan", lambda: instance_norm_act(_x4, act="lrelu", alpha=NAN), "alpha must be a finite number, got nan"),
    ("adain eps=nan", lambda: adain(_x4, _s, _s, eps=NAN), "eps must be a finite number, got nan"),
    ("bias_act alpha=nan", lambda: bias_act(_x4, act="elu", alpha=NAN), "alpha must be a finite number, got nan"),
    ("bias_act gain=-inf", lambda: bias_act(_x4, gain=-INF), "gain must be a finite number, got -inf"),
    ("bias_act clamp=nan", lambda: bias_act(_x4, clamp=NAN), "clamp must be None or a finite number"),
    ("inject_noise gain=inf", lambda: inject_noise(_x4, torch.zeros(()), gain=INF), "gain must be a finite number, got inf"),
    ("inject_noise clamp=nan", lambda: inject_noise(_x4, torch.zeros(()), clamp=NAN), "clamp must be None or a finite number"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "match"), [pytest.param(c, m, id=i) for i, c, m in NON_FINITE])
def test_non_finite_hyperparameters_raise(call: Callable[[], Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_negative_clamp_and_eps_keep_their_messages() -> None:
    with pytest.raises(ValueError, match=r"clamp must be None or >= 0, got -1\.0"):
        bias_act(_x4, clamp=-1.0)
    with pytest.raises(ValueError, match=r"eps must be > 0, got -1e-05"):
        instance_norm_act(_x4, eps=-1e-5)
    with pytest.raises(TypeError, match="alpha must be a number, got str"):
        BiasAct(3, act="lrelu", alpha="0.2")  # type: ignore[arg-type]


# --- discriminators: one dtype rule for all -----------------------------------------------------------------


def _patch(equalized: bool) -> PatchDiscriminator:
    return PatchDiscriminator(3, num_layers=1, base_channels=4, equalized_lr=equalized)


def _multiscale(equalized: bool) -> MultiScaleDiscriminator:
    return MultiScaleDiscriminator(3, num_scales=2, num_layers=1, base_channels=4, equalized_lr=equalized)


def _msg(equalized: bool) -> MSGDiscriminator:
    return MSGDiscriminator(3, resolution=8, base_channels=8, equalized_lr=equalized, mbstd_group_size=2)


def _input(d: torch.nn.Module, dtype: torch.dtype, batch: int = 2) -> Any:
    x = torch.randn(
        batch,
        3,
        16 if not isinstance(d, MSGDiscriminator) else 8,
        16 if not isinstance(d, MSGDiscriminator) else 8,
    )
    return image_pyramid(x.to(dtype), 2) if isinstance(d, MSGDiscriminator) else x.to(dtype)


BUILDERS = [_patch, _multiscale, _msg]


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("equalized", [False, True])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_discriminator_input_dtype_must_match_parameters(
    build: Callable[[bool], torch.nn.Module], equalized: bool, dtype: torch.dtype
) -> None:
    # Plain convs used to fail in torch ("expected scalar type"), equalized ones to cast silently.
    d = build(equalized)
    name = "images\\[0\\]" if isinstance(d, MSGDiscriminator) else "x"
    with pytest.raises(
        TypeError,
        match=rf"{name} must have the dtype of {type(d).__name__}'s parameters \(torch\.float32\), got "
        rf"{dtype}; convert the input .* or the module \(\.to\({dtype}\)\), or run under torch\.autocast",
    ):
        d(_input(d, dtype))


@pytest.mark.parametrize("build", BUILDERS)
def test_discriminator_dtype_remedies_work(build: Callable[[bool], torch.nn.Module]) -> None:
    d = build(False)
    x64 = _input(d, torch.float64)
    out = d.double()(x64)
    assert isinstance(out, DiscriminatorOutput) and out.logits[0].dtype == torch.float64
    d.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = d(_input(d, torch.float32))
    assert low.logits[0].dtype == torch.bfloat16


# --- minibatch standard deviation: the error names what the caller can change -------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: PatchDiscriminator(3, num_layers=1, base_channels=4, mbstd_num_channels=1),
        lambda: MultiScaleDiscriminator(3, num_scales=2, num_layers=1, base_channels=4, mbstd_num_channels=1),
        lambda: MSGDiscriminator(3, resolution=8, base_channels=8),
    ],
)
def test_discriminator_group_error_suggests_its_own_option(build: Callable[[], torch.nn.Module]) -> None:
    d = build()
    with pytest.raises(ValueError) as info:
        d(_input(d, torch.float32, batch=6))
    message = str(info.value)
    assert message.startswith(
        "the batch size (6) must be divisible by the group size (4) of the minibatch standard deviation "
        "(mbstd_group_size=4)"
    )
    assert "mbstd_group_size=3" in message and "mbstd_group_size=None" in message
    assert "adjust_group_size" not in message  # the discriminators have no such option


def test_layer_group_error_suggests_adjust_group_size_which_it_has() -> None:
    x = torch.randn(6, 2, 3, 3)
    with pytest.raises(ValueError, match=r"group size \(4\).*adjust_group_size=True .*\(3\)"):
        MinibatchStdDev(group_size=4)(x)
    assert MinibatchStdDev(group_size=4, adjust_group_size=True)(x).shape == (6, 3, 3, 3)


def test_empty_batch_names_the_discriminator_input() -> None:
    d = _msg(True)
    with pytest.raises(
        ValueError,
        match=r"images\[0\] must have a non-empty batch: the minibatch standard deviation .* \(0, 3, 8, 8\)",
    ):
        d(_input(d, torch.float32, batch=0))
    p = PatchDiscriminator(3, num_layers=1, base_channels=4, mbstd_num_channels=1)
    with pytest.raises(ValueError, match=r"x must have a non-empty batch"):
        p(torch.zeros(0, 3, 16, 16))


# --- layers: the message shows what the caller passed ---------------------------------------------------------


def test_noise_injection_reports_the_callers_noise_shape() -> None:
    layer = NoiseInjection(2)
    x = torch.zeros(2, 2, 4, 4)
    with pytest.raises(
        ValueError,
        match=r"noise must have shape \(N, 1, H, W\) = \(2, 1, 4, 4\), got \(1, 1, 3, 3\); a \(1, 1, 4, 4\)",
    ):
        layer(x, torch.zeros(1, 1, 3, 3))  # used to report the expanded (2, 1, 3, 3)
    with pytest.raises(ValueError, match=r"got \(3, 1, 4, 4\)"):
        layer(x, torch.zeros(3, 1, 4, 4))
    with pytest.raises(ValueError, match=r"got \(4, 4\)"):
        layer(x, torch.zeros(4, 4))
    with torch.no_grad():
        layer.strength.fill_(2.0)
    shared = torch.full((1, 1, 4, 4), 0.5)
    assert torch.equal(layer(x, shared), torch.ones(2, 2, 4, 4))


def test_bias_act_module_blames_num_channels() -> None:
    with pytest.raises(
        ValueError, match=r"x must have num_channels = 3 entries along dim=1, got shape \(2, 5, 4\) with 5"
    ):
        BiasAct(3)(torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match=r"along dim=-1, got shape \(2, 5\) with 5"):
        BiasAct(3, dim=-1)(torch.zeros(2, 5))
    assert BiasAct(5, act="relu", gain=1.0, bias_init=-1.0)(torch.ones(2, 5, 4)).abs().sum().item() == 0.0


def test_equal_linear_nan_lr_multiplier_no_longer_reaches_torch_normal() -> None:
    with pytest.raises(ValueError, match="lr_multiplier must be a finite number, got nan"):
        EqualLinear(3, 3, lr_multiplier=math.nan)
    layer = EqualLinear(3, 3, lr_multiplier=0.01)
    assert torch.isfinite(layer(torch.ones(1, 3))).all()
