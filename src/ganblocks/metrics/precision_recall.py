r"""Precision and recall (Kynkäänniemi et al.) and density and coverage (Naeem et al.) from k-NN radii."""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._checks import check_int
from ._features import check_features


class PrecisionRecall(NamedTuple):
    """Precision, recall, density and coverage: 0-dimensional float64 tensors."""

    precision: torch.Tensor
    recall: torch.Tensor
    density: torch.Tensor
    coverage: torch.Tensor


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``(len(a), len(b))`` through one matrix product (``torch.cdist``'s fast mode)."""
    return torch.cdist(a, b, compute_mode="use_mm_for_euclid_dist")


def _radii(x: torch.Tensor, k: int, batch_size: int) -> torch.Tensor:
    """The distance of every row of ``x`` to its k-th nearest other row (the (k+1)-th smallest: itself first)."""
    return torch.cat(
        [_distances(chunk, x).kthvalue(k + 1, dim=1).values for chunk in torch.split(x, batch_size)]
    )


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, *, num_neighbors: int = 3, batch_size: int = 10000
) -> PrecisionRecall:
    r"""Precision, recall, density and coverage of ``fake`` features against ``real`` ones.

    With :math:`r_k(x)` the distance from a real :math:`x` to its :math:`k`-th nearest other real sample
    (and likewise :math:`\tilde r_k(y)` among the fakes), :math:`N` real samples :math:`x_i` and :math:`M`
    fake samples :math:`y_j`:

    .. math::
        \text{precision} &= \frac1M \sum_j \big[\exists i: \lVert y_j - x_i \rVert \le r_k(x_i)\big] \\
        \text{recall} &= \frac1N \sum_i \big[\exists j: \lVert x_i - y_j \rVert \le \tilde r_k(y_j)\big] \\
        \text{density} &= \frac1{kM} \sum_j \sum_i \big[\lVert y_j - x_i \rVert \le r_k(x_i)\big] \\
        \text{coverage} &= \frac1N \sum_i \big[\min_j \lVert x_i - y_j \rVert \le r_k(x_i)\big]

    Precision is the share of fakes inside the real manifold (the union of the real samples' k-NN balls),
    recall the share of reals inside the fake manifold (Kynkäänniemi et al., "Improved Precision and Recall
    Metric for Assessing Generative Models", NeurIPS 2019, :math:`k = 3`). Density counts how many real balls
    hold each fake (about 1 for matching distributions, unbounded above) and coverage is the share of real
    balls that hold a fake (Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative Models",
    ICML 2020, which recommends :math:`k = 5`; here both pairs share the radii of one :math:`k`). Every
    comparison is :math:`\le` (a tie, of measure zero for continuous features, counts as inside).

    Distances are Euclidean, through matrix products in the inputs' dtype (at least float32), in blocks of
    ``batch_size`` rows: memory ``batch_size × max(N, M)``, never the full matrices.

    Args:
        real: real features ``(N, D)``, ``N > num_neighbors``.
        fake: fake features ``(M, D)``, ``M > num_neighbors``.
        num_neighbors: :math:`k`.
        batch_size: rows per block of distances.

    Returns:
        ``PrecisionRecall(precision, recall, density, coverage)``.

    Example:
        >>> import torch
        >>> from ganblocks.metrics import precision_recall
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.randn(1000, 2, generator=g)
        >>> same = precision_recall(real, real)
        >>> same.precision.item(), same.recall.item(), same.coverage.item()
        (1.0, 1.0, 1.0)
        >>> far = precision_recall(real, real + 100)
        >>> far.precision.item(), far.recall.item(), far.density.item(), far.coverage.item()
        (0.0, 0.0, 0.0, 0.0)
    """
    k = check_int("num_neighbors", num_neighbors)
    x = check_features("real", real, min_samples=k + 1)
    y = check_features("fake", fake, num_features=x.shape[1], min_samples=k + 1)
    b = check_int("batch_size", batch_size)
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    x, y = x.detach().to(dtype=dtype), y.detach().to(device=x.device, dtype=dtype)
    real_radii, fake_radii = _radii(x, k, b), _radii(y, k, b)
    inside_real = torch.zeros((), dtype=torch.float64, device=x.device)  # Σ_j Σ_i [y_j in ball of x_i]
    precise = torch.zeros((), dtype=torch.float64, device=x.device)
    recalled = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    nearest_fake = torch.full((x.shape[0],), torch.inf, dtype=dtype, device=x.device)
    for start in range(0, y.shape[0], b):
        d = _distances(y[start : start + b], x)  # (block of fakes, N reals)
        in_real_ball = d <= real_radii
        inside_real += in_real_ball.sum(dtype=torch.float64)
        precise += in_real_ball.any(dim=1).sum(dtype=torch.float64)
        recalled |= (d <= fake_radii[start : start + b, None]).any(dim=0)
        nearest_fake = torch.minimum(nearest_fake, d.min(dim=0).values)
    m = y.shape[0]
    return PrecisionRecall(
        precision=precise / m,
        recall=recalled.double().mean(),
        density=inside_real / (k * m),
        coverage=(nearest_fake <= real_radii).double().mean(),
    )
