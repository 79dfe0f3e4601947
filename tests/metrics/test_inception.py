"""FIDInceptionV3: a random state dict in the weights file's format, through the real loading code.

The file's layout (torchvision ``Inception3`` key names, pytorch-fid's FID blocks, 1008-way ``fc``) is written
out below from torchvision's definition of the network, independently of ganblocks; the oracle tests
compare the network with pytorch-fid's ``InceptionV3`` on the same weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, oracle

from ganblocks.metrics import FID_WEIGHTS_SHA256, FID_WEIGHTS_URL, FIDInceptionV3, load_fid_inception_weights

Conv = tuple[str, int, int, int, int]  # name, in_channels, out_channels, kernel height, kernel width


def _block_a(name: str, cin: int, pool: int) -> Iterator[Conv]:
    yield from [(f"{name}.branch1x1", cin, 64, 1, 1), (f"{name}.branch5x5_1", cin, 48, 1, 1)]
    yield from [(f"{name}.branch5x5_2", 48, 64, 5, 5), (f"{name}.branch3x3dbl_1", cin, 64, 1, 1)]
    yield from [(f"{name}.branch3x3dbl_2", 64, 96, 3, 3), (f"{name}.branch3x3dbl_3", 96, 96, 3, 3)]
    yield (f"{name}.branch_pool", cin, pool, 1, 1)


def _block_c(name: str, c7: int) -> Iterator[Conv]:
    yield from [(f"{name}.branch1x1", 768, 192, 1, 1), (f"{name}.branch7x7_1", 768, c7, 1, 1)]
    yield from [(f"{name}.branch7x7_2", c7, c7, 1, 7), (f"{name}.branch7x7_3", c7, 192, 7, 1)]
    yield (f"{name}.branch7x7dbl_1", 768, c7, 1, 1)
    for i, (cout, kh, kw) in enumerate([(c7, 7, 1), (c7, 1, 7), (c7, 7, 1), (192, 1, 7)], start=2):
        yield (f"{name}.branch7x7dbl_{i}", c7, cout, kh, kw)
    yield (f"{name}.branch_pool", 768, 192, 1, 1)


def _block_e(name: str, cin: int) -> Iterator[Conv]:
    yield from [(f"{name}.branch1x1", cin, 320, 1, 1), (f"{name}.branch3x3_1", cin, 384, 1, 1)]
    yield from [(f"{name}.branch3x3_2a", 384, 384, 1, 3), (f"{name}.branch3x3_2b", 384, 384, 3, 1)]
    yield from [(f"{name}.branch3x3dbl_1", cin, 448, 1, 1), (f"{name}.branch3x3dbl_2", 448, 384, 3, 3)]
    yield from [(f"{name}.branch3x3dbl_3a", 384, 384, 1, 3), (f"{name}.branch3x3dbl_3b", 384, 384, 3, 1)]
    yield (f"{name}.branch_pool", cin, 192, 1, 1)


def inception_convs() -> list[Conv]:
    """Every conv of the FID Inception-v3, in torchvision's names (each followed by a BatchNorm)."""
    convs: list[Conv] = [
        ("Conv2d_1a_3x3", 3, 32, 3, 3),
        ("Conv2d_2a_3x3", 32, 32, 3, 3),
        ("Conv2d_2b_3x3", 32, 64, 3, 3),
        ("Conv2d_3b_1x1", 64, 80, 1, 1),
        ("Conv2d_4a_3x3", 80, 192, 3, 3),
    ]
    convs += [*_block_a("Mixed_5b", 192, 32), *_block_a("Mixed_5c", 256, 64), *_block_a("Mixed_5d", 288, 64)]
    convs += [("Mixed_6a.branch3x3", 288, 384, 3, 3), ("Mixed_6a.branch3x3dbl_1", 288, 64, 1, 1)]
    convs += [("Mixed_6a.branch3x3dbl_2", 64, 96, 3, 3), ("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3)]
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        convs += list(_block_c(name, c7))
    convs += [("Mixed_7a.branch3x3_1", 768, 192, 1, 1), ("Mixed_7a.branch3x3_2", 192, 320, 3, 3)]
    convs += [("Mixed_7a.branch7x7x3_1", 768, 192, 1, 1), ("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7)]
    convs += [("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1), ("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3)]
    convs += [*_block_e("Mixed_7b", 1280), *_block_e("Mixed_7c", 2048)]
    return convs


def random_fid_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in the file's format; scaled so that activations stay of order one through the net."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for name, cin, cout, kh, kw in inception_convs():
        sd[f"{name}.conv.weight"] = torch.randn(cout, cin, kh, kw, generator=g) * math.sqrt(
            2.0 / (cin * kh * kw)
        )
        sd[f"{name}.bn.weight"] = 0.5 + torch.rand(cout, generator=g)
        sd[f"{name}.bn.bias"] = 0.1 * torch.randn(cout, generator=g)
        sd[f"{name}.bn.running_mean"] = 0.1 * torch.randn(cout, generator=g)
        sd[f"{name}.bn.running_var"] = 1.0 + torch.rand(cout, generator=g)
        sd[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
    sd["fc.weight"] = 0.01 * torch.randn(1008, 2048, generator=g)
    sd["fc.bias"] = torch.zeros(1008)
    return sd


@pytest.fixture(scope="module")
def state_dict() -> dict[str, torch.Tensor]:
    return random_fid_state_dict()


@pytest.fixture(scope="module")
def weights_file(state_dict: dict[str, torch.Tensor], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fid") / "pt_inception-random.pth"
    torch.save(state_dict, path)
    return path


@pytest.fixture(scope="module")
def net(weights_file: Path) -> FIDInceptionV3:
    return FIDInceptionV3(weights_file, input_range=(0, 1), check_hash=False)


def test_the_file_format_has_the_published_files_entries(state_dict: dict[str, torch.Tensor]) -> None:
    # The published file holds 566 entries: 94 conv+BN layers of 6 tensors each, and fc's weight and bias.
    assert len(inception_convs()) == 94
    assert len(state_dict) == 566


def test_loads_every_tensor_of_the_file(net: FIDInceptionV3, state_dict: dict[str, torch.Tensor]) -> None:
    own = net.state_dict()
    assert set(own) == {k for k in state_dict if not k.startswith("fc.")}
    for k, v in own.items():
        assert torch.equal(v, state_dict[k]), k
    assert not any(p.requires_grad for p in net.parameters())
    assert not net.training


def test_features_shape_and_scale(net: FIDInceptionV3) -> None:
    x = torch.rand(2, 3, 40, 56)
    f = net(x)
    assert f.shape == (2, 2048) and f.dtype == torch.float32
    # After the final ReLU and average pool: non-negative, of order one with these weights, not constant.
    assert f.min() >= 0 and 0.01 < f.mean() < 100 and f.std() > 0.01


def test_blocks_shapes(net: FIDInceptionV3) -> None:
    maps = net.blocks(torch.rand(1, 3, 299, 299), (3, 0, 1, 2))
    assert [tuple(m.shape) for m in maps] == [
        (1, 64, 73, 73),
        (1, 192, 35, 35),
        (1, 768, 17, 17),
        (1, 2048, 1, 1),
    ]


def test_forward_is_the_pooled_last_block(net: FIDInceptionV3) -> None:
    x = torch.rand(2, 3, 80, 80)
    assert torch.equal(net(x), net.blocks(x, [3])[0].flatten(1))
    # Blocks up to 2 only: the network stops early, with the same maps as a full run.
    early = net.blocks(x, [1, 2])
    full = net.blocks(x)
    assert torch.equal(early[0], full[1]) and torch.equal(early[1], full[2])


def test_resize_is_bilinear_to_299_without_corner_alignment(state_dict: dict[str, torch.Tensor]) -> None:
    resized = FIDInceptionV3(state_dict, input_range=(0, 1)).double()
    raw = FIDInceptionV3(state_dict, input_range=(0, 1), resize_input=False).double()
    x = torch.rand(2, 3, 48, 64, dtype=torch.float64)
    expected = raw(F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False))
    assert_close(resized(x), expected)
    # A different resize (corner-aligned) gives other features: the test sees the difference.
    other = raw(F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=True))
    assert (other - expected).abs().max() > 1e-6


@pytest.mark.parametrize(("lo", "hi"), [(-1.0, 1.0), (0.0, 255.0), (-0.5, 2.0)])
def test_input_range_maps_to_minus_one_one(state_dict: dict[str, torch.Tensor], lo: float, hi: float) -> None:
    unit = FIDInceptionV3(state_dict, input_range=(0, 1), resize_input=False).double()
    net = FIDInceptionV3(state_dict, input_range=(lo, hi), resize_input=False).double()
    x01 = torch.rand(2, 3, 75, 75, dtype=torch.float64)
    assert_close(net(lo + (hi - lo) * x01), unit(x01))
    # (0, 1) is pytorch-fid's normalize_input: the network sees 2x - 1.
    plain = FIDInceptionV3(state_dict, input_range=(-1, 1), resize_input=False).double()
    assert_close(unit(x01), plain(2 * x01 - 1))


def test_uint8_input_is_the_same_as_float(state_dict: dict[str, torch.Tensor]) -> None:
    net = FIDInceptionV3(state_dict, input_range=(0, 255), resize_input=False)
    x = torch.randint(0, 256, (1, 3, 75, 75), dtype=torch.uint8)
    assert torch.equal(net(x), net(x.float()))


def test_float64_module(state_dict: dict[str, torch.Tensor]) -> None:
    net64 = FIDInceptionV3(state_dict, input_range=(0, 1), resize_input=False, dtype=torch.float64)
    net32 = FIDInceptionV3(state_dict, input_range=(0, 1), resize_input=False)
    x = torch.rand(2, 3, 75, 75, dtype=torch.float64)
    f64 = net64(x)
    assert f64.dtype == torch.float64
    assert_close(net32(x.float()), f64, torch.float32, scale=10)  # 94 layers of float32 rounding


def test_train_mode_keeps_the_running_statistics(net: FIDInceptionV3) -> None:
    x = torch.rand(4, 3, 75, 75)
    before = net(x)
    running_mean = net.Conv2d_1a_3x3.bn.running_mean
    assert running_mean is not None
    mean = running_mean.clone()
    net.train()
    assert not any(m.training for m in net.modules())
    assert torch.equal(net(x), before)
    assert torch.equal(running_mean, mean)


def test_gradient_reaches_the_input(net: FIDInceptionV3) -> None:
    x = torch.rand(1, 3, 75, 75, requires_grad=True)
    net(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_hash_check_rejects_another_file(weights_file: Path) -> None:
    with pytest.raises(
        ValueError, match=rf"sha256 [0-9a-f]{{64}}, expected {FID_WEIGHTS_SHA256}.*check_hash=False"
    ):
        FIDInceptionV3(weights_file, input_range=(0, 1))


def test_hash_check_accepts_the_published_hash(weights_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    import ganblocks.metrics.inception as inception

    digest = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    monkeypatch.setattr(inception, "FID_WEIGHTS_SHA256", digest)
    state = load_fid_inception_weights(weights_file)
    assert len(state) == 566


def test_published_hash_is_the_file_names_prefix() -> None:
    assert FID_WEIGHTS_SHA256.startswith("6726825d") and len(FID_WEIGHTS_SHA256) == 64
    assert FID_WEIGHTS_URL.endswith("pt_inception-2015-12-05-6726825d.pth")


def test_missing_file_names_it_and_where_to_get_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "pt_inception-2015-12-05-6726825d.pth"
    with pytest.raises(FileNotFoundError) as info:
        FIDInceptionV3(missing, input_range=(0, 1))
    message = str(info.value)
    assert str(missing) in message and FID_WEIGHTS_URL in message and "never downloads" in message


EXECUTED: list[str] = []


def _record(what: str) -> None:
    EXECUTED.append(what)


class _Payload:
    """Unpickling this calls ``_record``: a global that is not a tensor."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_record, ("unpickled",))


def test_weights_only_refuses_a_pickle_with_a_foreign_global(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": _Payload()}, path)
    with pytest.raises(ValueError, match=r"weights_only=True"):
        FIDInceptionV3(path, input_range=(0, 1), check_hash=False)
    assert EXECUTED == []
    # The same file, unpickled without the restriction, does run the payload: the test can fail.
    torch.load(path, weights_only=False)
    assert EXECUTED == ["unpickled"]
    EXECUTED.clear()


def test_a_file_without_a_state_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match="holds a list, expected a state dict"):
        load_fid_inception_weights(path, check_hash=False)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"could not be read with torch\.load"):
        load_fid_inception_weights(garbage, check_hash=False)


def test_wrong_state_dict_names_the_keys(state_dict: dict[str, torch.Tensor]) -> None:
    bad = dict(state_dict)
    del bad["Mixed_7c.branch_pool.conv.weight"]
    bad["Mixed_5b.branch1x1.conv.weight"] = torch.zeros(1, 1, 1, 1)
    bad["aux.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as info:
        FIDInceptionV3(bad, input_range=(0, 1))
    message = str(info.value)
    assert "Mixed_7c.branch_pool.conv.weight" in message and "aux.weight" in message
    assert "Mixed_5b.branch1x1.conv.weight: expected (64, 192, 1, 1), got (1, 1, 1, 1)" in message


def test_random_weights_warn() -> None:
    with pytest.warns(UserWarning, match="randomly initialised"):
        FIDInceptionV3(None, input_range=(0, 1))


@pytest.mark.parametrize("bad", [(1, 0), (0,), (0, float("nan")), "0,1", (True, 2)])
def test_bad_input_range(state_dict: dict[str, torch.Tensor], bad: object) -> None:
    with pytest.raises(ValueError, match="input_range"):
        FIDInceptionV3(state_dict, input_range=bad)  # type: ignore[arg-type]


def test_bad_images(net: FIDInceptionV3) -> None:
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3, H, W\), got \(2, 1, 8, 8\)"):
        net(torch.rand(2, 1, 8, 8))
    with pytest.raises(TypeError, match="x must be a floating-point or uint8 tensor"):
        net(torch.zeros(1, 3, 8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="output_blocks"):
        net.blocks(torch.rand(1, 3, 75, 75), [4])


def test_repr(net: FIDInceptionV3) -> None:
    assert "input_range=(0.0, 1.0), resize_input=True" in repr(net)
    assert "pool='max'" in repr(net.Mixed_7c)


# ------------------------------------------------------------------------------------------------------
# pytorch-fid on the same random weights (its download patched out).


def _pytorch_fid_inception(
    state_dict: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch, output_blocks: list[int]
) -> torch.nn.Module:
    pfi = oracle("pytorch_fid.inception")
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *args, **kwargs: dict(state_dict))
    reference: torch.nn.Module = pfi.InceptionV3(output_blocks=output_blocks, use_fid_inception=True)
    return reference.eval()


@pytest.mark.oracle
def test_file_format_equals_pytorch_fids(
    state_dict: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    pfi = oracle("pytorch_fid.inception")
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *args, **kwargs: dict(state_dict))
    reference = pfi.fid_inception_v3().state_dict()
    assert {k: tuple(v.shape) for k, v in reference.items()} == {
        k: tuple(v.shape) for k, v in state_dict.items()
    }


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_pytorch_fid(
    state_dict: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype
) -> None:
    reference = _pytorch_fid_inception(state_dict, monkeypatch, [3]).to(dtype)
    net = FIDInceptionV3(state_dict, input_range=(0, 1)).to(dtype)
    x = torch.rand(3, 3, 96, 128, dtype=dtype)
    with torch.no_grad():
        expected = reference(x)[0].flatten(1)
    assert expected.shape == (3, 2048)
    assert_close(net(x), expected)


@pytest.mark.oracle
def test_every_block_equals_pytorch_fid(
    state_dict: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = _pytorch_fid_inception(state_dict, monkeypatch, [0, 1, 2, 3]).double()
    net = FIDInceptionV3(state_dict, input_range=(0, 1)).double()
    x = torch.rand(1, 3, 299, 299, dtype=torch.float64)
    with torch.no_grad():
        expected = reference(x)
    for ours, theirs in zip(net.blocks(x), expected, strict=True):
        assert_close(ours, theirs)
