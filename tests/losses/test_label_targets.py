"""Label targets of AdversarialLoss: BCE and LSGAN targets by hand, one-sided smoothing, routing, errors."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_close, tensor_sum

from ganblocks.losses import AdversarialKind, AdversarialLoss, adversarial_loss, d_loss, g_loss


def bce(x: torch.Tensor, y: float) -> torch.Tensor:
    """-(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))), element by element with math."""
    values = [
        -(y * math.log(1 / (1 + math.exp(-v))) + (1 - y) * math.log(1 - 1 / (1 + math.exp(-v))))
        for v in x.flatten().tolist()
    ]
    return torch.tensor(values, dtype=torch.float64).mean()


def lsgan(x: torch.Tensor, y: float) -> torch.Tensor:
    return ((x.double() - y) ** 2).mean()


def logits() -> list[torch.Tensor]:
    return [
        1.5 * torch.randn(4, 1, 3, 3, dtype=torch.float64),
        1.5 * torch.randn(4, 1, 2, 2, dtype=torch.float64),
    ]


@pytest.mark.parametrize("kind", ["non_saturating"])
def test_bce_kinds_with_targets(kind: AdversarialKind) -> None:
    real, fake = logits(), logits()
    expected_d = tensor_sum(bce(r, 0.9) + bce(f, 0.1) for r, f in zip(real, fake))
    assert_close(d_loss(real, fake, kind=kind, real_label=0.9, fake_label=0.1), expected_d)
    assert_close(g_loss(fake, kind=kind, real_label=0.8), tensor_sum(bce(f, 0.8) for f in fake))
    assert_close(
        adversarial_loss(real, True, kind=kind, real_label=0.7), tensor_sum(bce(r, 0.7) for r in real)
    )
    assert_close(
        adversarial_loss(real, False, kind=kind, fake_label=0.2), tensor_sum(bce(r, 0.2) for r in real)
    )


def test_lsgan_targets_abc_coding() -> None:
    # Mao et al.'s a = -1 (fake), b = 1 (real), c = 0 (the generator's target).
    real, fake = logits(), logits()
    expected_d = tensor_sum(lsgan(r, 1.0) + lsgan(f, -1.0) for r, f in zip(real, fake)) / 2
    got = d_loss(real, fake, kind="lsgan", real_label=1.0, fake_label=-1.0, scale_reduction="mean")
    assert_close(got, expected_d)
    assert_close(g_loss(fake, kind="lsgan", real_label=0.0), tensor_sum(lsgan(f, 0.0) for f in fake))


@pytest.mark.parametrize("kind", ["non_saturating", "lsgan"])
def test_default_labels_are_one_and_zero(kind: AdversarialKind) -> None:
    real, fake = logits(), logits()
    assert_close(d_loss(real, fake, kind=kind, real_label=1.0, fake_label=0.0), d_loss(real, fake, kind=kind))
    assert_close(g_loss(fake, kind=kind, real_label=1.0), g_loss(fake, kind=kind))


def test_module_one_sided_smoothing_routes_labels() -> None:
    real, fake = logits(), logits()
    loss = AdversarialLoss("non_saturating", real_label=0.9)
    assert_close(loss.d_loss(real, fake), tensor_sum(bce(r, 0.9) + bce(f, 0.0) for r, f in zip(real, fake)))
    # One-sided: the generator keeps the target 1.
    assert_close(loss.g_loss(fake), tensor_sum(bce(f, 1.0) for f in fake))
    assert_close(loss(fake, True, for_discriminator=False), tensor_sum(bce(f, 1.0) for f in fake))
    assert_close(loss(real, True), tensor_sum(bce(r, 0.9) for r in real))
    # pix2pixHD's GANLoss(target_real_label=y) uses y for both networks.
    both = AdversarialLoss("lsgan", real_label=0.8, fake_label=0.1, generator_label=0.8)
    assert_close(both.g_loss(fake), tensor_sum(lsgan(f, 0.8) for f in fake))
    assert_close(both(fake, True, for_discriminator=False), tensor_sum(lsgan(f, 0.8) for f in fake))
    assert_close(both(fake, False), tensor_sum(lsgan(f, 0.1) for f in fake))
    assert repr(both) == (
        "AdversarialLoss(kind='lsgan', scale_reduction='sum', reduction='mean', real_label=0.8, fake_label=0.1, "
        "generator_label=0.8)"
    )
    assert (
        repr(AdversarialLoss("hinge"))
        == "AdversarialLoss(kind='hinge', scale_reduction='sum', reduction='mean')"
    )


def test_gradient_of_smoothed_bce() -> None:
    x = torch.randn(6, 1, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(
        d_loss(x, torch.zeros(1, 1, dtype=torch.float64), kind="non_saturating", real_label=0.9), x
    )
    assert_close(grad, (torch.sigmoid(x.detach()) - 0.9) / 6)  # d/dx BCE(x, y) = sigmoid(x) - y


def test_low_precision_logits_reduce_in_float32() -> None:
    x = torch.randn(4, 1).half()
    out = d_loss(x, x, kind="non_saturating", real_label=0.9)
    assert out.dtype == torch.float32
    assert_close(out, bce(x.double(), 0.9) + bce(x.double(), 0.0), torch.float16)


@pytest.mark.parametrize("kind", ["hinge", "wgan"])
def test_kinds_without_targets_raise(kind: AdversarialKind) -> None:
    x = torch.zeros(2, 1)
    with pytest.raises(
        ValueError, match=rf"real_label applies to the kinds with targets .* kind='{kind}' has none"
    ):
        d_loss(x, x, kind=kind, real_label=0.9)
    with pytest.raises(ValueError, match="fake_label applies to the kinds with targets"):
        adversarial_loss(x, False, kind=kind, fake_label=0.0)
    with pytest.raises(ValueError, match="generator_label applies to the kinds with targets"):
        AdversarialLoss(kind, generator_label=1.0)


def test_bad_label_values() -> None:
    x = torch.zeros(2, 1)
    with pytest.raises(ValueError, match=r"real_label must be in \[0, 1\], got 1.2"):
        d_loss(x, x, kind="non_saturating", real_label=1.2)
    with pytest.raises(ValueError, match=r"fake_label must be in \[0, 1\], got -1"):
        AdversarialLoss("non_saturating", fake_label=-1.0)
    with pytest.raises(ValueError, match="real_label must be a finite number, got nan"):
        g_loss(x, kind="lsgan", real_label=float("nan"))
    with pytest.raises(TypeError, match="real_label must be a number, got str"):
        d_loss(x, x, kind="lsgan", real_label="0.9")  # type: ignore[arg-type]
