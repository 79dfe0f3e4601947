"""Losses: adversarial (five families, multi-scale aware), discriminator feature matching, VGG19 perceptual, LPIPS."""

from .adversarial import AdversarialKind, AdversarialLoss, ScaleReduction, adversarial_loss, d_loss, g_loss
from .feature_matching import FeatureMatchingLoss, feature_matching_loss
from .lpips import LPIPS, LPIPSNet, lpips_from_features, lpips_trunk
from .perceptual import InputRange, VGGLoss
from .vgg import VGG19_LAYERS, vgg19_features

__all__ = [
    "LPIPS",
    "VGG19_LAYERS",
    "AdversarialKind",
    "AdversarialLoss",
    "FeatureMatchingLoss",
    "InputRange",
    "LPIPSNet",
    "ScaleReduction",
    "VGGLoss",
    "adversarial_loss",
    "d_loss",
    "feature_matching_loss",
    "g_loss",
    "lpips_from_features",
    "lpips_trunk",
    "vgg19_features",
]
