"""nn.Modules built on the fused ops: equalized layers, bias + activation, normalization, noise, minibatch std."""

from ..ops._activations import ACTIVATION_NAMES, Activation
from .activation import BiasAct, FusedLeakyReLU
from .equalized import EqualConv2d, EqualLinear
from .equalized_hook import EqualizedLR, equalized_lr, remove_equalized_lr
from .minibatch_discrimination import MinibatchDiscrimination
from .minibatch_std import MinibatchStdDev
from .modulated import ModulatedConv2d, ToRGB
from .noise import NOISE_MODES, NoiseInjection, NoiseMode
from .norm import AdaIN, PixelNorm
from .progressive import FadeInSchedule, FadeInState
from .resample import Blur, Downsample2d, Upsample2d
from .stylegan2_conv import StyleGAN2Conv2d

__all__ = [
    "ACTIVATION_NAMES",
    "NOISE_MODES",
    "Activation",
    "AdaIN",
    "BiasAct",
    "Blur",
    "Downsample2d",
    "EqualConv2d",
    "EqualLinear",
    "EqualizedLR",
    "FadeInSchedule",
    "FadeInState",
    "FusedLeakyReLU",
    "MinibatchDiscrimination",
    "MinibatchStdDev",
    "ModulatedConv2d",
    "NoiseInjection",
    "NoiseMode",
    "PixelNorm",
    "StyleGAN2Conv2d",
    "ToRGB",
    "Upsample2d",
    "equalized_lr",
    "remove_equalized_lr",
]
