"""MSG-GAN's discriminator and WGAN-GP as published (akanimax/BMSG-GAN ``MSG_GAN/CustomLayers.py``, ``GAN.py``).

ProGAN-style blocks with MSG-GAN's equalized convs (weight ``N(0, 1)`` times ``sqrt(2 / fan_in)`` at run
time), the "simple" combine (``[image; features]``), images finest first: the network that
:class:`ganblocks.MSGDiscriminator` builds with the same channel schedule.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .stylegan2 import minibatch_stddev


class EqualizedConv2d(nn.Module):
    """BMSG-GAN's ``_equalized_conv2d``: ``conv2d(x, weight * sqrt(2) / sqrt(fan_in), bias)``."""

    def __init__(self, c_in: int, c_out: int, k_size: int, stride: int = 1, pad: int = 0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.nn.init.normal_(torch.empty(c_out, c_in, k_size, k_size)))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.stride, self.pad = stride, pad
        self.scale = math.sqrt(2) / math.sqrt(c_in * k_size * k_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.pad)


class DisGeneralConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_1 = EqualizedConv2d(in_channels, in_channels, 3, pad=1)
        self.conv_2 = EqualizedConv2d(in_channels, out_channels, 3, pad=1)
        self.down_sampler = nn.AvgPool2d(2)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lrelu(self.conv_1(x))
        y = self.lrelu(self.conv_2(y))
        return self.down_sampler(y)


class DisFinalBlock(nn.Module):
    def __init__(self, in_channels: int, combined_channels: int) -> None:
        super().__init__()
        self.conv_1 = EqualizedConv2d(combined_channels + 1, in_channels, 3, pad=1)
        self.conv_2 = EqualizedConv2d(in_channels, in_channels, 4)
        self.conv_3 = EqualizedConv2d(in_channels, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = minibatch_stddev(x, group_size=4)
        y = self.lrelu(self.conv_1(y))
        y = self.lrelu(self.conv_2(y))
        return self.conv_3(y).view(-1, 1)


class Discriminator(nn.Module):
    """MSG-GAN discriminator over an image pyramid (finest first), ProGAN channel schedule ``base // r``."""

    def __init__(
        self, resolution: int, in_channels: int = 3, channel_base: int = 16384, max_channels: int = 512
    ):
        super().__init__()

        def nf(r: int) -> int:
            return min(channel_base // r, max_channels)

        self.from_rgb = EqualizedConv2d(in_channels, nf(resolution), 1)
        self.lrelu = nn.LeakyReLU(0.2)
        self.layers = nn.ModuleList()
        for j, r in enumerate(resolution >> j for j in range(resolution.bit_length() - 3)):
            block = DisGeneralConvBlock(nf(r), nf(r // 2))
            if j > 0:  # MSG-GAN's "simple" combine: [image; features]
                block.conv_1 = EqualizedConv2d(in_channels + nf(r), nf(r), 3, pad=1)
            self.layers.append(block)
        self.final_block = DisFinalBlock(nf(4), in_channels + nf(4))

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        y = self.lrelu(self.from_rgb(inputs[0]))
        for j, block in enumerate(self.layers):
            if j > 0:
                y = torch.cat((inputs[j], y), dim=1)
            y = block(y)
        return self.final_block(torch.cat((inputs[-1], y), dim=1))


def gradient_penalty(
    dis: nn.Module, real: list[torch.Tensor], fake: list[torch.Tensor], reg_lambda: float = 10.0
) -> torch.Tensor:
    """BMSG-GAN's ``__gradient_penalty`` over every scale: one ε per sample, norm over all scales' pixels."""
    batch_size = real[0].shape[0]
    epsilon = torch.rand((batch_size, 1, 1, 1), device=real[0].device)
    merged = [(epsilon * r + (1 - epsilon) * f).detach().requires_grad_(True) for r, f in zip(real, fake)]
    op = dis(merged)
    gradient = torch.autograd.grad(
        outputs=op, inputs=merged, grad_outputs=torch.ones_like(op), create_graph=True, retain_graph=True
    )
    flat = torch.cat([g.reshape(batch_size, -1) for g in gradient], dim=1)
    return reg_lambda * ((flat.norm(p=2, dim=1) - 1) ** 2).mean()


def image_pyramid(x: torch.Tensor, num_scales: int) -> list[torch.Tensor]:
    """MSG-GAN's real-image pyramid: repeated 2× average pooling, finest first."""
    out = [x]
    for _ in range(num_scales - 1):
        out.append(F.avg_pool2d(out[-1], 2))
    return out
