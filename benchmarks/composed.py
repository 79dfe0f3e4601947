"""The networks the areas time, as pairs of builders: the ganblocks one and the plain one it is compared with.

Each pair builds the same architecture (layers, channels, initialization scheme) on both sides, so the two
time the same network; discriminators, penalties and training steps all take their networks from here.

``style_discriminator`` is an architecture ganblocks does not ship as one class:
:class:`benchmarks.plain.stylegan2.StyleDiscriminator` (an equalized-LR discriminator with minibatch stddev)
built from ``ganblocks.EqualConv2d`` (bias + LeakyReLU fused through ``bias_act``),
``ganblocks.MinibatchStdDev`` and ``ganblocks.EqualLinear``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Optional

import torch
from torch import nn

import ganblocks

from .plain import msggan, pix2pixhd
from .plain import stylegan2 as sg2

Builder = Callable[[], nn.Module]

# MSG-GAN channel widths (channel_base // resolution, capped): the published ones, and narrower ones for the
# CPU suite and the quick run; recorded in the case parameters.
MSG_FULL = {"channel_base": 16384, "max_channels": 512}
MSG_CPU = {"channel_base": 2048, "max_channels": 256}
MSG_QUICK = {"channel_base": 512, "max_channels": 64}


class _Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def style_discriminator(
    resolution: int, in_channels: int = 3, channels: Optional[dict[int, int]] = None
) -> nn.Module:
    ch = channels or sg2.stylegan_channels(resolution)

    def conv(cin: int, cout: int, k: int) -> nn.Module:
        return ganblocks.EqualConv2d(cin, cout, k, padding=k // 2, act="lrelu")

    layers: list[nn.Module] = [conv(in_channels, ch[resolution], 1)]
    res = resolution
    while res > 4:
        layers += [conv(ch[res], ch[res], 3), conv(ch[res], ch[res // 2], 3), nn.AvgPool2d(2)]
        res //= 2
    layers += [
        ganblocks.MinibatchStdDev(group_size=4, num_channels=1),
        conv(ch[4] + 1, ch[4], 3),
        _Flatten(),
        ganblocks.EqualLinear(ch[4] * 16, ch[4], act="lrelu"),
        ganblocks.EqualLinear(ch[4], 1),
    ]
    return nn.Sequential(*layers)


def style_pair(shape: Sequence[int]) -> tuple[Builder, Builder]:
    """The equalized-LR discriminator with minibatch stddev, vs stylegan2-pytorch's formulation."""
    c, r = shape[1], shape[2]
    return (lambda: style_discriminator(r, c)), (lambda: sg2.StyleDiscriminator(r, c))


def multiscale_pair(shape: Sequence[int], *, features: bool) -> tuple[Builder, Builder]:
    """``MultiScaleDiscriminator`` (3 scales) vs pix2pixHD's; ``features``: both return their features."""
    c = shape[1]
    return (
        lambda: ganblocks.MultiScaleDiscriminator(c, num_scales=3, return_features=features),
        lambda: pix2pixhd.MultiscaleDiscriminator(c, num_d=3, get_interm_feat=features),
    )


def msg_pair(
    shape: Sequence[int], widths: dict[str, int], combine: str = "simple"
) -> tuple[Builder, Builder]:
    """``MSGDiscriminator`` vs MSG-GAN's discriminator with the same resolution, widths and combine."""
    c, r = shape[1], shape[2]
    kw = {"combine": combine, **widths}
    return (
        lambda: ganblocks.MSGDiscriminator(c, resolution=r, **kw),  # type: ignore[arg-type]
        lambda: msggan.Discriminator(r, c, **kw),  # type: ignore[arg-type]
    )
