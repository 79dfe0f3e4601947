"""nn.Modules built on the fused ops: equalized layers, bias + activation, normalization, noise, minibatch std."""

from .activation import BiasAct, FusedLeakyReLU
from .equalized import EqualConv2d, EqualLinear
from .equalized_hook import EqualizedLR, equalized_lr, remove_equalized_lr
from .minibatch_std import MinibatchStdDev
from .noise import NOISE_MODES, NoiseInjection, NoiseMode
from .norm import AdaIN, PixelNorm

__all__ = [
    "NOISE_MODES",
    "AdaIN",
    "BiasAct",
    "EqualConv2d",
    "EqualLinear",
    "EqualizedLR",
    "FusedLeakyReLU",
    "MinibatchStdDev",
    "NoiseInjection",
    "NoiseMode",
    "PixelNorm",
    "equalized_lr",
    "remove_equalized_lr",
]
