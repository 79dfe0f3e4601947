"""FeatureStatistics: numpy's mean and unbiased covariance, whatever the chunking; merge, all-reduce, state."""

from __future__ import annotations

import io
from pathlib import Path

import ddp
import numpy as np
import pytest
import torch
import torch.distributed as dist

from ganblocks.metrics import FeatureStatistics


def features(n: int = 300, d: int = 7, seed: int = 0, offset: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) @ torch.randn(d, d, generator=g) + offset


def assert_matches_numpy(stats: FeatureStatistics, x: torch.Tensor, rtol: float = 1e-10) -> None:
    ref = x.double().numpy()
    np.testing.assert_allclose(stats.mean.numpy(), ref.mean(0), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(stats.covariance.numpy(), np.cov(ref, rowvar=False), rtol=rtol, atol=rtol)
    assert stats.num_samples == x.shape[0] and stats.num_features == x.shape[1]
    assert stats.mean.dtype == stats.covariance.dtype == torch.float64


@pytest.mark.parametrize("chunk", [1, 7, 64, 300])
def test_streaming_in_chunks_equals_numpy(chunk: int) -> None:
    x = features()
    stats = FeatureStatistics()
    for part in torch.split(x, chunk):
        stats.update(part)
    assert_matches_numpy(stats, x)
    assert torch.equal(stats.covariance, stats.covariance.T)


def test_wide_features_in_strips() -> None:
    """600 features: three column strips of the sum of outer products (256, 256, 88), merged and saved."""
    x = features(700, 600)
    a, b = FeatureStatistics(), FeatureStatistics()
    a.update(x[:300])
    b.update(x[300:])
    assert_matches_numpy(a + b, x)
    restored = FeatureStatistics()
    restored.load_state_dict(a.state_dict())
    restored.update(x[300:])
    assert_matches_numpy(restored, x)
    assert torch.equal(restored.covariance, restored.covariance.T)


def test_float32_input_accumulates_in_float64() -> None:
    # float32 features, summed in float32, would lose ~1e-5 of the covariance over 20k rows at offset 10.
    x = features(20000, 4, offset=10.0).float()
    stats = FeatureStatistics()
    for part in torch.split(x, 1000):
        stats.update(part)
    assert_matches_numpy(stats, x, rtol=1e-9)


def test_merge_equals_concatenation() -> None:
    x = features()
    a, b = FeatureStatistics(), FeatureStatistics()
    a.update(x[:100])
    b.update(x[100:])
    total = a + b
    assert_matches_numpy(total, x)
    assert a.num_samples == 100 and b.num_samples == 200  # + leaves both alone
    assert a.merge(b) is a
    assert_matches_numpy(a, x)
    assert_matches_numpy(FeatureStatistics().merge(a), x)  # into an empty one
    assert_matches_numpy(a.merge(FeatureStatistics(num_features=7)), x)  # an empty one changes nothing


def test_state_dict_round_trip_through_torch_save() -> None:
    x = features()
    stats = FeatureStatistics()
    stats.update(x[:200])
    buffer = io.BytesIO()
    torch.save(stats.state_dict(), buffer)
    buffer.seek(0)
    restored = FeatureStatistics()
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    restored.update(x[200:])  # and it keeps accumulating
    assert_matches_numpy(restored, x)


def test_nan_and_inf_rows_are_counted() -> None:
    x = features(10, 3)
    x[2, 0] = float("nan")
    x[5, 1] = float("inf")
    x[5, 2] = float("nan")
    x[7, 2] = -float("inf")
    stats = FeatureStatistics()
    with pytest.raises(ValueError, match=r"features holds NaN or infinite values in 3 of its 10 rows"):
        stats.update(x)
    assert stats.num_samples == 0


def test_bad_inputs() -> None:
    stats = FeatureStatistics()
    stats.update(features(5, 3))
    with pytest.raises(ValueError, match=r"features must have 3 features .* got shape \(4, 2\)"):
        stats.update(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="features must have 2 dimensions"):
        stats.update(torch.zeros(4))
    with pytest.raises(TypeError, match="features must be a floating-point tensor"):
        stats.update(torch.zeros(4, 3, dtype=torch.long))
    other = FeatureStatistics()
    other.update(features(5, 4))
    with pytest.raises(ValueError, match="other must have 3 features"):
        stats.merge(other)
    with pytest.raises(ValueError, match="at least 2 samples, got 1"):
        one = FeatureStatistics()
        one.update(features(1, 3))
        _ = one.covariance
    with pytest.raises(ValueError, match="no features yet"):
        FeatureStatistics().state_dict()
    with pytest.raises(ValueError, match="state_dict must hold 'num_samples'"):
        stats.load_state_dict({"sum": torch.zeros(3)})
    with pytest.raises(ValueError, match="state_dict must have 3 features"):
        other_state = other.state_dict()
        stats.load_state_dict(other_state)


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")
def test_all_reduce_over_two_ranks_equals_one_process(tmp_path: Path) -> None:
    ranks = ddp.run_ddp(ddp.feature_statistics_worker, 2, tmp_path)
    x = ddp.metrics_features()
    for got in ranks:
        assert int(got["num_samples"]) == 50
        np.testing.assert_allclose(got["mean"].numpy(), x.double().numpy().mean(0), rtol=1e-10)
        np.testing.assert_allclose(
            got["covariance"].numpy(), np.cov(x.double().numpy(), rowvar=False), rtol=1e-10
        )


def test_all_reduce_without_a_process_group_changes_nothing() -> None:
    stats = FeatureStatistics()
    stats.update(features())
    assert stats.all_reduce() is stats
    assert_matches_numpy(stats, features())
