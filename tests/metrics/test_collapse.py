"""The collapse monitor's two signals against numpy, on healthy and collapsed batches; the monitor's history."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganblocks.metrics import CollapseMonitor, collapse_statistics


def nearest_other(x: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    out: np.ndarray = d.min(1)
    return out


def test_signals_equal_numpy() -> None:
    rng = np.random.default_rng(0)
    real = rng.standard_normal((50, 4))
    fake = np.concatenate([rng.standard_normal((30, 4)) * 0.5, np.repeat(rng.standard_normal((2, 4)), 10, 0)])
    fake[-20:] += rng.standard_normal((20, 4)) * 1e-3
    threshold = 0.3
    rho = np.median(nearest_other(real))
    got = collapse_statistics(torch.from_numpy(real), torch.from_numpy(fake), threshold=threshold)
    assert got.variance_ratio.item() == pytest.approx(
        fake.var(0, ddof=1).sum() / real.var(0, ddof=1).sum(), rel=1e-12
    )
    assert got.variance_ratio.item() == pytest.approx(
        np.trace(np.cov(fake.T)) / np.trace(np.cov(real.T)), rel=1e-12
    )
    assert got.duplicate_share.item() == np.mean(nearest_other(fake) < threshold * rho)
    assert got.real_duplicate_share.item() == np.mean(nearest_other(real) < threshold * rho)
    assert got.duplicate_share.item() >= 20 / 50  # the 20 repeated samples at least


def test_healthy_and_collapsed_generators() -> None:
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(2, 256, 16, generator=g, dtype=torch.float64)
    healthy = collapse_statistics(real, fake)
    assert healthy.variance_ratio.item() == pytest.approx(1.0, abs=0.1)
    assert healthy.duplicate_share.item() == healthy.real_duplicate_share.item() == 0.0
    shrunk = collapse_statistics(real, 0.05 * fake)  # samples pulled towards one point
    assert shrunk.variance_ratio.item() == pytest.approx(0.0025 * healthy.variance_ratio.item(), rel=1e-12)
    assert shrunk.duplicate_share.item() == 1.0


def test_monitor_history_flag_and_state() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(128, 16, generator=g)
    monitor = CollapseMonitor(min_variance_ratio=0.5, max_duplicate_excess=0.1)
    assert not monitor.collapsed
    first = monitor.update(real, torch.randn(128, 16, generator=g), step=0)
    assert not monitor.collapsed
    monitor.update(real, torch.randn(128, 16, generator=g) * 0.6, step=500)  # variance ratio ≈ 0.36
    assert monitor.collapsed
    assert [r["step"] for r in monitor.history] == [0, 500]
    assert monitor.history[0]["variance_ratio"] == first.variance_ratio.item()
    restored = CollapseMonitor()
    restored.load_state_dict(monitor.state_dict())
    assert restored.history == monitor.history
    assert "updates=2" in repr(restored)
    with pytest.raises(ValueError, match="state_dict must be a dict with a 'history' list"):
        restored.load_state_dict({})


def test_bad_inputs() -> None:
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match=r"fake must have 3 features"):
        collapse_statistics(x, torch.randn(10, 2))
    with pytest.raises(ValueError, match="threshold must be > 0"):
        collapse_statistics(x, x, threshold=0.0)
    with pytest.raises(ValueError, match="real holds NaN or infinite values in 1 of its 10 rows"):
        CollapseMonitor().update(x.index_fill(0, torch.tensor([0]), float("nan")), x)
