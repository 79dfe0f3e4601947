r"""A cheap mode-collapse monitor: the fake-to-real feature variance ratio and the share of near-duplicate fakes."""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from .._checks import check_int, check_positive
from ._features import check_features


class CollapseStatistics(NamedTuple):
    """The signals of one batch (0-dimensional float64 tensors); see :func:`collapse_statistics`."""

    variance_ratio: torch.Tensor
    duplicate_share: torch.Tensor
    real_duplicate_share: torch.Tensor


def _nearest_other(x: torch.Tensor) -> torch.Tensor:
    """The distance from every row of ``x`` to its nearest other row."""
    d = torch.cdist(x, x)
    return d.fill_diagonal_(torch.inf).min(dim=1).values


@torch.no_grad()
def collapse_statistics(
    real: torch.Tensor, fake: torch.Tensor, *, threshold: float = 0.1
) -> CollapseStatistics:
    r"""Two collapse signals of a batch of fake features against a batch of real ones.

    **Variance ratio.** With :math:`\sigma^2_d` the unbiased variance of feature :math:`d` over a batch,

    .. math::
        \text{variance\_ratio} = \frac{\sum_d \sigma^2_{d,\text{fake}}}{\sum_d \sigma^2_{d,\text{real}}}
        = \frac{\operatorname{tr}\Sigma_\text{fake}}{\operatorname{tr}\Sigma_\text{real}}

    (the mean over features of the per-feature variance and the trace of the covariance give the same
    ratio). About 1 for a healthy generator; a collapsing one concentrates its samples and drives it
    towards 0.

    **Near-duplicate share.** Let :math:`\rho` be the median, over the real samples, of the distance to the
    nearest other real sample of the batch: the typical spacing of real data at this batch size. A fake
    sample is a near-duplicate when another fake of the batch lies closer than
    ``threshold`` :math:`\cdot \rho`:

    .. math::
        \text{duplicate\_share} = \frac1M \sum_j
            \big[\min_{j' \ne j} \lVert y_j - y_{j'} \rVert < \tau \rho\big]

    ``real_duplicate_share`` is the same share among the real samples (:math:`\min_{i' \ne i}
    \lVert x_i - x_{i'}\rVert < \tau\rho`), the baseline of a generator that matches the data: in few
    feature dimensions near neighbours are common even in real data. A collapsing generator repeats itself
    and pushes ``duplicate_share`` towards 1. Spacing shrinks with the number of samples: compare batches of
    equal sizes (real and fake, and over time).

    Cost: two ``(B, B)`` distance matrices and two variances; cheap enough every few hundred steps.

    Args:
        real: real features ``(N, D)``, ``N >= 2``.
        fake: fake features ``(M, D)``, ``M >= 2``.
        threshold: :math:`\tau`, the duplicate distance as a fraction of the real spacing :math:`\rho`.

    Returns:
        ``CollapseStatistics(variance_ratio, duplicate_share, real_duplicate_share)``.

    Example:
        >>> import torch
        >>> from ganblocks.metrics import collapse_statistics
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.randn(256, 32, generator=g)
        >>> collapsed = torch.randn(4, 32, generator=g).repeat(64, 1) + 0.01 * torch.randn(256, 32, generator=g)
        >>> s = collapse_statistics(real, collapsed)
        >>> s.duplicate_share.item(), s.real_duplicate_share.item()
        (1.0, 0.0)
        >>> round(s.variance_ratio.item(), 2)  # four modes keep most of the variance: watch both signals
        0.73
    """
    x = check_features("real", real, min_samples=2)
    y = check_features("fake", fake, num_features=x.shape[1], min_samples=2)
    tau = check_positive("threshold", threshold)
    x, y = x.detach().double(), y.detach().to(x.device, torch.float64)
    ratio = y.var(dim=0).sum() / x.var(dim=0).sum()
    real_nearest = _nearest_other(x)
    cutoff = tau * real_nearest.median()
    return CollapseStatistics(
        variance_ratio=ratio,
        duplicate_share=(_nearest_other(y) < cutoff).double().mean(),
        real_duplicate_share=(real_nearest < cutoff).double().mean(),
    )


class CollapseMonitor:
    r"""Keeps a history of :func:`collapse_statistics` and flags a collapse.

    Call :meth:`update` with a batch of real and fake features every few hundred steps (features of a fixed
    network: a classifier's penultimate layer, Inception, or the discriminator's last features). ``history``
    holds one dict per call (``step``, ``variance_ratio``, ``duplicate_share``, ``real_duplicate_share`` as
    Python numbers), ready for a logger; :attr:`collapsed` is true when the last batch's variance ratio fell
    below ``min_variance_ratio`` or its duplicate share exceeds the real baseline by more than
    ``max_duplicate_excess``.

    Args:
        threshold: :math:`\tau` of :func:`collapse_statistics`.
        min_variance_ratio: a variance ratio below this flags a collapse.
        max_duplicate_excess: ``duplicate_share - real_duplicate_share`` above this flags a collapse.

    Example:
        >>> import torch
        >>> from ganblocks.metrics import CollapseMonitor
        >>> g = torch.Generator().manual_seed(0)
        >>> monitor = CollapseMonitor()
        >>> real = torch.randn(128, 16, generator=g)
        >>> _ = monitor.update(real, torch.randn(128, 16, generator=g), step=100)
        >>> monitor.collapsed
        False
        >>> _ = monitor.update(real, torch.randn(1, 16, generator=g).repeat(128, 1), step=200)
        >>> monitor.collapsed, monitor.history[-1]["duplicate_share"]
        (True, 1.0)
    """

    def __init__(
        self, *, threshold: float = 0.1, min_variance_ratio: float = 0.5, max_duplicate_excess: float = 0.1
    ) -> None:
        self.threshold = check_positive("threshold", threshold)
        self.min_variance_ratio = check_positive("min_variance_ratio", min_variance_ratio)
        self.max_duplicate_excess = check_positive("max_duplicate_excess", max_duplicate_excess)
        self.history: list[dict[str, float]] = []

    def update(
        self, real: torch.Tensor, fake: torch.Tensor, *, step: Optional[int] = None
    ) -> CollapseStatistics:
        """Compute the signals of this batch, append them to ``history`` (with ``step``) and return them."""
        stats = collapse_statistics(real, fake, threshold=self.threshold)
        record = {} if step is None else {"step": check_int("step", step, minimum=0)}
        self.history.append(record | {k: float(v) for k, v in stats._asdict().items()})
        return stats

    @property
    def collapsed(self) -> bool:
        """Whether the last update flagged a collapse (False before any)."""
        if not self.history:
            return False
        last = self.history[-1]
        return (
            last["variance_ratio"] < self.min_variance_ratio
            or last["duplicate_share"] - last["real_duplicate_share"] > self.max_duplicate_excess
        )

    def state_dict(self) -> dict[str, list[dict[str, float]]]:
        """The history (to save beside a training checkpoint)."""
        return {"history": [dict(r) for r in self.history]}

    def load_state_dict(self, state_dict: dict[str, list[dict[str, float]]]) -> None:
        """Restore the history from :meth:`state_dict`."""
        if not isinstance(state_dict, dict) or not isinstance(state_dict.get("history"), list):
            raise ValueError(
                "state_dict must be a dict with a 'history' list (from CollapseMonitor.state_dict)"
            )
        self.history = [dict(r) for r in state_dict["history"]]

    def __repr__(self) -> str:
        return (
            f"CollapseMonitor(threshold={self.threshold}, min_variance_ratio={self.min_variance_ratio}, "
            f"max_duplicate_excess={self.max_duplicate_excess}, updates={len(self.history)})"
        )
