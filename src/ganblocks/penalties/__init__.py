"""Penalties: WGAN-GP, R1/R2 (second order, through any ganblocks discriminator), lazy regularization."""

from .gradient_penalty import GradientNorm, GradientPenalty, gradient_penalty
from .lazy import LazyRegularizer, lazy_optimizer_kwargs
from .path_length import PathLengthPenalty, path_length_penalty, path_lengths
from .r1 import R1Penalty, R2Penalty, r1_penalty, r1_penalty_from_outputs, r2_penalty, r2_penalty_from_outputs

__all__ = [
    "GradientNorm",
    "GradientPenalty",
    "LazyRegularizer",
    "PathLengthPenalty",
    "R1Penalty",
    "R2Penalty",
    "gradient_penalty",
    "lazy_optimizer_kwargs",
    "path_length_penalty",
    "path_lengths",
    "r1_penalty",
    "r1_penalty_from_outputs",
    "r2_penalty",
    "r2_penalty_from_outputs",
]
