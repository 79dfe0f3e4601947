"""The argument check every metric runs on a batch of features: a finite floating (N, D) tensor."""

from __future__ import annotations

from typing import Optional

import torch

from .._checks import check_float_tensor


def check_features(
    name: str, value: object, *, num_features: Optional[int] = None, min_samples: int = 1
) -> torch.Tensor:
    """``value`` is a floating ``(N, D)`` tensor with ``N >= min_samples`` finite rows (and ``D ==
    num_features`` when given); a NaN or infinite entry raises with the number of rows that hold one."""
    x = check_float_tensor(name, value, exact_ndim=2)
    if num_features is not None and x.shape[1] != num_features:
        raise ValueError(
            f"{name} must have {num_features} features (size of dimension 1), got shape {tuple(x.shape)}"
        )
    if x.shape[0] < min_samples:
        raise ValueError(
            f"{name} must hold at least {min_samples} samples (rows), got shape {tuple(x.shape)}"
        )
    bad = int((~torch.isfinite(x)).any(dim=1).sum())
    if bad:
        raise ValueError(
            f"{name} holds NaN or infinite values in {bad} of its {x.shape[0]} rows (samples); "
            "features must be finite"
        )
    return x
