"""Image pyramids by repeated 2× average pooling: the multi-scale input of MSG-GAN's discriminator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_floating, check_ndim, check_tensor


def _check_num_scales(num_scales: int) -> None:
    if isinstance(num_scales, bool) or not isinstance(num_scales, int) or num_scales < 1:
        raise ValueError(f"num_scales must be a positive int, got {num_scales!r}")


def image_pyramid(x: torch.Tensor, num_scales: int) -> list[torch.Tensor]:
    r"""The image and its successive 2× average-pooled versions, finest first.

    .. math::
        x^{(0)} = x, \qquad
        x^{(k+1)}_{ij} = \tfrac14 \sum_{a, b \in \{0, 1\}} x^{(k)}_{2i + a,\, 2j + b}

    A size that is odd at some level loses its last row or column there (as ``avg_pool2d``); use sizes
    divisible by :math:`2^{\text{num\_scales} - 1}` for exact pyramids. This is how MSG-GAN feeds real images
    to its discriminator (:class:`ganblocks.MSGDiscriminator` takes the list as returned here).

    Args:
        x: images of shape ``(N, C, H, W)``.
        num_scales: number of levels, ``x`` itself included.

    Returns:
        ``num_scales`` tensors; level ``k`` has shape ``(N, C, H // 2^k, W // 2^k)``.

    Example:
        >>> import torch
        >>> from ganblocks.functional import image_pyramid
        >>> levels = image_pyramid(torch.arange(16.0).reshape(1, 1, 4, 4), 3)
        >>> [tuple(t.shape[-2:]) for t in levels]
        [(4, 4), (2, 2), (1, 1)]
        >>> levels[2].flatten()
        tensor([7.5000])

    Reference:
        Karnewar & Wang, "MSG-GAN: Multi-Scale Gradients for Generative Adversarial Networks", CVPR 2020.
    """
    check_tensor("x", x)
    check_floating("x", x)
    check_ndim("x", x, exact=4)
    _check_num_scales(num_scales)
    h, w = x.shape[-2], x.shape[-1]
    need = 2 ** (num_scales - 1)
    if h < need or w < need:
        raise ValueError(
            f"x of spatial size {h}×{w} cannot be halved {num_scales - 1} times for num_scales={num_scales}: "
            f"the minimum size is {need}×{need}"
        )
    levels = [x]
    for _ in range(num_scales - 1):
        levels.append(F.avg_pool2d(levels[-1], 2))
    return levels


class ImagePyramid(nn.Module):
    r"""Module form of :func:`ganblocks.functional.image_pyramid`: ``num_scales`` levels, finest first.

    Args:
        num_scales: number of levels, the input itself included.

    Example:
        >>> import torch
        >>> from ganblocks.discriminators import ImagePyramid
        >>> [t.shape[-1] for t in ImagePyramid(4)(torch.zeros(2, 3, 32, 32))]
        [32, 16, 8, 4]
    """

    def __init__(self, num_scales: int) -> None:
        super().__init__()
        _check_num_scales(num_scales)
        self.num_scales = num_scales

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return image_pyramid(x, self.num_scales)

    def extra_repr(self) -> str:
        return f"num_scales={self.num_scales}"
