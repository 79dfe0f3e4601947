"""Every public function of ganblocks, in one namespace (like ``torch.nn.functional``)."""

from .discriminators import image_pyramid
from .generators import encoder_feature_clusters, instance_features, sample_cluster_features
from .generators.mapping import style_mixing
from .labels import instance_boundary_map, one_hot_labels
from .layers.minibatch_discrimination import minibatch_discrimination
from .layers.modulated import modulated_conv2d
from .layers.progressive import fade_in, fade_in_input
from .layers.resample import downsample2d, filter2d, setup_filter, upsample2d
from .losses import (
    adversarial_loss,
    auxiliary_classifier_loss,
    d_loss,
    feature_matching_loss,
    g_loss,
    lpips_from_features,
)
from .ops.bias_act import bias_act
from .ops.inject_noise import inject_noise
from .ops.instance_avg_pool import instance_avg_pool
from .ops.instance_norm_act import adain, instance_norm_act
from .ops.minibatch_stddev import minibatch_stddev
from .ops.pixel_norm import pixel_norm
from .ops.upfirdn2d import upfirdn2d
from .penalties import (
    consistency_regularization,
    dragan_penalty,
    gradient_penalty,
    historical_averaging_penalty,
    latent_consistency_d_penalty,
    latent_consistency_g_penalty,
    lazy_optimizer_kwargs,
    lecam_regularization,
    path_length_penalty,
    path_lengths,
    r1_penalty,
    r1_penalty_from_outputs,
    r2_penalty,
)
from .training import clip_weights_, diff_augment, ttur_adam, unrolled_discriminator

__all__ = [
    "adain",
    "adversarial_loss",
    "auxiliary_classifier_loss",
    "bias_act",
    "clip_weights_",
    "consistency_regularization",
    "d_loss",
    "diff_augment",
    "downsample2d",
    "dragan_penalty",
    "encoder_feature_clusters",
    "fade_in",
    "fade_in_input",
    "feature_matching_loss",
    "filter2d",
    "g_loss",
    "gradient_penalty",
    "historical_averaging_penalty",
    "image_pyramid",
    "inject_noise",
    "instance_avg_pool",
    "instance_boundary_map",
    "instance_features",
    "instance_norm_act",
    "latent_consistency_d_penalty",
    "latent_consistency_g_penalty",
    "lazy_optimizer_kwargs",
    "lecam_regularization",
    "lpips_from_features",
    "minibatch_discrimination",
    "minibatch_stddev",
    "modulated_conv2d",
    "one_hot_labels",
    "path_length_penalty",
    "path_lengths",
    "pixel_norm",
    "r1_penalty",
    "r1_penalty_from_outputs",
    "r2_penalty",
    "sample_cluster_features",
    "setup_filter",
    "style_mixing",
    "ttur_adam",
    "unrolled_discriminator",
    "upfirdn2d",
    "upsample2d",
]
