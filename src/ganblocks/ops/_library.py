"""Registration of the fused ops with ``torch.library``, so each op's signature is written once: its schema.

Every op is a ``custom_op`` whose body launches its Triton kernel and whose fake kernel tells
``torch.compile`` the output's shape, dtype and strides without running anything. The bodies import the
kernels (and so Triton) on their first eager call only; ``torch.compile`` traces through the fakes on any
machine, with or without Triton.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import torch

if TYPE_CHECKING:
    from torch._library.custom_ops import CustomOpDef

NAMESPACE = "ganblocks"


def fused_op(name: str, schema: str, launch: Callable[..., Any], *, fake: Callable[..., Any]) -> CustomOpDef:
    """Register ``ganblocks::<name>`` with ``schema``, ``launch`` as its body and ``fake`` as its fake kernel."""
    op = torch.library.custom_op(f"{NAMESPACE}::{name}", launch, mutates_args=(), schema=schema)
    op.register_fake(fake)
    return op


def like_first(x: torch.Tensor, *_: object) -> torch.Tensor:
    """Fake kernel of an op whose one output has the shape, dtype and strides of its first input."""
    return torch.empty_like(x)
