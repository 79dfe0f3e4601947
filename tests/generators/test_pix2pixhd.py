"""pix2pixHD generators: parameter counts, equality with pix2pixHD-structured networks, checkpoint loading."""

from __future__ import annotations

import functools
from typing import Callable

import pytest
import torch
from helpers import assert_close
from torch import nn

from ganblocks import FeatureEncoder, GlobalGenerator, LocalEnhancer, ResnetBlock
from ganblocks.generators import ConvNormAct

NormLayer = Callable[[int], nn.Module]
INSTANCE: NormLayer = functools.partial(nn.InstanceNorm2d, affine=False)
BATCH: NormLayer = nn.BatchNorm2d


# ---------------------------------------------------------------------------------------------------------
# pix2pixHD's networks.py, written out as plain nn.Sequential lists (the independent formulation).
class RefResnetBlock(nn.Module):
    def __init__(self, dim: int, norm_layer: NormLayer) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm_layer(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm_layer(dim),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def ref_trunk(
    cin: int, cout: int, ngf: int, n_down: int, n_blocks: int, norm_layer: NormLayer
) -> list[nn.Module]:
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(cin, ngf, 7), norm_layer(ngf), nn.ReLU(True)]
    for i in range(n_down):
        m = 2**i
        layers += [
            nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1),
            norm_layer(ngf * m * 2),
            nn.ReLU(True),
        ]
    layers += [RefResnetBlock(ngf * 2**n_down, norm_layer) for _ in range(n_blocks)]
    for i in range(n_down):
        m = 2 ** (n_down - i)
        layers += [
            nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1),
            norm_layer(ngf * m // 2),
            nn.ReLU(True),
        ]
    return [*layers, nn.ReflectionPad2d(3), nn.Conv2d(ngf, cout, 7), nn.Tanh()]


class RefGlobal(nn.Module):
    def __init__(
        self, cin: int, cout: int, ngf: int, n_down: int, n_blocks: int, norm_layer: NormLayer
    ) -> None:
        super().__init__()
        self.model = nn.Sequential(*ref_trunk(cin, cout, ngf, n_down, n_blocks, norm_layer))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class RefLocal(nn.Module):
    def __init__(
        self, cin: int, cout: int, ngf: int, n_down_g: int, n_blocks_g: int, n_local: int, n_blocks_l: int,
        norm_layer: NormLayer,
    ) -> None:  # fmt: skip
        super().__init__()
        self.n_local = n_local
        trunk = ref_trunk(cin, cout, ngf * 2**n_local, n_down_g, n_blocks_g, norm_layer)
        self.model = nn.Sequential(*trunk[:-3])
        for n in range(1, n_local + 1):
            c = ngf * 2 ** (n_local - n)
            down = [
                nn.ReflectionPad2d(3), nn.Conv2d(cin, c, 7), norm_layer(c), nn.ReLU(True),
                nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), norm_layer(2 * c), nn.ReLU(True),
            ]  # fmt: skip
            up: list[nn.Module] = [RefResnetBlock(2 * c, norm_layer) for _ in range(n_blocks_l)]
            up += [
                nn.ConvTranspose2d(2 * c, c, 3, stride=2, padding=1, output_padding=1),
                norm_layer(c),
                nn.ReLU(True),
            ]
            if n == n_local:
                up += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, cout, 7), nn.Tanh()]
            setattr(self, f"model{n}_1", nn.Sequential(*down))
            setattr(self, f"model{n}_2", nn.Sequential(*up))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=(1, 1), count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = [x]
        for _ in range(self.n_local):
            inputs.append(self.downsample(inputs[-1]))
        out = self.model(inputs[-1])
        for n in range(1, self.n_local + 1):
            out = getattr(self, f"model{n}_2")(getattr(self, f"model{n}_1")(inputs[self.n_local - n]) + out)
        return out


class RefEncoder(RefGlobal):
    def __init__(self, cin: int, cout: int, ngf: int, n_down: int, norm_layer: NormLayer) -> None:
        super().__init__(cin, cout, ngf, n_down, 0, norm_layer)

    def forward(self, x: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = self.model(x)
        mean = out.clone()
        for i in inst.unique().tolist():
            for b in range(x.shape[0]):
                mask = (inst[b : b + 1] == i).expand_as(out[b : b + 1])
                for j in range(out.shape[1]):
                    sel = mask.clone()
                    sel[:, :j] = False
                    sel[:, j + 1 :] = False
                    if sel.any():
                        mean[b : b + 1][sel] = out[b : b + 1][sel].mean()
        return mean


def randomize(net: nn.Module) -> nn.Module:
    """Random weights everywhere, running statistics included, so that every key matters."""
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.is_floating_point():
                t.copy_(
                    torch.rand_like(t) + 0.5 if name.endswith("running_var") else torch.randn_like(t) * 0.3
                )
    return net


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------------------------
def test_pix2pixhd_parameter_counts() -> None:
    """pix2pixHD's counts, on the meta device (no memory, no init time)."""
    assert (
        count(GlobalGenerator(37, 3, base_channels=64, num_downsampling=4, num_blocks=9, device="meta"))
        == 182_549_891
    )
    assert count(LocalEnhancer(3, 3, base_channels=32, device="meta")) == 182_701_827
    assert count(FeatureEncoder(3, 3, base_channels=16, num_downsampling=4, device="meta")) == 788_803
    # The independent formulation agrees (small enough to build).
    assert count(GlobalGenerator(5, 3, base_channels=8, num_downsampling=2, num_blocks=3)) == count(
        RefGlobal(5, 3, 8, 2, 3, INSTANCE)
    )


def test_bias_before_norm_false_drops_only_redundant_biases() -> None:
    full = GlobalGenerator(37, 3, device="meta")
    lean = GlobalGenerator(37, 3, bias_before_norm=False, device="meta")
    # Every conv but the head is followed by a norm: 64 + (128 + 256 + 512 + 1024) + 18·1024 + (512 + … + 64).
    dropped = 64 + (128 + 256 + 512 + 1024) + 18 * 1024 + (512 + 256 + 128 + 64)
    assert count(full) - count(lean) == dropped


def test_resnet_block_matches_formula() -> None:
    block = randomize(ResnetBlock(3)).double()
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)

    def norm(t: torch.Tensor) -> torch.Tensor:
        mean = t.mean(dim=(2, 3), keepdim=True)
        var = ((t - mean) ** 2).mean(dim=(2, 3), keepdim=True)
        return (t - mean) / torch.sqrt(var + 1e-5)

    def conv(t: torch.Tensor, layer: nn.Module) -> torch.Tensor:
        c = layer.conv
        assert isinstance(c, nn.Conv2d)
        return nn.functional.conv2d(nn.functional.pad(t, (1, 1, 1, 1), mode="reflect"), c.weight, c.bias)

    expected = x + norm(conv(norm(conv(x, block.conv1)).clamp(min=0), block.conv2))  # type: ignore[arg-type]
    assert_close(block(x), expected)


@pytest.mark.parametrize(("norm", "norm_layer"), [("instance", INSTANCE), ("batch", BATCH)])
@pytest.mark.parametrize("bias_before_norm", [True, False])
def test_global_generator_loads_pix2pixhd(norm: str, norm_layer: NormLayer, bias_before_norm: bool) -> None:
    ref = randomize(RefGlobal(5, 3, 4, 2, 2, norm_layer)).double().eval()
    g = GlobalGenerator.from_pix2pixhd(
        ref.state_dict(), bias_before_norm=bias_before_norm, dtype=torch.float64
    ).eval()
    assert (g.in_channels, g.out_channels, g.base_channels, g.num_downsampling, g.num_blocks, g.norm) == (
        5,
        3,
        4,
        2,
        2,
        norm,
    )
    x = torch.randn(2, 5, 8, 12, dtype=torch.float64)
    assert_close(g(x), ref(x))
    if bias_before_norm:
        assert count(g) == count(ref)


def test_local_enhancer_loads_pix2pixhd() -> None:
    """Two enhancers: the pyramid, the per-level channels and the key layout of each enhancer are exercised."""
    ref = randomize(RefLocal(3, 2, 2, 1, 1, 2, 2, INSTANCE)).double()
    g = LocalEnhancer.from_pix2pixhd(ref.state_dict(), dtype=torch.float64)
    assert (
        g.num_local_enhancers,
        g.num_blocks_local,
        g.base_channels,
        g.global_generator.num_downsampling,
    ) == (
        2,
        2,
        2,
        1,
    )
    assert count(g) == count(ref)
    x = torch.randn(1, 3, 16, 24, dtype=torch.float64)
    assert_close(g(x), ref(x))


def test_local_enhancer_one_enhancer_default_layout() -> None:
    ref = randomize(RefLocal(3, 3, 2, 2, 1, 1, 1, INSTANCE)).double()
    g = LocalEnhancer(
        3, 3, base_channels=2, num_downsampling_global=2, num_blocks_global=1, num_blocks_local=1
    )
    g = g.double()
    # pix2pixHD checkpoints are often saved from DataParallel: a leading "module." is ignored.
    g.load_pix2pixhd_state_dict({f"module.{k}": v for k, v in ref.state_dict().items()})
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    assert_close(g(x), ref(x))


def test_encoder_loads_pix2pixhd_and_pools_instances() -> None:
    ref = randomize(RefEncoder(3, 3, 2, 2, INSTANCE)).double()
    e = FeatureEncoder.from_pix2pixhd(ref.state_dict(), dtype=torch.float64)
    assert (e.base_channels, e.num_downsampling, e.out_channels) == (2, 2, 3)
    assert count(e) == count(ref)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    inst = torch.randint(0, 3, (2, 1, 4, 4)).repeat_interleave(2, 2).repeat_interleave(2, 3) * 1000
    assert_close(e(x, inst), ref(x, inst))


def test_loader_errors() -> None:
    ref = RefGlobal(5, 3, 4, 2, 2, INSTANCE)
    g = GlobalGenerator(5, 3, base_channels=4, num_downsampling=2, num_blocks=1)
    with pytest.raises(ValueError, match="no parameters in this GlobalGenerator"):
        g.load_pix2pixhd_state_dict(ref.state_dict())
    with pytest.raises(ValueError, match=r"state_dict entry for stem.conv.weight has shape \(4, 5, 7, 7\)"):
        GlobalGenerator(4, 3, base_channels=4, num_downsampling=2, num_blocks=2).load_pix2pixhd_state_dict(
            ref.state_dict()
        )
    with pytest.raises(ValueError, match=r"'netD\.weight' is not a pix2pixHD GlobalGenerator key"):
        g.load_pix2pixhd_state_dict({"netD.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="it is a GlobalGenerator, not an Encoder"):
        FeatureEncoder.from_pix2pixhd(ref.state_dict())
    with pytest.raises(ValueError, match="does not hold a pix2pixHD LocalEnhancer"):
        LocalEnhancer.from_pix2pixhd(ref.state_dict())
    partial = dict(ref.state_dict())
    partial.pop("model.1.bias")
    with pytest.raises(ValueError, match=r"missing \['stem.conv.bias'\]"):
        GlobalGenerator.from_pix2pixhd(partial)


@pytest.mark.parametrize(
    ("make", "shape", "match"),
    [
        (
            lambda: GlobalGenerator(3, 3, base_channels=2, num_downsampling=2, num_blocks=1),
            (1, 3, 12, 10),
            "multiples of 4",
        ),
        (
            lambda: GlobalGenerator(3, 3, base_channels=2, num_downsampling=2, num_blocks=1),
            (1, 3, 4, 4),
            "at least 8",
        ),
        (
            lambda: GlobalGenerator(3, 3, base_channels=2, num_downsampling=2, num_blocks=1),
            (1, 2, 8, 8),
            "3 channels",
        ),
        (
            lambda: LocalEnhancer(3, 3, base_channels=2, num_downsampling_global=1, num_blocks_global=1),
            (1, 3, 10, 12),
            "multiples of 4",
        ),
    ],
)
def test_bad_input_sizes(make: Callable[[], nn.Module], shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()(torch.randn(shape))


@pytest.mark.parametrize("shape", [(1, 4, 1, 1), (1, 4, 1, 5), (1, 4, 5, 1)])
def test_resnet_block_too_small(shape: tuple[int, ...]) -> None:
    h, w = shape[-2:]
    with pytest.raises(
        ValueError, match=rf"x of spatial size {h}×{w} is too small for a ResnetBlock: .* at least 2"
    ):
        ResnetBlock(4)(torch.randn(shape))
    ResnetBlock(4)(torch.randn(1, 4, 2, 2))  # the smallest size that reflection padding accepts


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="norm must be one of"):
        GlobalGenerator(3, 3, norm="group")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"act must be one of \('relu', 'linear'\), got True"):
        ConvNormAct(3, 3, 3, act=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_blocks must be an int >= 0, got -1"):
        GlobalGenerator(3, 3, num_blocks=-1, device="meta")
    with pytest.raises(ValueError, match="num_local_enhancers must be an int >= 1, got 0"):
        LocalEnhancer(3, 3, num_local_enhancers=0, device="meta")


def test_repr_and_gradients() -> None:
    g = GlobalGenerator(3, 2, base_channels=2, num_downsampling=1, num_blocks=1)
    assert "in_channels=3, out_channels=2, base_channels=2, num_downsampling=1, num_blocks=1" in repr(g)
    assert "reflect_pad=3, act=relu" in repr(g.stem) and "act=linear" in repr(g.blocks[0].conv2)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    y = g(x)
    assert y.abs().max() <= 1
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in g.parameters())
