"""Losses: adversarial (multi-scale aware, relativistic kinds included), AC-GAN auxiliary classifier,
discriminator feature matching, VGG19 perceptual, LPIPS."""

from .adversarial import AdversarialKind, AdversarialLoss, ScaleReduction, adversarial_loss, d_loss, g_loss
from .auxiliary_classifier import AuxiliaryClassifierLoss, auxiliary_classifier_loss
from .feature_matching import FeatureMatchingLoss, feature_matching_loss
from .lpips import LPIPS, LPIPSNet, lpips_from_features, lpips_trunk
from .perceptual import InputRange, VGGLoss
from .vgg import VGG19_LAYERS, vgg19_features

__all__ = [
    "LPIPS",
    "VGG19_LAYERS",
    "AdversarialKind",
    "AdversarialLoss",
    "AuxiliaryClassifierLoss",
    "FeatureMatchingLoss",
    "InputRange",
    "LPIPSNet",
    "ScaleReduction",
    "VGGLoss",
    "adversarial_loss",
    "auxiliary_classifier_loss",
    "d_loss",
    "feature_matching_loss",
    "g_loss",
    "lpips_from_features",
    "lpips_trunk",
    "vgg19_features",
]
