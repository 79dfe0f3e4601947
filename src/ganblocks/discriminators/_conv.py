"""The convolution every discriminator here is built from: conv, then bias and activation in one fused op."""

from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import EqualConv2d
from ..ops._activations import Activation, activate_owned, folds_gain, resolve_activation
from ..ops._backend import use_triton
from ..ops.bias_act import bias_act


class ConvAct(nn.Conv2d):
    """``nn.Conv2d`` whose bias and activation run as one :func:`~ganblocks.functional.bias_act` pass.

    On the Triton path the convolution runs without bias, so that the bias addition, the activation and
    the gain touch the output once, in the fused kernel. On the PyTorch path (CPU) the convolution adds the
    bias itself (its kernel does so for free) and a ``linear``/``relu``/``lrelu`` activation with a positive
    gain runs in place on its output, the gain folded into the weight and bias: one elementwise pass, and
    autograd keeps only the activation's output, as pix2pixHD's ``Conv2d`` + ``LeakyReLU(inplace=True)``.
    With ``act="linear"`` and unit gain the plain convolution (with its bias) runs.
    State-dict keys are those of ``nn.Conv2d``, so spectral norm and checkpoints treat it as one.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        act: Activation = "linear",
        alpha: Optional[float] = None,
        gain: Optional[float] = None,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, bias=bias, device=device, dtype=dtype
        )
        spec, self.alpha, self.gain = resolve_activation(act, alpha, gain)
        self.act: Activation = act
        self._spec = spec
        self._in_place = folds_gain(spec, self.gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act == "linear" and self.gain == 1.0:
            return super().forward(x)
        if self._in_place and not use_triton(None, x, op="bias_act"):
            w, b = self.weight, self.bias
            if self.gain != 1.0:
                w = w * self.gain
                b = None if b is None else b * self.gain
            return activate_owned(self._conv_forward(x, w, b), self._spec, self.alpha)
        y = F.conv2d(x, self.weight, None, self.stride, self.padding)
        # Under autocast the conv output is low precision while the bias stays float32.
        b = None if self.bias is None else self.bias.to(y.dtype)
        return bias_act(y, b, act=self.act, alpha=self.alpha, gain=self.gain)

    def extra_repr(self) -> str:
        s: str = super().extra_repr()  # type: ignore[no-untyped-call]
        if self.act != "linear":
            s += f", act={self.act}"
        if self.act in ("lrelu", "elu"):
            s += f", alpha={self.alpha:g}"
        return s if self.gain == 1.0 else f"{s}, gain={self.gain:g}"


def make_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: int = 0,
    bias: bool = True,
    act: Activation = "linear",
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
    equalized_lr: bool = False,
    spectral_norm: bool = False,
    init_std: Optional[float] = None,
    device: Optional[Union[torch.device, str]] = None,
    dtype: Optional[torch.dtype] = None,
) -> nn.Module:
    """A conv + fused bias/activation: equalized (``EqualConv2d``), spectrally normalized, or plain.

    ``init_std`` replaces PyTorch's default weight init of a plain conv by ``N(0, init_std²)``.
    """
    if equalized_lr and spectral_norm:
        raise ValueError(
            "equalized_lr and spectral_norm cannot both be True: choose one weight parametrization"
        )
    if equalized_lr:
        return EqualConv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            bias=bias,
            act=act,
            alpha=alpha,
            act_gain=gain,
            device=device,
            dtype=dtype,
        )
    conv = ConvAct(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=padding,
        bias=bias,
        act=act,
        alpha=alpha,
        gain=gain,
        device=device,
        dtype=dtype,
    )
    if init_std is not None:
        nn.init.normal_(conv.weight, 0.0, init_std)
    if spectral_norm:
        return nn.utils.parametrizations.spectral_norm(conv)
    return conv
