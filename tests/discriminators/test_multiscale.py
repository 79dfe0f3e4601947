"""MultiScaleDiscriminator against pix2pixHD's own modules (written here in plain torch.nn) and its loader."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from helpers import assert_close, assert_close_to_largest, tensor_sum
from torch import nn

from ganblocks.discriminators import (
    DiscriminatorOutput,
    MultiScaleDiscriminator,
    PatchDiscriminator,
    PatchNorm,
    convert_pix2pixhd_state_dict,
)

# ---- pix2pixHD's networks.py, transcribed (NLayerDiscriminator, MultiscaleDiscriminator) ----


class NLayerDiscriminator(nn.Module):
    def __init__(
        self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d, use_sigmoid=False, getIntermFeat=False
    ):
        super().__init__()
        self.getIntermFeat = getIntermFeat
        self.n_layers = n_layers
        kw = 4
        padw = int(math.ceil((kw - 1.0) / 2))  # noqa: RUF046  (verbatim pix2pixHD)
        sequence = [
            [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        ]
        nf = ndf
        for _n in range(1, n_layers):
            nf_prev = nf
            nf = min(nf * 2, 512)
            sequence += [
                [
                    nn.Conv2d(nf_prev, nf, kernel_size=kw, stride=2, padding=padw),
                    norm_layer(nf),
                    nn.LeakyReLU(0.2, True),
                ]
            ]
        nf_prev = nf
        nf = min(nf * 2, 512)
        sequence += [
            [
                nn.Conv2d(nf_prev, nf, kernel_size=kw, stride=1, padding=padw),
                norm_layer(nf),
                nn.LeakyReLU(0.2, True),
            ]
        ]
        sequence += [[nn.Conv2d(nf, 1, kernel_size=kw, stride=1, padding=padw)]]
        if use_sigmoid:
            sequence += [[nn.Sigmoid()]]
        if getIntermFeat:
            for n in range(len(sequence)):
                setattr(self, "model" + str(n), nn.Sequential(*sequence[n]))
        else:
            sequence_stream = []
            for n in range(len(sequence)):
                sequence_stream += sequence[n]
            self.model = nn.Sequential(*sequence_stream)

    def forward(self, input):
        if self.getIntermFeat:
            res = [input]
            for n in range(self.n_layers + 2):
                model = getattr(self, "model" + str(n))
                res.append(model(res[-1]))
            return res[1:]
        return self.model(input)


class Pix2PixHDMultiscaleDiscriminator(nn.Module):
    def __init__(
        self,
        input_nc,
        ndf=64,
        n_layers=3,
        norm_layer=nn.BatchNorm2d,
        use_sigmoid=False,
        num_D=3,
        getIntermFeat=False,
    ):
        super().__init__()
        self.num_D = num_D
        self.n_layers = n_layers
        self.getIntermFeat = getIntermFeat
        for i in range(num_D):
            netD = NLayerDiscriminator(input_nc, ndf, n_layers, norm_layer, use_sigmoid, getIntermFeat)
            if getIntermFeat:
                for j in range(n_layers + 2):
                    setattr(self, "scale" + str(i) + "_layer" + str(j), getattr(netD, "model" + str(j)))
            else:
                setattr(self, "layer" + str(i), netD.model)
        self.downsample = nn.AvgPool2d(3, stride=2, padding=(1, 1), count_include_pad=False)

    def singleD_forward(self, model, input):
        if self.getIntermFeat:
            result = [input]
            for i in range(len(model)):
                result.append(model[i](result[-1]))
            return result[1:]
        return [model(input)]

    def forward(self, input):
        num_D = self.num_D
        result = []
        input_downsampled = input
        for i in range(num_D):
            if self.getIntermFeat:
                model = [
                    getattr(self, "scale" + str(num_D - 1 - i) + "_layer" + str(j))
                    for j in range(self.n_layers + 2)
                ]
            else:
                model = getattr(self, "layer" + str(num_D - 1 - i))
            result.append(self.singleD_forward(model, input_downsampled))
            if i != (num_D - 1):
                input_downsampled = self.downsample(input_downsampled)
        return result


INSTANCE = functools.partial(nn.InstanceNorm2d, affine=False)
BATCH = functools.partial(nn.BatchNorm2d, affine=True)


def randomize(module: nn.Module) -> None:
    """pix2pixHD's init plus noise on every parameter and running statistic, so that nothing is trivial."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.normal_(1.0 if "weight" in name and p.ndim == 1 else 0.0, 0.05)
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0.0, 0.1)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5)


def logits_size(size: int, scale: int, n_layers: int) -> int:
    """Downsample ``scale`` times by 3×3/2 average pooling (padding 1), then the PatchGAN's convs."""
    for _ in range(scale):
        size = (size + 2 - 3) // 2 + 1
    for stride in [2] * n_layers + [1, 1]:
        size = (size + 4 - 4) // stride + 1
    return size


def pix2pixhd_count(input_nc: int, ndf: int, n_layers: int, num_D: int) -> int:
    widths = [input_nc, ndf]
    for _ in range(n_layers):
        widths.append(min(widths[-1] * 2, 512))
    widths.append(1)
    return num_D * sum(a * b * 4 * 4 + b for a, b in zip(widths[:-1], widths[1:]))


def test_pix2pixhd_parameter_count_and_sizes() -> None:
    assert pix2pixhd_count(3, 64, 3, 3) == 8_294_211
    assert [logits_size(256, k, 3) for k in range(3)] == [35, 19, 11]
    ref = Pix2PixHDMultiscaleDiscriminator(3, norm_layer=INSTANCE, getIntermFeat=True)
    assert sum(p.numel() for p in ref.parameters()) == 8_294_211
    d = MultiScaleDiscriminator(3)
    assert sum(p.numel() for p in d.parameters()) == 8_294_211
    assert d.min_input_size == 29
    out = d(torch.randn(1, 3, 256, 256))
    assert [tuple(t.shape) for t in out.logits] == [(1, 1, 35, 35), (1, 1, 19, 19), (1, 1, 11, 11)]
    assert out.features == [[], [], []]


@pytest.mark.parametrize("interm", [True, False])
@pytest.mark.parametrize("norm", ["instance", "batch"])
@pytest.mark.parametrize("bias_before_norm", [True, False])
def test_loader_gives_identical_outputs(interm: bool, norm: PatchNorm, bias_before_norm: bool) -> None:
    num_D, n_layers = 3, 2
    ref = Pix2PixHDMultiscaleDiscriminator(
        3,
        ndf=4,
        n_layers=n_layers,
        norm_layer=INSTANCE if norm == "instance" else BATCH,
        num_D=num_D,
        getIntermFeat=interm,
    ).double()
    randomize(ref)
    state = ref.state_dict()
    prefix = "scale2_layer1.1." if interm else "layer2.3."
    if norm == "batch":
        assert prefix + "running_mean" in state
    d = MultiScaleDiscriminator(
        3,
        num_scales=num_D,
        num_layers=n_layers,
        base_channels=4,
        norm=norm,
        bias_before_norm=bias_before_norm,
    ).double()
    d.load_pix2pixhd_state_dict(state)
    ref.eval()
    d.eval()
    x = torch.randn(2, 3, 37, 53, dtype=torch.float64)
    expected = ref(x)
    out = d(x, return_features=interm)
    for k in range(num_D):
        assert_close(out.logits[k], expected[k][-1])
    if interm:
        # The nested pix2pixHD format, features included, is reproduced exactly.
        nested = out.to_nested()
        assert [len(s) for s in nested] == [len(s) for s in expected] == [n_layers + 2] * num_D
        for ours, theirs in zip(nested, expected):
            for a, b in zip(ours, theirs):
                assert_close(a, b)
    if norm == "batch" and not bias_before_norm:
        ref.train()
        d.train()
        for k, t in enumerate(d(x).logits):
            assert_close(t, ref(x)[k][-1])


def pix2pixhd_weights_init(m: nn.Module) -> None:
    """pix2pixHD's ``weights_init``: conv weights N(0, 0.02²) (the biases keep PyTorch's default init)."""
    if isinstance(m, nn.Conv2d):
        nn.init.normal_(m.weight, 0.0, 0.02)


def patchgan_at_pattern(
    params: list[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor, positive: list[torch.Tensor]
) -> list[torch.Tensor]:
    """pix2pixHD's PatchGAN (3 layers, non-affine instance norm, eps 1e-5) whose LeakyReLU(0.2) takes the
    slope 1 exactly where ``positive`` says: the function whose gradient a given activation pattern computes.
    """
    out = []
    for j, (w, b) in enumerate(params):
        x = torch.nn.functional.conv2d(x, w, b, stride=2 if j < 3 else 1, padding=2)
        if 0 < j < 4:
            mean = x.mean(dim=(2, 3), keepdim=True)
            var = (x - mean).square().mean(dim=(2, 3), keepdim=True)
            x = (x - mean) / torch.sqrt(var + 1e-5)
        if j < 4:
            x = torch.where(positive[j], x, 0.2 * x)
        out.append(x)
    return out


def test_float32_gradients_with_pix2pixhd_initialisation() -> None:
    """float32 gradients of a pix2pixHD-initialised D loaded with from_pix2pixhd, against float64.

    pix2pixHD's ``MultiscaleDiscriminator(6, 64, 3, InstanceNorm2d(affine=False), False, 3, True)`` with its
    ``weights_init``. Where a LeakyReLU input lies within float32 rounding (about 3e-6 here) of 0, float32 and
    float64 take different branches of the kink (slope 1 or 0.2), and the gradients differ by that element's
    share, percents of a weight gradient: pix2pixHD's own float32 code does the same at other elements. With
    this seed one of the 74k inputs of scale 1's second LeakyReLU flips (float64 5.9e-7), and the float32
    gradient of ``scales[1].layers[1].conv.weight`` is 2% off the float64 one. Taken at the activation
    pattern that float32 chose, the float64 gradient agrees with it to float32 precision: the error is the
    kink, not the arithmetic.
    """
    torch.manual_seed(0)
    ref = Pix2PixHDMultiscaleDiscriminator(6, 64, 3, INSTANCE, False, 3, True)
    ref.apply(pix2pixhd_weights_init)
    state = ref.double().state_dict()
    x = torch.randn(2, 6, 128, 128, dtype=torch.float64)
    d64 = MultiScaleDiscriminator.from_pix2pixhd(state, dtype=torch.float64, return_features=True)
    d32 = MultiScaleDiscriminator.from_pix2pixhd(state, dtype=torch.float32, return_features=True)
    gen = torch.Generator().manual_seed(1)
    shapes = [t.shape for t in d64(x).to_nested()[1]]
    weighting = [torch.randn(shape, generator=gen, dtype=torch.float64) for shape in shapes]

    def grads(d: MultiScaleDiscriminator, xd: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        xd = xd.detach().requires_grad_()
        outs = d(xd).to_nested()[1]
        loss = tensor_sum((t * w.to(t.dtype)).sum() for t, w in zip(outs, weighting))
        weights = [d.scales[1].layers[i].conv.weight for i in range(5)]  # type: ignore[union-attr,index]
        return list(torch.autograd.grad(loss, [*weights, xd])), [t.detach() for t in outs]

    g64, outs64 = grads(d64, x)
    g32, outs32 = grads(d32, x.float())
    # float64: pix2pixHD's own modules give the same gradients.
    xr = x.detach().requires_grad_()
    ref_outs = ref(xr)[1]
    ref_loss = tensor_sum((t * w).sum() for t, w in zip(ref_outs, weighting))
    ref_weights = [getattr(ref, f"scale1_layer{j}")[0].weight for j in range(5)]
    for ours, theirs in zip(g64, torch.autograd.grad(ref_loss, [*ref_weights, xr])):
        assert_close_to_largest(ours, theirs, torch.float64)

    # float32: the float64 formula at float32's activation pattern (the sign of each LeakyReLU output).
    params = [
        (w.detach().clone().requires_grad_(), b.detach())
        for w, b in ((getattr(ref, f"scale1_layer{j}")[0].weight, getattr(ref, f"scale1_layer{j}")[0].bias)
                     for j in range(5))
    ]  # fmt: skip
    xp = x.detach().requires_grad_()
    x1 = torch.nn.functional.avg_pool2d(xp, 3, stride=2, padding=1, count_include_pad=False)
    at_pattern = patchgan_at_pattern(params, x1, [t > 0 for t in outs32[:4]])
    loss = tensor_sum((t * w).sum() for t, w in zip(at_pattern, weighting))
    expected = torch.autograd.grad(loss, [*(w for w, _ in params), xp])
    for ours, theirs in zip(g32, expected):
        assert_close_to_largest(ours, theirs, torch.float32)
    flips = sum(int(((a > 0) != (b > 0)).sum()) for a, b in zip(outs32[:4], outs64[:4]))
    if flips == 0:
        for ours, theirs in zip(g32, g64):
            assert_close_to_largest(ours, theirs, torch.float32)


def test_scale_order_follows_pix2pixhd() -> None:
    """pix2pixHD's scale i runs on the input downsampled num_D - 1 - i times."""
    ref = Pix2PixHDMultiscaleDiscriminator(
        3, ndf=4, n_layers=1, norm_layer=INSTANCE, num_D=2, getIntermFeat=True
    )
    state = convert_pix2pixhd_state_dict(ref.state_dict(), num_scales=2)
    torch.testing.assert_close(state["scales.0.layers.0.conv.weight"], ref.scale1_layer0[0].weight)  # type: ignore[index, union-attr]
    torch.testing.assert_close(state["scales.1.layers.1.conv.bias"], ref.scale0_layer1[0].bias)  # type: ignore[index, union-attr]
    flat = Pix2PixHDMultiscaleDiscriminator(3, ndf=4, n_layers=1, norm_layer=INSTANCE, num_D=2)
    state = convert_pix2pixhd_state_dict(
        {"module." + k: v for k, v in flat.state_dict().items()}, num_scales=2
    )
    assert sorted(state) == sorted(
        MultiScaleDiscriminator(3, num_scales=2, num_layers=1, base_channels=4).state_dict()
    )
    torch.testing.assert_close(state["scales.0.layers.2.conv.weight"], flat.layer1[5].weight)  # type: ignore[index, union-attr]


def test_from_pix2pixhd_reads_the_architecture() -> None:
    ref = Pix2PixHDMultiscaleDiscriminator(5, ndf=8, n_layers=2, norm_layer=BATCH, num_D=2).eval()
    randomize(ref)
    d = MultiScaleDiscriminator.from_pix2pixhd(ref.state_dict()).eval()
    assert (d.in_channels, d.num_scales, d.num_layers, d.norm) == (5, 2, 2, "batch")
    x = torch.randn(2, 5, 32, 32)
    for k, t in enumerate(d(x).logits):
        assert_close(t, ref(x)[k][-1])


def test_loader_errors() -> None:
    ref = Pix2PixHDMultiscaleDiscriminator(3, ndf=4, n_layers=2, norm_layer=INSTANCE, num_D=3)
    state = ref.state_dict()
    with pytest.raises(
        ValueError, match=r"holds 3 pix2pixHD scales, the target has num_scales=2.*num_scales=3"
    ):
        MultiScaleDiscriminator(3, num_scales=2, num_layers=2, base_channels=4).load_pix2pixhd_state_dict(
            state
        )
    with pytest.raises(ValueError, match=r"does not match .*num_layers=3.*missing \['scales.0.layers.4"):
        MultiScaleDiscriminator(3, num_layers=3, base_channels=4).load_pix2pixhd_state_dict(state)
    with pytest.raises(
        ValueError,
        match=r"entry for scales.0.layers.0.conv.bias has shape \(4,\), this module expects \(8,\): check in_channels",
    ):
        MultiScaleDiscriminator(3, num_layers=2, base_channels=8).load_pix2pixhd_state_dict(state)
    with pytest.raises(ValueError, match=r"'netD\.weight' is not a pix2pixHD MultiscaleDiscriminator key"):
        MultiScaleDiscriminator(3, num_layers=2, base_channels=4).load_pix2pixhd_state_dict(
            {"netD.weight": torch.zeros(1)}
        )
    with pytest.raises(ValueError, match="needs the pix2pixHD architecture"):
        MultiScaleDiscriminator(3, num_layers=2, spectral_norm=True).load_pix2pixhd_state_dict(state)
    with pytest.raises(ValueError, match="holds no pix2pixHD discriminator keys"):
        MultiScaleDiscriminator.from_pix2pixhd({})


def test_default_backbone_is_patchgan_per_scale() -> None:
    d = MultiScaleDiscriminator(4, num_scales=2, num_layers=1, base_channels=4, return_features=True).double()
    x = torch.randn(2, 4, 16, 12, dtype=torch.float64)
    out = d(x)
    assert isinstance(out, DiscriminatorOutput)
    down = torch.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)(x)
    for k, xk in enumerate([x, down]):
        single = d.scales[k](xk, return_features=True)
        assert_close(out.logits[k], single.logits[0])
        assert len(out.features[k]) == 2
    assert d.scales[0] is not d.scales[1]
    assert d(x, return_features=False).features == [[], []]


def test_custom_backbone() -> None:
    class Tiny(nn.Module):
        min_input_size = 4

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 1, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

    made: list[int] = []

    def factory(scale: int) -> nn.Module:
        made.append(scale)
        return Tiny() if scale != 1 else PatchDiscriminator(3, num_layers=1, base_channels=2)

    d = MultiScaleDiscriminator(3, num_scales=3, backbone=factory)
    assert made == [0, 1, 2]
    assert d.min_input_size == 13  # scale 2 sees ceil(13 / 4) = 4
    out = d(torch.randn(1, 3, 13, 16), return_features=True)
    assert [tuple(t.shape[-2:]) for t in out.logits] == [(11, 14), (6, 7), (2, 2)]
    assert logits_size(13, 1, 1) == 6 and logits_size(16, 1, 1) == 7
    assert [len(f) for f in out.features] == [0, 2, 0]
    with pytest.raises(
        ValueError,
        match=r"x of spatial size 12×16 .*scale 2 sees 3×4, below its discriminator's minimum 4×4; the minimum input is 13×13",
    ):
        d(torch.randn(1, 3, 12, 16))
    with pytest.raises(TypeError, match=r"backbone\(0\) must return an nn.Module, got function"):
        MultiScaleDiscriminator(3, backbone=lambda k: lambda x: x)  # type: ignore[arg-type, return-value]
    bad = MultiScaleDiscriminator(3, num_scales=1, backbone=lambda k: nn.Identity())
    bad.scales[0].forward = lambda x: [x]
    with pytest.raises(
        TypeError, match="scale 0 must return a tensor or a one-scale DiscriminatorOutput, got list"
    ):
        bad(torch.randn(1, 3, 4, 4))


def test_non_square_odd_sizes_and_too_small() -> None:
    d = MultiScaleDiscriminator(3, base_channels=4)
    out = d(torch.randn(1, 3, 37, 53))
    expected = [(logits_size(37, k, 3), logits_size(53, k, 3)) for k in range(3)]
    assert [tuple(t.shape[-2:]) for t in out.logits] == expected == [(8, 10), (6, 7), (5, 5)]
    assert d(torch.randn(1, 3, 29, 29)).logits[2].shape[-1] == logits_size(29, 2, 3) == 4
    with pytest.raises(
        ValueError,
        match=r"x of spatial size 28×40 is too small for num_scales=3: scale 2 sees 7×10, below its discriminator's minimum 8×8; the minimum input is 29×29",
    ):
        d(torch.randn(1, 3, 28, 40))
    with pytest.raises(
        ValueError, match=r"x must have 3 channels \(in_channels\), got shape \(1, 1, 64, 64\)"
    ):
        d(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="num_scales must be an int >= 1, got 0"):
        MultiScaleDiscriminator(3, num_scales=0)


def test_repr() -> None:
    d = MultiScaleDiscriminator(3, num_scales=2, num_layers=1, base_channels=4, return_features=True)
    assert repr(d).startswith(
        "MultiScaleDiscriminator(\n  in_channels=3, num_scales=2, return_features=True\n  (scales): ModuleList("
    )


def test_channels_last_autocast_and_state_dict() -> None:
    d = MultiScaleDiscriminator(3, num_scales=2, num_layers=2, base_channels=8)
    x = torch.randn(2, 3, 32, 32)
    ref = d(x)
    out = d.to(memory_format=torch.channels_last)(  # type: ignore[call-overload]
        x.to(memory_format=torch.channels_last), return_features=True
    )
    assert out.features[1][0].is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(out.logits, ref.logits):
        assert_close(a, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = d(x)
    for a, b in zip(low.logits, ref.logits):
        assert a.dtype == torch.bfloat16
        assert_close(a.float(), b, torch.bfloat16, scale=5)  # four bfloat16 convs in a row
    e = MultiScaleDiscriminator(3, num_scales=2, num_layers=2, base_channels=8)
    e.load_state_dict(d.state_dict())
    for a, b in zip(e(x).logits, ref.logits):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_gradients_reach_every_scale_and_parameter() -> None:
    d = MultiScaleDiscriminator(3, num_scales=3, num_layers=1, base_channels=4)
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    out = d(x)
    for k, t in enumerate(out.logits):
        (g,) = torch.autograd.grad(t.sum(), x, retain_graph=True)
        assert g.abs().sum() > 0, f"no gradient from scale {k}"
    tensor_sum(t.mean() for t in out.logits).backward()
    assert all(p.grad is not None for p in d.parameters())


def test_torch_compile_fullgraph() -> None:
    d = MultiScaleDiscriminator(3, num_scales=2, num_layers=2, base_channels=8)
    x = torch.randn(2, 3, 32, 32)
    # aot_eager traces the whole graph (dynamo + AOTAutograd) without inductor's C++ build, minutes on CPU.
    compiled = torch.compile(d, fullgraph=True, backend="aot_eager")
    out = compiled(x, return_features=True)
    ref = d(x, return_features=True)
    for a, b in zip(out.logits, ref.logits):
        assert_close(a, b)
    assert len(out.features[0]) == 3
