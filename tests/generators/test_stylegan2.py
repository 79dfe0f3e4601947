"""StyleGAN2Generator against StyleGAN2's synthesis written out in float64 with the formulas of tests/formulas.py."""

from __future__ import annotations

import math
from typing import Any, Optional

import formulas
import pytest
import torch
from helpers import assert_close

from ganblocks import PathLengthPenalty, StyleGAN2Generator
from ganblocks.generators import StyleGAN2SynthesisBlock, StyleGAN2SynthesisLayer, StyleGAN2ToRGB

F64 = torch.float64
TAPS = [1.0, 3.0, 3.0, 1.0]
# 8 channels at 4x4, 4 at 8x8.
SMALL: dict[str, Any] = dict(channel_base=32, channel_max=8, num_mapping_layers=2)


def randomize(module: torch.nn.Module, seed: int = 0) -> None:
    """Every parameter and buffer but the filters random, so that biases, noise strengths, noise maps and
    w_avg all take part."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            if not name.endswith("resample_filter"):
                t.copy_(0.5 * torch.randn(t.shape, generator=g, dtype=F64))


def ref_layer(layer: StyleGAN2SynthesisLayer, x: torch.Tensor, w: torch.Tensor, *, noise: bool,
              gain: float = 1.0, clamp: Optional[float] = None) -> torch.Tensor:  # fmt: skip
    """Modulate, demodulate, convolve (up to 2× with the FIR filter), + strength · noise_const + bias,
    √2·gain·lrelu, clamp to ±clamp·gain."""
    styles = formulas.equal_linear(w, layer.affine.weight, layer.affine.bias, lr=1.0)
    y = formulas.modulated_conv2d(x, layer.weight, styles, demodulate=True, taps=TAPS, up=layer.up, padding=1)
    if noise:
        assert layer.noise_const is not None and layer.noise_strength is not None
        y = y + layer.noise_strength.detach() * layer.noise_const.reshape(1, 1, *y.shape[2:])
    c = None if clamp is None else clamp * gain
    return formulas.bias_act(y, layer.bias, "lrelu", gain=math.sqrt(2) * gain, clamp=c)


def ref_torgb(
    torgb: StyleGAN2ToRGB, x: torch.Tensor, w: torch.Tensor, clamp: Optional[float]
) -> torch.Tensor:
    """Modulated 1×1 convolution without demodulation, styles / sqrt(C_in), + bias, clamp."""
    styles = formulas.equal_linear(w, torgb.affine.weight, torgb.affine.bias, lr=1.0) / math.sqrt(x.shape[1])
    y = formulas.modulated_conv2d(x, torgb.weight, styles, demodulate=False, taps=TAPS)
    return formulas.bias_act(y, torgb.bias, clamp=clamp)


def upsample(img: torch.Tensor) -> torch.Tensor:
    """Zero insertion and the [1, 3, 3, 1] filter with gain 4, padded (2, 1): the size doubles."""
    return formulas.resample2d(img, formulas.separable_filter(TAPS), up=2, pad=(2, 1), gain=4.0)


def ref_block(block: StyleGAN2SynthesisBlock, x: Optional[torch.Tensor], img: Optional[torch.Tensor],
              ws: torch.Tensor, *, noise: bool, clamp: Optional[float]) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    k = 0
    if block.const is not None:
        x = block.const.detach().double().expand(ws.shape[0], -1, -1, -1)
        x = ref_layer(block.conv1, x, ws[:, 0], noise=noise, clamp=clamp)
        k = 1
    else:
        assert x is not None and block.conv0 is not None
        if block.skip is not None:  # 1x1 upsampling convolution, no bias, gain sqrt(1/2)
            s = torch.full((x.shape[0], x.shape[1]), 1 / math.sqrt(x.shape[1]), dtype=F64)
            y = formulas.modulated_conv2d(x, block.skip.weight, s, demodulate=False, taps=TAPS, up=2)
            h = ref_layer(block.conv0, x, ws[:, 0], noise=noise, clamp=clamp)
            h = ref_layer(block.conv1, h, ws[:, 1], noise=noise, gain=math.sqrt(0.5), clamp=clamp)
            x = math.sqrt(0.5) * y + h
        else:
            x = ref_layer(block.conv0, x, ws[:, 0], noise=noise, clamp=clamp)
            x = ref_layer(block.conv1, x, ws[:, 1], noise=noise, clamp=clamp)
        k = 2
    if img is not None:
        img = upsample(img)
    if block.torgb is not None:
        rgb = ref_torgb(block.torgb, x, ws[:, k], clamp)
        img = rgb if img is None else img + rgb
    assert img is not None or not block.is_last
    return x, img  # type: ignore[return-value]


def ref_generator(G: StyleGAN2Generator, z: torch.Tensor, c: Optional[torch.Tensor], *, psi: float,
                  cutoff: Optional[int], noise: bool, clamp: Optional[float] = None) -> torch.Tensor:  # fmt: skip
    """Mapping (pixel norm, embedding, lrelu layers with lr 0.01), truncation, then the blocks with their
    styles at offsets 0, 1, 3, ... (each torgb shares the style of the next block's first layer)."""
    m = G.mapping
    h = formulas.pixel_norm(z)
    if c is not None:
        assert m.embed is not None
        e = formulas.equal_linear(c, m.embed.weight, m.embed.bias, lr=1.0)
        h = torch.cat([h, formulas.pixel_norm(e)], dim=1)
    for layer in m.layers:
        h = formulas.bias_act(formulas.equal_linear(h, layer.weight, layer.bias, lr=0.01), None, "lrelu")
    ws = h.unsqueeze(1).repeat(1, G.num_ws, 1)
    assert m.w_avg is not None
    avg = m.w_avg.detach().double()
    cut = G.num_ws if cutoff is None else cutoff
    ws[:, :cut] = avg + psi * (ws[:, :cut] - avg)
    x = img = None
    idx = 0
    for block in G.synthesis.blocks():
        x, img = ref_block(block, x, img, ws[:, idx : idx + block.num_conv + block.num_torgb], noise=noise,
                           clamp=clamp)  # fmt: skip
        idx += block.num_conv
    assert img is not None
    return img


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("c_dim", [0, 3])
@pytest.mark.parametrize("fused_modconv", [True, False])
def test_generator_matches_the_formula(architecture: Any, c_dim: int, fused_modconv: bool) -> None:
    G = StyleGAN2Generator(6, c_dim, 8, 8, 3, architecture=architecture, **SMALL).to(F64).eval()
    randomize(G)
    z = torch.randn(2, 6, dtype=F64)
    c = torch.randn(2, c_dim, dtype=F64) if c_dim else None
    out = G(z, c, truncation_psi=0.7, truncation_cutoff=2, noise_mode="const", fused_modconv=fused_modconv)
    assert out.shape == (2, 3, 8, 8) and out.dtype == F64
    assert_close(out, ref_generator(G, z, c, psi=0.7, cutoff=2, noise=True))
    none = G(z, c, truncation_psi=0.7, truncation_cutoff=2, noise_mode="none")
    assert_close(none, ref_generator(G, z, c, psi=0.7, cutoff=2, noise=False))
    assert (none - out).abs().max() > 1e-3  # the noise takes part


def test_conv_clamp_clamps_every_layer() -> None:
    G = StyleGAN2Generator(6, 0, 8, 8, 3, architecture="skip", conv_clamp=0.3, **SMALL).to(F64).eval()
    randomize(G)
    z = torch.randn(2, 6, dtype=F64)
    seen: list[torch.Tensor] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: seen.append(out))
        for m in G.modules()
        if isinstance(m, (StyleGAN2SynthesisLayer, StyleGAN2ToRGB))
    ]
    out = G(z, noise_mode="const")
    for h in hooks:
        h.remove()
    assert len(seen) == 5 and all(t.abs().max() <= 0.3 for t in seen)
    assert any((t.abs() == 0.3).any() for t in seen)  # the bound is reached, so the clamp acts
    assert_close(out, ref_generator(G, z, None, psi=1.0, cutoff=None, noise=True, clamp=0.3))
    unclamped = StyleGAN2Generator(6, 0, 8, 8, 3, architecture="skip", **SMALL).to(F64).eval()
    unclamped.load_state_dict(G.state_dict())
    assert (unclamped(z, noise_mode="const") - out).abs().max() > 1e-2


def test_noise_modes() -> None:
    G = StyleGAN2Generator(6, 0, 8, 8, 3, **SMALL).to(F64).eval()
    randomize(G)
    z = torch.randn(2, 6, dtype=F64)
    const = G(z, noise_mode="const")
    assert torch.equal(const, G(z, noise_mode="const"))
    random1, random2 = G(z, noise_mode="random"), G(z, noise_mode="random")
    assert (random1 - random2).abs().max() > 1e-3 and (random1 - const).abs().max() > 1e-3
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.zero_()
    # With zero strength every mode is the noiseless network.
    assert_close(G(z, noise_mode="random"), G(z, noise_mode="none"))
    assert_close(G(z, noise_mode="const"), G(z, noise_mode="none"))
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="fixed")


def test_use_noise_false_has_no_noise_keys() -> None:
    G = StyleGAN2Generator(6, 0, 8, 8, 3, use_noise=False, **SMALL)
    assert not [k for k in G.state_dict() if "noise" in k]
    z = torch.randn(2, 6)
    assert torch.equal(G(z, noise_mode="random"), G(z, noise_mode="none"))


def test_w_avg_tracks_the_batch_mean_in_training_mode() -> None:
    G = StyleGAN2Generator(6, 0, 8, 8, 3, w_avg_beta=0.9, **SMALL).to(F64)
    randomize(G)
    assert G.mapping.w_avg is not None
    before = G.mapping.w_avg.clone()
    z = torch.randn(4, 6, dtype=F64)
    ws = G.mapping(z, update_emas=False)
    G.eval()(z)
    assert torch.equal(G.mapping.w_avg, before)  # eval: no update
    G.train()(z)
    expected = ws[:, 0].mean(0) + 0.9 * (before - ws[:, 0].mean(0))
    assert_close(G.mapping.w_avg, expected)
    G(z, update_emas=False)
    assert_close(G.mapping.w_avg, expected)


def test_truncation() -> None:
    G = StyleGAN2Generator(6, 0, 8, 8, 3, **SMALL).to(F64).eval()
    randomize(G)
    assert G.mapping.w_avg is not None
    z = torch.randn(2, 6, dtype=F64)
    at_mean = G(z, truncation_psi=0.0, noise_mode="const")
    ws = G.mapping.w_avg.reshape(1, 1, -1).expand(2, G.num_ws, -1)
    assert_close(at_mean, G.synthesis(ws, noise_mode="const"))
    assert_close(at_mean[0], at_mean[1])
    w = G.mapping(z)
    half = G(z, truncation_psi=0.5, truncation_cutoff=3, noise_mode="const")
    mixed = torch.cat([G.mapping.w_avg + 0.5 * (w[:, :3] - G.mapping.w_avg), w[:, 3:]], dim=1)
    assert_close(half, G.synthesis(mixed, noise_mode="const"))


def test_num_ws_and_style_offsets() -> None:
    G = StyleGAN2Generator(6, 0, 8, 32, 3, channel_base=128, channel_max=8, num_mapping_layers=1)
    # 1 conv at 4, then 2 per block (8, 16, 32), plus the last torgb.
    assert G.num_ws == 1 + 2 * 3 + 1
    assert [b.num_conv for b in G.synthesis.blocks()] == [1, 2, 2, 2]
    # channels: min(128 // r, 8) -> 8, 8, 8, 4
    assert [b.out_channels for b in G.synthesis.blocks()] == [8, 8, 8, 4]


@pytest.mark.parametrize(
    ("num_fp16_res", "fp16_blocks"), [(0, []), (1, [32]), (2, [16, 32]), (3, [8, 16, 32]), (4, [8, 16, 32])]
)
def test_which_blocks_run_in_reduced_precision(num_fp16_res: int, fp16_blocks: list[int]) -> None:
    G = StyleGAN2Generator(6, 0, 8, 32, 3, channel_base=128, channel_max=8, num_fp16_res=num_fp16_res,
                           num_mapping_layers=1)  # fmt: skip
    assert [b.resolution for b in G.synthesis.blocks() if b.use_fp16] == fp16_blocks
    # On the CPU every block runs in the parameters' dtype: the output equals the float32 network's.
    reference = StyleGAN2Generator(6, 0, 8, 32, 3, channel_base=128, channel_max=8, num_mapping_layers=1)
    reference.load_state_dict(G.state_dict())
    z = torch.randn(2, 6)
    out = G.eval()(z, noise_mode="const")
    assert out.dtype == torch.float32
    assert torch.equal(out, reference.eval()(z, noise_mode="const"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="reduced precision runs on CUDA only")
@pytest.mark.parametrize("fp16_dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_on_cuda(fp16_dtype: torch.dtype) -> None:
    G = StyleGAN2Generator(6, 0, 8, 16, 3, channel_base=256, channel_max=16, num_fp16_res=2, conv_clamp=256,
                           fp16_dtype=fp16_dtype, num_mapping_layers=1, device="cuda")  # fmt: skip
    z = torch.randn(2, 6, device="cuda")
    seen: dict[int, torch.dtype] = {}
    for b in G.synthesis.blocks():
        b.conv1.register_forward_hook(lambda m, _i, out: seen.__setitem__(m.resolution, out.dtype))
    low = G.eval()(z, noise_mode="const")
    assert seen == {4: torch.float32, 8: fp16_dtype, 16: fp16_dtype}
    full = G(z, noise_mode="const", force_fp32=True)
    assert low.dtype == torch.float32 and seen[16] == torch.float32
    tol = 2e-2 if fp16_dtype == torch.float16 else 1e-1  # through 3 reduced-precision layers and 2 torgbs
    assert (low - full).abs().max() <= tol * full.abs().max()


def test_path_length_and_every_synthesis_parameter_get_gradients() -> None:
    G = StyleGAN2Generator(6, 0, 8, 8, 3, architecture="resnet", **SMALL).to(F64).train()
    randomize(G)
    ws = G.mapping(torch.randn(4, 6, dtype=F64))
    penalty = PathLengthPenalty(batch_shrink=2)(lambda w: G.synthesis(w, noise_mode="const"), ws)
    penalty.backward()
    assert penalty.item() > 0
    for name, p in G.named_parameters():
        assert p.grad is not None, name
        # The output biases shift the image and leave the Jacobian, so the path length, unchanged.
        assert (p.grad.abs().sum() == 0) == name.endswith("torgb.bias"), name


def test_float64_gradcheck_of_a_block() -> None:
    block = StyleGAN2SynthesisBlock(2, 2, 2, 4, 1, is_last=True, architecture="resnet", conv_clamp=2.0).to(
        F64
    )
    randomize(block)
    x = torch.randn(1, 2, 2, 2, dtype=F64, requires_grad=True)
    ws = torch.randn(1, 3, 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, ws: block(x, None, ws, noise_mode="const"), (x, ws))


def test_state_dict_keys_are_stylegan2_adas() -> None:
    G = StyleGAN2Generator(6, 3, 8, 8, 3, architecture="resnet", **SMALL)
    layer = [
        "weight",
        "noise_strength",
        "bias",
        "resample_filter",
        "noise_const",
        "affine.weight",
        "affine.bias",
    ]
    torgb = ["torgb.weight", "torgb.bias", "torgb.affine.weight", "torgb.affine.bias"]
    expected = (
        ["synthesis.b4.const", "synthesis.b4.resample_filter"]
        + [f"synthesis.b4.conv1.{k}" for k in layer]  # resnet: only the last block has a torgb
        + ["synthesis.b8.resample_filter"]
        + [f"synthesis.b8.conv0.{k}" for k in layer]
        + [f"synthesis.b8.conv1.{k}" for k in layer]
        + [f"synthesis.b8.{k}" for k in torgb]
        + ["synthesis.b8.skip.weight", "synthesis.b8.skip.resample_filter"]
        + ["mapping.w_avg", "mapping.embed.weight", "mapping.embed.bias"]  # a module's own buffers first
        + ["mapping.fc0.weight", "mapping.fc0.bias", "mapping.fc1.weight", "mapping.fc1.bias"]
    )
    sd = G.state_dict()
    assert list(sd) == expected
    assert sd["synthesis.b4.const"].shape == (8, 4, 4)
    assert sd["synthesis.b8.conv0.weight"].shape == (4, 8, 3, 3)
    assert sd["synthesis.b8.conv0.noise_const"].shape == (8, 8)
    assert sd["synthesis.b8.conv0.noise_strength"].shape == ()
    assert sd["synthesis.b8.torgb.weight"].shape == (3, 4, 1, 1)
    assert sd["synthesis.b8.skip.weight"].shape == (4, 8, 1, 1)
    assert sd["synthesis.b8.resample_filter"].shape == (4, 4)
    assert sd["mapping.embed.weight"].shape == (8, 3) and sd["mapping.fc0.weight"].shape == (8, 6 + 8)
    skip = StyleGAN2Generator(6, 0, 8, 8, 3, architecture="skip", **SMALL).state_dict()
    assert "synthesis.b4.torgb.weight" in skip and "synthesis.b8.skip.weight" not in skip


def test_from_stylegan2_ada_kwargs() -> None:
    kwargs = {
        "z_dim": 6, "c_dim": 2, "w_dim": 8, "img_resolution": 8, "img_channels": 1,
        "mapping_kwargs": {"num_layers": 3, "lr_multiplier": 0.1},
        "synthesis_kwargs": {"channel_base": 32, "channel_max": 8, "num_fp16_res": 1, "conv_clamp": 256,
                             "architecture": "orig"},
    }  # fmt: skip
    G = StyleGAN2Generator.from_stylegan2_ada_kwargs(kwargs)
    assert (G.mapping.num_layers, G.mapping.lr_multiplier, G.img_channels) == (3, 0.1, 1)
    b4, b8 = G.synthesis.blocks()
    assert b8.architecture == "orig" and b8.use_fp16 and not b4.use_fp16 and b8.conv1.clamp == 256
    with pytest.raises(
        ValueError, match=r"synthesis_kwargs has keys that ganblocks does not know: \['bogus'\]"
    ):
        StyleGAN2Generator.from_stylegan2_ada_kwargs({**kwargs, "synthesis_kwargs": {"bogus": 1}})
    with pytest.raises(ValueError, match=r"init_kwargs lacks \['w_dim'\]"):
        StyleGAN2Generator.from_stylegan2_ada_kwargs({k: v for k, v in kwargs.items() if k != "w_dim"})


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="img_resolution must be a power of two >= 4, got 12"):
        StyleGAN2Generator(6, 0, 8, 12, 3)
    with pytest.raises(ValueError, match="architecture"):
        StyleGAN2Generator(6, 0, 8, 8, 3, architecture="residual", **SMALL)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"fp16_dtype must be torch\.float16 or torch\.bfloat16"):
        StyleGAN2Generator(6, 0, 8, 8, 3, fp16_dtype=torch.float32, **SMALL)
    G = StyleGAN2Generator(6, 0, 8, 8, 3, **SMALL)
    with pytest.raises(
        ValueError, match=r"ws must have shape \(N, num_ws, w_dim\) = \(N, 4, 8\), got \(2, 3, 8\)"
    ):
        G.synthesis(torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match="z must have shape"):
        G(torch.randn(2, 5))


def test_torch_compile_fullgraph_and_repr() -> None:
    G = StyleGAN2Generator(8, 2, 8, 8, 3, **SMALL).eval()
    z, c = torch.randn(2, 8), torch.randn(2, 2)
    # aot_eager traces the whole graph (dynamo + AOTAutograd) without inductor's C++ build, minutes on CPU.
    compiled = torch.compile(G, fullgraph=True, backend="aot_eager")
    out = compiled(z, c, truncation_psi=0.5, noise_mode="const")
    assert_close(out, G(z, c, truncation_psi=0.5, noise_mode="const"))
    text = repr(G)
    assert "z_dim=8, c_dim=2, w_dim=8, img_resolution=8, img_channels=3, num_ws=4\n" in text
    assert "(b8): StyleGAN2SynthesisBlock(" in text
    assert (
        "8, 4, w_dim=8, resolution=8, img_channels=3, is_last=True, architecture='skip', use_fp16=False"
        in text
    )
