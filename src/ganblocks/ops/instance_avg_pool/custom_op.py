r"""``instance_avg_pool`` as a ``torch.library`` custom op with autograd of every order.

The op is the linear map :math:`y = P x` with :math:`P` the orthogonal projection onto features that are
constant on each instance: :math:`P_{pq} = 1/|S|` when pixels :math:`p, q` lie in the same segment
:math:`S`, else 0. :math:`P` is symmetric, so the backward is the op itself applied to the incoming
gradient, :math:`dx = P\,dy`, and the backward of that is :math:`P` again: every order of gradient is one
more call of the same kernels. The instance map is an integer tensor and gets no gradient.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

import torch

from .._library import fused_op


def _kernels() -> ModuleType:
    from . import kernels  # imports Triton: on the first eager call only

    return kernels


def _fake(features: torch.Tensor, instance_map: torch.Tensor) -> torch.Tensor:
    from .reference import output_format

    return torch.empty_like(features, memory_format=output_format(features))


_instance_avg_pool_op = fused_op(
    "instance_avg_pool",
    "(Tensor features, Tensor instance_map) -> Tensor",
    lambda features, instance_map: _kernels().instance_avg_pool_forward(features, instance_map),
    fake=_fake,
)


def _setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    ctx.save_for_backward(inputs[1])


def _backward(ctx: Any, dy: torch.Tensor) -> tuple[Optional[torch.Tensor], ...]:
    (instance_map,) = ctx.saved_tensors
    return _instance_avg_pool_op(dy, instance_map), None


_instance_avg_pool_op.register_autograd(_backward, setup_context=_setup)


def instance_avg_pool_triton(features: torch.Tensor, instance_map: torch.Tensor) -> torch.Tensor:
    """Run ``instance_avg_pool`` through its Triton custom op (arguments already checked)."""
    y: torch.Tensor = _instance_avg_pool_op(features, instance_map)
    return y
