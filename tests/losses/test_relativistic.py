"""Relativistic adversarial kinds (RaGAN, RpGAN): hand formulas, known values, gradient signs, symmetry."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_close

from ganblocks import AdversarialLoss, DiscriminatorOutput
from ganblocks.losses import adversarial_loss, d_loss, g_loss


def _softplus(x: torch.Tensor) -> torch.Tensor:
    return torch.log1p(torch.exp(x))


def _bce(x: torch.Tensor, y: float) -> torch.Tensor:
    p = torch.sigmoid(x)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))


def hand_ragan(up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
    # Jolicoeur-Martineau's RaSGAN written with BCE on sigmoid(C(x) - mean C(x')).
    return _bce(up - down.mean(), 1.0).mean() + _bce(down - up.mean(), 0.0).mean()


def hand_rpgan(up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
    # -log sigmoid(u - d) per pair.
    return (-torch.log(torch.sigmoid(up - down))).mean()


HAND = {"ragan": hand_ragan, "rpgan": hand_rpgan}


def _scales(batch: int = 4) -> list[torch.Tensor]:
    return [torch.randn(batch, 1, 5 - 2 * k, 5 - 2 * k, dtype=torch.float64) for k in range(2)]


@pytest.mark.parametrize("kind", ["ragan", "rpgan"])
@pytest.mark.parametrize("scale_reduction", ["sum", "mean"])
def test_matches_hand_formula(kind: str, scale_reduction: str) -> None:
    real, fake = _scales(), _scales()
    div = len(real) if scale_reduction == "mean" else 1
    d_expected = sum(HAND[kind](r, f) for r, f in zip(real, fake)) / div
    g_expected = sum(HAND[kind](f, r) for r, f in zip(real, fake)) / div
    assert_close(d_loss(real, fake, kind=kind, scale_reduction=scale_reduction), d_expected)  # type: ignore[arg-type]
    assert_close(g_loss(fake, real_pred=real, kind=kind, scale_reduction=scale_reduction), g_expected)  # type: ignore[arg-type]


def test_known_values() -> None:
    r, f = torch.tensor([[2.0], [0.0]]), torch.tensor([[1.0], [-1.0]])
    # RpGAN pairs: softplus(-(2 - 1)) and softplus(-(0 + 1)), both softplus(-1).
    assert_close(d_loss(r, f, kind="rpgan"), torch.tensor(math.log1p(math.exp(-1.0))))
    # RaGAN: mean r = 1, mean f = 0; real terms softplus(-2), softplus(0); fake terms softplus(0), softplus(-2).
    expected = 2 * (math.log1p(math.exp(-2.0)) + math.log(2.0)) / 2
    assert_close(d_loss(r, f, kind="ragan"), torch.tensor(expected))
    # Equal logits everywhere: every relative logit is 0, each term log 2.
    z = torch.zeros(3, 1)
    assert_close(d_loss(z, z, kind="ragan"), torch.tensor(2 * math.log(2.0)))
    assert_close(g_loss(z, real_pred=z, kind="rpgan"), torch.tensor(math.log(2.0)))


@pytest.mark.parametrize("kind", ["ragan", "rpgan"])
def test_symmetry_g_is_d_swapped(kind: str) -> None:
    real, fake = torch.randn(6, 1), torch.randn(6, 1)
    assert_close(g_loss(fake, real_pred=real, kind=kind), d_loss(fake, real, kind=kind))  # type: ignore[arg-type]
    # Shifting every logit by one constant changes nothing: only differences count.
    assert_close(d_loss(real + 3.0, fake + 3.0, kind=kind), d_loss(real, fake, kind=kind))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["ragan", "rpgan"])
def test_gradient_signs(kind: str) -> None:
    real = torch.randn(5, 1, requires_grad=True)
    fake = torch.randn(5, 1, requires_grad=True)
    d_loss(real, fake, kind=kind).backward()  # type: ignore[arg-type]
    assert real.grad is not None and fake.grad is not None
    assert (real.grad < 0).all() and (fake.grad > 0).all()  # D raises real logits, lowers fake ones
    real.grad = fake.grad = None
    g_loss(fake, real_pred=real, kind=kind).backward()  # type: ignore[arg-type]
    assert fake.grad is not None and real.grad is not None
    assert (fake.grad < 0).all() and (real.grad > 0).all()  # G raises fake logits above the reals


def test_ragan_gradient_through_the_means_matches_autograd_of_formula() -> None:
    real = torch.randn(4, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(4, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda r, f: d_loss(r, f, kind="ragan"), (real, fake))
    torch.autograd.gradgradcheck(lambda r, f: g_loss(f, real_pred=r, kind="rpgan"), (real, fake))
    got = torch.autograd.grad(d_loss(real, fake, kind="ragan"), (real, fake))
    want = torch.autograd.grad(hand_ragan(real, fake), (real, fake))
    for a, b in zip(got, want):
        assert_close(a, b)


@pytest.mark.parametrize("kind", ["ragan", "rpgan"])
def test_reductions(kind: str) -> None:
    real, fake = torch.randn(4, 1, 3, 3, dtype=torch.float64), torch.randn(4, 1, 3, 3, dtype=torch.float64)
    per = d_loss(real, fake, kind=kind, reduction="none")  # type: ignore[arg-type]
    assert per.shape == (4,)
    assert_close(per.mean(), d_loss(real, fake, kind=kind))  # type: ignore[arg-type]
    assert_close(per.sum(), d_loss(real, fake, kind=kind, reduction="sum"))  # type: ignore[arg-type]
    if kind == "rpgan":
        want = torch.stack([hand_rpgan(real[i], fake[i]) for i in range(4)])
    else:  # sample i: its real logits against the batch mean of the fakes, and its fakes against the reals'
        fm, rm = fake.mean(), real.mean()
        want = torch.stack(
            [_softplus(-(real[i] - fm)).mean() + _softplus(fake[i] - rm).mean() for i in range(4)]
        )
    assert_close(per, want)


def test_module_and_output_forms() -> None:
    real, fake = _scales(), _scales()
    loss = AdversarialLoss("rpgan", scale_reduction="mean")
    out_r = DiscriminatorOutput(real, [[] for _ in real])
    assert_close(loss.d_loss(out_r, fake), d_loss(real, fake, kind="rpgan", scale_reduction="mean"))
    assert_close(
        loss.g_loss(fake, real_pred=out_r), g_loss(fake, real_pred=real, kind="rpgan", scale_reduction="mean")
    )
    assert "rpgan" in repr(loss)


def test_ragan_allows_different_batch_sizes_rpgan_does_not() -> None:
    real, fake = torch.randn(4, 1), torch.randn(6, 1)
    expected = hand_ragan(real, fake)
    assert_close(d_loss(real, fake, kind="ragan"), expected)
    with pytest.raises(ValueError, match="real_pred and fake_pred must have the same shape"):
        d_loss(real, fake, kind="rpgan")
    with pytest.raises(ValueError, match="same shape"):
        d_loss(real, fake, kind="ragan", reduction="none")


def test_errors() -> None:
    x = torch.zeros(2, 1)
    with pytest.raises(ValueError, match="needs real_pred"):
        g_loss(x, kind="ragan")
    with pytest.raises(ValueError, match="real_pred is used by the relativistic kinds"):
        g_loss(x, real_pred=x, kind="hinge")
    with pytest.raises(ValueError, match="relativistic"):
        adversarial_loss(x, True, kind="rpgan")
    with pytest.raises(ValueError, match="relativistic"):
        AdversarialLoss("ragan")(x, True)
    with pytest.raises(ValueError, match="real_label applies"):
        d_loss(x, x, kind="ragan", real_label=0.9)


@pytest.mark.parametrize("kind", ["ragan", "rpgan"])
def test_half_logits_are_reduced_in_float32(kind: str) -> None:
    real, fake = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    for dtype in (torch.float16, torch.bfloat16):
        got = d_loss(real.to(dtype), fake.to(dtype), kind=kind)  # type: ignore[arg-type]
        assert got.dtype == torch.float32
        # float32 of the rounded logits: only the inputs' rounding differs
        want = d_loss(real.to(dtype).float(), fake.to(dtype).float(), kind=kind)  # type: ignore[arg-type]
        assert_close(got, want)
