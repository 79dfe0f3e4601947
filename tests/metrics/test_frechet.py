"""frechet_distance against numpy formulations and the FID tools users trust; feature_statistics' inputs."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from helpers import oracle
from torch import nn

from ganblocks.metrics import FeatureStatistics, FrechetDistance, feature_statistics, frechet_distance


def gaussian_features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out: np.ndarray = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) / np.sqrt(d) + shift
    return out


def stats_np(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(0), np.cov(x, rowvar=False)


def fd_numpy(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """tr sqrt(Σ1 Σ2) as the sum of the square roots of the eigenvalues of the non-symmetric product
    (real and >= 0: it is similar to Σ1^½ Σ2 Σ1^½), by numpy's general eigensolver."""
    eig = np.linalg.eigvals(s1 @ s2)
    tr_sqrt = np.sqrt(np.clip(eig.real, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def as_torch(*arrays: np.ndarray) -> list[torch.Tensor]:
    return [torch.from_numpy(a) for a in arrays]


def test_diagonal_covariances_closed_form() -> None:
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    # ‖Δμ‖² = 1 + 0 + 4; tr Σ1 + tr Σ2 = 14 + 5.25; 2 Σ sqrt(a b) = 2 (2 + 2 + 1.5)
    got = frechet_distance(*as_torch(mu1, np.diag(a), mu2, np.diag(b)))
    assert got.dtype == torch.float64 and got.ndim == 0
    assert got.item() == pytest.approx(5 + 19.25 - 11, rel=1e-12)


@pytest.mark.parametrize("d", [3, 64])
def test_equals_the_eigenvalues_of_the_product(d: int) -> None:
    x, y = gaussian_features(4 * d, d, 0), gaussian_features(5 * d, d, 1, shift=0.3)
    expected = fd_numpy(*stats_np(x), *stats_np(y))
    got = frechet_distance(*as_torch(*stats_np(x), *stats_np(y)))
    assert got.item() == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(*as_torch(*stats_np(y), *stats_np(x))).item() == pytest.approx(expected, rel=1e-9)


def test_one_singular_covariance_in_either_place() -> None:
    """A singular Σ1 has no Cholesky factor: the eigendecomposition path; a singular Σ2 the Cholesky path."""
    singular, full = stats_np(gaussian_features(20, 48, 0)), stats_np(gaussian_features(400, 48, 1, 0.5))
    for a, b in ((singular, full), (full, singular)):
        got = frechet_distance(*as_torch(*a, *b))
        assert got.item() == pytest.approx(fd_numpy(*a, *b), rel=1e-8)


def test_feature_statistics_arguments_equal_tensor_arguments() -> None:
    x, y = torch.from_numpy(gaussian_features(200, 8, 0)), torch.from_numpy(gaussian_features(300, 8, 1))
    a, b = FeatureStatistics(), FeatureStatistics()
    a.update(x)
    b.update(y)
    expected = frechet_distance(a.mean, a.covariance, b.mean, b.covariance)
    assert frechet_distance(a, b).item() == expected.item()
    assert expected.item() == pytest.approx(fd_numpy(*stats_np(x.numpy()), *stats_np(y.numpy())), rel=1e-9)


def test_a_set_with_itself_is_zero() -> None:
    x = torch.from_numpy(gaussian_features(5000, 64, 0, shift=1.0))
    stats = FeatureStatistics()
    stats.update(x)
    scale = stats.covariance.trace().item()
    assert abs(frechet_distance(stats, stats).item()) < 1e-10 * scale


def test_fewer_samples_than_features_warns_and_stays_finite() -> None:
    x, y = torch.from_numpy(gaussian_features(20, 64, 0)), torch.from_numpy(gaussian_features(20, 64, 1))
    a, b = FeatureStatistics(), FeatureStatistics()
    a.update(x)
    b.update(y)
    with pytest.warns(UserWarning) as record:
        got = frechet_distance(a, b)
    assert [str(w.message).split(":")[1] for w in record] == [
        " the FeatureStatistics passed as mu1 hold 20 samples of 64 features",
        " the FeatureStatistics passed as sigma1 hold 20 samples of 64 features",
    ]
    assert torch.isfinite(got) and got.dtype == torch.float64
    assert got.item() == pytest.approx(fd_numpy(*stats_np(x.numpy()), *stats_np(y.numpy())), rel=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frechet_distance(a.mean, a.covariance, b.mean, b.covariance)  # tensors: nothing to warn from


def test_bad_inputs() -> None:
    mu, sigma = torch.zeros(3), torch.eye(3)
    with pytest.raises(
        ValueError, match=r"mu2 must have shape \(3,\) to match mu1 of shape \(3,\), got \(4,\)"
    ):
        frechet_distance(mu, sigma, torch.zeros(4), sigma)
    with pytest.raises(ValueError, match=r"sigma2 must have shape \(3, 3\)"):
        frechet_distance(mu, sigma, mu, torch.eye(2))
    with pytest.raises(ValueError, match="sigma1 must have 2 dimensions"):
        frechet_distance(mu, mu, mu, sigma)
    with pytest.raises(ValueError, match="sigma1 must be finite"):
        frechet_distance(mu, sigma * float("nan"), mu, sigma)
    with pytest.raises(TypeError, match="two FeatureStatistics, or four tensors"):
        frechet_distance(mu, sigma)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="two FeatureStatistics, or four tensors"):
        frechet_distance(FeatureStatistics(), sigma)  # type: ignore[call-overload]


EXTRACTOR = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))


def test_feature_statistics_takes_a_tensor_an_iterable_or_a_callable() -> None:
    torch.manual_seed(0)
    images = torch.randn(70, 3, 4, 4)
    with torch.no_grad():
        expected = EXTRACTOR(images).double()
    from_tensor = feature_statistics(EXTRACTOR, images, batch_size=16)
    from_list = feature_statistics(EXTRACTOR, list(torch.split(images, 9)))
    drawn = iter(torch.split(images, 16))
    calls: list[int] = []

    def draw(n: int) -> torch.Tensor:
        calls.append(n)
        return next(drawn)[:n]

    from_callable = feature_statistics(EXTRACTOR, draw, num_samples=70, batch_size=16)
    assert calls == [16, 16, 16, 16, 6]
    for stats in (from_tensor, from_list, from_callable):
        assert stats.num_samples == 70
        torch.testing.assert_close(stats.mean, expected.mean(0), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(stats.covariance, torch.cov(expected.T), rtol=1e-10, atol=1e-12)
    pairs = [(batch, torch.zeros(len(batch))) for batch in torch.split(images, 9)]  # a loader with labels
    from_pairs = feature_statistics(EXTRACTOR, pairs)
    assert torch.equal(from_pairs.covariance, from_list.covariance)
    truncated = feature_statistics(EXTRACTOR, list(torch.split(images, 9)), num_samples=40)
    assert truncated.num_samples == 40
    torch.testing.assert_close(truncated.mean, expected[:40].mean(0), rtol=1e-12, atol=1e-12)


def test_feature_statistics_errors() -> None:
    images = torch.randn(10, 3, 4, 4)
    with pytest.raises(ValueError, match="num_samples is required when images is a callable"):
        feature_statistics(EXTRACTOR, lambda n: images[:n])
    with pytest.raises(ValueError, match="images gave 10 images, fewer than num_samples=20"):
        feature_statistics(EXTRACTOR, [images], num_samples=20)
    with pytest.raises(
        ValueError, match=r"extractor must return features of shape \(N, D\) .* got \(10, 3, 4, 4\)"
    ):
        feature_statistics(nn.Identity(), images)
    with pytest.raises(TypeError, match="extractor must be callable"):
        feature_statistics(3, images)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match="images must be a tensor, an iterable of image batches or a callable"
    ):
        feature_statistics(EXTRACTOR, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        feature_statistics(EXTRACTOR, images, batch_size=0)


def test_frechet_distance_module_equals_the_functions() -> None:
    torch.manual_seed(0)
    real, fake = torch.randn(60, 3, 4, 4), torch.randn(50, 3, 4, 4) + 0.5
    fid = FrechetDistance(EXTRACTOR, batch_size=16)
    with pytest.raises(ValueError, match="no reference statistics"):
        fid(fake)
    fid.set_reference(real)
    expected = frechet_distance(feature_statistics(EXTRACTOR, fake), feature_statistics(EXTRACTOR, real))
    assert fid(fake).item() == pytest.approx(expected.item(), rel=1e-12)
    assert "reference=60 samples, batch_size=16" in repr(fid)
    # The reference saved and loaded alone, without the extractor's weights.
    buffer = io.BytesIO()
    assert fid.reference is not None
    torch.save(fid.reference.state_dict(), buffer)
    buffer.seek(0)
    saved = FeatureStatistics()
    saved.load_state_dict(torch.load(buffer, weights_only=True))
    again = FrechetDistance(EXTRACTOR, reference=saved, batch_size=16)
    assert again(fake).item() == pytest.approx(expected.item(), rel=1e-12)


# ------------------------------------------------------------------------------------------------ oracles
ORACLE_CASES = [(2000, 64, 0.0), (600, 256, 0.2), (3000, 16, 2.0)]


@pytest.mark.oracle
@pytest.mark.parametrize(("n", "d", "shift"), ORACLE_CASES)
def test_equals_pytorch_fid(n: int, d: int, shift: float) -> None:
    fid_score = oracle("pytorch_fid.fid_score")
    x, y = gaussian_features(n, d, 0), gaussian_features(n, d, 1, shift)
    expected = fid_score.calculate_frechet_distance(*stats_np(x), *stats_np(y))
    got = frechet_distance(*as_torch(*stats_np(x), *stats_np(y)))
    assert got.item() == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.oracle
@pytest.mark.parametrize(("n", "d", "shift"), ORACLE_CASES)
def test_equals_clean_fid(n: int, d: int, shift: float) -> None:
    cleanfid = oracle("cleanfid.fid")
    x, y = gaussian_features(n, d, 2), gaussian_features(n, d, 3, shift)
    expected = cleanfid.frechet_distance(*stats_np(x), *stats_np(y))
    got = frechet_distance(*as_torch(*stats_np(x), *stats_np(y)))
    assert got.item() == pytest.approx(float(expected), rel=1e-6)
