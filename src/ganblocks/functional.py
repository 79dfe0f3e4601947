"""Every public function of ganblocks, in one namespace (like ``torch.nn.functional``)."""

from .ops import adain, bias_act, inject_noise, instance_norm_act, minibatch_stddev, pixel_norm

__all__ = [
    "adain",
    "bias_act",
    "inject_noise",
    "instance_norm_act",
    "minibatch_stddev",
    "pixel_norm",
]
