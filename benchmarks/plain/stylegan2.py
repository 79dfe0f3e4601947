"""StyleGAN / StyleGAN2 building blocks as users write them in plain PyTorch.

Follows the reference paths of NVlabs' ``bias_act`` (``_bias_act_ref``) and the widely used
rosinality/stylegan2-pytorch port (``fused_leaky_relu`` CPU fallback, ``EqualConv2d``, ``EqualLinear``,
``NoiseInjection``, the discriminator's minibatch standard deviation), and ProGAN's pixel norm.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


def fused_leaky_relu(
    x: torch.Tensor, bias: torch.Tensor, negative_slope: float = 0.2, scale: float = math.sqrt(2)
) -> torch.Tensor:
    """``leaky_relu(x + bias) * sqrt(2)``: stylegan2-pytorch's fallback, StyleGAN2's ``bias_act`` reference."""
    shape = [1, -1] + [1] * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), negative_slope=negative_slope) * scale


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    """ProGAN / StyleGAN's ``PixelNorm``."""
    return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


def adain(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """StyleGAN's ``AdaptiveInstanceNorm`` after the style projection: ``gamma * InstanceNorm(x) + beta``."""
    return gamma[:, :, None, None] * F.instance_norm(x, eps=1e-5) + beta[:, :, None, None]


def noise_bias_act(
    x: torch.Tensor, weight: torch.Tensor, noise: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """StyleGAN2's synthesis tail: ``NoiseInjection`` (``image + weight * noise``) then ``FusedLeakyReLU``."""
    return fused_leaky_relu(x + weight * noise, bias)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, num_channels: int = 1) -> torch.Tensor:
    """stylegan2-pytorch's discriminator minibatch standard deviation (strided groups, as StyleGAN2)."""
    batch, channel, height, width = x.shape
    group = min(batch, group_size)
    stddev = x.view(group, -1, num_channels, channel // num_channels, height, width)
    stddev = torch.sqrt(stddev.var(0, unbiased=False) + 1e-8)
    stddev = stddev.mean([2, 3, 4], keepdim=True).squeeze(2)
    stddev = stddev.repeat(group, 1, height, width)
    return torch.cat([x, stddev], 1)


class EqualConv2d(nn.Module):
    """stylegan2-pytorch's ``EqualConv2d``: weight ``N(0, 1)`` scaled by ``1/sqrt(fan_in)`` at run time."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class ConvLayer(nn.Sequential):
    """stylegan2-pytorch's ``ConvLayer`` (no blur): ``EqualConv2d`` without bias, then ``FusedLeakyReLU``."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, activate: bool = True) -> None:
        layers: list[nn.Module] = [
            EqualConv2d(in_channel, out_channel, kernel_size, padding=kernel_size // 2, bias=not activate)
        ]
        if activate:
            layers.append(FusedLeakyReLU(out_channel))
        super().__init__(*layers)


class EqualLinear(nn.Module):
    """stylegan2-pytorch's ``EqualLinear`` with optional fused leaky ReLU."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init))
        self.activation = activation
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            return fused_leaky_relu(out, self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul)


def stylegan_channels(resolution: int, base: int = 32, max_channels: int = 256) -> dict[int, int]:
    """Channels per resolution for the benchmark's StyleGAN-style discriminator (halving up the resolutions)."""
    out: dict[int, int] = {}
    res = 4
    while res <= resolution:
        out[res] = min(max_channels, base * (resolution // res))
        res *= 2
    return out


class StyleDiscriminator(nn.Module):
    """Equalized-LR discriminator with minibatch stddev, as StyleGAN (no skip/residual, average-pool downsample).

    fromRGB 1×1 → per resolution two 3×3 conv + lrelu and a 2× average pool down to 4×4 → minibatch stddev →
    3×3 conv → flatten → linear + lrelu → linear to one logit.
    """

    def __init__(
        self, resolution: int, in_channels: int = 3, channels: Optional[dict[int, int]] = None
    ) -> None:
        super().__init__()
        ch = channels or stylegan_channels(resolution)
        self.from_rgb = ConvLayer(in_channels, ch[resolution], 1)
        blocks: list[nn.Module] = []
        res = resolution
        while res > 4:
            blocks.append(
                nn.Sequential(
                    ConvLayer(ch[res], ch[res], 3), ConvLayer(ch[res], ch[res // 2], 3), nn.AvgPool2d(2)
                )
            )
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        self.final_conv = ConvLayer(ch[4] + 1, ch[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 4 * 4, ch[4], activation="fused_lrelu"), EqualLinear(ch[4], 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.from_rgb(x))
        out = self.final_conv(minibatch_stddev(out))
        return self.final_linear(out.flatten(1))


def d_logistic_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """stylegan2-pytorch's non-saturating discriminator loss."""
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def g_nonsaturating_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_pred).mean()


def d_r1_loss(real_pred: torch.Tensor, real_img: torch.Tensor) -> torch.Tensor:
    """stylegan2-pytorch's R1: ``E ||grad_x D(x)||^2`` (the caller multiplies by γ/2 and the lazy interval)."""
    (grad_real,) = torch.autograd.grad(outputs=real_pred.sum(), inputs=real_img, create_graph=True)
    return grad_real.pow(2).reshape(grad_real.shape[0], -1).sum(1).mean()


class AdaptiveInstanceNorm(nn.Module):
    """StyleGAN's ``AdaptiveInstanceNorm`` (style-based-gan-pytorch): equalized style projection, scale bias 1."""

    def __init__(self, in_channel: int, style_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(in_channel)
        self.style = EqualLinear(style_dim, in_channel * 2)
        with torch.no_grad():
            self.style.bias[:in_channel] = 1
            self.style.bias[in_channel:] = 0

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        s = self.style(style).unsqueeze(2).unsqueeze(3)
        gamma, beta = s.chunk(2, 1)
        return gamma * self.norm(x) + beta
