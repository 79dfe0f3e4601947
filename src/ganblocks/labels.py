"""Label-map inputs of conditional generators (pix2pixHD): one-hot labels and instance boundary maps."""

from __future__ import annotations

import torch

from ._checks import check_int
from .ops.instance_avg_pool import check_instance_map


def one_hot_labels(
    label_map: torch.Tensor, num_classes: int, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    r"""One channel per class: ``(N, 1, H, W)`` integer labels to ``(N, num_classes, H, W)`` indicators.

    .. math::
        y_{n,k,h,w} = [\,\mathrm{label}_{n,h,w} = k\,]

    pix2pixHD feeds the generator and the discriminators one-hot label maps (``label_nc`` channels),
    built with ``scatter_``; a label outside ``[0, num_classes)`` is an error here rather than an index
    error inside the scatter.

    Args:
        label_map: ``(N, 1, H, W)`` integer class labels.
        num_classes: number of classes (pix2pixHD's ``label_nc``; 35 for Cityscapes).
        dtype: dtype of the result.

    Returns:
        Contiguous ``(N, num_classes, H, W)`` tensor of zeros and ones.

    Example:
        >>> import torch
        >>> from ganblocks.functional import one_hot_labels
        >>> one_hot_labels(torch.tensor([[[[0, 2]]]]), 3)[0, :, 0]
        tensor([[1., 0.],
                [0., 0.],
                [0., 1.]])

    Reference:
        Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs", CVPR 2018.
    """
    check_instance_map("label_map", label_map)
    check_int("num_classes", num_classes)
    n, _, h, w = label_map.shape
    out = torch.zeros(n, num_classes, h, w, dtype=dtype, device=label_map.device)
    if label_map.numel() == 0:
        return out
    lo, hi = int(label_map.min()), int(label_map.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"label_map values must be in [0, num_classes - 1] = [0, {num_classes - 1}], "
            f"got values in [{lo}, {hi}]"
        )
    return out.scatter_(1, label_map.long(), 1)


def instance_boundary_map(instance_map: torch.Tensor, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""pix2pixHD's instance boundary map: 1 where a pixel's instance differs from a 4-neighbour's.

    .. math::
        e_{h,w} = [\,\exists (h', w') \in \{(h, w \pm 1), (h \pm 1, w)\} :
        \mathrm{inst}_{h',w'} \ne \mathrm{inst}_{h,w}\,]

    (neighbours outside the image do not count), pix2pixHD's ``get_edges``. Concatenated to the one-hot
    labels it tells the generator where two objects of the same class meet.

    Args:
        instance_map: ``(N, 1, H, W)`` integer instance ids.
        dtype: dtype of the result.

    Returns:
        ``(N, 1, H, W)`` tensor of zeros and ones.

    Example:
        >>> import torch
        >>> from ganblocks.functional import instance_boundary_map
        >>> instance_boundary_map(torch.tensor([[[[1, 1, 2, 2]]]]))
        tensor([[[[0., 1., 1., 0.]]]])

    Reference:
        Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs", CVPR 2018.
    """
    check_instance_map("instance_map", instance_map)
    t = instance_map
    edge = torch.zeros(t.shape, dtype=torch.bool, device=t.device)
    horizontal = t[..., :, 1:] != t[..., :, :-1]
    edge[..., :, 1:] |= horizontal
    edge[..., :, :-1] |= horizontal
    vertical = t[..., 1:, :] != t[..., :-1, :]
    edge[..., 1:, :] |= vertical
    edge[..., :-1, :] |= vertical
    return edge.to(dtype)
