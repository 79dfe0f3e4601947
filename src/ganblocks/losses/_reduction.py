"""torch's ``reduction=`` over the batch, shared by every loss and penalty."""

from __future__ import annotations

from typing import Literal, TypeAlias, get_args

import torch

from .._checks import check_choice

Reduction: TypeAlias = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[Reduction, ...] = get_args(Reduction)


def check_reduction(reduction: object) -> Reduction:
    return check_choice("reduction", reduction, REDUCTIONS)


def reduce_batch(per_sample: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    """``per_sample`` (shape ``(N,)``) averaged, summed, or returned as it is."""
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def check_scale_reduction(scale_reduction: object) -> None:
    """``scale_reduction`` of a multi-scale loss or penalty: ``"sum"`` or ``"mean"`` over the scales."""
    if scale_reduction not in ("sum", "mean"):
        raise ValueError(f"scale_reduction must be one of ('sum', 'mean'), got {scale_reduction!r}")
