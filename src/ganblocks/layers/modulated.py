"""StyleGAN2's modulated convolution: ``modulated_conv2d``, ``ModulatedConv2d`` and ``ToRGB``.

Resampling convolutions follow StyleGAN2-ADA's ``conv2d_resample``: ``up`` is a stride-``up`` transposed
convolution followed by the FIR filter, ``down`` is the FIR filter followed by a strided convolution, both
through the fused :func:`~ganblocks.functional.upfirdn2d` (so every order of gradient works, as the path
length penalty needs).
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_float_tensor, check_images, check_int, check_optional_clamp, check_pair
from ..ops._backend import Backend
from ..ops.bias_act import bias_act
from ..ops.upfirdn2d import filter_size, upfirdn2d
from ..ops.upfirdn2d.reference import output_memory_format
from .equalized import EqualLinear
from .resample import BLUR_FILTER, FilterLike, Upsample2d, _setup_filter


def _conv(
    x: torch.Tensor,
    w: torch.Tensor,
    *,
    flip: bool,
    transpose: bool = False,
    stride: int = 1,
    padding: Union[int, tuple[int, int]] = 0,
    groups: int = 1,
) -> torch.Tensor:
    """``F.conv2d`` (a correlation) or ``F.conv_transpose2d``, with the weight flipped when ``flip``."""
    w = w.flip([2, 3]) if flip else w
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def _conv2d_resample(
    x: torch.Tensor, w: torch.Tensor, f: Optional[torch.Tensor], *, up: int, down: int,
    padding: tuple[int, int], groups: int, flip_weight: bool, backend: Optional[Backend],
) -> torch.Tensor:  # fmt: skip
    """StyleGAN2-ADA's ``conv2d_resample`` for one of ``up``/``down`` above 1 (or neither); ``padding`` is
    ``(pad_h, pad_w)``."""
    out_c, in_per_group, kh, kw = w.shape
    fw, fh = (1, 1) if f is None else filter_size(f)
    py0 = py1 = padding[0]
    px0 = px1 = padding[1]
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2

    def fir(
        t: torch.Tensor, *, padding: tuple[int, int, int, int], up: int = 1, down: int = 1, gain: float = 1.0
    ) -> torch.Tensor:
        # The filter is depthwise: on the grouped path's (1, groups * C, H, W) view it runs as a
        # (groups, C, H, W) batch instead, the same values, because a double backward through a depthwise
        # convolution loops over its channels on CPU (groups times fewer, larger steps).
        grouped = groups > 1 and t.shape[0] == 1
        src = t.reshape(groups, -1, *t.shape[2:]) if grouped else t
        y = upfirdn2d(src, f, up=up, down=down, padding=padding, gain=gain, backend=backend)
        return y.reshape(1, -1, *y.shape[2:]) if grouped else y

    if kw == 1 and kh == 1 and down > 1:  # 1x1: downsample first, then convolve
        x = fir(x, down=down, padding=(px0, px1, py0, py1))
        return _conv(x, w, flip=False, groups=groups)
    if kw == 1 and kh == 1 and up > 1:  # 1x1: convolve first, then upsample
        x = _conv(x, w, flip=False, groups=groups)
        return fir(x, up=up, padding=(px0, px1, py0, py1), gain=up * up)
    if down > 1:  # blur, then a strided convolution
        x = fir(x, padding=(px0, px1, py0, py1))
        return _conv(x, w, flip=not flip_weight, stride=down, groups=groups)
    if up > 1:  # transposed convolution with stride up, then blur
        w = w.reshape(groups, out_c // groups, in_per_group, kh, kw).transpose(1, 2)
        w = w.reshape(groups * in_per_group, out_c // groups, kh, kw)
        px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
        pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
        x = _conv(x, w, flip=flip_weight, transpose=True, stride=up, padding=(pyt, pxt), groups=groups)
        pads = (px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt)
        return fir(x, padding=pads, gain=up * up)
    return _conv(x, w, flip=not flip_weight, padding=padding, groups=groups)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    demodulate: bool = True,
    up: int = 1,
    down: int = 1,
    padding: Union[int, tuple[int, int]] = 0,
    resample_filter: Optional[torch.Tensor] = None,
    flip_weight: bool = True,
    fused_modconv: bool = True,
    backend: Optional[Backend] = None,
) -> torch.Tensor:
    r"""Convolve each sample with the weight modulated by its style, optionally demodulated (StyleGAN2).

    .. math::
        w'_{n o i k} = s_{n i}\, w_{o i k}, \qquad
        w''_{n o i k} = \frac{w'_{n o i k}}{\sqrt{\sum_{i, k} {w'_{n o i k}}^2 + 10^{-8}}}, \qquad
        y_n = w''_n \star x_n

    ``fused_modconv=True`` runs all samples as one grouped convolution with ``N`` groups; ``False``
    scales ``x`` by the styles, convolves with the shared weight and scales the result by the
    demodulation coefficients; both give the same result to rounding. With ``up=2`` the convolution is
    transposed (stride 2) and followed by the FIR ``resample_filter``; with ``down=2`` the filter comes
    first and the convolution is strided (StyleGAN2-ADA's ``conv2d_resample``). Float16 inputs with
    demodulation are pre-normalized by the largest weight and style, as in StyleGAN2-ADA.

    Args:
        x: input ``(N, C_in, H, W)``.
        weight: shared weight ``(C_out, C_in, k_h, k_w)``.
        styles: per-sample channel scales ``(N, C_in)``.
        demodulate: normalize each output channel's weight to unit norm.
        up: upsampling factor (1 or more; not together with ``down``).
        down: downsampling factor.
        padding: zero padding of the convolution, an int or ``(pad_h, pad_w)`` (``k // 2`` keeps an odd
            kernel's size).
        resample_filter: filter from :func:`~ganblocks.functional.setup_filter` for ``up``/``down``.
        flip_weight: correlate with the weight (as ``F.conv2d``); StyleGAN2-ADA passes ``up == 1``.
        fused_modconv: grouped convolution (True) or the per-sample scaling path (False).
        backend: backend of the ``upfirdn2d`` calls.

    Returns:
        ``(N, C_out, H·up/down, W·up/down)`` in the dtype of ``x``.

    Example:
        >>> import torch
        >>> from ganblocks.functional import modulated_conv2d
        >>> x, weight = torch.ones(1, 2, 1, 1), torch.tensor([[[[3.0]], [[4.0]]]])
        >>> modulated_conv2d(x, weight, torch.tensor([[1.0, 1.0]]))  # (3 + 4) / sqrt(3² + 4²)
        tensor([[[[1.4000]]]])

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020, section 2.2.
    """
    check_float_tensor("weight", weight, exact_ndim=4)
    out_c, in_c, kh, kw = weight.shape
    check_images("x", x, in_c)
    n = x.shape[0]
    check_float_tensor("styles", styles, exact_ndim=2)
    if tuple(styles.shape) != (n, in_c):
        raise ValueError(f"styles must have shape (N, C_in) = ({n}, {in_c}), got {tuple(styles.shape)}")
    check_int("up", up)
    check_int("down", down)
    pad = check_pair("padding", padding, minimum=0)
    if up > 1 and down > 1:
        raise ValueError(f"up and down cannot both be above 1, got up={up}, down={down}")
    if x.dtype == torch.float16 and demodulate:
        # Pre-normalize to avoid float16 overflow; demodulation cancels the scale.
        weight = weight * (
            1 / math.sqrt(in_c * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True)
        )
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    def resample(t: torch.Tensor, w: torch.Tensor, groups: int) -> torch.Tensor:
        return _conv2d_resample(
            t, w.to(x.dtype), resample_filter, up=up, down=down, padding=pad, groups=groups,
            flip_weight=flip_weight, backend=backend,
        )  # fmt: skip

    dcoefs = None
    if demodulate or fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, in_c, 1, 1)  # (N, O, I, k_h, k_w)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # (N, O)
    # An empty batch takes the per-sample path: a grouped convolution cannot have 0 groups.
    if not fused_modconv or n == 0:
        y = resample(x * styles.to(x.dtype).reshape(n, in_c, 1, 1), weight, 1)
        return y if dcoefs is None else y * dcoefs.to(x.dtype).reshape(n, out_c, 1, 1)
    if dcoefs is not None:
        w = w * dcoefs.reshape(n, out_c, 1, 1, 1)
    y = resample(x.reshape(1, n * in_c, *x.shape[2:]), w.reshape(n * out_c, in_c, kh, kw), n)
    return y.reshape(n, out_c, *y.shape[2:]).contiguous(memory_format=output_memory_format(x))


def _check_w(w: torch.Tensor, x: torch.Tensor, w_dim: int) -> None:
    """``w`` is ``(N, w_dim)`` with the batch of ``x``: checked before the affine layer, whose own error would
    call it ``x``."""
    check_float_tensor("w", w)
    n = x.shape[0] if isinstance(x, torch.Tensor) and x.ndim > 0 else None
    if w.ndim != 2 or w.shape[1] != w_dim or (n is not None and w.shape[0] != n):
        raise ValueError(
            f"w (the style) must have shape (N, w_dim) = ({'N' if n is None else n}, {w_dim}), "
            f"got {tuple(w.shape)}"
        )


def _resolve_fused(module: nn.Module, x: torch.Tensor, fused_modconv: Optional[bool]) -> bool:
    """StyleGAN2-ADA's default: grouped convolution in eval mode for float32 (or a batch of one)."""
    if fused_modconv is None:
        return not module.training and (x.dtype == torch.float32 or x.shape[0] == 1)
    return bool(fused_modconv)


class ModulatedConv2d(nn.Module):
    r"""StyleGAN2's modulated convolution with a style affine, optional up/down FIR resampling.

    .. math::
        s = A(w), \qquad y = \operatorname{modconv}(x;\ W, s)

    where :math:`A` is an :class:`~ganblocks.layers.EqualLinear` from ``w_dim`` to ``in_channels`` whose bias
    starts at 1, :math:`W` is stored as :math:`\mathcal N(0, 1)` and ``modconv`` is
    :func:`modulated_conv2d`. Without demodulation the styles are also scaled by
    :math:`1/\sqrt{C_\text{in} k_h k_w}` (the attribute ``weight_scale``, StyleGAN2-ADA's ``ToRGBLayer``);
    with it that scale cancels. Bias, noise and activation follow separately
    (:func:`~ganblocks.functional.inject_noise`, :func:`~ganblocks.functional.bias_act`). Parameter and buffer names (``affine``, ``weight``,
    ``resample_filter``) are StyleGAN2-ADA's ``SynthesisLayer`` ones.

    Args:
        in_channels: input channels :math:`C_\text{in}`.
        out_channels: output channels.
        kernel_size: an int or ``(k_h, k_w)``, as :class:`torch.nn.Conv2d`; the padding is ``k // 2`` along
            each axis (the size is kept for odd kernels).
        w_dim: size of the latent ``w``.
        demodulate: normalize each output channel's modulated weight.
        up: upsampling factor (transposed convolution + FIR filter).
        down: downsampling factor (FIR filter + strided convolution).
        resample_filter: taps of the FIR filter, through :func:`~ganblocks.functional.setup_filter`.
        device: device of the parameters.
        dtype: dtype of the parameters and of the filter (float32 by default).

    Shape:
        - ``x``: ``(N, C_in, H, W)``; ``w``: ``(N, w_dim)``.
        - Output: ``(N, C_out, H·up/down, W·up/down)``.

    Example:
        >>> import torch
        >>> from ganblocks.layers import ModulatedConv2d
        >>> conv = ModulatedConv2d(8, 4, 3, w_dim=16, up=2)
        >>> conv(torch.randn(2, 8, 5, 5), torch.randn(2, 16)).shape
        torch.Size([2, 4, 10, 10])

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020, section 2.2.
    """

    resample_filter: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, tuple[int, int]],
        w_dim: int,
        *,
        demodulate: bool = True,
        up: int = 1,
        down: int = 1,
        resample_filter: FilterLike = BLUR_FILTER,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.out_channels = check_int("out_channels", out_channels)
        self.kernel_size = check_pair("kernel_size", kernel_size, minimum=1)
        self.w_dim = check_int("w_dim", w_dim)
        self.up, self.down = check_int("up", up), check_int("down", down)
        if up > 1 and down > 1:
            raise ValueError(f"up and down cannot both be above 1, got up={up}, down={down}")
        self.demodulate = bool(demodulate)
        kh, kw = self.kernel_size
        self.padding = (kh // 2, kw // 2)
        self.weight_scale = 1.0 if demodulate else 1 / math.sqrt(in_channels * kh * kw)
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0, device=device, dtype=dtype)
        shape = (out_channels, in_channels, kh, kw)
        self.weight = nn.Parameter(torch.randn(shape, device=device, dtype=dtype))
        f = _setup_filter("resample_filter", resample_filter, device=device, dtype=dtype)
        self.register_buffer("resample_filter", f)

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, *, fused_modconv: Optional[bool] = None
    ) -> torch.Tensor:
        """``fused_modconv``: True for the grouped path, False per sample, None for StyleGAN2-ADA's choice
        (grouped in eval mode for float32 inputs or a batch of one)."""
        _check_w(w, x, self.w_dim)
        styles = self.affine(w)
        if self.weight_scale != 1.0:
            styles = styles * self.weight_scale
        return modulated_conv2d(
            x, self.weight, styles, demodulate=self.demodulate, up=self.up, down=self.down,
            padding=self.padding, resample_filter=self.resample_filter, flip_weight=self.up == 1,
            fused_modconv=_resolve_fused(self, x, fused_modconv),
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"w_dim={self.w_dim}, demodulate={self.demodulate}, up={self.up}, down={self.down}"
        )


class ToRGB(nn.Module):
    r"""StyleGAN2's output layer: a modulated 1×1 convolution without demodulation, a bias, and the skip.

    .. math::
        y = \frac{1}{\sqrt{C_\text{in} k_h k_w}}\operatorname{modconv}(x;\ W, A(w)) + b
        \ \big(+ \operatorname{upsample2d}(\text{skip})\big)

    The previous resolution's RGB (``skip``) is upsampled by 2 with the FIR filter and added, as in the
    skip generator of StyleGAN2-ADA (``SynthesisBlock`` with ``architecture='skip'``). Parameter names
    (``affine``, ``weight``, ``bias``) are those of StyleGAN2-ADA's ``ToRGBLayer``.

    Args:
        in_channels: input feature channels.
        w_dim: size of the latent ``w``.
        out_channels: image channels (3).
        kernel_size: an int or ``(k_h, k_w)`` (1); the padding is ``k // 2`` along each axis.
        clamp: clamp the output of the convolution + bias to ``[-clamp, clamp]`` (``conv_clamp``); None: off.
        resample_filter: taps of the skip's upsampling filter.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - ``x``: ``(N, C_in, H, W)``; ``w``: ``(N, w_dim)``; ``skip``: ``(N, out_channels, H/2, W/2)``.
        - Output: ``(N, out_channels, H, W)``.

    Example:
        >>> import torch
        >>> from ganblocks.layers import ToRGB
        >>> to_rgb = ToRGB(8, w_dim=16)
        >>> to_rgb(torch.randn(2, 8, 8, 8), torch.randn(2, 16), skip=torch.randn(2, 3, 4, 4)).shape
        torch.Size([2, 3, 8, 8])

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020, section 4.1.
    """

    def __init__(
        self,
        in_channels: int,
        w_dim: int,
        *,
        out_channels: int = 3,
        kernel_size: Union[int, tuple[int, int]] = 1,
        clamp: Optional[float] = None,
        resample_filter: FilterLike = BLUR_FILTER,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.out_channels = check_int("out_channels", out_channels)
        self.kernel_size = check_pair("kernel_size", kernel_size, minimum=1)
        self.w_dim = check_int("w_dim", w_dim)
        self.clamp = check_optional_clamp("clamp", clamp)
        kh, kw = self.kernel_size
        self.padding = (kh // 2, kw // 2)
        self.weight_scale = 1 / math.sqrt(in_channels * kh * kw)
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0, device=device, dtype=dtype)
        shape = (out_channels, in_channels, kh, kw)
        self.weight = nn.Parameter(torch.randn(shape, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(out_channels, device=device, dtype=dtype))
        self.upsample = Upsample2d(resample_filter=resample_filter, device=device, dtype=dtype)

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        skip: Optional[torch.Tensor] = None,
        *,
        fused_modconv: Optional[bool] = None,
    ) -> torch.Tensor:
        _check_w(w, x, self.w_dim)
        styles = self.affine(w) * self.weight_scale
        y = modulated_conv2d(
            x, self.weight, styles, demodulate=False, padding=self.padding,
            fused_modconv=_resolve_fused(self, x, fused_modconv),
        )  # fmt: skip
        y = bias_act(y, self.bias.to(y.dtype), clamp=self.clamp)
        if skip is None:
            return y
        n, c, h, w_ = y.shape
        expected = (n, c, h // 2, w_ // 2)
        if tuple(skip.shape) != expected or h % 2 or w_ % 2:
            raise ValueError(
                f"skip must have shape (N, out_channels, H/2, W/2) = {expected} for an output of shape "
                f"{tuple(y.shape)}, got {tuple(skip.shape)}"
            )
        upsampled: torch.Tensor = self.upsample(skip)
        return upsampled + y

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, w_dim={self.w_dim}"
        return s if self.clamp is None else s + f", clamp={self.clamp}"
