"""Instance-wise average pooling (pix2pixHD's feature encoder)."""

from __future__ import annotations

from typing import Optional

import torch

from ..._checks import check_device, check_float_tensor, check_tensor
from .._backend import Backend, use_triton
from .reference import instance_avg_pool_reference


def check_instance_map(name: str, instance_map: object, like: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``instance_map`` is an integer ``(N, 1, H, W)`` tensor (matching ``like``'s N, H, W and device)."""
    m = check_tensor(name, instance_map)
    if m.is_floating_point() or m.is_complex():
        raise TypeError(
            f"{name} must hold integer ids (an integer or bool tensor), got dtype {m.dtype}; "
            f"convert a float map with .round().long()"
        )
    if m.ndim != 4 or m.shape[1] != 1:
        raise ValueError(f"{name} must have shape (N, 1, H, W), got {tuple(m.shape)}")
    if like is not None:
        n, _, h, w = like.shape
        if (m.shape[0], m.shape[2], m.shape[3]) != (n, h, w):
            raise ValueError(
                f"{name} must have shape (N, 1, H, W) = ({n}, 1, {h}, {w}) to match features of shape "
                f"{tuple(like.shape)}, got {tuple(m.shape)}"
            )
        check_device(name, m, like, "features")
    return m


def instance_avg_pool(
    features: torch.Tensor, instance_map: torch.Tensor, *, backend: Optional[Backend] = None
) -> torch.Tensor:
    r"""Replace every pixel's features by their mean over its instance (pix2pixHD's encoder pooling).

    .. math::
        y_{n,c,p} = \frac{1}{|S_{n,p}|} \sum_{q \in S_{n,p}} x_{n,c,q},
        \qquad S_{n,p} = \{\,q : \mathrm{inst}_{n,q} = \mathrm{inst}_{n,p}\,\}

    Instances are taken per sample: the same id in two samples is two instances. Ids may be any integers
    (pix2pixHD's Cityscapes maps code ``label * 1000 + k``). pix2pixHD's ``Encoder`` loops in Python over
    ids, samples and channels; this is two kernels (per-instance sums, then a gather of the means).
    The map is linear and symmetric (an orthogonal projection), so its gradient is
    ``instance_avg_pool(grad, instance_map)`` and every order of gradient is supported.

    Args:
        features: ``(N, C, H, W)`` floating-point features.
        instance_map: ``(N, 1, H, W)`` integer instance ids.
        backend: ``"auto"``, ``"triton"`` or ``"torch"``; None follows :func:`ganblocks.ops.use_backend`.

    Returns:
        Tensor of the shape, dtype and memory format of ``features``.

    Example:
        >>> import torch
        >>> from ganblocks.functional import instance_avg_pool
        >>> x = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]]]])
        >>> inst = torch.tensor([[[[7, 7], [7, 1000]]]])
        >>> instance_avg_pool(x, inst)
        tensor([[[[2., 2.],
                  [2., 6.]]]])

    Reference:
        Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs", CVPR 2018.
    """
    check_float_tensor("features", features, exact_ndim=4)
    check_instance_map("instance_map", instance_map, features)
    if use_triton(backend, features, op="instance_avg_pool", arg="features"):
        from .custom_op import instance_avg_pool_triton

        return instance_avg_pool_triton(features, instance_map)
    return instance_avg_pool_reference(features, instance_map)


__all__ = ["check_instance_map", "instance_avg_pool"]
