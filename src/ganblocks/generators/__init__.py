"""Generators: pix2pixHD's global generator, local enhancer and feature encoder, StyleGAN's mapping network
and AdaIN synthesis blocks, StyleGAN2's generator, MSG-GAN's to-RGB heads, and their building blocks."""

from ._layers import GENERATOR_NORMS, ConvNormAct, GeneratorNorm, OutputConv
from .encoder import FeatureEncoder
from .feature_clusters import (
    encoder_feature_clusters,
    instance_features,
    kmeans,
    sample_cluster_features,
)
from .mapping import MappingNetwork, style_mixing
from .msg_heads import MSGGeneratorHeads
from .pix2pixhd import GlobalGenerator, LocalEnhancer, LocalEnhancerBranch
from .resnet_block import ResnetBlock
from .stylegan2 import (
    StyleGAN2Generator,
    StyleGAN2SynthesisBlock,
    StyleGAN2SynthesisLayer,
    StyleGAN2SynthesisNetwork,
    StyleGAN2ToRGB,
)
from .synthesis import AdaINSynthesisBlock, AdaINSynthesisInput, AdaINSynthesisLayer, ConstantInput

__all__ = [
    "GENERATOR_NORMS",
    "AdaINSynthesisBlock",
    "AdaINSynthesisInput",
    "AdaINSynthesisLayer",
    "ConstantInput",
    "ConvNormAct",
    "FeatureEncoder",
    "GeneratorNorm",
    "GlobalGenerator",
    "LocalEnhancer",
    "LocalEnhancerBranch",
    "MSGGeneratorHeads",
    "MappingNetwork",
    "OutputConv",
    "ResnetBlock",
    "StyleGAN2Generator",
    "StyleGAN2SynthesisBlock",
    "StyleGAN2SynthesisLayer",
    "StyleGAN2SynthesisNetwork",
    "StyleGAN2ToRGB",
    "encoder_feature_clusters",
    "instance_features",
    "kmeans",
    "sample_cluster_features",
    "style_mixing",
]
