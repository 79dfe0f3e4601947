"""DiffAugment: each op recovered from its output by its formula, per-sample probability, gradients, errors."""

from __future__ import annotations

import pytest
import torch

from ganblocks.training import DiffAugment, diff_augment


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def solve_color(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float, float]:
    """Brightness b, saturation s and contrast c of y = contrast(saturation(x + b)), and the residual.

    With m_c the mean over channels and m the mean over the image: saturation keeps m_c and contrast keeps
    m, so y - m(y) = c s (x - m_c(x)) + c (m_c(x) - m(x)) and m(y) = m(x) + b: a linear least-squares fit.
    """
    mc, m = x.mean(0, keepdim=True), x.mean()
    a = torch.stack([(x - mc).flatten(), (mc - m).expand_as(x).flatten()], 1)
    coef = torch.linalg.lstsq(a, (y - y.mean()).flatten().unsqueeze(1)).solution.flatten()
    residual = (a @ coef - (y - y.mean()).flatten()).abs().max().item()
    cs, c = coef.tolist()
    return (y.mean() - m).item(), cs / c, c, residual


def test_color_is_brightness_saturation_contrast_per_sample() -> None:
    x = torch.rand(256, 3, 4, 4, dtype=torch.float64)
    y = diff_augment(x, "color", generator=gen())
    params = [solve_color(xi, yi) for xi, yi in zip(x, y)]
    b, s, c, res = (torch.tensor(v) for v in zip(*params))
    assert res.max() < 1e-10
    for values, lo, hi in ((b, -0.5, 0.5), (s, 0.0, 2.0), (c, 0.5, 1.5)):
        assert values.min() >= lo and values.max() <= hi
        # Uniform over the range: 256 draws come within 3% of both ends, and vary per sample.
        assert values.min() < lo + 0.03 * (hi - lo) and values.max() > hi - 0.03 * (hi - lo)


def shift(x: torch.Tensor, ty: int, tx: int) -> torch.Tensor:
    """out[i, j] = x[i + ty, j + tx], zero outside (the reference's translation), by loops."""
    out = torch.zeros_like(x)
    _, h, w = x.shape
    for i in range(h):
        for j in range(w):
            if 0 <= i + ty < h and 0 <= j + tx < w:
                out[:, i, j] = x[:, i + ty, j + tx]
    return out


@pytest.mark.parametrize(("h", "w", "ratio"), [(8, 8, 0.125), (7, 10, 0.25)])
def test_translation_is_an_integer_shift_with_zero_fill(h: int, w: int, ratio: float) -> None:
    x = torch.rand(24, 2, h, w, dtype=torch.float64) + 1.0  # no zeros, so fills are visible
    y = diff_augment(x, ["translation"], translation_ratio=ratio, generator=gen(1))
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    found = set()
    for xi, yi in zip(x, y):
        matches = [
            (ty, tx)
            for ty in range(-sy, sy + 1)
            for tx in range(-sx, sx + 1)
            if torch.equal(yi, shift(xi, ty, tx))
        ]
        assert len(matches) == 1
        found.add(matches[0])
    assert len(found) > 6  # per-sample shifts


def cut(h: int, w: int, cy: int, cx: int, sh: int, sw: int) -> torch.Tensor:
    """The reference's cutout mask (1 kept, 0 cut) for the square around (cy, cx), by loops."""
    mask = torch.ones(h, w, dtype=torch.float64)
    for i in range(h):
        for j in range(w):
            if cy - sh // 2 <= i < cy - sh // 2 + sh and cx - sw // 2 <= j < cx - sw // 2 + sw:
                mask[i, j] = 0.0
    return mask


@pytest.mark.parametrize(("h", "w"), [(8, 8), (7, 6)])
def test_cutout_zeroes_one_clipped_square(h: int, w: int) -> None:
    x = torch.rand(24, 3, h, w, dtype=torch.float64) + 1.0
    y = diff_augment(x, "cutout", generator=gen(2))
    sh, sw = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
    centres = set()
    for xi, yi in zip(x, y):
        # Centres over the reference's range, 0 .. size (inclusive for an even square).
        matches = [
            (cy, cx)
            for cy in range(h + 1 - sh % 2)
            for cx in range(w + 1 - sw % 2)
            if torch.equal(yi, xi * cut(h, w, cy, cx, sh, sw))
        ]
        assert matches
        centres.add(matches[0])
    assert len(centres) > 6


def test_policy_order_and_defaults() -> None:
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    g = gen(5)  # one generator through three calls draws what one call with the whole policy draws
    expected = diff_augment(
        diff_augment(diff_augment(x, "color", generator=g), "translation", generator=g), "cutout", generator=g
    )
    assert torch.equal(diff_augment(x, "color,translation,cutout", generator=gen(5)), expected)
    assert torch.equal(diff_augment(x, generator=gen(5)), expected)  # the default policy
    assert torch.equal(diff_augment(x, ("color", "translation", "cutout"), generator=gen(5)), expected)
    assert torch.equal(diff_augment(x, "", generator=gen(5)), x)


def test_probability_applies_each_transform_to_a_random_subset() -> None:
    x = torch.rand(2000, 1, 4, 4) + 1.0
    assert torch.equal(diff_augment(x, p=0.0, generator=gen()), x)
    for p in (0.3, torch.tensor(0.3, dtype=torch.float64)):
        y = diff_augment(x, "cutout", p=p, generator=gen(3))
        cut_fraction = (y == 0).flatten(1).any(1).double().mean().item()
        assert abs(cut_fraction - 0.3) < 0.04  # 2000 draws: std 0.01
        untouched = (y == x).flatten(1).all(1)
        assert torch.equal(untouched, ~(y == 0).flatten(1).any(1))
    # A tensor p and a float p draw the same numbers.
    assert torch.equal(
        diff_augment(x, p=0.5, generator=gen(4)), diff_augment(x, p=torch.tensor(0.5), generator=gen(4))
    )
    # Brightness, saturation and contrast are chosen independently: (1/2)^3 of the samples are untouched.
    x3 = torch.rand(2000, 3, 2, 2) + 1.0  # saturation is the identity on one channel: three here
    untouched_color = (diff_augment(x3, "color", p=0.5, generator=gen(5)) == x3).flatten(1).all(1)
    assert abs(untouched_color.double().mean().item() - 0.125) < 0.03  # 2000 draws: std 0.007


def test_gradients_with_respect_to_the_input() -> None:
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    for policy in ("color", "color,translation,cutout"):
        assert torch.autograd.gradcheck(
            lambda t, pol=policy: diff_augment(t, pol, p=0.7, generator=gen(9)), (x,)
        )
    # Translation and cutout move or drop pixels: the gradient is the adjoint (a 0/1 routing of ones).
    y = diff_augment(x, "translation,cutout", generator=gen(8))
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert set(grad.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_keeps_the_dtype(dtype: torch.dtype) -> None:
    x = torch.randn(2, 3, 8, 8).to(dtype)
    y = diff_augment(x, generator=gen())
    assert y.dtype == dtype and torch.isfinite(y.float()).all()
    ref = diff_augment(x.double(), generator=gen())
    assert (y.double() - ref).abs().max() < 0.1  # the same draws; half-precision rounding


def test_module_equals_function_and_repr() -> None:
    x = torch.randn(3, 3, 8, 8)
    aug = DiffAugment("translation,cutout", translation_ratio=0.25, cutout_ratio=0.25)
    expected = diff_augment(
        x, "translation,cutout", translation_ratio=0.25, cutout_ratio=0.25, p=0.5, generator=gen()
    )
    assert torch.equal(aug(x, p=0.5, generator=gen()), expected)
    assert (
        repr(aug)
        == "DiffAugment(policy=('translation', 'cutout'), translation_ratio=0.25, cutout_ratio=0.25)"
    )
    assert diff_augment(torch.zeros(0, 3, 4, 4)).shape == (0, 3, 4, 4)


def test_errors() -> None:
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(
        ValueError, match=r"policy entry must be one of \('color', 'translation', 'cutout'\), got 'flip'"
    ):
        diff_augment(x, "color,flip")
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        diff_augment(x, p=1.5)
    with pytest.raises(ValueError, match="p must be a float or a one-element floating tensor"):
        diff_augment(x, p=torch.ones(2))
    with pytest.raises(ValueError, match="x must have 4 dimensions, got shape"):
        diff_augment(torch.randn(3, 4, 4))
    with pytest.raises(ValueError, match=r"cutout_ratio must be in \(0, 1\], got 0"):
        DiffAugment(cutout_ratio=0.0)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        diff_augment(torch.zeros(2, 3, 4, 4, dtype=torch.long))
