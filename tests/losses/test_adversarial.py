"""Adversarial losses: every kind against its hand formula, multi-scale reduction, input forms, errors."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
from helpers import assert_close, tensor_sum

from ganblocks.discriminators import DiscriminatorOutput
from ganblocks.losses import (
    AdversarialKind,
    AdversarialLoss,
    ScaleReduction,
    adversarial_loss,
    d_loss,
    g_loss,
)

KINDS = ["non_saturating", "lsgan", "hinge", "wgan"]


def _softplus(x: torch.Tensor) -> torch.Tensor:
    return torch.log1p(torch.exp(x))


def _bce(x: torch.Tensor, y: float) -> torch.Tensor:
    p = torch.sigmoid(x)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))


def hand_real(kind: AdversarialKind, x: torch.Tensor) -> torch.Tensor:
    """Mean loss of D's logits on real samples."""
    return {
        "non_saturating": _softplus(-x),
        "lsgan": (x - 1) ** 2,
        "hinge": torch.clamp(1 - x, min=0),
        "wgan": -x,
    }[kind].mean()


def hand_fake(kind: AdversarialKind, x: torch.Tensor) -> torch.Tensor:
    return {
        "non_saturating": _softplus(x),
        "lsgan": x**2,
        "hinge": torch.clamp(1 + x, min=0),
        "wgan": x,
    }[kind].mean()


def hand_gen(kind: AdversarialKind, x: torch.Tensor) -> torch.Tensor:
    return {
        "non_saturating": _softplus(-x),
        "lsgan": (x - 1) ** 2,
        "hinge": -x,
        "wgan": -x,
    }[kind].mean()


def _scales(n: int = 3, batch: int = 4) -> list[torch.Tensor]:
    # Different sizes per scale (like 35x35, 19x19, 11x11), scaled so the hinge kinks are crossed.
    return [2.0 * torch.randn(batch, 1, 6 - 2 * k, 6 - 2 * k, dtype=torch.float64) for k in range(n)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scale_reduction", ["sum", "mean"])
def test_d_and_g_loss_match_hand_formula(kind: AdversarialKind, scale_reduction: ScaleReduction) -> None:
    real, fake = _scales(), _scales()
    d_terms = [hand_real(kind, r) + hand_fake(kind, f) for r, f in zip(real, fake)]
    g_terms = [hand_gen(kind, f) for f in fake]
    div = len(real) if scale_reduction == "mean" else 1
    expected_d = sum(d_terms) / div
    expected_g = sum(g_terms) / div
    assert_close(d_loss(real, fake, kind=kind, scale_reduction=scale_reduction), expected_d)  # type: ignore[arg-type]
    assert_close(g_loss(fake, kind=kind, scale_reduction=scale_reduction), expected_g)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
def test_forward_matches_ganloss_semantics(kind: AdversarialKind) -> None:
    x = _scales(2)
    loss = AdversarialLoss(kind)
    assert_close(loss(x, True), hand_real(kind, x[0]) + hand_real(kind, x[1]))
    assert_close(loss(x, False), hand_fake(kind, x[0]) + hand_fake(kind, x[1]))
    assert_close(loss(x, True, for_discriminator=False), hand_gen(kind, x[0]) + hand_gen(kind, x[1]))
    if kind != "hinge":  # the other kinds ignore for_discriminator, as pix2pixHD/SPADE
        assert_close(loss(x, False, for_discriminator=False), hand_fake(kind, x[0]) + hand_fake(kind, x[1]))


def test_hinge_generator_needs_real_target() -> None:
    with pytest.raises(ValueError, match="hinge: the generator loss is -mean"):
        adversarial_loss(torch.zeros(2, 1), False, kind="hinge", for_discriminator=False)


def test_non_saturating_is_bce_and_vanilla_is_refused_with_its_name() -> None:
    r, f = _scales(), _scales()
    expected = sum(_bce(x, 1.0).mean() + _bce(y, 0.0).mean() for x, y in zip(r, f))
    assert_close(d_loss(r, f, kind="non_saturating"), expected)  # type: ignore[arg-type]
    assert_close(g_loss(f, kind="non_saturating"), tensor_sum(_bce(y, 1.0).mean() for y in f))
    with pytest.raises(
        ValueError, match=r"got 'vanilla' \('vanilla', BCE with logits, is 'non_saturating'\)"
    ):
        AdversarialLoss("vanilla")  # type: ignore[arg-type]


def test_input_forms_agree() -> None:
    logits = _scales(3)
    feats = [[torch.randn(4, 2, 3, 3, dtype=torch.float64)] for _ in logits]
    out = DiscriminatorOutput(logits, feats)
    expected = g_loss(logits, kind="lsgan")
    assert_close(g_loss(out, kind="lsgan"), expected)
    assert_close(g_loss(out.to_nested(), kind="lsgan"), expected)
    assert_close(g_loss(DiscriminatorOutput.from_nested(out.to_nested()), kind="lsgan"), expected)
    assert_close(g_loss(logits[0], kind="lsgan"), hand_gen("lsgan", logits[0]))


def test_ambiguous_structures_raise() -> None:
    """A plain tuple or a list mixing tensors and lists could be scales or (logits, features): it raises."""
    logits = torch.zeros(2, 1, 3, 3)
    feats = [torch.zeros(2, 4, 6, 6), torch.zeros(2, 8, 3, 3)]
    # (logits, features) read as two scales would count a feature map as logits.
    with pytest.raises(TypeError, match=r"fake_pred is a tuple of 2 \(tensor\), which is ambiguous"):
        g_loss((logits, feats[0]), kind="lsgan")
    with pytest.raises(TypeError, match=r"DiscriminatorOutput\(\[logits\], \[features\]\)"):
        g_loss((logits, feats), kind="lsgan")  # type: ignore[arg-type]
    # Even a tuple of per-scale logits: the same type as (logits, features), so it is not guessed.
    with pytest.raises(TypeError, match="pred is a tuple of 3"):
        AdversarialLoss("hinge")(tuple(_scales(3)), True)
    with pytest.raises(
        TypeError, match=r"real_pred is a list of 2 \(list, tensor\), mixing tensors and lists"
    ):
        d_loss([logits, feats], [logits, feats], kind="hinge")  # type: ignore[arg-type]
    # The unambiguous spellings of the same output give the one-scale loss.
    expected = g_loss(logits, kind="lsgan")
    assert_close(g_loss(DiscriminatorOutput([logits], [feats]), kind="lsgan"), expected)
    assert_close(g_loss([[*feats, logits]], kind="lsgan"), expected)
    assert_close(expected, torch.tensor(1.0))


def test_empty_batch_raises() -> None:
    empty = torch.zeros(0, 1, 3, 3)
    with pytest.raises(
        ValueError,
        match=r"real_pred must hold at least one element, got an empty tensor of shape \(0, 1, 3, 3\)",
    ):
        d_loss(empty, torch.zeros(2, 1, 3, 3), kind="hinge")
    with pytest.raises(ValueError, match=r"fake_pred \(scale 1\) must hold at least one element"):
        g_loss([torch.zeros(2, 1), torch.zeros(0, 1)], kind="wgan")
    with pytest.raises(ValueError, match="pred must hold at least one element"):
        AdversarialLoss("non_saturating")(torch.zeros(0), True)


def test_module_equals_function_and_repr() -> None:
    r, f = _scales(), _scales()
    m = AdversarialLoss("hinge", scale_reduction="mean")
    assert_close(m.d_loss(r, f), d_loss(r, f, kind="hinge", scale_reduction="mean"))
    assert_close(m.g_loss(f), g_loss(f, kind="hinge", scale_reduction="mean"))
    assert repr(m) == "AdversarialLoss(kind='hinge', scale_reduction='mean', reduction='mean')"


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind: AdversarialKind) -> None:
    r = (2 * torch.randn(2, 1, 3, 3, dtype=torch.float64)).requires_grad_()
    f = (2 * torch.randn(2, 1, 3, 3, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: d_loss([a, b], [b, a], kind=kind), (r, f))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_logits_reduce_in_float32(dtype: torch.dtype) -> None:
    r, f = _scales(), _scales()
    out = d_loss([t.to(dtype) for t in r], [t.to(dtype) for t in f], kind="non_saturating")
    assert out.dtype == torch.float32
    expected = d_loss(
        [t.to(dtype).double() for t in r], [t.to(dtype).double() for t in f], kind="non_saturating"
    )
    assert_close(out, expected.float())


def test_bf16_autocast_is_float32() -> None:
    lin = torch.nn.Linear(4, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = lin(torch.randn(8, 4))
        loss = g_loss(logits, kind="non_saturating")
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert_close(loss, hand_gen("non_saturating", logits.double()).float())


def test_nan_propagates() -> None:
    r = torch.tensor([[0.5], [float("nan")]])
    for kind in KINDS:
        assert torch.isnan(d_loss(r, torch.zeros(2, 1), kind=kind))  # type: ignore[arg-type]


def test_bad_inputs() -> None:
    x = torch.zeros(2, 1)
    with pytest.raises(ValueError, match=r"kind must be one of .*'relativistic'"):
        AdversarialLoss("relativistic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale_reduction must be one of"):
        g_loss(x, kind="wgan", scale_reduction="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same number of scales, got 2 and 1"):
        d_loss([x, x], [x], kind="wgan")
    with pytest.raises(
        ValueError, match=r"same shape after the batch dimension at scale 0, got \(2, 1\) and \(2, 3\)"
    ):
        d_loss(x, torch.zeros(2, 3), kind="wgan")
    # Batch sizes may differ between real and fake.
    assert torch.isfinite(d_loss(x, torch.zeros(5, 1), kind="lsgan"))
    with pytest.raises(TypeError, match="logits must be floating point"):
        g_loss(torch.zeros(2, 1, dtype=torch.long), kind="wgan")
    with pytest.raises(ValueError, match="at least one scale"):
        g_loss([], kind="wgan")
    with pytest.raises(
        TypeError, match="fake_pred must be a DiscriminatorOutput, a tensor of logits, a list"
    ):
        g_loss(3.0, kind="wgan")  # type: ignore[arg-type]


def _log1p_exp(x: torch.Tensor) -> torch.Tensor:
    """log(1 + e^x), exact in float64 for any magnitude (no softplus threshold)."""
    return torch.logaddexp(torch.zeros_like(x), x)


def textbook(kind: AdversarialKind, side: str, x: torch.Tensor, label: float | None) -> torch.Tensor:
    """The mean loss of one scale by the textbook formula; ``side`` is "real", "fake" (D) or "gen" (G)."""
    y = label if label is not None else (0.0 if side == "fake" else 1.0)
    if kind == "non_saturating":
        # -(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))), with log sigmoid(x) = -log(1 + e^-x).
        return (y * _log1p_exp(-x) + (1 - y) * _log1p_exp(x)).mean()
    if kind == "lsgan":
        return ((x - y) ** 2).mean()
    if kind == "hinge":
        return {"real": torch.clamp(1 - x, min=0), "fake": torch.clamp(1 + x, min=0), "gen": -x}[side].mean()
    return (x if side == "fake" else -x).mean()  # wgan


def _odd_scales() -> list[torch.Tensor]:
    """Odd shapes, with logits of large magnitude (±50, ±30), where a naive log(sigmoid) BCE gives inf."""
    shapes = [(3, 1, 5, 7), (1, 1, 1, 1), (2, 3), (5,)]
    xs = [3.0 * torch.randn(s, dtype=torch.float64) for s in shapes]
    xs[0].view(-1)[:4] = torch.tensor([50.0, -50.0, 30.0, -30.0], dtype=torch.float64)
    xs[2].view(-1)[0] = -50.0
    xs[3].view(-1)[:2] = torch.tensor([50.0, 0.0], dtype=torch.float64)
    return xs


LABEL_CASES = (
    [(kind, None) for kind in KINDS]
    + [(kind, label) for kind in ("non_saturating",) for label in (0.0, 0.1, 0.9, 1.0)]
    + [("lsgan", label) for label in (-1.0, 0.0, 0.9, 1.0, 2.5)]
)


@pytest.mark.parametrize(("kind", "label"), LABEL_CASES)
@pytest.mark.parametrize("side", ["real", "fake", "gen"])
def test_every_side_and_label_matches_textbook_value_and_gradient(
    kind: AdversarialKind, label: float | None, side: str
) -> None:
    xs = [x.requires_grad_() for x in _odd_scales()]
    if side == "gen":
        got = g_loss(xs, kind=kind, real_label=label)
    elif side == "real":
        got = adversarial_loss(xs, True, kind=kind, real_label=label)
    else:
        got = adversarial_loss(xs, False, kind=kind, fake_label=label)
    expected = sum(textbook(kind, side, x, label) for x in xs)
    assert isinstance(expected, torch.Tensor) and torch.isfinite(expected)
    assert_close(got, expected)
    for g, e in zip(torch.autograd.grad(got, xs), torch.autograd.grad(expected, xs)):
        assert_close(g, e)


@pytest.mark.parametrize(("kind", "label"), [c for c in LABEL_CASES if c[0] in ("non_saturating", "lsgan")])
def test_d_loss_with_both_labels_matches_textbook_value_and_gradient(
    kind: AdversarialKind, label: float | None
) -> None:
    real = [x.requires_grad_() for x in _odd_scales()]
    fake = [x.requires_grad_() for x in _odd_scales()]
    # The fake target differs from the real one, so a swapped or shared target shows.
    fake_label = None if label is None else (0.25 if kind != "lsgan" else -0.5)
    got = d_loss(real, fake, kind=kind, real_label=label, fake_label=fake_label)
    expected = sum(
        textbook(kind, "real", r, label) + textbook(kind, "fake", f, fake_label) for r, f in zip(real, fake)
    )
    assert isinstance(expected, torch.Tensor)
    assert_close(got, expected)
    for g, e in zip(torch.autograd.grad(got, real + fake), torch.autograd.grad(expected, real + fake)):
        assert_close(g, e)


def test_non_saturating_keeps_the_limits_of_infinite_logits() -> None:
    # softplus(-x) at x = +inf is 0 and at -inf is inf; BCE with logits would give NaN for both.
    inf = torch.tensor([float("inf")])
    assert adversarial_loss(inf, True, kind="non_saturating").item() == 0.0
    assert adversarial_loss(-inf, True, kind="non_saturating").item() == float("inf")
    assert adversarial_loss(-inf, False, kind="non_saturating").item() == 0.0
    assert adversarial_loss(inf, False, kind="non_saturating").item() == float("inf")
    assert g_loss(inf, kind="non_saturating").item() == 0.0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scale_reduction", ["sum", "mean"])
def test_reduction_is_over_samples_of_per_sample_means(
    kind: AdversarialKind, scale_reduction: ScaleReduction
) -> None:
    r, f = _scales(), _scales()
    k = 3 if scale_reduction == "mean" else 1

    def per_sample(
        hand: Callable[[AdversarialKind, torch.Tensor], torch.Tensor], xs: list[torch.Tensor]
    ) -> torch.Tensor:
        return torch.stack([tensor_sum(hand(kind, x[i]) for x in xs) / k for i in range(4)])

    expected_d = per_sample(hand_real, r) + per_sample(hand_fake, f)
    expected_g = per_sample(hand_gen, f)
    sr: dict[str, Any] = {"scale_reduction": scale_reduction}
    for reduction, reduce in (("none", lambda t: t), ("sum", torch.sum), ("mean", torch.mean)):
        assert_close(d_loss(r, f, kind=kind, reduction=reduction, **sr), reduce(expected_d))  # type: ignore[arg-type]
        assert_close(g_loss(f, kind=kind, reduction=reduction, **sr), reduce(expected_g))  # type: ignore[arg-type]
        got = AdversarialLoss(kind, reduction=reduction, **sr)(r, True)  # type: ignore[arg-type]
        assert_close(got, reduce(per_sample(hand_real, r)))
    # "mean" is today's value: the mean over every element of each scale, summed or averaged over scales.
    today = sum(hand_real(kind, x) + hand_fake(kind, y) for x, y in zip(r, f)) / k
    assert torch.equal(d_loss(r, f, kind=kind, **sr), d_loss(r, f, kind=kind, reduction="mean", **sr))
    assert_close(d_loss(r, f, kind=kind, **sr), today)  # type: ignore[arg-type]


def test_reduction_with_labels_and_unequal_batches() -> None:
    r, f = torch.randn(3, 1, 2, 2, dtype=torch.float64), torch.randn(5, 1, 2, 2, dtype=torch.float64)
    kw: dict[str, Any] = {"kind": "non_saturating", "real_label": 0.9}
    expected = _bce(r, 0.9).sum() / 4 + _bce(f, 0.0).sum() / 4
    assert_close(d_loss(r, f, reduction="sum", **kw), expected)
    with pytest.raises(ValueError, match="real_pred and fake_pred"):
        d_loss(r, f, reduction="none", **kw)
    with pytest.raises(
        ValueError, match=r"reduction must be one of \('mean', 'sum', 'none'\), got 'batchmean'"
    ):
        g_loss(f, kind="wgan", reduction="batchmean")  # type: ignore[arg-type]
