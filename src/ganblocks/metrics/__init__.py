"""Metrics of generated samples in the feature space of any network: FID, KID, precision/recall, collapse,
perceptual path length, and the FID Inception network.

Every metric takes features ``(N, D)`` (or, for :func:`feature_statistics`, a feature extractor and images),
computes in float64 where precision matters, and validates its inputs: NaN or infinite features raise with
the number of rows that hold one.
"""

from .collapse import CollapseMonitor, CollapseStatistics, collapse_statistics
from .frechet import FrechetDistance, feature_statistics, frechet_distance
from .inception import FID_WEIGHTS_SHA256, FID_WEIGHTS_URL, FIDInceptionV3, load_fid_inception_weights
from .kid import KernelDistance, kernel_distance, polynomial_mmd
from .path_length import (
    PerceptualPathLength,
    path_length_distances,
    percentile_filtered_mean,
    perceptual_path_length,
    slerp,
)
from .precision_recall import PrecisionRecall, precision_recall
from .statistics import FeatureStatistics

__all__ = [
    "FID_WEIGHTS_SHA256",
    "FID_WEIGHTS_URL",
    "CollapseMonitor",
    "CollapseStatistics",
    "FIDInceptionV3",
    "FeatureStatistics",
    "FrechetDistance",
    "KernelDistance",
    "PerceptualPathLength",
    "PrecisionRecall",
    "collapse_statistics",
    "feature_statistics",
    "frechet_distance",
    "kernel_distance",
    "load_fid_inception_weights",
    "path_length_distances",
    "percentile_filtered_mean",
    "perceptual_path_length",
    "polynomial_mmd",
    "precision_recall",
    "slerp",
]
