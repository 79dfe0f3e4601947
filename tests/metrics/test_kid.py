"""KID: the unbiased MMD² of an explicit double loop, unbiasedness against the biased estimator, the tools."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from helpers import oracle

from ganblocks.metrics import kernel_distance, polynomial_mmd


def kernel(a: np.ndarray, b: np.ndarray, d: int) -> float:
    return float((a @ b / d + 1.0) ** 3)


def mmd_loops(x: np.ndarray, y: np.ndarray, *, biased: bool = False) -> float:
    """The MMD² estimate by explicit loops over pairs (the biased one keeps the i == j terms and divides by
    m², n²)."""
    m, n, d = len(x), len(y), x.shape[1]
    pairs = itertools.product(range(m), repeat=2) if biased else itertools.permutations(range(m), 2)
    kxx = sum(kernel(x[i], x[j], d) for i, j in pairs) / (m * m if biased else m * (m - 1))
    pairs = itertools.product(range(n), repeat=2) if biased else itertools.permutations(range(n), 2)
    kyy = sum(kernel(y[i], y[j], d) for i, j in pairs) / (n * n if biased else n * (n - 1))
    kxy = sum(kernel(x[i], y[j], d) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_polynomial_mmd_equals_the_double_loop() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((7, 4)), rng.standard_normal((9, 4)) + 0.5
    got = polynomial_mmd(torch.from_numpy(x), torch.from_numpy(y))
    assert got.dtype == torch.float64 and got.ndim == 0
    assert got.item() == pytest.approx(mmd_loops(x, y), rel=1e-12)
    assert got.item() != pytest.approx(mmd_loops(x, y, biased=True), rel=1e-3)
    # float32 input: the same value, computed in float64 from the float32 numbers
    got32 = polynomial_mmd(torch.from_numpy(x).float(), torch.from_numpy(y).float())
    assert got32.item() == pytest.approx(mmd_loops(x.astype(np.float32).astype(np.float64),
                                                   y.astype(np.float32).astype(np.float64)), rel=1e-12)  # fmt: skip


def test_polynomial_mmd_kernel_options() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((6, 3))
    # degree 1, gamma 1, coef0 0: the linear kernel's unbiased MMD² in closed form
    expected = (
        (x.sum(0) @ x.sum(0) - (x * x).sum()) / 20 + (y.sum(0) @ y.sum(0) - (y * y).sum()) / 30
        - 2 * x.sum(0) @ y.sum(0) / 30
    )  # fmt: skip
    got = polynomial_mmd(torch.from_numpy(x), torch.from_numpy(y), degree=1, gamma=1.0, coef0=0.0)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def biased_cubic_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a @ b.T / a.shape[1] + 1) ** 3


def test_unbiased_mean_is_zero_where_the_biased_one_is_not() -> None:
    """Over 400 pairs of independent samples of one distribution, the mean of the unbiased estimates is 0
    within its standard error; the biased estimator's mean sits many standard errors above 0."""
    g = torch.Generator().manual_seed(0)
    unbiased, biased = [], []
    for _ in range(400):
        x, y = torch.randn(2, 20, 4, generator=g).double()
        unbiased.append(polynomial_mmd(x, y).item())
        k = biased_cubic_kernel
        biased.append((k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()).item())
    u, b = np.array(unbiased), np.array(biased)
    assert abs(u.mean()) < 3 * u.std() / np.sqrt(len(u))
    assert b.mean() > 10 * b.std() / np.sqrt(len(b))


def test_kernel_distance_averages_the_subsets_drawn_by_the_generator() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(120, 8, generator=g), torch.randn(100, 8, generator=g) + 0.2
    got = kernel_distance(a, b, num_subsets=5, subset_size=50, generator=torch.Generator().manual_seed(3))
    draws, values = torch.Generator().manual_seed(3), []
    for _ in range(5):
        i, j = torch.randperm(120, generator=draws)[:50], torch.randperm(100, generator=draws)[:50]
        values.append(mmd_loops(a[i].double().numpy(), b[j].double().numpy()))
    assert got.mean.item() == pytest.approx(np.mean(values), rel=1e-10)
    assert got.std.item() == pytest.approx(np.std(values), rel=1e-9)
    again = kernel_distance(a, b, num_subsets=5, subset_size=50, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again.mean, got.mean)


def test_kernel_distance_bad_inputs() -> None:
    a = torch.randn(30, 4)
    with pytest.raises(
        ValueError, match=r"subset_size must be at most the number of samples of each set \(30 and 20\)"
    ):
        kernel_distance(a, a[:20], subset_size=25)
    with pytest.raises(ValueError, match=r"features2 must have 4 features .* got shape \(30, 5\)"):
        kernel_distance(a, torch.randn(30, 5), subset_size=10)
    with pytest.raises(ValueError, match="features1 holds NaN or infinite values in 1 of its 30 rows"):
        kernel_distance(a.index_fill(0, torch.tensor([4]), float("nan")), a, subset_size=10)
    with pytest.raises(ValueError, match="num_subsets must be an int >= 1"):
        kernel_distance(a, a, num_subsets=0, subset_size=10)
    with pytest.raises(ValueError, match="y must hold at least 2 samples"):
        polynomial_mmd(a, a[:1])
    with pytest.raises(ValueError, match="gamma must be > 0"):
        polynomial_mmd(a, a, gamma=0.0)


# ------------------------------------------------------------------------------------------------ oracles
def oracle_features(seed: int, n: int = 600, d: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # float64: the oracles compute in their input's dtype, and float32 sums of 200² kernel values lose ~1e-6
    return rng.standard_normal((n, d)) + np.linspace(0, 1, d)


@pytest.mark.oracle
def test_subsets_equal_torch_fidelity() -> None:
    metric_kid = oracle("torch_fidelity.metric_kid")
    f1, f2 = oracle_features(0), oracle_features(1, n=500) + 0.1
    expected = metric_kid.kid_features_to_metric(
        torch.from_numpy(f1), torch.from_numpy(f2), kid_subsets=20, kid_subset_size=200, rng_seed=7,
        verbose=False,
    )  # fmt: skip
    rng, values = np.random.RandomState(7), []  # the same draws, in torch-fidelity's order
    for _ in range(20):
        i, j = rng.choice(600, 200, replace=False), rng.choice(500, 200, replace=False)
        values.append(polynomial_mmd(torch.from_numpy(f1[i]), torch.from_numpy(f2[j])))
    got = torch.stack(values)
    assert got.mean().item() == pytest.approx(expected["kernel_inception_distance_mean"], rel=1e-6)
    assert got.std(correction=0).item() == pytest.approx(expected["kernel_inception_distance_std"], rel=1e-6)


@pytest.mark.oracle
def test_subsets_equal_clean_fid() -> None:
    cleanfid = oracle("cleanfid.fid")
    f1, f2 = oracle_features(2), oracle_features(3) + 0.1
    # clean-fid draws its subsets from numpy's global random state
    np.random.seed(11)  # noqa: NPY002
    expected = cleanfid.kernel_distance(f1, f2, num_subsets=20, max_subset_size=200)
    np.random.seed(11)  # noqa: NPY002
    values = []
    for _ in range(20):  # clean-fid draws from feats2 first
        j = np.random.choice(600, 200, replace=False)  # noqa: NPY002
        i = np.random.choice(600, 200, replace=False)  # noqa: NPY002
        values.append(polynomial_mmd(torch.from_numpy(f1[i]), torch.from_numpy(f2[j])).item())
    assert np.mean(values) == pytest.approx(expected, rel=1e-6)
