"""Metrics: the FID Inception network, perceptual path length."""

from .inception import (
    FID_WEIGHTS_SHA256,
    FID_WEIGHTS_URL,
    FIDInceptionV3,
    load_fid_inception_weights,
)
from .path_length import (
    PerceptualPathLength,
    path_length_distances,
    percentile_filtered_mean,
    perceptual_path_length,
    slerp,
)

__all__ = [
    "FID_WEIGHTS_SHA256",
    "FID_WEIGHTS_URL",
    "FIDInceptionV3",
    "PerceptualPathLength",
    "load_fid_inception_weights",
    "path_length_distances",
    "percentile_filtered_mean",
    "perceptual_path_length",
    "slerp",
]
