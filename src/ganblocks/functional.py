"""Every public function of ganblocks, in one namespace (like ``torch.nn.functional``)."""

from .discriminators import image_pyramid
from .losses import adversarial_loss, d_loss, feature_matching_loss, g_loss
from .ops import adain, bias_act, inject_noise, instance_norm_act, minibatch_stddev, pixel_norm
from .penalties import (
    gradient_penalty,
    lazy_optimizer_kwargs,
    r1_penalty,
    r1_penalty_from_outputs,
    r2_penalty,
    r2_penalty_from_outputs,
)

__all__ = [
    "adain",
    "adversarial_loss",
    "bias_act",
    "d_loss",
    "feature_matching_loss",
    "g_loss",
    "gradient_penalty",
    "image_pyramid",
    "inject_noise",
    "instance_norm_act",
    "lazy_optimizer_kwargs",
    "minibatch_stddev",
    "pixel_norm",
    "r1_penalty",
    "r1_penalty_from_outputs",
    "r2_penalty",
    "r2_penalty_from_outputs",
]
