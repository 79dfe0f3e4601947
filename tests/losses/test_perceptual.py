"""VGGLoss: a torchvision-format state dict built here, against a hand-written VGG19 forward."""

from __future__ import annotations

import math
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, grad_of, tensor_sum

from ganblocks.losses import VGG19_LAYERS, VGGLoss

# torchvision's vgg19 configuration "E", written out independently of ganblocks.
CFG: list[Any] = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
]
MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)


def torchvision_state_dict() -> dict[str, torch.Tensor]:
    """Random weights under torchvision's vgg19 keys, with (tiny stand-in) classifier entries."""
    g = torch.Generator().manual_seed(1)
    sd: dict[str, torch.Tensor] = {}
    idx, cin = 0, 3
    for item in CFG:
        if item == "M":
            idx += 1
            continue
        sd[f"features.{idx}.weight"] = torch.randn(item, cin, 3, 3, generator=g) * math.sqrt(2.0 / (9 * cin))
        sd[f"features.{idx}.bias"] = 0.1 * torch.randn(item, generator=g)
        idx, cin = idx + 2, item
    for k in (0, 3, 6):  # ignored by the loader; the real ones are (4096, 25088) etc.
        sd[f"classifier.{k}.weight"] = torch.zeros(2, 2)
        sd[f"classifier.{k}.bias"] = torch.zeros(2)
    return sd


def hand_vgg(x: torch.Tensor, sd: dict[str, torch.Tensor], stop: str) -> dict[str, torch.Tensor]:
    """Every conv and relu output of VGG19 up to ``stop``, by torch.nn.functional calls, in float64."""
    out: dict[str, torch.Tensor] = {}
    h, idx, block, k = x.double(), 0, 1, 1
    for item in CFG:
        if item == "M":
            h = F.max_pool2d(h, 2, 2)
            idx, block, k = idx + 1, block + 1, 1
            continue
        h = F.conv2d(h, sd[f"features.{idx}.weight"].double(), sd[f"features.{idx}.bias"].double(), padding=1)
        out[f"conv{block}_{k}"] = h
        h = F.relu(h)
        out[f"relu{block}_{k}"] = h
        if stop in out:
            break
        idx, k = idx + 2, k + 1
    return out


def hand_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    sd: dict[str, torch.Tensor],
    layers: list[str],
    weights: list[float],
    p: int = 1,
) -> torch.Tensor:
    stop = max(layers, key=lambda n: (int(n[-3]), int(n[-1]), n.startswith("relu")))
    fx, fy = hand_vgg(x, sd, stop), hand_vgg(y, sd, stop)
    return tensor_sum(w * (fx[n] - fy[n]).abs().pow(p).mean() for n, w in zip(layers, weights))


@pytest.fixture(scope="module")
def state_dict() -> dict[str, torch.Tensor]:
    return torchvision_state_dict()


@pytest.fixture(scope="module")
def weights_file(state_dict: dict[str, torch.Tensor], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    torch.save(state_dict, path)
    return path


def _images(n: int = 2, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(n, 3, size, size) * 2 - 1, torch.rand(n, 3, size, size) * 2 - 1


def test_file_matches_hand_forward_with_imagenet_normalization(
    weights_file: Path, state_dict: dict[str, torch.Tensor]
) -> None:
    layers, w = ["relu2_1", "conv1_2", "relu1_1", "relu3_1"], [1.0, 0.5, 2.0, 3.0]
    loss = VGGLoss(layers, layer_weights=w, input_range="[0,1]", weights=weights_file, dtype=torch.float64)
    x, y = (t.double() * 0.5 + 0.5 for t in _images())
    expected = hand_loss((x - MEAN) / STD, (y - MEAN) / STD, state_dict, layers, w)
    assert_close(loss(x, y), expected)
    # [-1, 1] input: mapped to [0, 1] first.
    loss_pm = VGGLoss(
        layers, layer_weights=w, input_range="[-1,1]", weights=weights_file, dtype=torch.float64
    )
    assert_close(loss_pm(x * 2 - 1, y * 2 - 1), expected)


def test_pix2pixhd_preset_matches_hand_forward(
    weights_file: Path, state_dict: dict[str, torch.Tensor]
) -> None:
    loss = VGGLoss.pix2pixhd(weights=weights_file)
    assert len(loss.features) == 30  # cut after relu5_1 (index 29)
    x, y = _images()
    names = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    expected = hand_loss(x, y, state_dict, names, [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0])  # raw [-1,1] input
    # float32 through 13 convs against float64: a few ulps per layer.
    assert_close(loss(x, y), expected, torch.float32, scale=10)


@pytest.mark.parametrize("batched", [True, False])
def test_reduction_is_over_samples_of_per_sample_losses(
    state_dict: dict[str, torch.Tensor], batched: bool
) -> None:
    x, y = _images(3, 16)
    x, y = x.double(), y.double()
    kw: dict[str, Any] = {"weights": state_dict, "dtype": torch.float64, "batched": batched}
    layers, w = ["relu1_1", "relu2_1", "conv3_1"], [0.5, 1.0, 2.0]
    mean = VGGLoss(layers, layer_weights=w, **kw)
    each = VGGLoss(layers, layer_weights=w, reduction="none", **kw)(x, y)
    alone = torch.stack([mean(x[i : i + 1], y[i : i + 1]) for i in range(3)])
    assert each.shape == (3,)
    assert_close(each, alone)
    assert_close(mean(x, y), each.mean())
    assert_close(VGGLoss(layers, layer_weights=w, reduction="sum", **kw)(x, y), each.sum())


def test_l2_weight_and_unbatched(weights_file: Path, state_dict: dict[str, torch.Tensor]) -> None:
    x, y = _images(2, 16)
    kwargs: dict[str, Any] = {"criterion": "l2", "weight": 3.0, "normalize": False, "weights": weights_file}
    batched = VGGLoss(["relu1_2", "relu2_2"], dtype=torch.float64, **kwargs)
    single = VGGLoss(["relu1_2", "relu2_2"], dtype=torch.float64, batched=False, **kwargs)
    expected = 3.0 * hand_loss(x, y, state_dict, ["relu1_2", "relu2_2"], [1.0, 1.0], p=2)
    xa = x.double().requires_grad_()
    xb = x.double().requires_grad_()
    la, lb = batched(xa, y.double()), single(xb, y.double())
    assert_close(la, expected)
    assert_close(lb, expected)
    la.backward()
    lb.backward()
    assert_close(grad_of(xa), grad_of(xb))


def test_frozen_cut_and_target_without_grad(weights_file: Path) -> None:
    loss = VGGLoss(["relu2_1"], weights=weights_file)
    assert len(loss.features) == VGG19_LAYERS["relu2_1"] + 1 == 7
    assert all(not p.requires_grad for p in loss.parameters())
    loss.train()
    assert loss.training and not loss.features.training
    x, y = _images(1, 16)
    x.requires_grad_()
    y.requires_grad_()
    loss(x, y).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert y.grad is None
    assert all(p.grad is None for p in loss.parameters())
    assert loss.state_dict().keys() == {f"features.{i}.{k}" for i in (0, 2, 5) for k in ("weight", "bias")}


def test_channels_last_and_bf16_autocast(weights_file: Path) -> None:
    loss = VGGLoss(["relu1_1", "relu2_1"], weights=weights_file)
    x, y = _images(2, 16)
    ref = loss(x, y)
    cl = loss(
        x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
    )
    assert_close(cl, ref)
    scaled = torch.addcmul(
        loss.input_shift, x.contiguous(memory_format=torch.channels_last), loss.input_scale
    )
    assert scaled.is_contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = loss(x, y)
    assert low.dtype == torch.float32
    assert_close(low, ref, torch.bfloat16, scale=2)  # bf16 convs: ~3 significant digits per layer


def test_module_dtype_bfloat16(weights_file: Path) -> None:
    loss = VGGLoss(["relu1_1"], weights=weights_file)
    x, y = _images(1, 8)
    low = loss.to(torch.bfloat16)(x.bfloat16(), y.bfloat16())
    ref = VGGLoss(["relu1_1"], weights=weights_file)(x, y)
    assert low.dtype == torch.float32
    assert_close(low, ref, torch.bfloat16, scale=2)


def test_state_dict_mapping_and_random_init_warning(state_dict: dict[str, torch.Tensor]) -> None:
    a = VGGLoss(["relu1_1"], weights=state_dict)
    assert torch.equal(a.features[0].weight, state_dict["features.0.weight"])  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="randomly initialised"):
        b = VGGLoss(["relu1_1"])
    assert not torch.equal(b.features[0].weight, state_dict["features.0.weight"])  # type: ignore[arg-type]


def test_imagenet_uses_torch_hub_with_hash_check(
    monkeypatch: pytest.MonkeyPatch, state_dict: dict[str, torch.Tensor]
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def fake_hub(url: str, **kwargs: Any) -> dict[str, torch.Tensor]:
        calls.append((url, kwargs))
        return state_dict

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_hub)
    loss = VGGLoss(["relu1_1"], weights="imagenet")
    assert torch.equal(loss.features[0].bias, state_dict["features.0.bias"])  # type: ignore[arg-type]
    assert calls == [
        (
            "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
            {"map_location": "cpu", "progress": True, "check_hash": True, "weights_only": True},
        )
    ]


def test_imagenet_offline_says_where_it_looked(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, **kwargs: Any) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    cache = str(Path(torch.hub.get_dir()) / "checkpoints" / "vgg19-dcbb9e9d.pth")
    with pytest.raises(RuntimeError) as info:
        VGGLoss(["relu1_1"], weights="imagenet")
    msg = str(info.value)
    assert f"looked for {cache}" in msg
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in msg
    assert "Temporary failure in name resolution" in msg
    assert "weights='/path/to/vgg19-dcbb9e9d.pth'" in msg


def test_wrong_weights_files(tmp_path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"VGG19 weights file not found: '.*nope.pth'.*download.pytorch.org"
    ):
        VGGLoss(["relu1_1"], weights=tmp_path / "nope.pth")
    vgg16_like = {k: v for k, v in state_dict.items() if k not in ("features.34.weight", "features.34.bias")}
    with pytest.raises(ValueError, match=r"missing keys \['features.34.bias', 'features.34.weight'\]"):
        VGGLoss(["relu1_1"], weights=vgg16_like)
    wrong = dict(state_dict)
    wrong["features.2.weight"] = torch.zeros(64, 64, 1, 1)
    with pytest.raises(
        ValueError, match=r"wrong shapes \[features.2.weight: expected \(64, 64, 3, 3\), got \(64, 64, 1, 1\)"
    ):
        VGGLoss(["relu1_1"], weights=wrong)
    bn = dict(state_dict)
    bn["features.1.running_mean"] = torch.zeros(64)
    with pytest.raises(ValueError, match=r"unexpected keys \['features.1.running_mean'\]"):
        VGGLoss(["relu1_1"], weights=bn)
    tensor_file = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor_file)
    with pytest.raises(ValueError, match=r"expected torchvision's vgg19 state dict .* got a Tensor"):
        VGGLoss(["relu1_1"], weights=tensor_file)
    pickled = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(1, 1), pickled)
    with pytest.raises(ValueError, match=r"could not be read with torch.load\(weights_only=True\)"):
        VGGLoss(["relu1_1"], weights=str(pickled))
    with pytest.raises(TypeError, match="weights must be 'imagenet', a path, a state dict or None, got int"):
        VGGLoss(["relu1_1"], weights=3)  # type: ignore[arg-type]


def test_bad_arguments(state_dict: dict[str, torch.Tensor]) -> None:
    with pytest.raises(ValueError, match="unknown VGG19 layer 'relu6_1'"):
        VGGLoss(["relu6_1"], weights=state_dict)
    with pytest.raises(ValueError, match="unknown VGG19 layer 'pool1'"):
        VGGLoss(["pool1"], weights=state_dict)
    with pytest.raises(TypeError, match="layers must be a sequence of layer names, got the string"):
        VGGLoss("relu1_1", weights=state_dict)
    with pytest.raises(ValueError, match="must not repeat"):
        VGGLoss(["relu1_1", "relu1_1"], weights=state_dict)
    with pytest.raises(ValueError, match="at least one layer"):
        VGGLoss([], weights=state_dict)
    with pytest.raises(ValueError, match=r"one weight per layer \(1\), got 2"):
        VGGLoss(["relu1_1"], layer_weights=[1.0, 2.0], weights=state_dict)
    with pytest.raises(ValueError, match="input_range must be one of"):
        VGGLoss(["relu1_1"], input_range="[0,255]", weights=state_dict)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="criterion must be one of"):
        VGGLoss(["relu1_1"], criterion="l0", weights=state_dict)  # type: ignore[arg-type]
    loss = VGGLoss(["relu1_1"], input_range="[0, 1]", weights=state_dict)  # type: ignore[arg-type]  # spaces are tolerated
    assert loss.input_range == "[0,1]"
    with pytest.raises(
        ValueError, match=r"input must have 3 channels \(N, 3, H, W\), got shape \(1, 1, 8, 8\)"
    ):
        loss(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"same shape, got \(1, 3, 8, 8\) and \(2, 3, 8, 8\)"):
        loss(torch.zeros(1, 3, 8, 8), torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="target must have 4 dimensions"):
        loss(torch.zeros(1, 3, 8, 8), torch.zeros(3, 8, 8))


def test_nan_propagates(state_dict: dict[str, torch.Tensor]) -> None:
    loss = VGGLoss(["relu1_1"], weights=state_dict)
    x, y = _images(1, 8)
    x[0, 0, 0, 0] = float("nan")
    assert torch.isnan(loss(x, y))


def test_images_far_outside_the_input_range_warn(state_dict: dict[str, torch.Tensor]) -> None:
    import warnings

    loss = VGGLoss(["relu1_1"], weights=state_dict)  # configured for [-1, 1]
    x, y = _images(1, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss(x, y)  # in range: silent
        loss(x * 1.9, y)  # a little outside: silent
        VGGLoss(["relu1_1"], weights=state_dict, input_range="[0,1]")((x + 1) / 2, (y + 1) / 2)
        VGGLoss(["relu1_1"], weights=state_dict, check_range=False)((x + 1) * 127.5, y)
    with pytest.warns(UserWarning, match=r"input has values in \[.*\], far outside input_range='\[-1,1\]'"):
        loss((x + 1) * 127.5, (y + 1) * 127.5)  # [0, 255] images
    with pytest.warns(UserWarning, match=r"target has values .* input_range='\[0,1\]'"):
        VGGLoss(["relu1_1"], weights=state_dict, input_range="[0,1]")((x + 1) / 2, y * 3)
    loss.range_checked = True  # the CPU checks on every call regardless
    with pytest.warns(UserWarning, match="input_range"):
        loss(x * 300, y)


def test_repr(state_dict: dict[str, torch.Tensor]) -> None:
    r = repr(VGGLoss.pix2pixhd(weights=state_dict))
    assert r.startswith(
        "VGGLoss(\n  layers=('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'), "
        "layer_weights=(0.03125, 0.0625, 0.125, 0.25, 1.0), criterion='l1', weight=1.0, input_range='[-1,1]', "
        "normalize=False, batched=True, reduction='mean'\n  (features): Sequential("
    )


@pytest.mark.parametrize(
    ("layers", "minimum"),
    [(["relu1_1"], 1), (["relu2_1"], 2), (["relu4_1", "relu1_1"], 8), (["relu5_1"], 16)],
)
def test_too_small_images_name_the_minimum_size(
    state_dict: dict[str, torch.Tensor], layers: list[str], minimum: int
) -> None:
    loss = VGGLoss(layers, weights=state_dict)
    assert loss.min_input_size == minimum
    pools = minimum.bit_length() - 1
    if minimum > 1:
        small = torch.zeros(1, 3, minimum // 2, 2 * minimum)
        with pytest.raises(
            ValueError,
            match=rf"input of spatial size {minimum // 2}×{2 * minimum} is too small .* comes after {pools} "
            rf"2×2 max pools, so height and width must be at least {minimum}",
        ):
            loss(small, small)
    # The minimum itself runs, and gives a finite loss that is zero for identical images.
    x, y = _images(1, minimum)
    assert torch.isfinite(loss(x, y))
    assert loss(x, x).item() == 0.0


def test_pix2pixhd_layers_on_8x8_say_16(state_dict: dict[str, torch.Tensor]) -> None:
    x, y = _images(1, 8)
    with pytest.raises(
        ValueError, match=r"the deepest, relu5_1, comes after 4 2×2 max pools, .* at least 16"
    ):
        VGGLoss.pix2pixhd(weights=state_dict)(x, y)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"weight": float("nan")}, ValueError, "weight must be a finite number, got nan"),
    ({"weight": -2.0}, ValueError, "weight must be >= 0, got -2.0"),
    ({"layer_weights": [float("inf")]}, ValueError, r"layer_weights\[0\] must be a finite number, got inf"),
    ({"layer_weights": ["1"]}, TypeError, r"layer_weights\[0\] must be a number, got str"),
])  # fmt: skip
def test_bad_weights(
    state_dict: dict[str, torch.Tensor], kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        VGGLoss(["relu1_1"], weights=state_dict, **kwargs)  # type: ignore[arg-type]


def test_empty_batch_raises(state_dict: dict[str, torch.Tensor]) -> None:
    empty = torch.zeros(0, 3, 8, 8)
    with pytest.raises(
        ValueError, match=r"input must hold at least one element, got an empty tensor of shape \(0, 3, 8, 8\)"
    ):
        VGGLoss(["relu1_1"], weights=state_dict)(empty, empty)
