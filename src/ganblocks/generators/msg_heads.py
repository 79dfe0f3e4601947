"""The generator side of MSG-GAN: 1×1 to-RGB heads that produce the image pyramid its discriminator takes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import torch
from torch import nn

from .._checks import check_images, check_int
from ..discriminators._conv import make_conv
from ..ops._activations import Activation, resolve_activation


class MSGGeneratorHeads(nn.Module):
    r"""1×1 to-RGB heads that turn a generator's intermediate features into MSG-GAN's image pyramid.

    Head :math:`j` maps feature map :math:`j` (``channels[j]`` channels) to an image:
    :math:`\phi(W_j \star f_j + b_j)`. Features and images are ordered **finest first**, as
    :class:`~ganblocks.MSGDiscriminator` takes them; a generator producing features coarsest first passes
    ``feats[::-1]``. The heads run on the fused conv + :func:`~ganblocks.functional.bias_act`.

    Args:
        channels: channel count of each feature map, finest first.
        out_channels: channels of each image.
        act: activation of the images (``"linear"`` as MSG-GAN, or ``"tanh"``).
        equalized_lr: equalized learning-rate heads.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Example:
        >>> import torch
        >>> from ganblocks.generators import MSGGeneratorHeads
        >>> heads = MSGGeneratorHeads([16, 32, 64])
        >>> feats = [torch.randn(2, 16, 16, 16), torch.randn(2, 32, 8, 8), torch.randn(2, 64, 4, 4)]
        >>> [tuple(t.shape) for t in heads(feats)]
        [(2, 3, 16, 16), (2, 3, 8, 8), (2, 3, 4, 4)]

    Reference:
        Karnewar & Wang, "MSG-GAN: Multi-Scale Gradients for Generative Adversarial Networks", CVPR 2020.
    """

    def __init__(
        self,
        channels: Sequence[int],
        *,
        out_channels: int = 3,
        act: Activation = "linear",
        equalized_lr: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or not channels:
            raise ValueError(f"channels must be a non-empty sequence of ints, got {channels!r}")
        for j, c in enumerate(channels):
            check_int(f"channels[{j}]", c)
        check_int("out_channels", out_channels)
        resolve_activation(act, None, None)
        self.channels = list(channels)
        self.out_channels = out_channels
        self.heads = nn.ModuleList(
            make_conv(c, out_channels, 1, act=act, equalized_lr=equalized_lr, device=device, dtype=dtype)
            for c in channels
        )

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if isinstance(features, torch.Tensor) or not isinstance(features, (list, tuple)):
            raise TypeError(f"features must be a list or tuple of tensors, got {type(features).__name__}")
        if len(features) != len(self.heads):
            raise ValueError(
                f"features must hold {len(self.heads)} tensors (one per head), got {len(features)}"
            )
        for j, (f, c) in enumerate(zip(features, self.channels)):
            check_images(f"features[{j}]", f, c)
        sizes = [(f.shape[-2], f.shape[-1]) for f in features]
        for j in range(1, len(sizes)):
            if sizes[j - 1] != (2 * sizes[j][0], 2 * sizes[j][1]):
                raise ValueError(
                    f"features must be ordered finest first, each half the size of the one before, got "
                    f"sizes {sizes}"
                )
        return [head(f) for head, f in zip(self.heads, features)]

    def extra_repr(self) -> str:
        return f"channels={self.channels}, out_channels={self.out_channels}"
