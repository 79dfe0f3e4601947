"""Normalization layers of style-based generators: ``PixelNorm`` and ``AdaIN``."""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

from .._checks import check_int, check_ndim, check_positive, check_tensor
from ..ops.instance_norm_act import adain
from ..ops.pixel_norm import pixel_norm
from .equalized import EqualLinear


class PixelNorm(nn.Module):
    r"""Normalize each feature vector to unit mean square (ProGAN's pixelwise normalization).

    .. math::
        y = \frac{x}{\sqrt{\frac{1}{C}\sum_c x_c^2 + \epsilon}}

    Calls :func:`ganblocks.functional.pixel_norm`; used on latents ``(N, C)`` in StyleGAN's mapping
    network and on feature maps ``(N, C, H, W)`` in ProGAN's generator.

    Args:
        eps: added to the mean square; a finite number ``> 0`` (0 would give NaN for an all-zero
            feature vector).
        dim: the feature dimension.

    Shape:
        - Input: ``(N, C, *)``.
        - Output: the shape, dtype and memory format of the input.

    Example:
        >>> import torch
        >>> from ganblocks.layers import PixelNorm
        >>> PixelNorm()(torch.tensor([[3.0, 4.0]]))
        tensor([[0.8485, 1.1314]])

    Reference:
        Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation",
        ICLR 2018, section 4.2.
    """

    def __init__(self, *, eps: float = 1e-8, dim: int = 1) -> None:
        super().__init__()
        check_positive("eps", eps)
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"dim must be an int, got {type(dim).__name__}")
        self.eps = float(eps)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x, eps=self.eps, dim=self.dim)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, dim={self.dim}"


class AdaIN(nn.Module):
    r"""Adaptive instance normalization driven by a style vector (StyleGAN).

    .. math::
        (s, t) = A(w), \qquad
        y_{nc} = s_{nc} \frac{x_{nc} - \mu_{nc}}{\sqrt{\sigma^2_{nc} + \epsilon}} + t_{nc}

    where :math:`A` is an :class:`~ganblocks.layers.EqualLinear` from ``w_dim`` to ``2 * num_channels``
    (first half scale, second half shift) and :math:`\mu, \sigma^2` are the mean and biased variance over
    the spatial dims. The scale half's bias starts at an effective 1 and the shift half's at 0 (stored as
    ``1 / lr_multiplier`` and 0), so at initialization the style only perturbs an identity affine.
    Calls :func:`ganblocks.functional.adain`.

    Args:
        num_channels: channels :math:`C` of ``x``.
        w_dim: size of the style vector ``w``.
        eps: added to the variance; a finite number ``> 0`` (0 would give NaN for a constant plane).
        lr_multiplier: learning-rate multiplier of the affine layer.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - x: ``(N, C, *spatial)``.
        - w: ``(N, w_dim)``.
        - Output: the shape, dtype and memory format of ``x``.

    Example:
        >>> import torch
        >>> from ganblocks.layers import AdaIN
        >>> layer = AdaIN(3, 8)
        >>> layer(torch.randn(2, 3, 4, 4), torch.randn(2, 8)).shape
        torch.Size([2, 3, 4, 4])
        >>> layer.affine.bias.tolist()
        [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]

    Reference:
        Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization",
        ICCV 2017; Karras et al., "A Style-Based Generator Architecture for Generative Adversarial
        Networks", CVPR 2019.
    """

    def __init__(
        self,
        num_channels: int,
        w_dim: int,
        *,
        eps: float = 1e-5,
        lr_multiplier: float = 1.0,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.num_channels = check_int("num_channels", num_channels)
        self.w_dim = check_int("w_dim", w_dim)
        check_positive("eps", eps)
        self.eps = float(eps)
        self.affine = EqualLinear(
            w_dim, 2 * num_channels, lr_multiplier=lr_multiplier, device=device, dtype=dtype
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Redraw the affine weight; effective scale bias 1, shift bias 0."""
        self.affine.reset_parameters()
        bias = self.affine.bias
        assert bias is not None
        with torch.no_grad():
            bias[: self.num_channels].fill_(1.0 / self.affine.lr_multiplier)
            bias[self.num_channels :].zero_()

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x)
        check_ndim("x", x, minimum=3)
        if x.shape[1] != self.num_channels:
            raise ValueError(
                f"x must have shape (N, num_channels, *) with num_channels = {self.num_channels}, "
                f"got {tuple(x.shape)}"
            )
        check_tensor("w", w)
        if w.ndim != 2 or w.shape[0] != x.shape[0] or w.shape[1] != self.w_dim:
            raise ValueError(
                f"w must have shape (N, w_dim) = ({x.shape[0]}, {self.w_dim}) to match x of shape "
                f"{tuple(x.shape)}, got {tuple(w.shape)}"
            )
        scale, bias = self.affine(w).chunk(2, dim=1)
        return adain(x, scale, bias, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, w_dim={self.w_dim}, eps={self.eps}"
