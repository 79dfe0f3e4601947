"""Metrics of generated samples in the feature space of any network: FID, KID, precision/recall, collapse.

Every metric takes features ``(N, D)`` (or, for :func:`feature_statistics`, a feature extractor and images),
computes in float64 where precision matters, and validates its inputs: NaN or infinite features raise with
the number of rows that hold one.
"""

from .collapse import CollapseMonitor, CollapseStatistics, collapse_statistics
from .frechet import FrechetDistance, feature_statistics, frechet_distance
from .kid import KernelDistance, kernel_distance, polynomial_mmd
from .precision_recall import PrecisionRecall, precision_recall
from .statistics import FeatureStatistics

__all__ = [
    "CollapseMonitor",
    "CollapseStatistics",
    "FeatureStatistics",
    "FrechetDistance",
    "KernelDistance",
    "PrecisionRecall",
    "collapse_statistics",
    "feature_statistics",
    "frechet_distance",
    "kernel_distance",
    "polynomial_mmd",
    "precision_recall",
]
