"""Backend control for the fused ops (the ops themselves are in :mod:`ganblocks.functional`).

Each fused op lives in its own package ``ganblocks.ops.<op>``: a pure-PyTorch ``reference``, Triton
``kernels`` (imported lazily), the ``custom_op`` registration with ``torch.library`` (fake kernel and
autograd of every order), and the public function with its argument checks and backend choice.
"""

from ._backend import Backend, get_backend, triton_available, use_backend

__all__ = ["Backend", "get_backend", "triton_available", "use_backend"]
