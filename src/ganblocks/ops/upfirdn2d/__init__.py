"""Upsample, FIR filter, downsample (StyleGAN2-ADA's ``upfirdn2d``), in one pass."""

from __future__ import annotations

from typing import Optional, TypeAlias, Union

import torch

from ..._checks import check_device, check_finite, check_float_tensor, check_pair, check_tensor
from .._backend import Backend, use_triton
from .reference import filter_size, output_size, upfirdn2d_reference

Scaling: TypeAlias = Union[int, tuple[int, int]]
Padding: TypeAlias = Union[int, tuple[int, int], tuple[int, int, int, int]]

__all__ = ["Padding", "Scaling", "filter_size", "parse_padding", "parse_scaling", "upfirdn2d"]


def parse_scaling(name: str, value: Scaling) -> tuple[int, int]:
    """An int or an ``(x, y)`` pair of ints ``>= 1``, as ``(x, y)``."""
    return check_pair(name, value, minimum=1)


def parse_padding(name: str, value: Padding) -> tuple[int, int, int, int]:
    """``p``, ``(px, py)`` or ``(px0, px1, py0, py1)`` (ints, negative crops) as ``(px0, px1, py0, py1)``."""
    items = (value,) if isinstance(value, int) else value
    if (
        not isinstance(items, (tuple, list))
        or len(items) not in (1, 2, 4)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in items)
    ):
        raise ValueError(
            f"{name} must be an int, a pair (px, py) or a 4-tuple (px0, px1, py0, py1) of ints, got {value!r}"
        )
    if len(items) == 1:
        return (items[0],) * 4
    if len(items) == 2:
        return items[0], items[0], items[1], items[1]
    return items[0], items[1], items[2], items[3]


def check_filter(name: str, f: object, x: torch.Tensor) -> torch.Tensor:
    """A non-empty 1-D or 2-D floating filter on the device of ``x`` that does not require grad."""
    t = check_float_tensor(name, f)
    if t.ndim not in (1, 2) or t.numel() == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D (separable) or 2-D filter, got shape {tuple(t.shape)}"
        )
    check_device(name, t, x)
    if t.requires_grad:
        raise ValueError(
            f"{name} must not require grad: upfirdn2d treats the filter as a constant (as StyleGAN2-ADA "
            "does); pass f.detach() or a buffer from setup_filter"
        )
    return t


def upfirdn2d(
    x: torch.Tensor,
    f: Optional[torch.Tensor],
    *,
    up: Scaling = 1,
    down: Scaling = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
    backend: Optional[Backend] = None,
) -> torch.Tensor:
    r"""Upsample by zero insertion, pad, convolve with a FIR filter, downsample: StyleGAN2-ADA's ``upfirdn2d``.

    Per channel, with :math:`u` = ``up``, :math:`d` = ``down`` and :math:`p_0` the leading padding (along
    each axis), and :math:`\tilde f` the filter flipped unless ``flip_filter`` (a true convolution by default):

    .. math::
        y[o] = g \sum_{k} \tilde f[k]\; \hat x[o\,d + k - p_0], \qquad
        \hat x[i] = \begin{cases} x[i / u] & u \mid i,\ 0 \le i < u\,H \\ 0 & \text{otherwise}\end{cases}

    summed over the 2-D taps :math:`k = (k_y, k_x)`; a 1-D filter :math:`f` of length :math:`K` acts as the
    separable :math:`f f^\top`. Negative padding crops. The output size along an axis is
    :math:`\lfloor (H u + p_0 + p_1 - K) / d \rfloor + 1`. The gradient with respect to ``x`` is this op
    again (flipped filter, ``up`` and ``down`` swapped), so every order of gradient works; the filter is a
    constant and gets no gradient.

    Args:
        x: input of shape ``(N, C, H, W)``, contiguous or channels_last.
        f: filter of shape ``(fh, fw)``, or ``(K,)`` for a separable one (see
            :func:`ganblocks.functional.setup_filter`); None is the identity ``[[1]]``.
        up: integer upsampling factor, or ``(up_x, up_y)``.
        down: integer downsampling factor, or ``(down_x, down_y)``.
        padding: ``p``, ``(px, py)`` or ``(px0, px1, py0, py1)``, applied after upsampling; negative crops.
        flip_filter: use ``f`` as is (correlation) instead of flipping it (convolution).
        gain: overall scale :math:`g` (StyleGAN2-ADA multiplies the filter by ``gain ** (f.ndim / 2)``, once
            per pass: the same result).
        backend: ``"auto"``, ``"triton"`` or ``"torch"``; None follows :func:`ganblocks.ops.use_backend`.

    Returns:
        Tensor ``(N, C, H_out, W_out)`` of the dtype and memory format of ``x`` (float16/bfloat16 accumulate
        in float32).

    Example:
        >>> import torch
        >>> from ganblocks.functional import upfirdn2d
        >>> x = torch.tensor([[[[1.0, 2.0]]]])
        >>> upfirdn2d(x, torch.tensor([[1.0, 1.0]]), up=(2, 1), padding=(1, 0, 0, 0))
        tensor([[[[1., 1., 2., 2.]]]])

    Reference:
        Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020
        (``torch_utils/ops/upfirdn2d.py``); Karras et al., "Analyzing and Improving the Image Quality of
        StyleGAN", CVPR 2020.
    """
    check_tensor("x", x)
    check_float_tensor("x", x, exact_ndim=4)
    f = torch.ones(1, 1, device=x.device) if f is None else check_filter("f", f, x)
    ups, downs = parse_scaling("up", up), parse_scaling("down", down)
    pads = parse_padding("padding", padding)
    g = check_finite("gain", gain)
    out_h, out_w = output_size(x.shape[2], x.shape[3], f, ups, downs, pads)
    if out_h < 1 or out_w < 1:
        fw, fh = filter_size(f)
        raise ValueError(
            f"upfirdn2d output would be empty ({out_h} x {out_w}): x of shape {tuple(x.shape)} upsampled by "
            f"{ups}, padded by {pads} (px0, px1, py0, py1) must be at least the filter size ({fh} x {fw})"
        )
    if use_triton(backend, x, op="upfirdn2d"):
        from .custom_op import upfirdn2d_triton

        return upfirdn2d_triton(x, f, up=ups, down=downs, padding=pads, flip_filter=flip_filter, gain=g)
    return upfirdn2d_reference(x, f, up=ups, down=downs, padding=pads, flip_filter=bool(flip_filter), gain=g)
