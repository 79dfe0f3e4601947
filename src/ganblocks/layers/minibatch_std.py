"""Minibatch standard deviation layer (ProGAN, StyleGAN2-ADA): ``MinibatchStdDev``."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .._checks import check_int
from ..ops.minibatch_stddev import minibatch_stddev


class MinibatchStdDev(nn.Module):
    r"""Append the standard deviation across groups of samples as extra feature maps.

    With :math:`G = \min(\text{group\_size}, N)` and :math:`F` = ``num_channels``, the batch is split into
    strided groups (sample :math:`i` shares a group with :math:`i + N/G, i + 2N/G, \dots`) and

    .. math::
        s_{m f} = \operatorname{mean}_{c, h, w} \sqrt{\operatorname{Var}_g[x_{g m f c h w}] + 10^{-8}}

    is broadcast to ``(N, F, H, W)`` and concatenated to ``x``. StyleGAN2-ADA's
    ``MinibatchStdLayer``; calls :func:`ganblocks.functional.minibatch_stddev`.

    Args:
        group_size: samples per group; None uses the whole batch.
        num_channels: number of stddev feature maps :math:`F`; must divide the channels of ``x``.
        adjust_group_size: when the batch size is not divisible by the group size, use its largest
            divisor below ``group_size`` instead of raising.

    Shape:
        - Input: ``(N, C, H, W)``.
        - Output: ``(N, C + F, H, W)``.

    Example:
        >>> import torch
        >>> from ganblocks.layers import MinibatchStdDev
        >>> x = torch.tensor([0.0, 2.0]).reshape(2, 1, 1, 1)
        >>> MinibatchStdDev(group_size=2)(x)[:, 1].flatten()
        tensor([1., 1.])

    Reference:
        Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation",
        ICLR 2018, section 3.
    """

    def __init__(
        self, *, group_size: Optional[int] = 4, num_channels: int = 1, adjust_group_size: bool = False
    ) -> None:
        super().__init__()
        self.group_size = None if group_size is None else check_int("group_size", group_size)
        self.num_channels = check_int("num_channels", num_channels)
        self.adjust_group_size = bool(adjust_group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return minibatch_stddev(
            x,
            group_size=self.group_size,
            num_channels=self.num_channels,
            adjust_group_size=self.adjust_group_size,
        )

    def extra_repr(self) -> str:
        s = f"group_size={self.group_size}, num_channels={self.num_channels}"
        if self.adjust_group_size:
            s += ", adjust_group_size=True"
        return s
