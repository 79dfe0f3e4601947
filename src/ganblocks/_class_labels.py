"""Class labels of the conditional blocks: integer indices ``(N,)`` or class vectors ``(N, num_classes)``."""

from __future__ import annotations

import torch

from ._checks import check_tensor


def check_class_labels(name: str, y: object, num_classes: int, batch: int) -> torch.Tensor:
    """``y`` as given, after checking it is ``(batch,)`` integer indices in ``[0, num_classes)`` or a
    floating ``(batch, num_classes)`` class vector (one-hot or soft, as StyleGAN2-ADA's ``c``)."""
    t = check_tensor(name, y)
    if t.is_floating_point():
        if t.shape != (batch, num_classes):
            raise ValueError(
                f"{name} as class vectors must have shape (N, num_classes) = ({batch}, {num_classes}), "
                f"got {tuple(t.shape)}"
            )
        return t
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must hold integer class indices or float class vectors, got dtype {t.dtype}")
    if t.shape != (batch,):
        raise ValueError(f"{name} as class indices must have shape (N,) = ({batch},), got {tuple(t.shape)}")
    # The range check reads the labels' bounds back, so it runs on CPU tensors only: on an accelerator it
    # would stall every conditional layer of every forward, and a traced graph cannot run it. Elsewhere an
    # index out of range fails inside the embedding instead.
    if t.numel() and t.device.type == "cpu" and not torch.compiler.is_compiling():
        lo, hi = (int(v) for v in torch.aminmax(t))
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"{name} must hold class indices in [0, {num_classes - 1}] (num_classes={num_classes}), "
                f"got values in [{lo}, {hi}]"
            )
    return t
