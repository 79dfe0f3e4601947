"""torch's spectral norm with ganblocks layers, as documented in docs/training_remedies.md: sigma ~ 1, backward."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from helpers import assert_close, original
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganblocks import EqualConv2d, PatchDiscriminator


def sigma(weight: torch.Tensor) -> float:
    """The largest singular value of a conv weight as torch's spectral norm sees it: (out, in * k * k)."""
    return torch.linalg.matrix_norm(weight.detach().flatten(1), ord=2).item()


def power_iterate(convs: Sequence[nn.Module], n: int = 50) -> None:
    """In training mode each read of a spectrally normalized weight runs one power iteration of u and v."""
    with torch.no_grad():
        for conv in convs:
            conv.train()
            for _ in range(n):
                conv.weight  # noqa: B018


def _convs(d: nn.Module) -> list[nn.Conv2d | EqualConv2d]:
    return [m for m in d.modules() if isinstance(m, (nn.Conv2d, EqualConv2d))]


def test_patch_discriminator_option_and_torch_hook_normalize_every_conv() -> None:
    x = torch.randn(2, 3, 16, 16)
    built = PatchDiscriminator(3, num_layers=2, base_channels=8, spectral_norm=True)
    torch.manual_seed(0)
    hooked = PatchDiscriminator(3, num_layers=2, base_channels=8)
    for conv in _convs(hooked):
        spectral_norm(conv)  # what the spectral_norm=True option does, by hand
    for d in (built, hooked):
        convs = _convs(d)
        assert len(convs) == 4 and all(hasattr(c, "parametrizations") for c in convs)
        power_iterate(convs)
        for conv in convs:
            assert abs(sigma(conv.weight) - 1.0) < 1e-2  # the power iteration's estimate converges
        d(x).logits[0].square().mean().backward()
        for conv in convs:
            grad = original(conv).grad
            assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_equal_conv2d_under_spectral_norm() -> None:
    conv = EqualConv2d(4, 6, 3, 1, 1, act="lrelu")
    spectral_norm(conv)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    power_iterate([conv])
    # The stored weight is normalized to sigma 1; the runtime scale 1/sqrt(fan_in) still multiplies it.
    assert abs(sigma(conv.weight) - 1.0) < 1e-2
    conv.eval()
    y = conv(x)
    w = conv.weight * conv.weight_scale
    expected = F.leaky_relu(F.conv2d(x, w, conv.bias, padding=1), 0.2) * 2**0.5
    assert_close(y, expected, scale=10)  # float32: the conv sums 36 products
    y.square().mean().backward()
    grad = original(conv).grad
    assert x.grad is not None and grad is not None
    assert torch.isfinite(grad).all()
