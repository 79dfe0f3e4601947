"""FIR resampling of StyleGAN2: ``setup_filter`` and ``upsample2d`` / ``downsample2d`` / ``filter2d`` with
their modules ``Upsample2d`` / ``Downsample2d`` / ``Blur``, all on the fused :func:`~ganblocks.functional.upfirdn2d`.

The padding rules are StyleGAN2-ADA's (``torch_utils/ops/upfirdn2d.py``), so with the default
``[1, 3, 3, 1]`` filter an ``H × W`` input becomes ``2H × 2W`` (up) or ``H/2 × W/2`` (down) and the image
stays centred. The filter is a buffer named ``resample_filter``, as in StyleGAN2-ADA's state dicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, TypeAlias, Union

import torch
from torch import nn

from .._checks import check_finite
from ..ops._backend import Backend
from ..ops.upfirdn2d import Padding, Scaling, filter_size, parse_padding, parse_scaling, upfirdn2d

FilterLike: TypeAlias = Union[torch.Tensor, float, Sequence[float], Sequence[Sequence[float]], None]
BLUR_FILTER = (1.0, 3.0, 3.0, 1.0)


def setup_filter(
    f: FilterLike,
    *,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1.0,
    separable: Optional[bool] = None,
    device: Optional[Union[torch.device, str]] = None,
    dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    r"""Turn a list of taps into the filter :func:`~ganblocks.functional.upfirdn2d` takes (StyleGAN2-ADA's rule).

    A 1-D filter :math:`a` stays 1-D (separable) when ``separable`` is True, or by default when it has at
    least 8 taps; otherwise it becomes the 2-D outer product :math:`a a^\top`. Then, in this order:

    .. math::
        f \leftarrow f / \textstyle\sum f \ \text{(normalize)}, \qquad
        f \leftarrow \operatorname{flip}(f) \ \text{(flip\_filter)}, \qquad
        f \leftarrow f \cdot g^{\,\text{ndim}(f)/2}

    so a separable filter applied along both axes carries the gain :math:`g` once overall.

    Args:
        f: finite taps: a number, a 1-D or 2-D sequence (rows of equal length) or tensor; None is ``[1]``.
            Anything else raises a ``ValueError``.
        normalize: divide by the sum of the (possibly outer-product) filter.
        flip_filter: flip the filter along every axis.
        gain: overall gain :math:`g`.
        separable: keep a 1-D filter 1-D; None decides by length (8 taps or more).
        device: device of the result.
        dtype: dtype of the result (float32 by default).

    Returns:
        A 1-D ``(K,)`` or 2-D ``(fh, fw)`` tensor.

    Example:
        >>> from ganblocks.functional import setup_filter
        >>> setup_filter([1, 3, 3, 1]).mul(64)
        tensor([[1., 3., 3., 1.],
                [3., 9., 9., 3.],
                [3., 9., 9., 3.],
                [1., 3., 3., 1.]])
        >>> setup_filter([1, 2, 1], separable=True)
        tensor([0.2500, 0.5000, 0.2500])

    Reference:
        Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020
        (``upfirdn2d.setup_filter``).
    """
    return _setup_filter(
        "f", f, normalize=normalize, flip_filter=flip_filter, gain=gain, separable=separable, device=device,
        dtype=dtype,
    )  # fmt: skip


def _setup_filter(
    name: str,
    f: FilterLike,
    *,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1.0,
    separable: Optional[bool] = None,
    device: Optional[Union[torch.device, str]] = None,
    dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """:func:`setup_filter` with its errors naming the caller's argument ``name``."""
    g = check_finite("gain", gain)
    # On the meta device the taps have no values to check or normalize: build on the CPU, move at the end.
    meta = device is not None and torch.device(device).type == "meta"
    try:
        t = torch.as_tensor(
            1.0 if f is None else f, dtype=dtype or torch.float32, device="cpu" if meta else device
        )
    except (TypeError, ValueError) as e:
        # torch's own message ("expected sequence of length 2 at dim 1") names neither the argument nor the rule.
        got = repr(f) if len(repr(f)) <= 80 else repr(f)[:77] + "..."
        raise ValueError(
            f"{name} must be a number, a tensor, or a 1-D or 2-D sequence of numbers with rows of equal length, "
            f"got {got}"
        ) from e
    if not t.is_floating_point():
        raise TypeError(f"dtype must be a floating-point dtype, got {t.dtype}")
    if t.ndim > 2 or t.numel() == 0:
        raise ValueError(
            f"{name} must be a number or a non-empty 1-D or 2-D filter, got shape {tuple(t.shape)}"
        )
    if not bool(torch.isfinite(t).all()):
        taps = t.tolist() if t.numel() <= 64 else f"a tensor of shape {tuple(t.shape)}"
        raise ValueError(f"{name} must have finite taps, got {taps}")
    t = t.reshape(1) if t.ndim == 0 else t.clone()
    sep = t.ndim == 1 and t.numel() >= 8 if separable is None else separable
    if sep and t.ndim != 1:
        raise ValueError(f"separable=True needs a 1-D filter, got shape {tuple(t.shape)}")
    if t.ndim == 1 and not sep:
        t = torch.outer(t, t)
    if normalize:
        total = t.sum()
        if total.item() == 0:
            raise ValueError(f"{name} must not sum to zero when normalize=True")
        t = t / total
    if flip_filter:
        t = t.flip(list(range(t.ndim)))
    if t.ndim == 1 and g < 0:
        raise ValueError(
            f"gain must be >= 0 for a separable filter (it is applied as sqrt(gain) per axis), got {g}"
        )
    t = t * (g if t.ndim == 2 else math.sqrt(g))
    return t.to("meta") if meta else t


def upsample2d(
    x: torch.Tensor,
    f: Optional[torch.Tensor],
    *,
    up: Scaling = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
    backend: Optional[Backend] = None,
) -> torch.Tensor:
    r"""Upsample by ``up`` with the FIR filter ``f``: ``(N, C, H, W) -> (N, C, H·up + pads, W·up + pads)``.

    :func:`~ganblocks.functional.upfirdn2d` with the gain multiplied by :math:`u_x u_y` (zero insertion
    keeps one pixel in :math:`u_x u_y`) and the padding :math:`p_0 + \lfloor (K + u - 1)/2 \rfloor`,
    :math:`p_1 + \lfloor (K - u)/2 \rfloor` along each axis (:math:`K` taps) added to ``padding``.

    Args:
        x: input ``(N, C, H, W)``.
        f: filter from :func:`setup_filter` (None: the identity, i.e. zero insertion).
        up: integer factor, or ``(up_x, up_y)``.
        padding: extra padding ``p``, ``(px, py)`` or ``(px0, px1, py0, py1)``.
        flip_filter: correlate instead of convolving.
        gain: overall gain on top of :math:`u_x u_y`.
        backend: ``"auto"``, ``"triton"`` or ``"torch"``.

    Example:
        >>> import torch
        >>> from ganblocks.functional import setup_filter, upsample2d
        >>> upsample2d(torch.ones(1, 1, 4, 4), setup_filter([1, 3, 3, 1]))[0, 0, 2:6, 2:6]
        tensor([[1., 1., 1., 1.],
                [1., 1., 1., 1.],
                [1., 1., 1., 1.],
                [1., 1., 1., 1.]])
    """
    (upx, upy), (px0, px1, py0, py1) = parse_scaling("up", up), parse_padding("padding", padding)
    fw, fh = (1, 1) if f is None else filter_size(f)
    pads = (
        px0 + (fw + upx - 1) // 2,
        px1 + (fw - upx) // 2,
        py0 + (fh + upy - 1) // 2,
        py1 + (fh - upy) // 2,
    )
    g = check_finite("gain", gain) * upx * upy
    return upfirdn2d(x, f, up=(upx, upy), padding=pads, flip_filter=flip_filter, gain=g, backend=backend)


def downsample2d(
    x: torch.Tensor,
    f: Optional[torch.Tensor],
    *,
    down: Scaling = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
    backend: Optional[Backend] = None,
) -> torch.Tensor:
    r"""Filter with ``f`` and keep every ``down``-th pixel: ``(N, C, H, W) -> (N, C, H/down, W/down)``.

    :func:`~ganblocks.functional.upfirdn2d` with the padding :math:`p_0 + \lfloor (K - d + 1)/2 \rfloor`,
    :math:`p_1 + \lfloor (K - d)/2 \rfloor` along each axis added to ``padding``.

    Args:
        x: input ``(N, C, H, W)``.
        f: filter from :func:`setup_filter` (None: plain subsampling).
        down: integer factor, or ``(down_x, down_y)``.
        padding: extra padding ``p``, ``(px, py)`` or ``(px0, px1, py0, py1)``.
        flip_filter: correlate instead of convolving.
        gain: overall gain.
        backend: ``"auto"``, ``"triton"`` or ``"torch"``.

    Example:
        >>> import torch
        >>> from ganblocks.functional import downsample2d, setup_filter
        >>> downsample2d(torch.arange(16.0).reshape(1, 1, 4, 4), setup_filter([1, 1]))
        tensor([[[[ 2.5000,  4.5000],
                  [10.5000, 12.5000]]]])
    """
    (dx, dy), (px0, px1, py0, py1) = parse_scaling("down", down), parse_padding("padding", padding)
    fw, fh = (1, 1) if f is None else filter_size(f)
    pads = (px0 + (fw - dx + 1) // 2, px1 + (fw - dx) // 2, py0 + (fh - dy + 1) // 2, py1 + (fh - dy) // 2)
    return upfirdn2d(x, f, down=(dx, dy), padding=pads, flip_filter=flip_filter, gain=gain, backend=backend)


def filter2d(
    x: torch.Tensor,
    f: Optional[torch.Tensor],
    *,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
    backend: Optional[Backend] = None,
) -> torch.Tensor:
    r"""Blur with the FIR filter ``f`` keeping the size: the padding :math:`p_0 + \lfloor K/2 \rfloor`,
    :math:`p_1 + \lfloor (K - 1)/2 \rfloor` is added to ``padding`` (StyleGAN2-ADA's ``filter2d``).

    Example:
        >>> import torch
        >>> from ganblocks.functional import filter2d, setup_filter
        >>> filter2d(torch.tensor([[[[0.0, 4.0, 0.0]]]]), setup_filter([[1, 2, 1]]))
        tensor([[[[1., 2., 1.]]]])
    """
    px0, px1, py0, py1 = parse_padding("padding", padding)
    fw, fh = (1, 1) if f is None else filter_size(f)
    pads = (px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2)
    return upfirdn2d(x, f, padding=pads, flip_filter=flip_filter, gain=gain, backend=backend)


class _Resample(nn.Module):
    resample_filter: torch.Tensor

    def __init__(
        self,
        resample_filter: FilterLike,
        padding: Padding,
        gain: float,
        flip_filter: bool,
        separable: Optional[bool],
        device: Optional[Union[torch.device, str]],
        dtype: Optional[torch.dtype],
    ) -> None:
        super().__init__()
        self.padding = parse_padding("padding", padding)
        self.gain = check_finite("gain", gain)
        self.flip_filter = bool(flip_filter)
        f = _setup_filter("resample_filter", resample_filter, separable=separable, device=device, dtype=dtype)
        self.register_buffer("resample_filter", f)

    def extra_repr(self) -> str:
        return (
            f"filter_shape={tuple(self.resample_filter.shape)}, padding={self.padding}, gain={self.gain}, "
            f"flip_filter={self.flip_filter}"
        )


class Upsample2d(_Resample):
    """Upsample by a FIR filter (StyleGAN2's ``upsample2d``); see :func:`upsample2d`.

    Args:
        resample_filter: taps given to :func:`setup_filter` (default ``[1, 3, 3, 1]``).
        up: integer factor, or ``(up_x, up_y)``.
        padding: extra padding ``p``, ``(px, py)`` or ``(px0, px1, py0, py1)``.
        gain: gain on top of ``up_x * up_y``.
        flip_filter: correlate instead of convolving.
        separable: passed to :func:`setup_filter`.
        device: device of the filter buffer.
        dtype: dtype of the filter buffer (float32 by default).

    Shape:
        ``(N, C, H, W) -> (N, C, H * up, W * up)`` without extra padding.

    Example:
        >>> import torch
        >>> from ganblocks.layers import Upsample2d
        >>> Upsample2d()(torch.randn(2, 3, 8, 8)).shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(
        self,
        *,
        resample_filter: FilterLike = BLUR_FILTER,
        up: Scaling = 2,
        padding: Padding = 0,
        gain: float = 1.0,
        flip_filter: bool = False,
        separable: Optional[bool] = None,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(resample_filter, padding, gain, flip_filter, separable, device, dtype)
        self.up = parse_scaling("up", up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample2d(
            x, self.resample_filter, up=self.up, padding=self.padding, flip_filter=self.flip_filter,
            gain=self.gain,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"up={self.up}, " + super().extra_repr()


class Downsample2d(_Resample):
    """Downsample by a FIR filter (StyleGAN2's ``downsample2d``); see :func:`downsample2d`.

    Args are those of :class:`Upsample2d`, with ``down`` (an integer factor or ``(down_x, down_y)``) in place
    of ``up`` and ``gain`` the overall gain.

    Shape:
        ``(N, C, H, W) -> (N, C, H / down, W / down)`` for sizes divisible by ``down``.

    Example:
        >>> import torch
        >>> from ganblocks.layers import Downsample2d
        >>> Downsample2d()(torch.randn(2, 3, 8, 8)).shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(
        self,
        *,
        resample_filter: FilterLike = BLUR_FILTER,
        down: Scaling = 2,
        padding: Padding = 0,
        gain: float = 1.0,
        flip_filter: bool = False,
        separable: Optional[bool] = None,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(resample_filter, padding, gain, flip_filter, separable, device, dtype)
        self.down = parse_scaling("down", down)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return downsample2d(
            x, self.resample_filter, down=self.down, padding=self.padding, flip_filter=self.flip_filter,
            gain=self.gain,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"down={self.down}, " + super().extra_repr()


class Blur(_Resample):
    """Blur with a FIR filter, keeping the size (StyleGAN2-ADA's ``filter2d``); see :func:`filter2d`.

    Args are those of :class:`Upsample2d` without ``up``; ``gain`` is the overall gain.

    Example:
        >>> import torch
        >>> from ganblocks.layers import Blur
        >>> Blur(resample_filter=[1, 2, 1])(torch.ones(1, 1, 3, 3))[0, 0]
        tensor([[0.5625, 0.7500, 0.5625],
                [0.7500, 1.0000, 0.7500],
                [0.5625, 0.7500, 0.5625]])
    """

    def __init__(
        self,
        *,
        resample_filter: FilterLike = BLUR_FILTER,
        padding: Padding = 0,
        gain: float = 1.0,
        flip_filter: bool = False,
        separable: Optional[bool] = None,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(resample_filter, padding, gain, flip_filter, separable, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return filter2d(
            x, self.resample_filter, padding=self.padding, flip_filter=self.flip_filter, gain=self.gain
        )
