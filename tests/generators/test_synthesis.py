"""StyleGAN synthesis blocks against a hand-written composition of the formulas (float64)."""

from __future__ import annotations

import math
from typing import Any, Optional

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close

from ganblocks.generators.synthesis import (
    AdaINSynthesisBlock,
    AdaINSynthesisInput,
    AdaINSynthesisLayer,
    ConstantInput,
)

F64 = torch.float64


def randomize(module: torch.nn.Module) -> None:
    """Nonzero noise strengths and biases (both start at 0), so that the formulas see them."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("strength") or (name.endswith(".bias") and "affine" not in name):
                p.normal_()


def reference_layer(
    layer: AdaINSynthesisLayer, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """conv (equalized, no bias) → x + s·n + b → √2·lrelu → instance norm → affine of w."""
    if layer.conv is not None:
        weight = layer.conv.weight.detach()
        fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
        x = F.conv2d(x, weight / math.sqrt(fan_in), padding=weight.shape[-1] // 2)
    c = x.shape[1]
    s = layer.noise.strength.detach().reshape(1, -1, 1, 1)
    u = x + s * noise + layer.bias.detach().view(1, c, 1, 1)
    u = torch.where(u > 0, u, 0.2 * u) * math.sqrt(2.0)
    aw, ab = layer.adain.affine.weight.detach(), layer.adain.affine.bias
    assert ab is not None
    style = w @ (aw / math.sqrt(aw.shape[1])).T + ab.detach()
    mu = u.mean(dim=(2, 3), keepdim=True)
    var = ((u - mu) ** 2).mean(dim=(2, 3), keepdim=True)
    return style[:, :c, None, None] * (u - mu) / torch.sqrt(var + 1e-8) + style[:, c:, None, None]


def bilinear_matrix(n: int) -> torch.Tensor:
    """(2n, n) matrix of ×2 bilinear upsampling with half-pixel centres, edges clamped."""
    m = torch.zeros(2 * n, n, dtype=F64)
    for i in range(n):
        m[2 * i, max(i - 1, 0)] += 0.25
        m[2 * i, i] += 0.75
        m[2 * i + 1, i] += 0.75
        m[2 * i + 1, min(i + 1, n - 1)] += 0.25
    return m


def upsample_reference(
    x: torch.Tensor, mode: Optional[str], taps: tuple[float, ...] = (1, 3, 3, 1)
) -> torch.Tensor:
    n, c, h, w = x.shape
    if mode is None:
        return x
    if mode == "nearest":
        return x[:, :, torch.arange(2 * h) // 2][:, :, :, torch.arange(2 * w) // 2]
    if mode == "bilinear":
        return bilinear_matrix(h) @ x @ bilinear_matrix(w).T
    # FIR: zero insertion, pad, outer(taps, taps) / sum² times the gain 4 (StyleGAN2-ADA's upsample2d)
    z = torch.zeros(n, c, 2 * h, 2 * w, dtype=x.dtype)
    z[:, :, ::2, ::2] = x
    a = torch.tensor(taps, dtype=x.dtype)
    k = a.numel()
    f = (torch.outer(a, a) / a.sum() ** 2 * 4).expand(c, 1, k, k)
    p0, p1 = (k + 1) // 2, (k - 2) // 2
    return F.conv2d(F.pad(z, (p0, p1, p0, p1)), f.flip(-1, -2), groups=c)


@pytest.mark.parametrize(
    ("up", "resample_filter", "mode"),
    [(2, None, "fir"), (2, (1.0, 2.0, 1.0, 0.5), "fir"), (2, "nearest", "nearest"), (2, "bilinear", "bilinear"),
     (1, None, None), (1, "bilinear", None)],
)  # fmt: skip
def test_block_matches_composition(up: int, resample_filter: Optional[object], mode: Optional[str]) -> None:
    options: dict[str, Any] = {} if resample_filter is None else {"resample_filter": resample_filter}
    block = AdaINSynthesisBlock(3, 4, 5, up=up, dtype=F64, **options)
    randomize(block)
    x = torch.randn(2, 3, 3, 3, dtype=F64)
    ws = torch.randn(2, 2, 5, dtype=F64)
    size = 3 * up
    n0, n1 = torch.randn(2, 1, size, size, dtype=F64), torch.randn(2, 1, size, size, dtype=F64)
    out = block(x, ws, noise=(n0, n1))
    assert out.shape == (2, 4, size, size)
    taps = (1.0, 3.0, 3.0, 1.0) if not isinstance(resample_filter, tuple) else resample_filter
    h = reference_layer(block.layer0, upsample_reference(x, mode, taps), ws[:, 0], n0)
    assert_close(out, reference_layer(block.layer1, h, ws[:, 1], n1))


@pytest.mark.parametrize(("kernel_size", "per_channel"), [(3, True), (1, False), (5, True)])
def test_style_layer_matches_formula(kernel_size: int, per_channel: bool) -> None:
    layer = AdaINSynthesisLayer(2, 3, 4, kernel_size=kernel_size, per_channel_noise=per_channel, dtype=F64)
    randomize(layer)
    x, w, noise = (
        torch.randn(2, 2, 5, 6, dtype=F64),
        torch.randn(2, 4, dtype=F64),
        torch.randn(2, 1, 5, 6, dtype=F64),
    )
    expected = reference_layer(layer, x, w, noise)
    assert_close(layer(x, w, noise), expected)
    # float32 parameters and input against the float64 formula
    out32 = layer.float()(x.float(), w.float(), noise.float())
    assert out32.dtype == torch.float32
    assert_close(out32, expected, scale=10)  # a conv sum and a normalization, rounded in float32


def test_input_block_matches_composition() -> None:
    block = AdaINSynthesisInput(3, 5, size=(4, 3), per_channel_noise=False, dtype=F64)
    randomize(block)
    assert block.layer0.conv is None and block.layer0.noise.strength.shape == ()
    ws = torch.randn(2, 2, 5, dtype=F64)
    n0, n1 = torch.randn(1, 1, 4, 3, dtype=F64), torch.randn(2, 1, 4, 3, dtype=F64)  # n0 shared by the batch
    out = block(ws, noise=(n0, n1))
    const = block.const.const.detach().expand(2, -1, -1, -1)
    expected = reference_layer(block.layer1, reference_layer(block.layer0, const, ws[:, 0], n0), ws[:, 1], n1)
    assert_close(out, expected)


def test_noise_modes() -> None:
    x, ws = torch.randn(2, 3, 4, 4, dtype=F64), torch.randn(2, 2, 5, dtype=F64)
    const = AdaINSynthesisBlock(3, 3, 5, up=1, noise_mode="const", resolution=4, dtype=F64)
    randomize(const)
    out = const(x, ws)
    assert torch.equal(out, const(x, ws))  # stored noise: deterministic
    stored = (const.layer0.noise.noise_const, const.layer1.noise.noise_const)
    assert stored[0] is not None and stored[1] is not None
    assert_close(out, const(x, ws, noise=stored))
    none = AdaINSynthesisBlock(3, 3, 5, up=1, noise_mode="none", dtype=F64)
    randomize(none)
    zero = torch.zeros(1, 1, 4, 4, dtype=F64)
    h = reference_layer(none.layer0, x, ws[:, 0], zero)
    assert_close(none(x, ws), reference_layer(none.layer1, h, ws[:, 1], zero))
    random = AdaINSynthesisBlock(3, 3, 5, up=1, dtype=F64)
    randomize(random)
    assert not torch.allclose(random(x, ws), random(x, ws))  # fresh noise at every call
    with pytest.raises(ValueError, match="noise_mode='const' needs resolution = the output size"):
        AdaINSynthesisBlock(3, 3, 5, noise_mode="const", resolution=4, dtype=F64)(x, ws)  # output is 8×8


def test_single_w_is_used_by_both_layers() -> None:
    block = AdaINSynthesisBlock(3, 2, 5, noise_mode="none")
    x, w = torch.randn(2, 3, 2, 2), torch.randn(2, 5)
    assert_close(block(x, w), block(x, torch.stack([w, w], dim=1)))  # strided vs contiguous: float32 rounding


def test_gradients_reach_ws_const_and_every_parameter() -> None:
    block = AdaINSynthesisInput(2, 3, dtype=F64)
    randomize(block)
    ws = torch.randn(2, 2, 3, dtype=F64, requires_grad=True)
    block(ws).mul(torch.randn(2, 2, 4, 4, dtype=F64)).sum().backward()
    assert ws.grad is not None
    assert (ws.grad.abs().sum(dim=(0, 2)) > 0).all()  # both ws
    missing = [n for n, p in block.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_style_layer_without_conv_and_constant() -> None:
    const = ConstantInput(3, (2, 5), dtype=F64)
    assert const(4).shape == (4, 3, 2, 5) and torch.equal(const(4)[3], const.const[0])
    assert const.const.dtype == F64 and "size=(2, 5)" in repr(const)
    layer = AdaINSynthesisLayer(3, 3, 4, kernel_size=None, dtype=F64)
    assert layer.conv is None and "kernel_size=None" in repr(layer)
    assert "(\n  4, 2, w_dim=5, up=2\n" in repr(AdaINSynthesisBlock(4, 2, 5))
    assert "up=2, resample_filter='nearest'" in repr(AdaINSynthesisBlock(4, 2, 5, resample_filter="nearest"))
    assert "(\n  4, 2, w_dim=5, up=1\n" in repr(AdaINSynthesisBlock(4, 2, 5, up=1))
    assert all(p.dtype == F64 for p in layer.parameters())


def test_errors() -> None:
    block = AdaINSynthesisBlock(3, 4, 5)
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(
        ValueError, match=r"ws must have shape \(N, 2, w_dim\) = \(2, 2, 5\).*got \(2, 3, 5\)"
    ):
        block(x, torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match=r"x must have shape \(N, in_channels, H, W\) with in_channels = 3"):
        block(torch.randn(2, 4, 4, 4), torch.randn(2, 2, 5))
    with pytest.raises(ValueError, match=r"noise must have shape \(N, 1, H, W\) = \(2, 1, 8, 8\)"):
        block(x, torch.randn(2, 2, 5), noise=(torch.randn(2, 1, 4, 4), None))
    with pytest.raises(ValueError, match="noise must be None or a pair"):
        block(x, torch.randn(2, 2, 5), noise=(None,))
    with pytest.raises(
        ValueError, match="resample_filter must be one of \\('nearest', 'bilinear'\\), got 'area'"
    ):
        AdaINSynthesisBlock(3, 4, 5, resample_filter="area")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="resample_filter must be a sequence of FIR taps or one of"):
        AdaINSynthesisBlock(3, 4, 5, resample_filter=3.0)  # type: ignore[arg-type]
    for up in (0, 3, True, 2.0):
        with pytest.raises(
            ValueError, match=f"up must be 1 \\(keep the resolution\\) or 2 \\(double it\\), got {up!r}"
        ):
            AdaINSynthesisBlock(3, 4, 5, up=up)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        AdaINSynthesisBlock(3, 4, 5, kernel_size=2)
    with pytest.raises(ValueError, match=r"out_channels must equal in_channels \(3\) when kernel_size=None"):
        AdaINSynthesisLayer(3, 4, 5, kernel_size=None)
    with pytest.raises(ValueError, match="batch_size must be an int >= 0, got -1"):
        ConstantInput(3)(-1)


def test_constant_input_given_a_tensor_names_its_shape() -> None:
    big = torch.arange(10_000.0).reshape(1, 100, 10, 10)
    with pytest.raises(
        TypeError,
        match=r"^batch_size must be an int \(the number of copies, e.g. x.shape\[0\]\), got a torch.float32 tensor "
        r"of shape \(1, 100, 10, 10\)$",
    ) as info:
        ConstantInput(3)(big)
    assert len(str(info.value)) < 200
    with pytest.raises(
        TypeError, match=r"^channels must be an int, got a torch.float32 tensor of shape \(1, 100, 10, 10\)$"
    ):
        ConstantInput(big)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^size must be an int or a pair of ints, got a torch.int64 tensor of shape \(2,\)$"
    ):
        ConstantInput(3, torch.tensor([4, 4]))  # type: ignore[arg-type]
