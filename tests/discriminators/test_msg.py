"""MSGDiscriminator against MSG-GAN's forward written out in float64 (with MSGGeneratorHeads feeding it)."""

from __future__ import annotations

import math
from typing import Any, Optional

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close
from torch import nn

from ganblocks.discriminators import (
    COMBINE_MODES,
    DiscriminatorOutput,
    MSGDiscriminator,
    image_pyramid,
)
from ganblocks.generators import MSGGeneratorHeads
from ganblocks.layers import EqualConv2d, EqualLinear

SMALL: dict[str, Any] = dict(
    resolution=16, base_channels=4, max_channels=16
)  # 4, 8 and 16 channels at 16, 8 and 4 pixels


def nf(r: int) -> int:
    return min(64 // r, 16)


def conv_params(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout


def msg_count(in_ch: int, combine: str, resolutions: list[int]) -> int:
    """MSG-GAN's parameter count: from-RGB, two 3×3 convs per block, combine projections, final block."""
    total = conv_params(in_ch, nf(resolutions[0]), 1)
    for j, r in enumerate(resolutions):
        width = nf(r)
        if j > 0:
            if combine == "simple":
                width += in_ch
            elif combine == "lin_cat":
                total += conv_params(in_ch, nf(r), 1)
                width += nf(r)
            else:
                total += conv_params(in_ch + nf(r), nf(r), 1)
        if r > 4:
            total += conv_params(width, nf(r), 3) + conv_params(nf(r), nf(r // 2), 3)
        else:
            total += conv_params(width + 1, nf(4), 3) + conv_params(nf(4), nf(4), 4) + nf(4) + 1
    return total


def mbstd_formula(x: torch.Tensor, group_size: int) -> torch.Tensor:
    n = x.shape[0]
    m = n // min(group_size, n)
    extra = torch.empty(n, 1, *x.shape[2:], dtype=x.dtype)
    for slot in range(m):
        extra[slot::m] = (x[slot::m].var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    return torch.cat([x, extra], dim=1)


def weights(module: nn.Module) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """The effective weight and bias of a conv/linear layer, equalized or plain, in float64."""
    w = module.weight.double()
    if isinstance(module, (EqualConv2d, EqualLinear)):
        w = w / math.sqrt(module.weight[0].numel())  # type: ignore[operator, assignment]
    b = module.bias
    return w, None if b is None else b.double()  # type: ignore[return-value]


def conv_lrelu(module: nn.Module, x: torch.Tensor, padding: int, equalized: bool) -> torch.Tensor:
    w, b = weights(module)
    gain = math.sqrt(2) if equalized else 1.0
    return F.leaky_relu(F.conv2d(x, w, b, padding=padding), 0.2) * gain


def combine_formula(block: nn.Module, mode: str, image: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    if mode == "simple":
        return torch.cat([image, feats], 1)
    w, b = weights(block.combine.project)  # type: ignore[union-attr, arg-type]
    if mode == "lin_cat":
        return torch.cat([F.conv2d(image, w, b), feats], 1)
    return F.conv2d(torch.cat([image, feats], 1), w, b)


def msg_formula(d: MSGDiscriminator, images: list[torch.Tensor], equalized: bool) -> torch.Tensor:
    imgs = [t.double() for t in images]
    x = conv_lrelu(d.from_rgb, imgs[0], 0, equalized)
    for j, block in enumerate(d.blocks):
        if j > 0:
            x = combine_formula(block, d.combine, imgs[j], x)
        x = conv_lrelu(block.conv1, conv_lrelu(block.conv0, x, 1, equalized), 1, equalized)  # type: ignore[arg-type]
        x = F.avg_pool2d(x, 2)
    if len(imgs) > 1:
        x = combine_formula(d.final, d.combine, imgs[-1], x)
    x = mbstd_formula(x, d.final.mbstd_group_size or x.shape[0])
    x = conv_lrelu(d.final.dense, conv_lrelu(d.final.conv, x, 1, equalized), 0, equalized)
    w, b = weights(d.final.out)
    return F.linear(x.flatten(1), w, b)


@pytest.mark.parametrize("combine", COMBINE_MODES)
def test_parameter_count(combine: str) -> None:
    d = MSGDiscriminator(3, combine=combine, **SMALL)  # type: ignore[arg-type]
    assert d.num_scales == 3 and d.resolutions == [16, 8, 4]
    assert sum(p.numel() for p in d.parameters()) == msg_count(3, combine, [16, 8, 4])


@pytest.mark.parametrize("combine", COMBINE_MODES)
@pytest.mark.parametrize("equalized", [True, False])
def test_forward_matches_formula(combine: str, equalized: bool) -> None:
    d = MSGDiscriminator(3, combine=combine, equalized_lr=equalized, return_features=True, **SMALL).double()  # type: ignore[arg-type]
    with torch.no_grad():
        for name, p in d.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.1)
    images = image_pyramid(torch.randn(4, 3, 16, 16, dtype=torch.float64), 3)
    out = d(images)
    assert isinstance(out, DiscriminatorOutput)
    assert len(out.logits) == 1 and tuple(out.logits[0].shape) == (4, 1)
    assert_close(out.logits[0], msg_formula(d, images, equalized))
    assert [tuple(f.shape) for f in out.features[0]] == [(4, 8, 8, 8), (4, 16, 4, 4), (4, 16, 1, 1)]
    assert isinstance(d.from_rgb, EqualConv2d if equalized else nn.Conv2d)


def test_smallest_resolution_is_one_final_block() -> None:
    d = MSGDiscriminator(2, resolution=4, base_channels=8, mbstd_group_size=2).double()
    assert d.num_scales == 1 and len(d.blocks) == 0 and d.final.combine is None
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64)
    assert_close(d([x]).logits[0], msg_formula(d, [x], True))


def test_minibatch_stddev_options() -> None:
    d = MSGDiscriminator(3, mbstd_num_channels=0, **SMALL)
    assert d.final.conv.in_channels == 16 + 3
    images = image_pyramid(torch.randn(3, 3, 16, 16), 3)
    single = d([t[:1] for t in images]).logits[0]
    assert_close(d(images).logits[0][:1], single)  # without the statistic, samples are independent
    grouped = MSGDiscriminator(3, combine="cat_lin", mbstd_num_channels=2, mbstd_group_size=None, **SMALL)
    assert grouped.final.conv.in_channels == 16 + 2
    assert grouped(images).logits[0].shape == (3, 1)
    with pytest.raises(
        ValueError,
        match=r"mbstd_num_channels \(2\) must divide the channel count entering the minibatch standard deviation \(19 with combine='simple'\)",
    ):
        MSGDiscriminator(3, mbstd_num_channels=2, **SMALL)


@pytest.mark.parametrize("combine", COMBINE_MODES)
def test_gradients_reach_every_scale(combine: str) -> None:
    d = MSGDiscriminator(3, combine=combine, **SMALL)  # type: ignore[arg-type]
    images = [t.requires_grad_() for t in image_pyramid(torch.randn(4, 3, 16, 16), 3)]
    grads = torch.autograd.grad(d(images).logits[0].sum(), images)
    assert all(g.abs().sum() > 0 for g in grads)
    heads = MSGGeneratorHeads([4, 8, 16])
    feats = [torch.randn(4, c, s, s, requires_grad=True) for c, s in [(4, 16), (8, 8), (16, 4)]]
    loss = d(heads(feats)).logits[0].mean()
    loss.backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)
    assert all(p.grad is not None for p in heads.parameters())


def test_gradcheck_and_gradgradcheck() -> None:
    d = MSGDiscriminator(
        1, resolution=8, combine="cat_lin", base_channels=2, max_channels=2, mbstd_group_size=2
    ).double()
    images = [torch.randn(2, 1, s, s, dtype=torch.float64, requires_grad=True) for s in (8, 4)]
    # fast_mode checks a random projection of the Jacobian: the full one costs minutes on this CPU.
    assert torch.autograd.gradcheck(lambda a, b: d([a, b]).logits[0], images, fast_mode=True)
    assert torch.autograd.gradgradcheck(lambda a, b: d([a, b]).logits[0], images, fast_mode=True)


def test_input_errors() -> None:
    d = MSGDiscriminator(3, **SMALL)
    images = image_pyramid(torch.randn(2, 3, 16, 16), 3)
    with pytest.raises(
        ValueError,
        match=r"images must be ordered finest first \(sizes \[\(16, 16\), \(8, 8\), \(4, 4\)\]\), got them coarsest first .*pass images\[::-1\]",
    ):
        d(images[::-1])
    with pytest.raises(
        ValueError,
        match=r"images must hold 3 levels for resolution=16 \(sizes \[16, 8, 4\], finest first\), got 2",
    ):
        d(images[:2])
    with pytest.raises(
        ValueError,
        match=r"images must have spatial sizes \[\(16, 16\), \(8, 8\), \(4, 4\)\] \(finest first\), got \[\(16, 16\), \(8, 8\), \(8, 8\)\]",
    ):
        d([images[0], images[1], images[1]])
    with pytest.raises(
        TypeError, match=r"got a single tensor \(use ganblocks.functional.image_pyramid\(x, 3\)"
    ):
        d(images[0])
    with pytest.raises(
        ValueError, match=r"images\[2\] must have 3 channels \(in_channels\), got shape \(2, 1, 4, 4\)"
    ):
        d([images[0], images[1], images[2][:, :1]])
    with pytest.raises(ValueError, match=r"images must all have the same batch size, got \[2, 2, 1\]"):
        d([images[0], images[1], images[2][:1]])


@pytest.mark.parametrize("resolution", [12, 2, 0, 48])
def test_resolution_must_be_a_power_of_two(resolution: int) -> None:
    with pytest.raises(ValueError, match=f"resolution must be a power of two >= 4, got {resolution}"):
        MSGDiscriminator(3, resolution=resolution)


def test_option_errors() -> None:
    with pytest.raises(
        ValueError, match=r"combine must be one of \('simple', 'lin_cat', 'cat_lin'\), got 'sum'"
    ):
        MSGDiscriminator(3, resolution=8, combine="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mbstd_group_size must be an int >= 1, got 0"):
        MSGDiscriminator(3, resolution=8, mbstd_group_size=0)
    with pytest.raises(ValueError, match="base_channels must be an int >= 1, got 0"):
        MSGDiscriminator(3, resolution=64, base_channels=0)
    with pytest.raises(ValueError, match="in_channels must be an int >= 1, got 0"):
        MSGDiscriminator(0, resolution=8)


def test_repr() -> None:
    text = repr(MSGDiscriminator(3, combine="lin_cat", **SMALL))
    assert text.startswith(
        "MSGDiscriminator(\n  in_channels=3, resolution=16, combine='lin_cat'\n  (from_rgb): EqualConv2d(3, 4"
    )
    assert "(combine): MSGCombine(\n" in text and "mode='lin_cat'" in text
    assert "mbstd_group_size=4, mbstd_num_channels=1" in text


def test_channels_last_autocast_state_dict_and_compile() -> None:
    d = MSGDiscriminator(3, combine="lin_cat", **SMALL)
    images = image_pyramid(torch.randn(4, 3, 16, 16), 3)
    ref = d(images).logits[0]
    cl = [t.to(memory_format=torch.channels_last) for t in images]
    out = d.to(memory_format=torch.channels_last)(cl, return_features=True)  # type: ignore[call-overload]
    assert out.features[0][0].is_contiguous(memory_format=torch.channels_last)
    assert_close(out.logits[0], ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = d(images).logits[0]
    assert low.dtype == torch.bfloat16
    # Eight bfloat16 convs in a row; the logits are sums over 16 features of magnitude ~1.
    assert_close(low.float(), ref, torch.bfloat16, scale=10)
    e = MSGDiscriminator(3, combine="lin_cat", **SMALL)
    e.load_state_dict(d.state_dict())
    torch.testing.assert_close(e(images).logits[0], ref, rtol=0, atol=0)
    # aot_eager traces the whole graph (dynamo + AOTAutograd) without inductor's C++ build, minutes on CPU.
    compiled = torch.compile(e, fullgraph=True, backend="aot_eager")
    assert_close(compiled(images).logits[0], ref)
