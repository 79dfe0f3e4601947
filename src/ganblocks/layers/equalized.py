"""Equalized learning rate (ProGAN, StyleGAN): ``EqualLinear`` and ``EqualConv2d``.

The stored weight has unit variance (divided by ``lr_multiplier``) and the He constant is applied at
run time, so every weight sees the same effective learning rate under Adam whatever its fan-in. The
constant is folded into the matmul (``addmm``'s ``alpha``, with the bias as its input term) or into a
scaled weight view for the convolution, never applied as a separate pass over the activations; the
activation, its gain and the clamp (and the convolution's bias) follow in one
:func:`ganblocks.functional.bias_act` call.
"""

from __future__ import annotations

import math
from typing import Optional, TypeAlias, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import (
    check_finite,
    check_floating,
    check_int,
    check_ndim,
    check_optional_clamp,
    check_optional_finite,
    check_pair,
    check_positive,
    check_tensor,
)
from ..ops._activations import Activation, resolve_activation
from ..ops.bias_act import bias_act

IntOrPair: TypeAlias = Union[int, tuple[int, int]]


def _check_common(
    lr_multiplier: float,
    weight_gain: float,
    act: str,
    alpha: Optional[float],
    act_gain: Optional[float],
    clamp: Optional[float],
) -> None:
    check_positive("lr_multiplier", lr_multiplier)
    check_positive("weight_gain", weight_gain)
    check_optional_finite("alpha", alpha)
    check_optional_finite("act_gain", act_gain)
    resolve_activation(act, alpha, act_gain)
    check_optional_clamp("clamp", clamp)


def _is_plain(act: str, act_gain: Optional[float], clamp: Optional[float]) -> bool:
    """Whether the bias can go into the matmul/conv itself: no activation, unit gain, no clamp."""
    return act == "linear" and (act_gain is None or act_gain == 1.0) and clamp is None


def _act_repr(act: str, alpha: Optional[float], act_gain: Optional[float], clamp: Optional[float]) -> str:
    parts = [f"act={act}"]
    if alpha is not None:
        parts.append(f"alpha={alpha}")
    if act_gain is not None:
        parts.append(f"act_gain={act_gain}")
    if clamp is not None:
        parts.append(f"clamp={clamp}")
    return ", ".join(parts)


class EqualLinear(nn.Module):
    r"""Fully connected layer with equalized learning rate and a fused bias + activation.

    .. math::
        y = \operatorname{clamp}\Big(g_a \cdot \phi\Big(x \Big(\frac{g \lambda}{\sqrt{\text{in\_features}}} W\Big)^{\!\top}
        + \lambda b\Big),\ -c,\ c\Big)

    with :math:`\lambda` = ``lr_multiplier``, :math:`g` = ``weight_gain`` (the weight's extra multiplier) and
    :math:`g_a` = ``act_gain`` (the activation gain, √2 by default for ``lrelu``). :math:`W` is stored as
    :math:`\mathcal{N}(0, 1) / \lambda` and :math:`b` as ``bias_init``, exactly as StyleGAN2-ADA's
    ``FullyConnectedLayer``: the effective initial bias is therefore ``bias_init * lr_multiplier``. The
    run-time multipliers are the attributes ``weight_scale`` (:math:`g\lambda/\sqrt{\text{in\_features}}`)
    and ``bias_scale`` (:math:`\lambda`).
    The bias and the scale ride in one ``torch.addmm``; with ``act="linear"`` (unit gain, no clamp) that is
    the whole layer, otherwise :func:`ganblocks.functional.bias_act` applies the activation.

    Args:
        in_features: size of the last dim of the input.
        out_features: size of the last dim of the output.
        bias: learn an additive bias.
        bias_init: initial stored bias value.
        lr_multiplier: learning-rate multiplier :math:`\lambda` (0.01 in StyleGAN's mapping network).
        weight_gain: extra multiplier :math:`g` of the weight.
        act: activation applied after the bias (see :func:`ganblocks.functional.bias_act`).
        alpha: the activation's slope (``lrelu``) or scale (``elu``); None for its default.
        act_gain: activation gain; None for its default.
        clamp: clamp the output to ``[-clamp, clamp]``; None disables it.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: ``(*, in_features)``.
        - Output: ``(*, out_features)``.

    Example:
        >>> import torch
        >>> from ganblocks.layers import EqualLinear
        >>> layer = EqualLinear(4, 3, act="lrelu")
        >>> layer(torch.randn(2, 4)).shape
        torch.Size([2, 3])
        >>> layer.weight_scale  # weight_gain * lr_multiplier / sqrt(in_features)
        0.5

    Reference:
        Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation",
        ICLR 2018, section 4.1; Karras et al., "A Style-Based Generator Architecture for Generative
        Adversarial Networks", CVPR 2019 (``lr_multiplier``).
    """

    bias: Optional[nn.Parameter]

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
        weight_gain: float = 1.0,
        act: Activation = "linear",
        alpha: Optional[float] = None,
        act_gain: Optional[float] = None,
        clamp: Optional[float] = None,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features)
        self.out_features = check_int("out_features", out_features)
        _check_common(lr_multiplier, weight_gain, act, alpha, act_gain, clamp)
        self.bias_init = check_finite("bias_init", bias_init)
        self.lr_multiplier = float(lr_multiplier)
        self.weight_gain = float(weight_gain)
        self.act: Activation = act
        self.alpha = alpha
        self.act_gain = act_gain
        self.clamp = clamp
        self.weight_scale = self.weight_gain * self.lr_multiplier / math.sqrt(in_features)
        self.bias_scale = self.lr_multiplier
        self.weight = nn.Parameter(torch.empty((out_features, in_features), device=device, dtype=dtype))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight :math:`\\mathcal{N}(0, 1/\\lambda^2)`, bias ``bias_init``."""
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / self.lr_multiplier)
            if self.bias is not None:
                self.bias.fill_(self.bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x)
        check_floating("x", x)
        check_ndim("x", x, minimum=1)
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"x must have shape (*, in_features) = (*, {self.in_features}), got {tuple(x.shape)}"
            )
        # Cast like StyleGAN2-ADA so that float32 parameters serve float16/bfloat16 activations.
        w = self.weight.to(x.dtype)
        if self.bias is None:
            y = F.linear(x, w * self.weight_scale)
        else:
            b = self.bias.to(x.dtype)
            if self.bias_scale != 1.0:
                b = b * self.bias_scale
            # The bias rides in the matmul (addmm's input term) and the He constant in its alpha.
            x2 = x if x.ndim == 2 else x.reshape(-1, self.in_features)
            y = torch.addmm(b, x2, w.t(), alpha=self.weight_scale)
            if x.ndim != 2:
                y = y.reshape((*x.shape[:-1], self.out_features))
        if _is_plain(self.act, self.act_gain, self.clamp):
            return y
        return bias_act(y, None, act=self.act, alpha=self.alpha, gain=self.act_gain, clamp=self.clamp, dim=-1)

    def extra_repr(self) -> str:
        s = f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        if self.bias is not None and self.bias_init != 0.0:
            s += f", bias_init={self.bias_init}"
        s += f", lr_multiplier={self.lr_multiplier}, weight_gain={self.weight_gain}"
        return s + ", " + _act_repr(self.act, self.alpha, self.act_gain, self.clamp)


class EqualConv2d(nn.Module):
    r"""2-D convolution with equalized learning rate and a fused bias + activation.

    .. math::
        y = \operatorname{clamp}\Big(g_a \cdot \phi\Big(\frac{g \lambda}{\sqrt{C_\text{in} k_h k_w}} W \star x
        + \lambda b\Big),\ -c,\ c\Big)

    with the symbols of :class:`EqualLinear` (attributes ``weight_scale`` and ``bias_scale``). The scale is
    applied to the (small) weight, not to the output; the bias goes into the convolution when there is no
    activation, else into one :func:`ganblocks.functional.bias_act` pass. StyleGAN2-ADA's ``Conv2dLayer``
    without resampling or modulation.

    Args:
        in_channels: input channels :math:`C_\text{in}`.
        out_channels: output channels.
        kernel_size: an int or ``(k_h, k_w)``.
        stride: an int or a pair.
        padding: an int or a pair (zero padding). These five may be given by position, in
            :class:`torch.nn.Conv2d`'s order (``EqualConv2d(3, 8, 3, 1, 1)``); the rest are keyword-only.
        bias: learn an additive bias.
        bias_init: initial stored bias value.
        lr_multiplier: learning-rate multiplier :math:`\lambda`.
        weight_gain: extra multiplier :math:`g` of the weight.
        act: activation applied after the bias (see :func:`ganblocks.functional.bias_act`).
        alpha: the activation's slope (``lrelu``) or scale (``elu``); None for its default.
        act_gain: activation gain; None for its default.
        clamp: clamp the output to ``[-clamp, clamp]``; None disables it.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: ``(N, C_in, H, W)``, contiguous or channels_last.
        - Output: ``(N, C_out, H_out, W_out)`` as for :class:`torch.nn.Conv2d`.

    Example:
        >>> import torch
        >>> from ganblocks.layers import EqualConv2d
        >>> conv = EqualConv2d(4, 8, 3, 1, 1, act="lrelu")  # like nn.Conv2d(4, 8, 3, 1, 1)
        >>> conv(torch.randn(2, 4, 5, 5)).shape
        torch.Size([2, 8, 5, 5])
        >>> round(conv.weight_scale, 4)  # 1 / sqrt(4 * 3 * 3)
        0.1667

    Reference:
        Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation",
        ICLR 2018, section 4.1.
    """

    bias: Optional[nn.Parameter]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        padding: IntOrPair = 0,
        *,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
        weight_gain: float = 1.0,
        act: Activation = "linear",
        alpha: Optional[float] = None,
        act_gain: Optional[float] = None,
        clamp: Optional[float] = None,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.out_channels = check_int("out_channels", out_channels)
        self.kernel_size = check_pair("kernel_size", kernel_size, minimum=1)
        self.stride = check_pair("stride", stride, minimum=1)
        self.padding = check_pair("padding", padding, minimum=0)
        _check_common(lr_multiplier, weight_gain, act, alpha, act_gain, clamp)
        self.bias_init = check_finite("bias_init", bias_init)
        self.lr_multiplier = float(lr_multiplier)
        self.weight_gain = float(weight_gain)
        self.act: Activation = act
        self.alpha = alpha
        self.act_gain = act_gain
        self.clamp = clamp
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.weight_scale = self.weight_gain * self.lr_multiplier / math.sqrt(fan_in)
        self.bias_scale = self.lr_multiplier
        self.weight = nn.Parameter(
            torch.empty((out_channels, in_channels, *self.kernel_size), device=device, dtype=dtype)
        )
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight :math:`\\mathcal{N}(0, 1/\\lambda^2)`, bias ``bias_init``."""
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / self.lr_multiplier)
            if self.bias is not None:
                self.bias.fill_(self.bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x)
        check_floating("x", x)
        check_ndim("x", x, exact=4)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (N, in_channels, H, W) with in_channels = {self.in_channels}, "
                f"got {tuple(x.shape)}"
            )
        w = self.weight.to(x.dtype) * self.weight_scale
        b = None
        if self.bias is not None:
            b = self.bias.to(x.dtype)
            if self.bias_scale != 1.0:
                b = b * self.bias_scale
        if _is_plain(self.act, self.act_gain, self.clamp):
            return F.conv2d(x, w, b, self.stride, self.padding)
        y = F.conv2d(x, w, None, self.stride, self.padding)
        return bias_act(y, b, act=self.act, alpha=self.alpha, gain=self.act_gain, clamp=self.clamp, dim=1)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        s += f", bias={self.bias is not None}"
        if self.bias is not None and self.bias_init != 0.0:
            s += f", bias_init={self.bias_init}"
        s += f", lr_multiplier={self.lr_multiplier}, weight_gain={self.weight_gain}"
        return s + ", " + _act_repr(self.act, self.alpha, self.act_gain, self.clamp)
