"""PixelNorm and AdaIN against their formulas."""

from __future__ import annotations

import formulas
import pytest
import torch
from helpers import assert_close

from ganblocks.functional import pixel_norm
from ganblocks.layers import AdaIN, PixelNorm
from ganblocks.ops import Backend, use_backend

F64 = torch.float64


# ---------------------------------------------------------------------------------------------- PixelNorm


@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 3, 3)])
def test_pixel_norm_matches_formula(shape: tuple[int, ...]) -> None:
    x = torch.randn(*shape, dtype=F64)
    assert_close(PixelNorm()(x), formulas.pixel_norm(x, 1e-8, 1))
    y = PixelNorm(eps=0.5, dim=-1)(x)
    assert_close(y, formulas.pixel_norm(x, 0.5, -1))


def test_pixel_norm_module_equals_function_and_layouts() -> None:
    x = torch.randn(2, 4, 3, 3).to(memory_format=torch.channels_last)
    y = PixelNorm()(x)
    assert torch.equal(y, pixel_norm(x))
    assert y.is_contiguous(memory_format=torch.channels_last)
    yb = PixelNorm()(x.bfloat16())
    assert yb.dtype == torch.bfloat16
    assert_close(yb, y, torch.bfloat16)


def test_pixel_norm_gradcheck(backend: Backend, device: torch.device) -> None:
    x = torch.randn(2, 3, 1, 2, dtype=F64, device=device, requires_grad=True)
    with use_backend(backend):
        assert torch.autograd.gradcheck(PixelNorm(), (x,), fast_mode=backend == "triton")
        assert torch.autograd.gradgradcheck(PixelNorm(), (x,), fast_mode=backend == "triton")


def test_pixel_norm_repr_and_bad_arguments() -> None:
    assert repr(PixelNorm()) == "PixelNorm(eps=1e-08, dim=1)"
    with pytest.raises(ValueError, match=r"eps must be > 0, got -1.0"):
        PixelNorm(eps=-1.0)
    with pytest.raises(ValueError, match=r"eps must be > 0, got 0"):  # at construction, not the first call
        PixelNorm(eps=0)
    with pytest.raises(TypeError, match="dim must be an int, got str"):
        PixelNorm(dim="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"x must have at least 2 dimensions, got shape \(3,\)"):
        PixelNorm()(torch.randn(3))


# -------------------------------------------------------------------------------------------------- AdaIN


@pytest.mark.parametrize("lr", [1.0, 0.01])
def test_adain_init_bias(lr: float) -> None:
    layer = AdaIN(3, 5, lr_multiplier=lr)
    bias = layer.affine.bias
    assert bias is not None
    # effective scale bias 1 and shift bias 0, whatever lr_multiplier
    assert_close(bias * lr, torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]))


@pytest.mark.parametrize("lr", [1.0, 0.01])
def test_adain_matches_formula(lr: float) -> None:
    layer = AdaIN(3, 5, eps=1e-3, lr_multiplier=lr, dtype=F64)
    x, w = torch.randn(2, 3, 4, 5, dtype=F64), torch.randn(2, 5, dtype=F64)
    a = layer.affine
    expected = formulas.adain_module(x, w, a.weight, a.bias, lr=a.lr_multiplier, eps=layer.eps)  # type: ignore[arg-type]
    assert_close(layer(x, w), expected)


def test_adain_zero_weight_is_plain_instance_norm() -> None:
    layer = AdaIN(4, 6, dtype=F64)
    with torch.no_grad():
        layer.affine.weight.zero_()
    x = torch.randn(2, 4, 3, 3, dtype=F64)
    y = layer(x, torch.randn(2, 6, dtype=F64))
    assert_close(y, torch.nn.functional.instance_norm(x, eps=1e-5))


def test_adain_gradcheck(backend: Backend, device: torch.device) -> None:
    layer = AdaIN(2, 3, lr_multiplier=0.5, dtype=F64, device=device)
    x = torch.randn(2, 2, 2, 2, dtype=F64, device=device, requires_grad=True)
    w = torch.randn(2, 3, dtype=F64, device=device, requires_grad=True)
    weight = layer.affine.weight.detach().clone().requires_grad_()

    def f(x: torch.Tensor, w: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(layer, {"affine.weight": weight}, (x, w))

    with use_backend(backend):
        assert torch.autograd.gradcheck(f, (x, w, weight), fast_mode=True)
        assert torch.autograd.gradgradcheck(f, (x, w, weight), fast_mode=True)


def test_adain_layouts_and_bfloat16() -> None:
    layer = AdaIN(4, 3)
    x, w = torch.randn(2, 4, 5, 5).to(memory_format=torch.channels_last), torch.randn(2, 3)
    y = layer(x, w)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, layer(x.contiguous(), w))
    yb = layer(x.bfloat16(), w)  # float32 style, bfloat16 features
    assert yb.dtype == torch.bfloat16
    assert_close(yb, y, torch.bfloat16)
    yb = layer.to(torch.bfloat16)(x.bfloat16(), w.bfloat16())
    assert yb.dtype == torch.bfloat16
    # the bf16 style (scale ≈ 1 ± 1) adds one bf16 rounding of a value up to ~3 on top of the features'
    assert_close(yb, y, torch.bfloat16, scale=3)


def test_adain_repr() -> None:
    assert repr(AdaIN(3, 8)) == (
        "AdaIN(\n  3, w_dim=8, eps=1e-05\n  (affine): EqualLinear(in_features=8, out_features=6, bias=True, "
        "lr_multiplier=1.0, weight_gain=1.0, act=linear)\n)"
    )


def test_adain_bad_arguments() -> None:
    layer = AdaIN(3, 4)
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"w must have shape \(N, w_dim\) = \(2, 4\) .* got \(3, 4\)"):
        layer(x, torch.randn(3, 4))
    with pytest.raises(ValueError, match=r"w must have shape \(N, w_dim\) = \(2, 4\) .* got \(2, 5\)"):
        layer(x, torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"w must have shape .* got \(4,\)"):
        layer(x, torch.randn(4))
    with pytest.raises(TypeError, match=r"w must be a torch.Tensor, got NoneType"):
        layer(x, None)
    with pytest.raises(ValueError, match=r"num_channels = 3, got \(2, 5, 4, 4\)"):
        layer(torch.randn(2, 5, 4, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="w_dim must be an int >= 1, got 0"):
        AdaIN(3, 0)
    with pytest.raises(ValueError, match="eps must be > 0, got -1"):
        AdaIN(3, 4, eps=-1)
    with pytest.raises(ValueError, match="eps must be > 0, got 0"):
        AdaIN(3, 4, eps=0.0)
