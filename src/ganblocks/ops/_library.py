"""Registration of the fused ops with ``torch.library``, so each op's signature is written once: its schema.

Every op is a ``custom_op`` whose body launches its Triton kernel and whose fake kernel tells
``torch.compile`` the output's shape, dtype and strides without running anything. The bodies import the
kernels (and so Triton) on their first eager call only; ``torch.compile`` traces through the fakes on any
machine, with or without Triton.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable

import torch

from ._backend import interpreting

if TYPE_CHECKING:
    from torch._library.custom_ops import CustomOpDef

NAMESPACE = "ganblocks"

# Triton's own library functions (tl.sum, ...) are compiled or interpreted as Triton is imported, so a
# TRITON_INTERPRET=1 set after `import triton` (by the user, or by torch.compile, which imports it) leaves
# them compiled, and an interpreted kernel that calls one fails with this text.
_LATE_INTERPRET = "outside of the scope of a kernel"


def _launch_with_hint(name: str, launch: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(launch)  # the op keeps the module of its launcher
    def body(*args: Any) -> Any:
        try:
            return launch(*args)
        except Exception as e:
            if interpreting() and _LATE_INTERPRET in str(e):
                raise RuntimeError(
                    f"{name}: TRITON_INTERPRET=1 was set after Triton was imported (by `import triton` or "
                    "by torch.compile); set it before that, e.g. in the shell or before `import torch`"
                ) from e
            raise

    return body


def fused_op(name: str, schema: str, launch: Callable[..., Any], *, fake: Callable[..., Any]) -> CustomOpDef:
    """Register ``ganblocks::<name>`` with ``schema``, ``launch`` as its body and ``fake`` as its fake kernel."""
    body = _launch_with_hint(name, launch)
    op = torch.library.custom_op(f"{NAMESPACE}::{name}", body, mutates_args=(), schema=schema)
    op.register_fake(fake)
    return op


def like_first(x: torch.Tensor, *_: object) -> torch.Tensor:
    """Fake kernel of an op whose one output has the shape, dtype and strides of its first input."""
    return torch.empty_like(x)
