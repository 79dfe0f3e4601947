"""pix2pixHD's residual block."""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

from .._checks import check_images, check_int
from ._layers import ConvNormAct, GeneratorNorm


class ResnetBlock(nn.Module):
    r"""pix2pixHD's residual block: two reflection-padded 3×3 convs with norms, ReLU between, identity skip.

    .. math::
        y = x + \mathrm{N}\big(W_2 * \mathrm{pad}_1\,\mathrm{ReLU}(\mathrm{N}(W_1 * \mathrm{pad}_1\,x))\big)

    with :math:`\mathrm{N}` instance norm (non-affine) or batch norm and :math:`\mathrm{pad}_1` reflection
    padding by one pixel. Each norm and its ReLU run as one
    :func:`~ganblocks.functional.instance_norm_act` pass. ``2 · (9d² + d)`` parameters for ``d`` channels
    (with ``bias_before_norm``, as pix2pixHD).

    Args:
        channels: channels ``d`` of input and output.
        norm: ``"instance"`` or ``"batch"``.
        bias_before_norm: keep pix2pixHD's conv biases before the norms (see
            :class:`~ganblocks.generators.ConvNormAct`).
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: :math:`(N, d, H, W)` with :math:`H, W \ge 2`.
        - Output: same shape.

    Example:
        >>> import torch
        >>> from ganblocks.generators import ResnetBlock
        >>> block = ResnetBlock(8)
        >>> sum(p.numel() for p in block.parameters())
        1168
        >>> block(torch.randn(1, 8, 4, 4)).shape
        torch.Size([1, 8, 4, 4])

    Reference:
        He et al., "Deep Residual Learning for Image Recognition", CVPR 2016; Johnson et al., "Perceptual
        Losses for Real-Time Style Transfer and Super-Resolution", ECCV 2016; Wang et al., "High-Resolution
        Image Synthesis and Semantic Manipulation with Conditional GANs", CVPR 2018.
    """

    def __init__(
        self,
        channels: int,
        *,
        norm: GeneratorNorm = "instance",
        bias_before_norm: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        check_int("channels", channels)
        self.channels = channels
        self.conv1 = ConvNormAct(
            channels, channels, 3, reflect_pad=1, act="relu",
            norm=norm, bias_before_norm=bias_before_norm, device=device, dtype=dtype,
        )  # fmt: skip
        self.conv2 = ConvNormAct(
            channels, channels, 3, reflect_pad=1, act="linear",
            norm=norm, bias_before_norm=bias_before_norm, device=device, dtype=dtype,
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images("x", x, self.channels)
        h, w = x.shape[-2], x.shape[-1]
        if h < 2 or w < 2:
            raise ValueError(
                f"x of spatial size {h}×{w} is too small for a ResnetBlock: its reflection padding by one "
                "pixel needs a height and width of at least 2"
            )
        y: torch.Tensor = self.conv2(self.conv1(x))
        return x + y

    def extra_repr(self) -> str:
        return f"channels={self.channels}"
