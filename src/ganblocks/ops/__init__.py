"""Fused ops: the only part of ganblocks that knows about Triton.

Every op has a pure-PyTorch reference (``_ref``), Triton kernels (``_kernels``, imported lazily) and
``torch.library`` custom ops with autograd formulas (``_autograd``); the public function checks its
arguments and picks the backend.
"""

from ._backend import Backend, get_backend, triton_available, use_backend
from .activations import ACTIVATION_NAMES, Activation
from .bias_act import bias_act
from .inject_noise import inject_noise
from .instance_norm_act import adain, instance_norm_act
from .minibatch_stddev import minibatch_stddev
from .pixel_norm import pixel_norm

__all__ = [
    "ACTIVATION_NAMES",
    "Activation",
    "Backend",
    "adain",
    "bias_act",
    "get_backend",
    "inject_noise",
    "instance_norm_act",
    "minibatch_stddev",
    "pixel_norm",
    "triton_available",
    "use_backend",
]
