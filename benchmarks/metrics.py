"""Metrics: the Fréchet distance of two 2048×2048 covariances (FID's Inception width) against pytorch-fid's
scipy ``sqrtm`` formulation, and the streaming statistics of 1000-row feature batches against pytorch-fid's
``np.cov`` of all features at once. FID from N×2048 features costs one of each, at any N.

numpy and scipy run on as many threads as OpenBLAS takes (``OPENBLAS_NUM_THREADS``), not ``--threads``: set
it to the same number for a like-for-like ratio.
"""

from __future__ import annotations

import numpy as np
import torch

from ganblocks.metrics import FeatureStatistics, frechet_distance

from .common import Config, Factory, Row, Skip, Work


def covariance(d: int, seed: int) -> torch.Tensor:
    """A full-rank covariance with correlated features (of 1.5·d samples of a mixed Gaussian)."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(d, dtype=torch.float64) + torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    return torch.cov((torch.randn(d * 3 // 2, d, generator=g, dtype=torch.float64) @ mix).T)


def frechet_providers(cfg: Config, d: int) -> dict[str, Factory]:
    def ours() -> Work:
        s1, s2 = covariance(d, 0).to(cfg.device), covariance(d, 1).to(cfg.device)
        m1, m2 = torch.zeros(d, dtype=torch.float64, device=cfg.device), torch.full_like(s1[0], 0.1)
        return Work(lambda: frechet_distance(m1, s1, m2, s2).item())

    def plain() -> Work:  # pytorch-fid's calculate_frechet_distance, as written there
        try:
            from scipy import linalg
        except ImportError as error:
            raise Skip("needs scipy") from error
        s1, s2 = covariance(d, 0).numpy(), covariance(d, 1).numpy()
        m1, m2 = np.zeros(d), np.full(d, 0.1)

        def run() -> float:
            covmean = linalg.sqrtm(s1.dot(s2))
            diff = m1 - m2
            return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))

        return Work(run)

    return {"ganblocks": ours, "plain": plain}


def statistics_providers(cfg: Config, n: int, d: int, batch: int) -> dict[str, Factory]:
    def batches() -> list[torch.Tensor]:
        torch.manual_seed(0)
        return list(torch.randn(n, d).to(cfg.device).split(batch))

    def ours() -> Work:
        parts = batches()

        def run() -> torch.Tensor:
            stats = FeatureStatistics()
            for part in parts:
                stats.update(part)
            return stats.covariance

        return Work(run)

    def plain() -> Work:  # pytorch-fid: every activation in one array, then np.mean and np.cov
        parts = [p.cpu().numpy() for p in batches()]

        def run() -> np.ndarray:
            act = np.concatenate(parts)
            mu, sigma = np.mean(act, axis=0), np.cov(act, rowvar=False)
            return mu + sigma[0]

        return Work(run)

    return {"ganblocks": ours, "plain": plain}


def rows(cfg: Config) -> list[Row]:
    d = cfg.size(64, 2048, 2048)
    n, batch = cfg.size((512, 128), (8192, 1000), (50000, 1000))
    return [
        Row("metrics", "frechet_distance", {"dim": d}, ("forward",), frechet_providers(cfg, d),
            "plain = pytorch-fid's scipy.linalg.sqrtm(Σ1·Σ2) (CPU, numpy)"),
        Row("metrics", "feature_statistics", {"shape": [n, d], "batch": batch}, ("forward",),
            statistics_providers(cfg, n, d, batch),
            f"FeatureStatistics.update per batch of {batch} (float64 sums) vs np.cov of all (pytorch-fid; CPU)"),
    ]  # fmt: skip
