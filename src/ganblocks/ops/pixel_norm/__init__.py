"""Pixelwise feature-vector normalization (ProGAN)."""

from __future__ import annotations

from typing import Optional

import torch

from ..._checks import check_input, check_positive, normalize_dim
from .._backend import Backend, use_triton
from .reference import pixel_norm_reference


def pixel_norm(
    x: torch.Tensor, *, eps: float = 1e-8, dim: int = 1, backend: Optional[Backend] = None
) -> torch.Tensor:
    r"""Normalize each feature vector to unit mean square.

    .. math::
        y = \frac{x}{\sqrt{\frac{1}{C}\sum_c x_c^2 + \epsilon}}

    Args:
        x: input of shape ``(N, C, *)`` (any number of trailing dims, or ``(N, C)`` for latents).
        eps: added to the mean square; 1e-8 as in ProGAN and StyleGAN. A finite number ``> 0`` (an
            all-zero feature vector has mean square 0).
        dim: the feature dimension.
        backend: ``"auto"``, ``"triton"`` or ``"torch"``; None follows :func:`ganblocks.ops.use_backend`.

    Values near the top of the dtype's range (float32 ``|x|`` above ``1.8e19``, whose square overflows)
    are normalized correctly, with finite gradients of every order: a vector whose largest ``|x|`` exceeds
    1 is divided by it before squaring (the same function). float16/bfloat16 inputs are computed in
    float32 and rounded once. NaN or infinity in a vector makes the whole vector NaN.

    Returns:
        Tensor of the shape, dtype and memory format of ``x``.

    Example:
        >>> import torch
        >>> from ganblocks.functional import pixel_norm
        >>> pixel_norm(torch.tensor([[3.0, 4.0]]))
        tensor([[0.8485, 1.1314]])

    Reference:
        Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation", ICLR 2018.
    """
    check_input("x", x, minimum=2)
    check_positive("eps", eps)
    d = normalize_dim("dim", dim, x.ndim)
    if use_triton(backend, x, op="pixel_norm"):
        from .custom_op import pixel_norm_triton

        return pixel_norm_triton(x, eps=eps, dim=d)
    return pixel_norm_reference(x, eps=eps, dim=d)
