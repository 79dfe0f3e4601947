"""Discriminators: PatchGAN, pix2pixHD multi-scale, MSG-GAN, and their output type."""

from .output import DiscriminatorOutput

__all__ = ["DiscriminatorOutput"]
