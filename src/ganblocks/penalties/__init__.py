"""Penalties: WGAN-GP, R1/R2 (second order, through any ganblocks discriminator), consistency (bCR, zCR),
LeCam, lazy regularization."""

from .consistency import (
    ConsistencyRegularization,
    LatentConsistencyRegularization,
    consistency_regularization,
    latent_consistency_d_penalty,
    latent_consistency_g_penalty,
)
from .dragan import DraganPenalty, dragan_penalty
from .gradient_penalty import GradientNorm, GradientPenalty, gradient_penalty
from .historical import HistoricalAveraging, historical_averaging_penalty
from .lazy import LazyRegularizer, lazy_optimizer_kwargs
from .lecam import LeCamRegularization, lecam_regularization
from .path_length import PathLengthPenalty, path_length_penalty, path_lengths
from .r1 import R1Penalty, R2Penalty, r1_penalty, r1_penalty_from_outputs, r2_penalty

__all__ = [
    "ConsistencyRegularization",
    "DraganPenalty",
    "GradientNorm",
    "GradientPenalty",
    "HistoricalAveraging",
    "LatentConsistencyRegularization",
    "LazyRegularizer",
    "LeCamRegularization",
    "PathLengthPenalty",
    "R1Penalty",
    "R2Penalty",
    "consistency_regularization",
    "dragan_penalty",
    "gradient_penalty",
    "historical_averaging_penalty",
    "latent_consistency_d_penalty",
    "latent_consistency_g_penalty",
    "lazy_optimizer_kwargs",
    "lecam_regularization",
    "path_length_penalty",
    "path_lengths",
    "r1_penalty",
    "r1_penalty_from_outputs",
    "r2_penalty",
]
