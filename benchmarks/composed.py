"""Architectures ganblocks does not ship as one class, assembled from its public layers.

``style_discriminator`` is :class:`benchmarks.plain.stylegan2.StyleDiscriminator` (an equalized-LR
discriminator with minibatch stddev) built from ``ganblocks.EqualConv2d`` (bias + LeakyReLU fused through
``bias_act``), ``ganblocks.MinibatchStdDev`` and ``ganblocks.EqualLinear``: the same layers, channels and
initialization scheme, so the two time the same network.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .case import require
from .plain.stylegan2 import stylegan_channels


class _Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def style_discriminator(
    resolution: int, in_channels: int = 3, channels: Optional[dict[int, int]] = None
) -> nn.Module:
    equal_conv, equal_linear, mbstd = require(
        "ganblocks.layers", "EqualConv2d", "EqualLinear", "MinibatchStdDev"
    )
    ch = channels or stylegan_channels(resolution)

    def conv(cin: int, cout: int, k: int) -> nn.Module:
        return equal_conv(cin, cout, k, padding=k // 2, act="lrelu")

    layers: list[nn.Module] = [conv(in_channels, ch[resolution], 1)]
    res = resolution
    while res > 4:
        layers += [conv(ch[res], ch[res], 3), conv(ch[res], ch[res // 2], 3), nn.AvgPool2d(2)]
        res //= 2
    layers += [
        mbstd(group_size=4, num_channels=1),
        conv(ch[4] + 1, ch[4], 3),
        _Flatten(),
        equal_linear(ch[4] * 16, ch[4], act="lrelu"),
        equal_linear(ch[4], 1),
    ]
    return nn.Sequential(*layers)
