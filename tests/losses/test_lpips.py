"""LPIPS: random torchvision-format trunks and lpips-format heads saved to files, against a hand-written
forward, and against the lpips package itself on the same weights."""

from __future__ import annotations

import math
import os
import types
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, oracle

from ganblocks.functional import lpips_from_features
from ganblocks.losses import LPIPS, LPIPSNet

# torchvision's vgg16().features[:30] and alexnet().features[:12], written out independently of ganblocks:
# ("conv", out_channels, kernel, stride, padding), "relu", ("pool", kernel, stride).
VGG16: list[Any] = []
for _block, (_c, _n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]):
    VGG16 += ([("pool", 2, 2)] if _block else []) + [("conv", _c, 3, 1, 1), "relu"] * _n
ALEX: list[Any] = [
    ("conv", 64, 11, 4, 2), "relu", ("pool", 3, 2),
    ("conv", 192, 5, 1, 2), "relu", ("pool", 3, 2),
    ("conv", 384, 3, 1, 1), "relu",
    ("conv", 256, 3, 1, 1), "relu",
    ("conv", 256, 3, 1, 1), "relu",
]  # fmt: skip
NETS = {"vgg": VGG16, "alex": ALEX}
# The ReLUs LPIPS reads: VGG16 relu1_2, relu2_2, relu3_3, relu4_3, relu5_3; AlexNet's five.
TAPS = {"vgg": [3, 8, 15, 22, 29], "alex": [1, 4, 7, 9, 11]}
SHIFT = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)
FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}


def trunk_state_dict(net: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under torchvision's keys, with deeper layers and classifier stand-ins the loader ignores."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    cin = 3
    for i, item in enumerate(NETS[net]):
        if isinstance(item, tuple) and item[0] == "conv":
            _, cout, k, _, _ = item
            sd[f"features.{i}.weight"] = torch.randn(cout, cin, k, k, generator=g) * math.sqrt(
                2.0 / (k * k * cin)
            )
            sd[f"features.{i}.bias"] = 0.1 * torch.randn(cout, generator=g)
            cin = cout
    sd["classifier.0.weight"], sd["classifier.0.bias"] = torch.zeros(2, 2), torch.zeros(2)
    return sd


def channels(net: str) -> list[int]:
    return [NETS[net][i - 1][1] for i in TAPS[net]]


def head_state_dict(net: str, seed: int = 1) -> dict[str, torch.Tensor]:
    """The lpips package's v0.1 file layout: lin{l}.model.1.weight of shape (1, C, 1, 1), non-negative."""
    g = torch.Generator().manual_seed(seed)
    return {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for i, c in enumerate(channels(net))
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    out = {}
    for net in NETS:
        folder = tmp_path_factory.mktemp(net)
        trunk, heads = folder / FILES[net], folder / f"{net}.pth"
        torch.save(trunk_state_dict(net), trunk)
        torch.save(head_state_dict(net), heads)
        out[net] = (trunk, heads)
    return out


def hand_lpips(x: torch.Tensor, y: torch.Tensor, net: str, zero_one: bool = False) -> torch.Tensor:
    """Zhang et al.'s formula written out in float64: (N,) distances."""
    sd, heads = trunk_state_dict(net), head_state_dict(net)

    def feats(img: torch.Tensor) -> list[torch.Tensor]:
        h = img.double()
        if zero_one:
            h = 2 * h - 1
        h = (h - SHIFT) / SCALE
        out = []
        for i, item in enumerate(NETS[net]):
            if item == "relu":
                h = F.relu(h)
            elif item[0] == "pool":
                h = F.max_pool2d(h, item[1], item[2])
            else:
                w, b = sd[f"features.{i}.weight"].double(), sd[f"features.{i}.bias"].double()
                h = F.conv2d(h, w, b, stride=item[3], padding=item[4])
            if i in TAPS[net]:
                out.append(h)
        return out

    total = torch.zeros(x.shape[0], dtype=torch.float64)
    for i, (a, b) in enumerate(zip(feats(x), feats(y))):
        a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        w = heads[f"lin{i}.model.1.weight"].double().view(1, -1, 1, 1)
        total += (w * (a - b) ** 2).sum(1).mean((1, 2))
    return total


def images(n: int, size: int, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1, torch.rand(
        n, 3, size, size, generator=g
    ) * 2 - 1


@pytest.mark.parametrize(("net", "size"), [("vgg", 20), ("alex", 40)])
def test_files_match_the_formula(net: LPIPSNet, size: int, files: dict[str, tuple[Path, Path]]) -> None:
    trunk, heads = files[net]
    x, y = images(3, size)
    dist = LPIPS(net, trunk_weights=trunk, head_weights=str(heads), reduction="none", dtype=torch.float64)
    expected = hand_lpips(x, y, net)
    got = dist(x.double(), y.double())
    assert got.shape == (3,)
    assert_close(got, expected)
    assert (expected > 0).all()
    # [0, 1] images: the same distance as their [-1, 1] versions.
    dist01 = LPIPS(net, trunk_weights=trunk, head_weights=heads, input_range="[0,1]", dtype=torch.float64)
    assert_close(dist01((x.double() + 1) / 2, (y.double() + 1) / 2), expected.mean())
    # float32 module, float32 images.
    dist32 = LPIPS(net, trunk_weights=trunk, head_weights=heads, reduction="sum")
    assert_close(dist32(x, y), expected.sum().float(), scale=10)  # five layers of float32 convolutions


def test_reduction_symmetry_and_gradients(files: dict[str, tuple[Path, Path]]) -> None:
    trunk, heads = files["vgg"]
    dist = LPIPS("vgg", trunk_weights=trunk, head_weights=heads, reduction="none", dtype=torch.float64)
    x, y = (t.double() for t in images(2, 16, seed=5))
    per = dist(x, y)
    assert_close(dist(y, x), per)
    assert_close(dist(x, x), torch.zeros(2, dtype=torch.float64))
    mean = LPIPS("vgg", trunk_weights=trunk, head_weights=heads, dtype=torch.float64)
    assert_close(mean(x, y), per.mean())
    # Gradients reach both images (a loss), not the frozen network; finite differences agree.
    xg, yg = x.clone().requires_grad_(), y.clone().requires_grad_()
    dist(xg, yg).sum().backward()
    assert xg.grad is not None and yg.grad is not None and xg.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in dist.parameters())
    v = torch.randn_like(x)
    h = 1e-6
    fd = (dist(x + h * v, y).sum() - dist(x - h * v, y).sum()) / (2 * h)
    assert_close((xg.grad * v).sum(), fd, scale=1e4)  # central differences in float64: ~1e-7 relative


def test_lpips_from_features_formula() -> None:
    g = torch.Generator().manual_seed(0)
    a = [
        torch.randn(2, 4, 3, 5, generator=g, dtype=torch.float64),
        torch.randn(2, 6, 2, 2, generator=g).double(),
    ]
    b = [torch.randn_like(t) for t in a]
    w = [torch.rand(4, dtype=torch.float64), torch.rand(1, 6, 1, 1, dtype=torch.float64)]
    expected = torch.zeros(2, dtype=torch.float64)
    for fa, fb, wl in zip(a, b, w):
        for n in range(2):
            for i in range(fa.shape[2]):
                for j in range(fa.shape[3]):
                    ua = fa[n, :, i, j] / (fa[n, :, i, j].norm() + 1e-10)
                    ub = fb[n, :, i, j] / (fb[n, :, i, j].norm() + 1e-10)
                    expected[n] += (wl.flatten() * (ua - ub) ** 2).sum() / (fa.shape[2] * fa.shape[3])
    assert_close(lpips_from_features(a, b, w, reduction="none"), expected)
    assert_close(lpips_from_features(a, b, w, reduction="sum"), expected.sum())
    # No heads: lpips's unweighted baseline; opposite unit vectors are 2 apart, squared 4.
    ones = torch.ones(3, 5, 2, 2)
    assert_close(lpips_from_features([ones], [-ones], None, reduction="none"), torch.full((3,), 4.0))
    # float16 features are computed in float32.
    half = lpips_from_features([t.half() for t in a], [t.half() for t in b], w)
    assert half.dtype == torch.float32
    assert_close(half, expected.mean(), torch.float16, scale=4)


def test_lpips_from_features_bad_inputs() -> None:
    a = [torch.rand(2, 4, 3, 3)]
    with pytest.raises(ValueError, match="non-empty lists of the same length, got 1 and 2"):
        lpips_from_features(a, a + a, None)
    with pytest.raises(ValueError, match=r"one weight per layer \(1\), got 2"):
        lpips_from_features(a, a, [torch.ones(4), torch.ones(4)])
    with pytest.raises(ValueError, match=r"head_weights\[0\] must have 4 elements .* got shape \(5,\)"):
        lpips_from_features(a, a, [torch.ones(5)])
    with pytest.raises(ValueError, match=r"must have the same shape, got \(2, 4, 3, 3\) and \(2, 4, 3, 2\)"):
        lpips_from_features(a, [torch.rand(2, 4, 3, 2)], None)
    with pytest.raises(ValueError, match="reduction"):
        lpips_from_features(a, a, None, reduction="avg")  # type: ignore[arg-type]


def test_perceptual_path_length_callable(files: dict[str, tuple[Path, Path]]) -> None:
    """``reduction="none"``: a callable (img0, img1) -> (N,), as path length's distance takes."""
    trunk, heads = files["alex"]
    dist = LPIPS("alex", trunk_weights=trunk, head_weights=heads, reduction="none")
    x, y = images(4, 32)
    d = dist(x, y)
    assert d.shape == (4,) and d.dtype == torch.float32
    assert_close(d, hand_lpips(x, y, "alex").float(), scale=10)


def test_random_weights_warn_and_repr() -> None:
    with pytest.warns(UserWarning, match=r"trunk is randomly initialised.*vgg16-397923af.pth"):
        with pytest.warns(UserWarning, match=r"heads are randomly initialised.*lpips/weights/v0.1/vgg.pth"):
            dist = LPIPS("vgg", trunk_weights=None, head_weights=None)
    assert "net='vgg', input_range='[-1,1]', reduction='mean'" in repr(dist)
    assert dist.min_input_size == 16
    assert len(dist.features) == 30 and type(dist.features[29]).__name__ == "ReLU"


def test_state_dicts_and_dtype(files: dict[str, tuple[Path, Path]]) -> None:
    trunk, heads = trunk_state_dict("alex"), head_state_dict("alex")
    dist = LPIPS("alex", trunk_weights=trunk, head_weights=heads, dtype=torch.float64)
    assert torch.equal(dist.features[3].weight, trunk["features.3.weight"].double())  # type: ignore[arg-type]
    assert torch.equal(dist.heads[4].weight, heads["lin4.model.1.weight"].double())  # type: ignore[arg-type]
    assert dist.min_input_size == 31
    assert dist.features[0].weight.dtype == torch.float64


def test_missing_and_wrong_files(tmp_path: Path, files: dict[str, tuple[Path, Path]]) -> None:
    trunk, heads = files["vgg"]
    nope = tmp_path / "nope.pth"
    with pytest.raises(
        FileNotFoundError, match=r"trunk_weights file not found: '.*nope.pth'.*vgg16-397923af"
    ):
        LPIPS("vgg", trunk_weights=nope, head_weights=heads)
    with pytest.raises(
        FileNotFoundError, match=r"head_weights file not found: '.*nope.pth'.*lpips/weights/v0.1/alex.pth"
    ):
        LPIPS("alex", trunk_weights=files["alex"][0], head_weights=nope)
    # The other network's files name what does not match.
    with pytest.raises(ValueError, match=r"VGG16 weights from .* wrong shapes \[features.0.weight: expected"):
        LPIPS("vgg", trunk_weights=files["alex"][0], head_weights=heads)
    with pytest.raises(
        ValueError, match=r"lin1.model.1.weight: expected \(1, 128, 1, 1\), got \(1, 192, 1, 1\)"
    ):
        LPIPS("vgg", trunk_weights=trunk, head_weights=files["alex"][1])
    with pytest.raises(ValueError, match=r"missing key lin0.model.1.weight"):
        LPIPS("vgg", trunk_weights=trunk, head_weights={"lins.0.model.1.weight": torch.zeros(1, 64, 1, 1)})
    tensor_file = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor_file)
    with pytest.raises(ValueError, match=r"expected the lpips package's v0.1 vgg.pth .* got a Tensor"):
        LPIPS("vgg", trunk_weights=trunk, head_weights=tensor_file)
    pickled = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(1, 1), pickled)
    with pytest.raises(ValueError, match=r"could not be read with torch.load\(weights_only=True\)"):
        LPIPS("vgg", trunk_weights=pickled, head_weights=heads)
    with pytest.raises(TypeError, match="head_weights must be a path, a state dict or None, got int"):
        LPIPS("vgg", trunk_weights=trunk, head_weights=3)  # type: ignore[arg-type]


def test_bad_arguments_and_inputs(files: dict[str, tuple[Path, Path]]) -> None:
    trunk, heads = files["alex"]
    with pytest.raises(ValueError, match=r"net must be one of .*'alex', 'vgg'.*got 'squeeze'"):
        LPIPS("squeeze", trunk_weights=trunk, head_weights=heads)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input_range must be one of"):
        LPIPS("alex", trunk_weights=trunk, head_weights=heads, input_range="[0,255]")  # type: ignore[arg-type]
    dist = LPIPS("alex", trunk_weights=trunk, head_weights=heads)
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"input of spatial size 30×32 is too small .* at least 31"):
        dist(x[:, :, :30], x[:, :, :30])
    with pytest.raises(
        ValueError, match=r"target must have 3 channels \(N, 3, H, W\), got shape \(2, 1, 32, 32\)"
    ):
        dist(x, x[:, :1])
    with pytest.raises(ValueError, match=r"same shape, got \(2, 3, 32, 32\) and \(1, 3, 32, 32\)"):
        dist(x, x[:1])
    with pytest.raises(ValueError, match="at least one element"):
        dist(x[:0], x[:0])
    with pytest.raises(TypeError, match="input"):
        dist(x.long(), x)


def test_bfloat16_autocast_channels_last_and_dtype(files: dict[str, tuple[Path, Path]]) -> None:
    trunk, heads = files["alex"]
    dist = LPIPS("alex", trunk_weights=trunk, head_weights=heads, reduction="none")
    x, y = images(2, 32, seed=7)
    expected = dist(x, y)
    cl = dist(x.to(memory_format=torch.channels_last), y.to(memory_format=torch.channels_last))
    assert_close(cl, expected)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = dist(x, y)
    assert low.dtype == torch.float32  # the distance is computed in float32 from bfloat16 features
    assert_close(low, expected, torch.bfloat16, scale=4)  # five bfloat16 convolutions deep
    with pytest.raises(TypeError, match=r"input must have the dtype of LPIPS's parameters \(torch.float32\)"):
        dist(x.double(), y.double())


def _oracle_model(
    net: LPIPSNet, trunk: Path, heads: Path, dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """lpips's own LPIPS with the ImageNet trunk (``pnet_rand=False``) and our heads file (``model_path``).

    Its trunk comes from ``torchvision.models.vgg16/alexnet(pretrained=True)``, patched here to build
    torchvision's own layers and load our trunk file into them (strictly) instead of downloading.
    """
    lpips, tv = oracle("lpips"), oracle("torchvision")
    alexnet = tv.models.alexnet

    def pretrained_trunk(pretrained: bool = True, **kwargs: object) -> Any:
        assert pretrained
        # VGG16's features alone: its classifier (120M parameters) would only be thrown away.
        features = tv.models.vgg.make_layers(tv.models.vgg.cfgs["D"]) if net == "vgg" else alexnet().features
        sd = torch.load(trunk, weights_only=True)
        features.load_state_dict(
            {k[len("features.") :]: v for k, v in sd.items() if k.startswith("features.")}
        )
        return types.SimpleNamespace(features=features)

    monkeypatch.setattr(tv.models, "vgg16" if net == "vgg" else "alexnet", pretrained_trunk)
    model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=False, model_path=str(heads), verbose=False)
    model = model.to(dtype)
    # lpips builds its scaling constants as float32 tensors; converted to float64 they differ from the
    # decimal constants by float32 rounding (~1e-8 relative). Set them exactly so float64 compares formulas.
    model.scaling_layer.shift.copy_(SHIFT)
    model.scaling_layer.scale.copy_(SCALE)
    return model


@pytest.mark.oracle
@pytest.mark.parametrize("net", ["vgg", "alex"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_equals_the_lpips_package(
    net: LPIPSNet, dtype: torch.dtype, files: dict[str, tuple[Path, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    trunk, heads = files[net]
    model = _oracle_model(net, trunk, heads, dtype, monkeypatch)
    ours = LPIPS(net, trunk_weights=trunk, head_weights=heads, reduction="none", dtype=dtype)
    x, y = (t.to(dtype) for t in images(2, 32, seed=11))
    expected = model(x, y).view(-1)
    assert_close(ours(x, y), expected)
    # [0, 1] images: lpips's normalize=True.
    x01, y01 = (x + 1) / 2, (y + 1) / 2
    ours01 = LPIPS(
        net, trunk_weights=trunk, head_weights=heads, input_range="[0,1]", reduction="none", dtype=dtype
    )
    assert_close(ours01(x01, y01), model(x01, y01, normalize=True).view(-1))
    # The real heads shipped inside the lpips package load too and give the package's distances.
    shipped = os.path.join(os.path.dirname(str(oracle("lpips").__file__)), "weights", "v0.1", f"{net}.pth")
    real = _oracle_model(net, trunk, Path(shipped), dtype, monkeypatch)
    ours_real = LPIPS(net, trunk_weights=trunk, head_weights=shipped, reduction="none", dtype=dtype)
    assert_close(ours_real(x, y), real(x, y).view(-1))
