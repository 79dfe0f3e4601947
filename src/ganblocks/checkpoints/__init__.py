"""Readers of other projects' checkpoint files into ganblocks networks; nothing in a file is executed.

- :func:`load_stylegan2_ada_pkl`: StyleGAN2-ADA's network pickles, through a restricted unpickler.
- :func:`load_rosinality_checkpoint`: rosinality/stylegan2-pytorch's ``.pt`` checkpoints, with
  ``torch.load(weights_only=True)``.
"""

from .rosinality import RosinalityCheckpoint, load_rosinality_checkpoint
from .stylegan2_ada import StyleGAN2ADACheckpoint, load_stylegan2_ada_pkl

__all__ = [
    "RosinalityCheckpoint",
    "StyleGAN2ADACheckpoint",
    "load_rosinality_checkpoint",
    "load_stylegan2_ada_pkl",
]
