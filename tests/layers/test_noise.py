"""NoiseInjection: modes, per-channel strength, and the x + strength * noise formula."""

from __future__ import annotations

import formulas
import pytest
import torch
from helpers import assert_close

from ganblocks.functional import inject_noise
from ganblocks.layers import NoiseInjection
from ganblocks.ops import Backend, use_backend

F64 = torch.float64


def test_init() -> None:
    scalar = NoiseInjection(None)
    assert scalar.strength.shape == () and scalar.strength.item() == 0.0
    per_channel = NoiseInjection(5, per_channel=True)
    assert torch.equal(per_channel.strength.data, torch.zeros(5))
    x = torch.randn(2, 5, 3, 3)
    assert torch.equal(per_channel(x), x)  # zero strength: the identity at init, in every mode


def test_random_mode_formula() -> None:
    layer = NoiseInjection(4)
    with torch.no_grad():
        layer.strength.fill_(0.5)
    x = torch.randn(64, 4, 8, 8, dtype=F64)
    layer = layer.double()
    delta = (layer(x) - x) / 0.5
    # one noise map per sample, shared by all channels
    assert_close(delta, delta[:, :1].expand_as(delta))
    # 4096 N(0, 1) draws: mean within 0.1 and std within 5% with overwhelming probability
    assert abs(delta[:, 0].mean().item()) < 0.1 and abs(delta[:, 0].std().item() - 1.0) < 0.05
    assert not torch.equal(layer(x), layer(x))  # fresh noise at every call


def test_per_channel_with_explicit_noise() -> None:
    layer = NoiseInjection(3, per_channel=True, dtype=F64)
    with torch.no_grad():
        layer.strength.copy_(torch.tensor([1.0, -2.0, 0.5]))
    x, noise = torch.randn(2, 3, 4, 4, dtype=F64), torch.randn(2, 1, 4, 4, dtype=F64)
    expected = formulas.inject_noise(x, torch.tensor([1.0, -2.0, 0.5]), noise)
    assert_close(layer(x, noise), expected)
    assert torch.equal(layer(x, noise), inject_noise(x, layer.strength, noise))


def test_const_mode() -> None:
    layer = NoiseInjection(2, mode="const", resolution=(4, 3), dtype=F64)
    assert layer.noise_const is not None and layer.noise_const.shape == (1, 1, 4, 3)
    assert "noise_const" in layer.state_dict()
    with torch.no_grad():
        layer.strength.fill_(2.0)
    x = torch.randn(3, 2, 4, 3, dtype=F64)
    y = layer(x)
    assert_close(y, formulas.inject_noise(x, torch.tensor(2.0), layer.noise_const))
    assert torch.equal(layer(x), y)  # deterministic
    other = NoiseInjection(2, mode="const", resolution=(4, 3), dtype=F64)
    other.load_state_dict(layer.state_dict())
    assert torch.equal(other(x), y)


def test_none_mode_and_override() -> None:
    layer = NoiseInjection(None, mode="none")
    with torch.no_grad():
        layer.strength.fill_(1.0)
    x = torch.randn(2, 3, 4, 4)
    assert layer(x) is x
    noise = torch.randn(1, 1, 4, 4)  # (1, 1, H, W) is shared by the batch
    assert_close(layer(x, noise), formulas.inject_noise(x, torch.tensor(1.0), noise))


def test_switch_mode_after_construction() -> None:
    layer = NoiseInjection(None, resolution=4)
    with torch.no_grad():
        layer.strength.fill_(1.0)
    x = torch.randn(2, 3, 4, 4)
    layer.mode = "const"
    assert layer.noise_const is not None
    assert_close(layer(x), formulas.inject_noise(x, torch.tensor(1.0), layer.noise_const))


def test_gradcheck(backend: Backend, device: torch.device) -> None:
    layer = NoiseInjection(2, per_channel=True, dtype=F64, device=device)
    x = torch.randn(2, 2, 2, 2, dtype=F64, device=device, requires_grad=True)
    s = torch.randn(2, dtype=F64, device=device, requires_grad=True)
    noise = torch.randn(2, 1, 2, 2, dtype=F64, device=device)

    def f(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(layer, {"strength": s}, (x, noise))

    with use_backend(backend):
        assert torch.autograd.gradcheck(f, (x, s), fast_mode=backend == "triton")
        assert torch.autograd.gradgradcheck(f, (x, s), fast_mode=backend == "triton")


def test_channels_last_and_bfloat16() -> None:
    layer = NoiseInjection(4, per_channel=True, mode="const", resolution=3)
    with torch.no_grad():
        layer.strength.normal_()
    x = torch.randn(2, 4, 3, 3).to(memory_format=torch.channels_last)
    y = layer(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, layer(x.contiguous()))
    yb = layer(x.bfloat16())  # float32 strength and buffer, bfloat16 features
    assert yb.dtype == torch.bfloat16
    assert_close(yb, y, torch.bfloat16, scale=2)


def test_repr() -> None:
    assert repr(NoiseInjection(None)) == "NoiseInjection(None, mode=random, per_channel=False)"
    assert repr(NoiseInjection(8, mode="const", per_channel=True, resolution=16)) == (
        "NoiseInjection(8, mode=const, per_channel=True, resolution=(16, 16))"
    )


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"mode must be one of \('random', 'const', 'none'\), got 'fixed'"):
        NoiseInjection(None, mode="fixed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_channels must be given when per_channel=True, got None"):
        NoiseInjection(None, per_channel=True)
    with pytest.raises(ValueError, match="resolution must be given when mode='const', got None"):
        NoiseInjection(None, mode="const")
    with pytest.raises(
        ValueError, match=r"resolution must be an int or a pair of ints, each >= 1, got \(4, 0\)"
    ):
        NoiseInjection(None, resolution=(4, 0))
    layer = NoiseInjection(3, mode="const", resolution=4)
    with pytest.raises(ValueError, match=r"num_channels = 3, got \(2, 2, 4, 4\)"):
        layer(torch.randn(2, 2, 4, 4))
    with pytest.raises(
        ValueError,
        match=r"x must have spatial size resolution = \(4, 4\) in mode='const', got \(2, 3, 5, 5\)",
    ):
        layer(torch.randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match=r"x must have 4 dimensions, got shape \(3, 4, 4\)"):
        layer(torch.randn(3, 4, 4))
    with pytest.raises(
        ValueError, match=r"noise must have shape \(N, 1, H, W\) = \(2, 1, 4, 4\), got \(2, 3, 4, 4\)"
    ):
        layer(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4))
    layer.mode = "bogus"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="mode must be one of"):
        layer(torch.randn(2, 3, 4, 4))
    layer = NoiseInjection(None, mode="random")
    layer.mode = "const"
    with pytest.raises(
        ValueError, match="mode='const' needs the noise_const buffer: construct with resolution="
    ):
        layer(torch.randn(2, 3, 4, 4))
