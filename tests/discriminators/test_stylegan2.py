"""StyleGAN2Discriminator against StyleGAN2's discriminator written out in float64 with tests/formulas.py."""

from __future__ import annotations

import math
from typing import Any, Optional

import formulas
import pytest
import torch
from helpers import assert_close

from ganblocks import R1Penalty, StyleGAN2Discriminator
from ganblocks.layers import StyleGAN2Conv2d

F64 = torch.float64
TAPS = [1.0, 3.0, 3.0, 1.0]
# channels min(64 // r, 8): 4 at 16x16, 8 at 8x8 and 4x4.
SMALL: dict[str, Any] = dict(channel_base=64, channel_max=8, num_mapping_layers=2, mbstd_group_size=2)


def randomize(module: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            if not name.endswith("resample_filter"):
                t.copy_(0.5 * torch.randn(t.shape, generator=g, dtype=F64))


def ref_conv(
    layer: StyleGAN2Conv2d, x: torch.Tensor, *, gain: float = 1.0, clamp: Optional[float] = None
) -> torch.Tensor:
    """Weight / sqrt(fan_in), FIR-then-strided for down=2, + bias, gain · act_gain · act, clamp · gain."""
    k = layer.weight.shape[-1]
    scale = torch.full((x.shape[0], x.shape[1]), 1 / math.sqrt(x.shape[1] * k * k), dtype=F64)
    y = formulas.modulated_conv2d(
        x, layer.weight, scale, demodulate=False, taps=TAPS, down=layer.down, padding=k // 2
    )
    act = layer.act
    act_gain = math.sqrt(2) if act == "lrelu" else 1.0
    c = None if clamp is None else clamp * gain
    return formulas.bias_act(y, layer.bias, act, gain=act_gain * gain, clamp=c)


def downsample(img: torch.Tensor) -> torch.Tensor:
    return formulas.resample2d(img, formulas.separable_filter(TAPS), down=2, pad=(1, 1))


def ref_discriminator(D: StyleGAN2Discriminator, img: torch.Tensor, c: Optional[torch.Tensor],
                      clamp: Optional[float] = None) -> torch.Tensor:  # fmt: skip
    x: Optional[torch.Tensor] = None
    image: Optional[torch.Tensor] = img.double()
    for block in D.blocks():
        if block.fromrgb is not None:
            assert image is not None
            y = ref_conv(block.fromrgb, image, clamp=clamp)
            x = y if x is None else x + y
            image = downsample(image) if block.architecture == "skip" else None
        assert x is not None
        if block.skip is not None:
            s = ref_conv(block.skip, x, gain=math.sqrt(0.5))
            x = s + ref_conv(
                block.conv1, ref_conv(block.conv0, x, clamp=clamp), gain=math.sqrt(0.5), clamp=clamp
            )
        else:
            x = ref_conv(block.conv1, ref_conv(block.conv0, x, clamp=clamp), clamp=clamp)
    head = D.b4
    assert x is not None
    if head.fromrgb is not None:
        assert image is not None
        x = x + ref_conv(head.fromrgb, image)
    x = formulas.minibatch_stddev(x, 2, 1)
    x = ref_conv(head.conv, x, clamp=clamp).flatten(1)
    x = formulas.bias_act(formulas.equal_linear(x, head.fc.weight, head.fc.bias, lr=1.0), None, "lrelu")
    out = formulas.equal_linear(x, head.out.weight, head.out.bias, lr=1.0)
    if c is None:
        return out
    assert D.mapping is not None and D.mapping.embed is not None
    cmap = formulas.pixel_norm(formulas.equal_linear(c, D.mapping.embed.weight, D.mapping.embed.bias, lr=1.0))
    for layer in D.mapping.layers:
        cmap = formulas.bias_act(
            formulas.equal_linear(cmap, layer.weight, layer.bias, lr=0.01), None, "lrelu"
        )
    # Projection: <out(h), cmap> / sqrt(cmap_dim).
    return (out * cmap).sum(dim=1, keepdim=True) / math.sqrt(cmap.shape[1])


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("c_dim", [0, 3])
def test_discriminator_matches_the_formula(architecture: Any, c_dim: int) -> None:
    D = StyleGAN2Discriminator(c_dim, 16, 3, architecture=architecture, conv_clamp=1.5, **SMALL).to(F64)
    randomize(D)
    img = torch.randn(4, 3, 16, 16, dtype=F64)
    c = torch.randn(4, c_dim, dtype=F64) if c_dim else None
    logits = D(img, c)
    assert logits.shape == (4, 1) and logits.dtype == F64
    assert_close(logits, ref_discriminator(D, img, c, clamp=1.5))


def test_cmap_dim_default_and_projection() -> None:
    D = StyleGAN2Discriminator(3, 16, 3, **SMALL)
    assert D.cmap_dim == 8 and D.b4.out.out_features == 8
    D = StyleGAN2Discriminator(3, 16, 3, cmap_dim=5, **SMALL)
    assert D.mapping is not None and D.mapping.w_dim == 5 and D.mapping.w_avg is None
    assert StyleGAN2Discriminator(0, 16, 3, cmap_dim=5, **SMALL).b4.out.out_features == 1


def test_r1_reaches_every_parameter() -> None:
    D = StyleGAN2Discriminator(3, 16, 3, architecture="resnet", **SMALL).to(F64)
    randomize(D)
    img = torch.randn(4, 3, 16, 16, dtype=F64)
    c = torch.randn(4, 3, dtype=F64)
    penalty = R1Penalty(gamma=1.0)(lambda x: D(x, c), img)
    penalty.backward()
    assert penalty.item() > 0
    for name, p in D.named_parameters():
        assert p.grad is not None, name
    # The output layer's bias adds a constant to the logit and so leaves the input gradient unchanged.
    assert D.b4.out.bias is not None and D.b4.out.bias.grad is not None
    assert D.b4.out.bias.grad.abs().sum() == 0
    grad = D.blocks()[0].conv0.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_r1_parameter_gradient_is_the_finite_difference() -> None:
    """The double backward through every layer: d/dθ ‖∇ₓD(x)‖² against a central difference in θ."""
    D = StyleGAN2Discriminator(0, 8, 1, channel_base=16, channel_max=2, mbstd_group_size=2).to(F64)
    randomize(D)
    img = torch.randn(2, 1, 8, 8, dtype=F64, requires_grad=True)
    theta = D.blocks()[0].conv0.weight

    def r1() -> torch.Tensor:
        (grad,) = torch.autograd.grad(D(img).sum(), img, create_graph=True)
        return grad.square().sum()

    (analytic,) = torch.autograd.grad(r1(), theta)
    eps = 1e-6
    for idx in [(0, 0, 0, 0), (1, 0, 2, 1)]:
        with torch.no_grad():
            theta[idx] += eps
        plus = r1().item()
        with torch.no_grad():
            theta[idx] -= 2 * eps
        minus = r1().item()
        with torch.no_grad():
            theta[idx] += eps
        assert analytic[idx].item() == pytest.approx((plus - minus) / (2 * eps), rel=1e-6, abs=1e-8)


def test_freeze_layers_counts_as_stylegan2_ada() -> None:
    D = StyleGAN2Discriminator(0, 16, 3, architecture="resnet", freeze_layers=5, **SMALL)
    # b16: fromrgb, conv0, conv1, skip (4 layers); b8: conv0 is the 5th.
    frozen = sorted(name for name, p in D.named_parameters() if not p.requires_grad)
    assert frozen == sorted(
        ["b16.fromrgb.weight", "b16.fromrgb.bias", "b16.conv0.weight", "b16.conv0.bias", "b16.conv1.weight",
         "b16.conv1.bias", "b16.skip.weight", "b8.conv0.weight", "b8.conv0.bias"]
    )  # fmt: skip


def test_state_dict_keys_are_stylegan2_adas() -> None:
    D = StyleGAN2Discriminator(3, 8, 3, architecture="skip", **SMALL)
    conv = ["weight", "bias", "resample_filter"]
    expected = (
        ["b8.resample_filter"]
        + [f"b8.{layer}.{k}" for layer in ("fromrgb", "conv0", "conv1") for k in conv]
        + ["mapping.embed.weight", "mapping.embed.bias"]
        + ["mapping.fc0.weight", "mapping.fc0.bias", "mapping.fc1.weight", "mapping.fc1.bias"]
        + [f"b4.{layer}.{k}" for layer in ("fromrgb", "conv") for k in conv]
        + ["b4.fc.weight", "b4.fc.bias", "b4.out.weight", "b4.out.bias"]
    )
    sd = D.state_dict()
    assert list(sd) == expected
    assert sd["b8.fromrgb.weight"].shape == (8, 3, 1, 1)
    assert sd["b8.conv1.weight"].shape == (8, 8, 3, 3)
    assert sd["b4.conv.weight"].shape == (8, 9, 3, 3)  # + 1 stddev channel
    assert sd["b4.fc.weight"].shape == (8, 8 * 4 * 4)
    assert sd["b4.out.weight"].shape == (8, 8)  # to cmap_dim


def test_which_blocks_run_in_reduced_precision() -> None:
    D = StyleGAN2Discriminator(0, 32, 3, channel_base=128, channel_max=8, num_fp16_res=2)
    assert [b.resolution for b in D.blocks() if b.use_fp16] == [32, 16]
    reference = StyleGAN2Discriminator(0, 32, 3, channel_base=128, channel_max=8)
    reference.load_state_dict(D.state_dict())
    img = torch.randn(4, 3, 32, 32)
    assert torch.equal(D(img), reference(img))  # CPU: the parameters' dtype throughout


def test_from_stylegan2_ada_kwargs() -> None:
    kwargs = {
        "c_dim": 2, "img_resolution": 16, "img_channels": 3, "architecture": "orig", "channel_base": 64,
        "channel_max": 8, "num_fp16_res": 1, "conv_clamp": 256, "cmap_dim": None,
        "block_kwargs": {"freeze_layers": 1}, "mapping_kwargs": {"num_layers": 1},
        "epilogue_kwargs": {"mbstd_group_size": 8, "mbstd_num_channels": 2},
    }  # fmt: skip
    D = StyleGAN2Discriminator.from_stylegan2_ada_kwargs(kwargs)
    assert D.mapping is not None and D.mapping.num_layers == 1 and D.cmap_dim == 8
    assert D.b4.mbstd is not None and (D.b4.mbstd.group_size, D.b4.mbstd.num_channels) == (8, 2)
    b16, b8 = D.blocks()
    assert b16.fromrgb is not None and not b16.fromrgb.weight.requires_grad and b16.conv0.weight.requires_grad
    assert b16.use_fp16 and not b8.use_fp16 and b16.conv0.clamp == 256
    with pytest.raises(ValueError, match=r"epilogue_kwargs has keys that ganblocks does not know: \['x'\]"):
        StyleGAN2Discriminator.from_stylegan2_ada_kwargs({**kwargs, "epilogue_kwargs": {"x": 1}})
    with pytest.raises(ValueError, match="activation"):
        StyleGAN2Discriminator.from_stylegan2_ada_kwargs({**kwargs, "block_kwargs": {"activation": "relu"}})


def test_bad_inputs() -> None:
    D = StyleGAN2Discriminator(0, 16, 3, **SMALL)
    with pytest.raises(ValueError, match="batch"):
        D(torch.randn(3, 3, 16, 16))  # not a multiple of mbstd_group_size
    with pytest.raises(ValueError, match=r"img must have shape \(N, 3, 16, 16\), got \(2, 3, 8, 8\)"):
        D(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="img_resolution must be at least 8"):
        StyleGAN2Discriminator(0, 4, 3)
    with pytest.raises(ValueError, match=r"c must have shape"):
        StyleGAN2Discriminator(2, 16, 3, **SMALL)(torch.randn(2, 3, 16, 16), torch.randn(2, 3))


def test_torch_compile_fullgraph_and_repr() -> None:
    D = StyleGAN2Discriminator(2, 8, 3, **SMALL)
    img, c = torch.randn(2, 3, 8, 8), torch.randn(2, 2)
    # aot_eager traces the whole graph (dynamo + AOTAutograd) without inductor's C++ build, minutes on CPU.
    assert_close(torch.compile(D, fullgraph=True, backend="aot_eager")(img, c), D(img, c))
    text = repr(D)
    assert "c_dim=2, img_resolution=8, img_channels=3, channel_base=64" in text and "cmap_dim=8" in text
    assert "(b4): StyleGAN2DiscriminatorEpilogue(" in text
    assert "8, cmap_dim=8, resolution=4, img_channels=3, architecture='resnet'" in text
