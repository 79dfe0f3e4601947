"""PatchDiscriminator: geometry, parameter count and every option against formulas written out here."""

from __future__ import annotations

import math
from typing import Any, Optional

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close
from torch import nn

from ganblocks.discriminators import (
    DiscriminatorOutput,
    MultiScaleDiscriminator,
    PatchDiscriminator,
    PatchNorm,
)
from ganblocks.layers import EqualConv2d


def conv_out(size: int, stride: int) -> int:
    """torch's conv output size for kernel 4, padding 2."""
    return (size + 2 * 2 - 4) // stride + 1


def strides(n_layers: int) -> list[int]:
    """pix2pixHD: n_layers convs of stride 2, then two of stride 1."""
    return [2] * n_layers + [1, 1]


def widths(in_channels: int, n_layers: int, base: int, cap: int) -> list[int]:
    w = [in_channels, base]
    for _ in range(n_layers):
        w.append(min(w[-1] * 2, cap))
    return [*w, 1]


def mbstd_formula(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """Minibatch stddev written out: sample i is in group slot i % (N / G); one extra channel."""
    n, _, h, w = x.shape
    g = min(group_size, n)
    m = n // g
    extra = torch.empty(n, 1, h, w, dtype=x.dtype)
    for slot in range(m):
        members = x[slot::m]
        std = (members.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        extra[slot::m] = std
    return torch.cat([x, extra], dim=1)


def patch_formula(d: PatchDiscriminator, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The PatchGAN forward with torch.nn.functional's conv, norms and LeakyReLU, in float64."""
    h = x.double()
    feats = []
    n = len(d.layers)
    for i, layer in enumerate(d.layers):
        conv = layer.conv
        w = conv.weight.double()  # type: ignore[union-attr]
        if isinstance(conv, EqualConv2d):
            w = w / math.sqrt(conv.weight[0].numel())  # type: ignore[operator]
        b = None if conv.bias is None else conv.bias.double()  # type: ignore[union-attr]
        if i == n - 1 and d.mbstd_num_channels:
            h = mbstd_formula(h, d.mbstd_group_size or h.shape[0])
        h = F.conv2d(h, w, b, stride=conv.stride, padding=2)  # type: ignore[call-overload]
        norm = layer.norm
        if isinstance(norm, nn.InstanceNorm2d):
            wn = None if norm.weight is None else norm.weight.double()
            bn = None if norm.bias is None else norm.bias.double()
            h = F.instance_norm(h, weight=wn, bias=bn, eps=1e-5)
        elif isinstance(norm, nn.BatchNorm2d):
            assert norm.running_mean is not None and norm.running_var is not None
            h = F.batch_norm(
                h,
                norm.running_mean.double().clone(),
                norm.running_var.double().clone(),
                norm.weight.double(),
                norm.bias.double(),
                training=d.training,
                eps=norm.eps,
            )
        if i < n - 1:
            h = F.leaky_relu(h, 0.2)
            feats.append(h)
    return h, feats


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(16, 16), (37, 53), (64, 20)])
def test_logits_size_matches_conv_arithmetic(n_layers: int, size: tuple[int, int]) -> None:
    h, w = size
    for s in strides(n_layers):
        h, w = conv_out(h, s), conv_out(w, s)
    d = PatchDiscriminator(2, num_layers=n_layers, base_channels=4)
    assert d.logits_size(*size) == (h, w)
    if n_layers <= 2:
        out = d(torch.randn(1, 2, *size))
        assert tuple(out.logits[0].shape) == (1, 1, h, w)


def test_pix2pixhd_sizes_and_count() -> None:
    h = 256
    sizes = []
    for s in strides(3):
        h = conv_out(h, s)
        sizes.append(h)
    assert sizes[-1] == 35
    d = PatchDiscriminator(3)
    assert d.logits_size(256, 256) == (35, 35)
    assert d.logits_size(128, 128) == (19, 19)
    assert d.logits_size(64, 64) == (11, 11)
    ws = widths(3, 3, 64, 512)
    assert ws == [3, 64, 128, 256, 512, 1]
    expected = sum(a * b * 16 + b for a, b in zip(ws[:-1], ws[1:]))
    assert expected == 2_764_737
    assert sum(p.numel() for p in d.parameters()) == expected


@pytest.mark.parametrize(
    ("norm", "bias_before_norm", "extra"),
    [
        ("instance", True, 0),
        ("instance", False, -1),
        ("batch", True, 2),
        ("instance_affine", False, 1),
        ("none", False, 0),
    ],
)
def test_parameter_count_formula(norm: PatchNorm, bias_before_norm: bool, extra: int) -> None:
    d = PatchDiscriminator(
        5, num_layers=3, base_channels=8, max_channels=32, norm=norm, bias_before_norm=bias_before_norm
    )
    ws = widths(5, 3, 8, 32)
    assert ws == [5, 8, 16, 32, 32, 1]
    count = sum(a * b * 16 + b for a, b in zip(ws[:-1], ws[1:]))
    middle = sum(ws[2:-1])
    # extra: -1 drops the conv biases in front of the norms, +k adds k per-channel norm vectors.
    count += extra * middle
    assert sum(p.numel() for p in d.parameters()) == count


@pytest.mark.parametrize("norm", ["instance", "instance_affine", "batch", "none"])
@pytest.mark.parametrize("training", [True, False])
def test_forward_matches_formula(norm: PatchNorm, training: bool) -> None:
    d = PatchDiscriminator(3, num_layers=2, base_channels=4, norm=norm, return_features=True).double()
    with torch.no_grad():
        for p in d.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # non-trivial norm affine parameters
        for b in d.buffers():
            if b.is_floating_point():
                b.uniform_(0.5, 1.5)
    d.train(training)
    x = torch.randn(3, 3, 19, 24, dtype=torch.float64)
    expected, feats = patch_formula(d, x)
    out = d(x)
    assert isinstance(out, DiscriminatorOutput)
    assert len(out.logits) == 1 and len(out.features) == 1
    assert_close(out.logits[0], expected)
    assert len(out.features[0]) == 3
    for a, b in zip(out.features[0], feats):
        assert_close(a, b)


def test_features_on_request_only() -> None:
    d = PatchDiscriminator(3, num_layers=2, base_channels=4)
    x = torch.randn(2, 3, 16, 16)
    assert d(x).features == [[]]
    with_feats = d(x, return_features=True)
    assert [f.shape[1] for f in with_feats.features[0]] == [4, 8, 16]
    torch.testing.assert_close(with_feats.logits[0], d(x).logits[0])
    d.return_features = True
    assert len(d(x).features[0]) == 3
    assert d(x, return_features=False).features == [[]]


def test_bias_before_norm_false_computes_the_same_function() -> None:
    with_bias = PatchDiscriminator(3, num_layers=3, base_channels=4).double()
    without = PatchDiscriminator(3, num_layers=3, base_channels=4, bias_before_norm=False).double()
    state = {k: v for k, v in with_bias.state_dict().items() if k in without.state_dict()}
    without.load_state_dict(state)
    with torch.no_grad():
        for layer in with_bias.layers[1:-1]:
            layer.conv.bias.normal_()  # type: ignore[union-attr, operator]
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    assert_close(without(x).logits[0], with_bias(x).logits[0])
    assert without.layers[1].conv.bias is None and without.layers[0].conv.bias is not None  # type: ignore[union-attr]


def test_spectral_norm() -> None:
    d = PatchDiscriminator(3, num_layers=2, base_channels=8, spectral_norm=True)
    x = torch.randn(2, 3, 16, 16)
    for _ in range(30):  # one power iteration per training forward
        d(x)
    d.eval()
    for layer in d.layers:
        assert nn.utils.parametrize.is_parametrized(layer.conv, "weight")  # type: ignore[arg-type]
        sigma = torch.linalg.matrix_norm(layer.conv.weight.flatten(1).double(), 2)  # type: ignore[union-attr, operator]
        assert abs(sigma.item() - 1.0) < 1e-2
    expected, _ = patch_formula(d, x)
    assert_close(d(x).logits[0], expected, torch.float32)


def test_equalized_lr() -> None:
    d = PatchDiscriminator(3, num_layers=2, base_channels=8, equalized_lr=True, norm="none")
    assert all(isinstance(layer.conv, EqualConv2d) for layer in d.layers)
    stored = torch.cat([layer.conv.weight.flatten() for layer in d.layers])  # type: ignore[union-attr, operator]
    assert abs(stored.std().item() - 1.0) < 0.05  # N(0, 1) storage, scaled at run time
    x = torch.randn(2, 3, 16, 16)
    expected, _ = patch_formula(d, x)
    assert_close(d(x).logits[0], expected, torch.float32)


@pytest.mark.parametrize("group_size", [2, 4, None])
def test_minibatch_stddev_before_last_conv(group_size: Optional[int]) -> None:
    d = PatchDiscriminator(
        3, num_layers=1, base_channels=4, mbstd_num_channels=1, mbstd_group_size=group_size
    )
    assert d.layers[-1].conv.in_channels == 8 + 1  # type: ignore[union-attr]
    x = torch.randn(4, 3, 8, 8)
    expected, _ = patch_formula(d, x)
    assert_close(d(x).logits[0], expected, torch.float32)


def test_repr() -> None:
    d = PatchDiscriminator(3, num_layers=1, base_channels=4)
    text = repr(d)
    assert text.startswith("PatchDiscriminator(\n  in_channels=3, num_layers=1, norm='instance'\n")
    assert (
        "(conv): ConvAct(3, 4, kernel_size=(4, 4), stride=(2, 2), padding=(2, 2), act=lrelu, alpha=0.2)"
        in text
    )
    assert "PatchLayer(\n      norm='instance', act=lrelu(0.2)" in text
    assert "InstanceNorm2d(8, eps=1e-05, momentum=0.1, affine=False" in text
    assert "mbstd_group_size=2, mbstd_num_channels=1" in repr(
        PatchDiscriminator(3, num_layers=1, mbstd_num_channels=1, mbstd_group_size=2)
    )


def test_gradcheck_and_gradgradcheck() -> None:
    d = PatchDiscriminator(1, num_layers=1, base_channels=2).double()
    x = torch.randn(2, 1, 4, 5, dtype=torch.float64, requires_grad=True)
    # fast_mode checks a random projection of the Jacobian: the full one costs minutes on this CPU.
    assert torch.autograd.gradcheck(lambda t: d(t).logits[0], (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(lambda t: d(t).logits[0], (x,), fast_mode=True)


def test_channels_last() -> None:
    d = PatchDiscriminator(3, num_layers=2, base_channels=8, return_features=True)
    x = torch.randn(2, 3, 20, 20)
    ref = d(x)
    d_cl = d.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    out = d_cl(x.to(memory_format=torch.channels_last))
    assert all(f.is_contiguous(memory_format=torch.channels_last) for f in out.features[0])
    assert_close(out.logits[0], ref.logits[0])


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_autocast_bfloat16(norm: PatchNorm) -> None:
    d = PatchDiscriminator(3, num_layers=2, base_channels=8, norm=norm)
    x = torch.randn(2, 3, 16, 16)
    ref = d(x).logits[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = d(x).logits[0]
    assert out.dtype == torch.bfloat16
    # Four bfloat16 convs in a row, each rounding its inputs to 8 bits of mantissa.
    assert_close(out.float(), ref, torch.bfloat16, scale=5)


@pytest.mark.parametrize("options", [{}, {"norm": "batch"}, {"spectral_norm": True}, {"equalized_lr": True}])
def test_state_dict_round_trip(options: dict[str, Any]) -> None:
    a = PatchDiscriminator(3, num_layers=2, base_channels=4, **options)
    x = torch.randn(2, 3, 16, 16)
    a(x)  # moves running stats and spectral-norm vectors away from their initial values
    a.eval()
    b = PatchDiscriminator(3, num_layers=2, base_channels=4, **options).eval()
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b(x).logits[0], a(x).logits[0], rtol=0, atol=0)


def test_errors() -> None:
    d = PatchDiscriminator(3, num_layers=3, base_channels=4)
    with pytest.raises(
        ValueError, match=r"x must have 3 channels \(in_channels\), got shape \(1, 4, 16, 16\)"
    ):
        d(torch.zeros(1, 4, 16, 16))
    with pytest.raises(ValueError, match=r"x must have 4 dimensions, got shape \(3, 16, 16\)"):
        d(torch.zeros(3, 16, 16))
    with pytest.raises(
        ValueError, match=r"x of spatial size 7×9 is too small .* num_layers=3: the minimum is 8×8"
    ):
        d(torch.zeros(1, 3, 7, 9))
    assert d(torch.zeros(1, 3, 8, 8)).logits[0].shape == (1, 1, 4, 4)  # 8 → 5 → 3 → 2 → 3 → 4
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor, got ndarray"):
        import numpy as np

        d(np.zeros((1, 3, 8, 8)))
    with pytest.raises(
        ValueError,
        match=r"norm must be one of \('instance', 'instance_affine', 'batch', 'none'\), got 'group'",
    ):
        PatchDiscriminator(3, norm="group")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="equalized_lr and spectral_norm cannot both be True"):
        PatchDiscriminator(3, equalized_lr=True, spectral_norm=True)
    for bad in (0, -2, True):
        with pytest.raises(ValueError, match=f"mbstd_group_size must be an int >= 1, got {bad!r}"):
            PatchDiscriminator(3, mbstd_num_channels=1, mbstd_group_size=bad, device="meta")
        with pytest.raises(ValueError, match=f"mbstd_group_size must be an int >= 1, got {bad!r}"):
            MultiScaleDiscriminator(3, mbstd_num_channels=1, mbstd_group_size=bad, device="meta")
    with pytest.raises(ValueError, match="num_layers must be an int >= 1, got 0"):
        PatchDiscriminator(3, num_layers=0)
    with pytest.raises(ValueError, match=r"in_channels must be an int >= 1, got 2\.0"):
        PatchDiscriminator(2.0)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"mbstd_num_channels \(3\) must divide the channel count entering the minibatch standard deviation \(8\)",
    ):
        PatchDiscriminator(3, num_layers=1, base_channels=4, mbstd_num_channels=3)
    with pytest.raises(ValueError, match="batch size \\(3\\) must be divisible by the group size \\(2\\)"):
        PatchDiscriminator(3, num_layers=1, mbstd_num_channels=1, mbstd_group_size=2)(torch.zeros(3, 3, 8, 8))
