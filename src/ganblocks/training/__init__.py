"""Training remedies for mode collapse and stability: image pool, weight averaging, DiffAugment, ADA's
augmentation pipeline and controller, unrolling, TTUR.

The penalties among the remedies (consistency regularization, DRAGAN, historical averaging) live in
:mod:`ganblocks.penalties`; weight clipping, a parameter update, lives here.
"""

from .ada import AdaptiveAugmentProbability
from .augment import AUGMENT_OPS, AugmentOp, DiffAugment, diff_augment
from .augment_pipe import AugmentParams, AugmentPipe, AugmentPipePreset
from .clipping import clip_weights_
from .ema import ModelEMA, ema_beta, unwrap_model
from .image_pool import ImagePool
from .ttur import ttur_adam
from .unrolled import unrolled_discriminator

__all__ = [
    "AUGMENT_OPS",
    "AdaptiveAugmentProbability",
    "AugmentOp",
    "AugmentParams",
    "AugmentPipe",
    "AugmentPipePreset",
    "DiffAugment",
    "ImagePool",
    "ModelEMA",
    "clip_weights_",
    "diff_augment",
    "ema_beta",
    "ttur_adam",
    "unrolled_discriminator",
    "unwrap_model",
]
