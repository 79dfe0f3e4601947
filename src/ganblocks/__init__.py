"""ganblocks: GAN building blocks for PyTorch on fused Triton ops with exact PyTorch references."""

from . import functional, ops
from .ops import use_backend

__version__ = "0.1.0"

__all__ = ["__version__", "functional", "ops", "use_backend"]
