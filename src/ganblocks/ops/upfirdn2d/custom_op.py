r"""``upfirdn2d`` as a ``torch.library`` custom op whose backward is the same op.

``upfirdn2d`` is linear in ``x``; its adjoint (StyleGAN2-ADA's ``_upfirdn2d_cuda`` backward) is ``upfirdn2d``
of the incoming gradient with the filter flipped (``not flip_filter``), ``up`` and ``down`` swapped and the
padding

.. math::
    p'_{x0} = f_w - p_{x0} - 1, \qquad
    p'_{x1} = W_\text{in}\,u_x - W_\text{out}\,d_x + p_{x0} - u_x + 1

(likewise along H). The backward calls the op itself, so the gradient of the gradient is that rule again
and every order works. The filter is a constant: it gets no gradient.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

import torch

from .._library import fused_op
from .reference import filter_size, output_memory_format, output_size


def _kernels() -> ModuleType:
    from . import kernels  # imports Triton: on the first eager call only

    return kernels


def _fake(x: torch.Tensor, f: torch.Tensor, *geometry: Any) -> torch.Tensor:
    # geometry: the schema's upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain.
    upx, upy, downx, downy, padx0, padx1, pady0, pady1 = geometry[:8]
    n, c, h, w = x.shape
    out_h, out_w = output_size(h, w, f, (upx, upy), (downx, downy), (padx0, padx1, pady0, pady1))
    return x.new_empty((n, c, out_h, out_w)).contiguous(memory_format=output_memory_format(x))


_upfirdn2d_op = fused_op(
    "upfirdn2d",
    "(Tensor x, Tensor f, int upx, int upy, int downx, int downy, int padx0, int padx1, int pady0, "
    "int pady1, bool flip_filter, float gain) -> Tensor",
    lambda *args: _kernels().upfirdn2d_forward(*args),
    fake=_fake,
)


def _setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    x, f, *args = inputs
    ctx.args = tuple(args)
    ctx.in_size = (x.shape[2], x.shape[3])
    ctx.save_for_backward(f)


def _backward(ctx: Any, dy: torch.Tensor) -> tuple[Optional[torch.Tensor], ...]:
    (f,) = ctx.saved_tensors
    upx, upy, downx, downy, padx0, _, pady0, _, flip_filter, gain = ctx.args
    in_h, in_w = ctx.in_size
    out_h, out_w = dy.shape[2], dy.shape[3]
    fw, fh = filter_size(f)
    dx = None
    if ctx.needs_input_grad[0]:
        dx = _upfirdn2d_op(
            dy,
            f,
            downx,
            downy,
            upx,
            upy,
            fw - padx0 - 1,
            in_w * upx - out_w * downx + padx0 - upx + 1,
            fh - pady0 - 1,
            in_h * upy - out_h * downy + pady0 - upy + 1,
            not flip_filter,
            gain,
        )
    return (dx, *([None] * 11))


_upfirdn2d_op.register_autograd(_backward, setup_context=_setup)


def upfirdn2d_triton(
    x: torch.Tensor,
    f: torch.Tensor,
    *,
    up: tuple[int, int],
    down: tuple[int, int],
    padding: tuple[int, int, int, int],
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """Run ``upfirdn2d`` through its Triton custom op (arguments already checked)."""
    y: torch.Tensor = _upfirdn2d_op(x, f, *up, *down, *padding, bool(flip_filter), float(gain))
    return y
