"""Precision, recall, density and coverage against a numpy brute force of the definitions, and their behaviour
on same, disjoint and mode-dropping distributions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganblocks.metrics import precision_recall


def dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float, float, float]:
    """The four definitions by explicit loops over samples (float64, exact distances)."""

    def radius(x: np.ndarray, i: int) -> float:
        return float(sorted(np.linalg.norm(x[i] - x[j]) for j in range(len(x)) if j != i)[k - 1])

    r_real = [radius(real, i) for i in range(len(real))]
    r_fake = [radius(fake, j) for j in range(len(fake))]
    precision = np.mean([any(dist(y, x) <= r for x, r in zip(real, r_real)) for y in fake])
    recall = np.mean([any(dist(x, y) <= r for y, r in zip(fake, r_fake)) for x in real])
    density = sum(dist(y, x) <= r for y in fake for x, r in zip(real, r_real)) / (k * len(fake))
    coverage = np.mean([min(dist(x, y) for y in fake) <= r for x, r in zip(real, r_real)])
    return float(precision), float(recall), float(density), float(coverage)


@pytest.mark.parametrize(("k", "batch_size"), [(3, 10000), (3, 7), (5, 16)])
def test_equals_the_definitions(k: int, batch_size: int) -> None:
    rng = np.random.default_rng(0)
    real = rng.standard_normal((40, 3))
    fake = np.random.default_rng(1).standard_normal((30, 3)) * 0.8 + 1.0
    expected = brute_force(real, fake, k)
    got = precision_recall(
        torch.from_numpy(real), torch.from_numpy(fake), num_neighbors=k, batch_size=batch_size
    )
    assert all(v.dtype == torch.float64 and v.ndim == 0 for v in got)
    assert [v.item() for v in got] == pytest.approx(expected, abs=1e-12)
    assert 0 < expected[0] < 1 and 0 < expected[1] < 1  # the case is not trivial


def test_one_distribution_scores_about_one() -> None:
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(2, 2000, 8, generator=g)
    got = precision_recall(real, fake, batch_size=512)
    # The union of the k = 3 NN balls of 2000 samples in 8 dimensions holds ~90% of a second sample.
    assert got.precision.item() > 0.85 and got.recall.item() > 0.85
    # Naeem et al.: for one distribution E[density] = 1 and E[coverage] = 1 - 1/2^k (large N, M = N).
    assert got.density.item() == pytest.approx(1.0, abs=0.05)
    assert got.coverage.item() == pytest.approx(1 - 1 / 2**3, abs=0.03)


def test_disjoint_distributions_score_zero() -> None:
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(2, 500, 8, generator=g)
    got = precision_recall(real, fake + 20)
    assert [v.item() for v in got] == [0.0, 0.0, 0.0, 0.0]


def test_a_dropped_mode_lowers_recall_and_coverage_not_precision() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-10.0, 0.0], [10.0, 0.0]])
    real = torch.randn(1000, 2, generator=g) + centres[torch.arange(1000) % 2]
    fake = torch.randn(1000, 2, generator=g) + centres[0]  # only the first mode
    got = precision_recall(real, fake)
    assert got.precision.item() > 0.9
    assert got.recall.item() == pytest.approx(0.5, abs=0.05)
    assert got.coverage.item() == pytest.approx(0.5, abs=0.05)


def test_bad_inputs() -> None:
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match=r"fake must have 3 features .* got shape \(10, 4\)"):
        precision_recall(x, torch.randn(10, 4))
    with pytest.raises(ValueError, match=r"real must hold at least 4 samples"):
        precision_recall(x[:3], x)
    with pytest.raises(ValueError, match="fake holds NaN or infinite values in 2 of its 10 rows"):
        precision_recall(x, x.index_fill(0, torch.tensor([1, 8]), float("inf")))
    with pytest.raises(ValueError, match="num_neighbors must be an int >= 1"):
        precision_recall(x, x, num_neighbors=0)
