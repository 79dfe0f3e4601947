"""A weighted sum of per-tensor mean distances, as a few multi-tensor kernels instead of a loop of small ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Optional, TypeAlias, get_args

import torch

Criterion: TypeAlias = Literal["l1", "l2"]
CRITERIA: tuple[str, ...] = get_args(Criterion)
_HALF = (torch.float16, torch.bfloat16)


def check_criterion(criterion: str) -> None:
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")


def _has_foreach() -> bool:
    return all(hasattr(torch, name) for name in ("_foreach_norm", "_foreach_mul", "_foreach_pow"))


def weighted_mean_distance(
    inputs: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    weights: Sequence[float],
    *,
    criterion: Criterion,
) -> torch.Tensor:
    r"""``sum_k weights[k] * mean(|inputs[k] - targets[k]|^p)`` with p = 1 (``"l1"``) or 2 (``"l2"``).

    The mean of :math:`|d|^p` over a tensor is :math:`\|d\|_p^p / \mathrm{numel}`, so after the
    differences the whole sum is one ``_foreach_norm`` (float32 accumulation for half inputs), one
    ``_foreach_mul`` by the folded weights and a stack-and-sum, whatever the number of tensors.
    ``targets`` are detached. Falls back to a Python loop where the ``torch._foreach_*`` ops are missing.

    Memory: autograd keeps each difference (for the norm's backward, as the plain ``(x - t).abs()``
    keeps it) and one scalar per tensor. The differences are taken pair by pair: ``torch._foreach_sub``
    would save both operand lists for a backward that needs neither, keeping every target (a VGG loss's
    real-image features, otherwise freed at once) alive until the backward.
    """
    coeffs = [float(w) / max(x.numel(), 1) for w, x in zip(weights, inputs)]
    p = 1 if criterion == "l1" else 2
    diffs = [x - t.detach() for x, t in zip(inputs, targets)]
    if _has_foreach():
        acc: Optional[torch.dtype] = torch.float32 if all(x.dtype in _HALF for x in inputs) else None
        norms = torch._foreach_norm(diffs, p, dtype=acc)
        if p == 2:
            norms = torch._foreach_pow(norms, 2.0)
        terms = torch._foreach_mul(norms, coeffs)
        dtype = torch.promote_types(terms[0].dtype, torch.float32)
        return torch.stack([t.to(dtype) for t in terms]).sum()
    total: Optional[torch.Tensor] = None
    for d, c in zip(diffs, coeffs):
        if d.dtype in _HALF:
            d = d.float()
        term = (d.abs().sum() if p == 1 else d.square().sum()) * c
        total = term if total is None else total + term
    assert total is not None
    return total


def per_sample_mean_distance(
    inputs: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    weights: Sequence[float],
    *,
    criterion: Criterion,
) -> torch.Tensor:
    r"""``(N,)``: sample :math:`i`'s ``sum_k weights[k] * mean(|inputs[k][i] - targets[k][i]|^p)``.

    Each tensor's mean runs over the sample's own elements, so the mean over samples is
    :func:`weighted_mean_distance`. Accumulated in float32 for half inputs; ``targets`` are detached.
    """
    total: Optional[torch.Tensor] = None
    for x, t, w in zip(inputs, targets, weights):
        d = x - t.detach()
        d = d.float() if d.dtype in _HALF else d
        d = d.abs() if criterion == "l1" else d.square()
        term = d.reshape(d.shape[0], -1).mean(1) * float(w)
        total = term if total is None else total + term
    assert total is not None
    return total
