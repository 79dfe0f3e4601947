"""The layers pix2pixHD's generators are made of, on the fused ops.

``ConvNormAct`` is ``[ReflectionPad2d(p)], Conv2d | ConvTranspose2d, norm, [ReLU]``: instance norm and ReLU
run as one :func:`~ganblocks.functional.instance_norm_act` pass; batch norm is ``nn.BatchNorm2d`` followed by
:func:`~ganblocks.functional.bias_act`. ``OutputConv`` is ``ReflectionPad2d(3), Conv2d(k=7), Tanh`` with the
bias and the tanh in one :func:`~ganblocks.functional.bias_act` pass. Submodule names (``conv``, ``norm``)
keep the parameters of ``nn.Conv2d``/``nn.BatchNorm2d`` under their usual keys.
"""

from __future__ import annotations

from typing import Literal, Optional, TypeAlias, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice
from ..ops.bias_act import bias_act
from ..ops.instance_norm_act import instance_norm_act

GeneratorNorm: TypeAlias = Literal["instance", "batch"]
GENERATOR_NORMS: tuple[GeneratorNorm, ...] = ("instance", "batch")
ConvNormActivation: TypeAlias = Literal["relu", "linear"]
CONV_NORM_ACTIVATIONS: tuple[ConvNormActivation, ...] = ("relu", "linear")
# pix2pixHD's weights_init: conv weights N(0, 0.02²), batch-norm weights N(1, 0.02²), batch-norm bias 0.
INIT_STD = 0.02


class ConvNormAct(nn.Module):
    """Reflection padding, a conv (or a 2× transposed conv), a norm and an optional ReLU, on the fused ops.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: conv kernel size.
        stride: conv stride (2 with ``padding=1`` halves ``ceil``-wise).
        reflect_pad: reflection padding before the conv (pix2pixHD's ``ReflectionPad2d``).
        padding: zero padding of the conv itself.
        transposed: ``ConvTranspose2d(k=3, stride=2, padding=1, output_padding=1)``, which doubles the size.
        norm: ``"instance"`` (non-affine, pix2pixHD's default) or ``"batch"``.
        act: ``"relu"`` after the norm, or ``"linear"`` (none).
        bias_before_norm: give the conv a bias, as pix2pixHD does. Instance norm subtracts it again, so False
            computes the same function with fewer parameters; True keeps pix2pixHD's parameters.
        device: device of the parameters.
        dtype: dtype of the parameters.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        reflect_pad: int = 0,
        padding: int = 0,
        transposed: bool = False,
        norm: GeneratorNorm = "instance",
        act: ConvNormActivation = "relu",
        bias_before_norm: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        check_choice("norm", norm, GENERATOR_NORMS)
        self.reflect_pad = reflect_pad
        self.act: ConvNormActivation = check_choice("act", act, CONV_NORM_ACTIVATIONS)
        self.conv: Union[nn.Conv2d, nn.ConvTranspose2d]
        if transposed:
            self.conv = nn.ConvTranspose2d(
                in_channels, out_channels, kernel_size, stride, padding,
                output_padding=1, bias=bias_before_norm, device=device, dtype=dtype,
            )  # fmt: skip
        else:
            self.conv = nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, padding,
                bias=bias_before_norm, device=device, dtype=dtype,
            )  # fmt: skip
        nn.init.normal_(self.conv.weight, 0.0, INIT_STD)
        self.norm: Union[nn.InstanceNorm2d, nn.BatchNorm2d]
        if norm == "instance":
            # No parameters (pix2pixHD's affine=False): it holds eps; instance_norm_act does the work.
            self.norm = nn.InstanceNorm2d(out_channels, device=device, dtype=dtype)
        else:
            self.norm = nn.BatchNorm2d(out_channels, device=device, dtype=dtype)
            nn.init.normal_(self.norm.weight, 1.0, INIT_STD)
            nn.init.zeros_(self.norm.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reflect_pad:
            p = self.reflect_pad
            x = F.pad(x, (p, p, p, p), mode="reflect")
        y: torch.Tensor = self.conv(x)
        if isinstance(self.norm, nn.InstanceNorm2d):
            return instance_norm_act(y, eps=self.norm.eps, act=self.act, gain=1.0)
        y = self.norm(y)
        return bias_act(y, act="relu", gain=1.0) if self.act == "relu" else y

    def extra_repr(self) -> str:
        return (f"reflect_pad={self.reflect_pad}, " if self.reflect_pad else "") + f"act={self.act}"


class OutputConv(nn.Module):
    """pix2pixHD's output layer: ``ReflectionPad2d(3)``, ``Conv2d(k=7)``, ``Tanh``; bias + tanh fused."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 7, device=device, dtype=dtype)
        nn.init.normal_(self.conv.weight, 0.0, INIT_STD)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(F.pad(x, (3, 3, 3, 3), mode="reflect"), self.conv.weight)
        bias = self.conv.bias
        return bias_act(y, None if bias is None else bias.to(y.dtype), act="tanh", gain=1.0)

    def extra_repr(self) -> str:
        return "reflect_pad=3, act=tanh"


def check_generator_size(name: str, x: torch.Tensor, *, factor: int, bottleneck_pad: bool, what: str) -> None:
    """Height and width of ``x`` are multiples of ``factor`` (and leave room for the reflection pads)."""
    h, w = x.shape[-2], x.shape[-1]
    smallest = max(4, factor * 2 if bottleneck_pad else factor)
    if h % factor or w % factor or h < smallest or w < smallest:
        raise ValueError(
            f"{name} of spatial size {h}×{w} does not fit {what}: height and width must be multiples of "
            f"{factor} (so that every upsampling restores the size its downsampling halved) and at least "
            f"{smallest}"
        )


def pix2pixhd_layer(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    reflect_pad: int = 0,
    transposed: bool = False,
    norm: GeneratorNorm,
    bias_before_norm: bool,
    device: Optional[Union[torch.device, str]],
    dtype: Optional[torch.dtype],
) -> ConvNormAct:
    """A pix2pixHD generator layer: stride 1 after reflection padding, else stride 2 with padding 1."""
    stride, padding = (1, 0) if reflect_pad else (2, 1)
    return ConvNormAct(
        in_channels, out_channels, kernel_size, stride=stride, padding=padding, reflect_pad=reflect_pad,
        transposed=transposed, norm=norm, bias_before_norm=bias_before_norm, device=device, dtype=dtype,
    )  # fmt: skip
