"""Generators: pix2pixHD's global generator, local enhancer and feature encoder, and their building blocks."""

from ._layers import GENERATOR_NORMS, ConvNormAct, GeneratorNorm, OutputConv
from .encoder import FeatureEncoder
from .feature_clusters import (
    encoder_feature_clusters,
    instance_features,
    kmeans,
    sample_cluster_features,
)
from .pix2pixhd import GlobalGenerator, LocalEnhancer, LocalEnhancerBranch
from .resnet_block import ResnetBlock

__all__ = [
    "GENERATOR_NORMS",
    "ConvNormAct",
    "FeatureEncoder",
    "GeneratorNorm",
    "GlobalGenerator",
    "LocalEnhancer",
    "LocalEnhancerBranch",
    "OutputConv",
    "ResnetBlock",
    "encoder_feature_clusters",
    "instance_features",
    "kmeans",
    "sample_cluster_features",
]
