"""Discriminators: PatchGAN, pix2pixHD multi-scale, MSG-GAN, StyleGAN2, and their output type."""

from ..outputs import DiscriminatorOutput
from .msg import COMBINE_MODES, Combine, MSGCombine, MSGDiscriminator
from .multiscale import MultiScaleDiscriminator, convert_pix2pixhd_state_dict, downsample
from .patch import PATCH_NORMS, PatchDiscriminator, PatchNorm
from .pyramid import ImagePyramid, image_pyramid
from .stylegan2 import StyleGAN2Discriminator, StyleGAN2DiscriminatorBlock, StyleGAN2DiscriminatorEpilogue

__all__ = [
    "COMBINE_MODES",
    "PATCH_NORMS",
    "Combine",
    "DiscriminatorOutput",
    "ImagePyramid",
    "MSGCombine",
    "MSGDiscriminator",
    "MultiScaleDiscriminator",
    "PatchDiscriminator",
    "PatchNorm",
    "StyleGAN2Discriminator",
    "StyleGAN2DiscriminatorBlock",
    "StyleGAN2DiscriminatorEpilogue",
    "convert_pix2pixhd_state_dict",
    "downsample",
    "image_pyramid",
]
