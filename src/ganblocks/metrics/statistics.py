r"""Streaming mean and covariance of features, in float64: what the Fréchet distance compares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional, Union

import torch
import torch.distributed as dist

from .._checks import check_int, check_tensor
from ._features import check_features

# Columns per strip of the sum of outer products: only the strips' upper-triangular part is computed (torch
# has no symmetric rank-k update), about (1 + 256/D)/2 of a full product's work.
_STRIP = 256


class FeatureStatistics:
    r"""The mean and covariance of a stream of feature batches, accumulated in float64.

    It keeps the count :math:`N`, the sum :math:`s = \sum_i x_i` and the sum of outer products
    :math:`S = \sum_i x_i x_i^\top` (one ``(D,)`` and one ``(D, D)`` float64 tensor, whatever the number of
    samples), so 50k samples never sit in memory at once:

    .. math::
        \mu = \frac{s}{N}, \qquad
        \Sigma = \frac{S - N \mu \mu^\top}{N - 1}

    (the unbiased covariance, ``numpy.cov``'s and pytorch-fid's). Because they are plain sums, two
    accumulators merge by adding them (:meth:`merge`, ``a + b``) and data-parallel ranks combine theirs with
    one ``all_reduce`` each (:meth:`all_reduce`); the result is independent of how the samples were split.

    Args:
        num_features: the feature size :math:`D`; None takes it from the first :meth:`update`.
        device: where the sums live; None takes the device of the first :meth:`update`.

    Example:
        >>> import torch
        >>> from ganblocks.metrics import FeatureStatistics
        >>> x = torch.randn(1000, 8, generator=torch.Generator().manual_seed(0))
        >>> stats = FeatureStatistics()
        >>> for chunk in x.split(300):
        ...     stats.update(chunk)
        >>> stats.num_samples
        1000
        >>> torch.allclose(stats.covariance, torch.cov(x.double().T))
        True
    """

    def __init__(
        self, *, num_features: Optional[int] = None, device: Optional[Union[torch.device, str]] = None
    ) -> None:
        self.num_features = None if num_features is None else check_int("num_features", num_features)
        self.device = None if device is None else torch.device(device)
        self.num_samples = 0
        self._sum: Optional[torch.Tensor] = None
        self._outer: Optional[torch.Tensor] = None
        if self.num_features is not None and self.device is not None:
            self._allocate(self.num_features, self.device)

    def _allocate(self, num_features: int, device: torch.device) -> None:
        self.num_features, self.device = num_features, device
        self._sum = torch.zeros(num_features, dtype=torch.float64, device=device)
        self._outer = torch.zeros(num_features, num_features, dtype=torch.float64, device=device)

    def _outer_full(self) -> torch.Tensor:
        """The whole symmetric sum of outer products, from its upper triangle (all that is accumulated)."""
        _, outer = self._sums()
        return outer.triu() + outer.triu(1).mT

    def _sums(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._sum is None or self._outer is None:
            if self.num_features is None:
                raise ValueError("FeatureStatistics: no features yet (call update first)")
            self._allocate(self.num_features, self.device or torch.device("cpu"))
        assert self._sum is not None and self._outer is not None
        return self._sum, self._outer

    @torch.no_grad()
    def update(self, features: torch.Tensor) -> None:
        """Add a batch of features of shape ``(N, D)`` (any floating dtype; summed in float64).

        Raises:
            ValueError: a NaN or infinite value (the message counts the rows that hold one), or a feature
                size other than the accumulator's.
        """
        x = check_features("features", features, num_features=self.num_features)
        if self._sum is None:
            self._allocate(x.shape[1], self.device or x.device)
        total, outer = self._sums()
        x = x.detach().to(device=total.device, dtype=torch.float64)
        total.add_(x.sum(dim=0))
        for i in range(0, x.shape[1], _STRIP):
            outer[i : i + _STRIP, i:].addmm_(x[:, i : i + _STRIP].T, x[:, i:])
        self.num_samples += x.shape[0]

    def _check_other(self, other: object) -> FeatureStatistics:
        if not isinstance(other, FeatureStatistics):
            raise TypeError(f"other must be a FeatureStatistics, got {type(other).__name__}")
        if None not in (self.num_features, other.num_features) and self.num_features != other.num_features:
            raise ValueError(
                f"other must have {self.num_features} features like this accumulator, got {other.num_features}"
            )
        return other

    def merge(self, other: FeatureStatistics) -> FeatureStatistics:
        """Add the samples of ``other`` to this accumulator (in place); returns ``self``."""
        other = self._check_other(other)
        if other.num_samples == 0:
            return self
        if self._sum is None:
            assert other.num_features is not None and other.device is not None
            self._allocate(other.num_features, self.device or other.device)
        total, outer = self._sums()
        other_sum, other_outer = other._sums()
        total.add_(other_sum.to(total.device))
        outer.add_(other_outer.to(outer.device))
        self.num_samples += other.num_samples
        return self

    def __add__(self, other: FeatureStatistics) -> FeatureStatistics:
        """A new accumulator with the samples of both."""
        self._check_other(other)
        out = FeatureStatistics(num_features=self.num_features or other.num_features, device=self.device)
        return out.merge(self).merge(other)

    def all_reduce(self, group: Optional[dist.ProcessGroup] = None) -> FeatureStatistics:
        """Sum the count and both sums over the ranks of ``group`` (in place, when ``torch.distributed`` is
        initialised; else nothing to do); returns ``self``. Every rank must know the feature size (from an
        update, or ``num_features=``), and the sums must live on a device the backend supports (CUDA for
        NCCL)."""
        if not (dist.is_available() and dist.is_initialized()):
            return self
        total, outer = self._sums()
        count = torch.tensor([float(self.num_samples)], dtype=torch.float64, device=total.device)
        for t in (count, total, outer):
            dist.all_reduce(t, group=group)
        self.num_samples = int(count.item())
        return self

    @property
    def mean(self) -> torch.Tensor:
        r""":math:`\mu`, shape ``(D,)``, float64."""
        if self.num_samples < 1:
            raise ValueError("FeatureStatistics.mean needs at least 1 sample, got 0")
        total, _ = self._sums()
        return total / self.num_samples

    @property
    def covariance(self) -> torch.Tensor:
        r""":math:`\Sigma` (unbiased, divided by :math:`N - 1`), shape ``(D, D)``, float64, exactly symmetric."""
        n = self.num_samples
        if n < 2:
            raise ValueError(f"FeatureStatistics.covariance needs at least 2 samples, got {n}")
        total, _ = self._sums()
        outer = self._outer_full()
        # S - N μμᵀ = S - s sᵀ / N: cancellation loses about log10(|μ|² / σ²) of float64's 16 digits,
        # harmless for network features (whose means are within a few standard deviations of 0).
        return (outer - torch.outer(total, total) / n) / (n - 1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The count and the two sums: what :meth:`load_state_dict` restores (``torch.save`` it to reuse a
        data set's statistics)."""
        total, _ = self._sums()
        return {
            "num_samples": torch.tensor(self.num_samples),
            "sum": total.clone(),
            "sum_outer": self._outer_full(),
        }

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Replace the accumulated samples by those of ``state_dict`` (from :meth:`state_dict`)."""
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"num_samples", "sum", "sum_outer"}:
            keys = sorted(state_dict) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            raise ValueError(f"state_dict must hold 'num_samples', 'sum' and 'sum_outer', got {keys}")
        count = check_tensor("state_dict['num_samples']", state_dict["num_samples"])
        total = check_tensor("state_dict['sum']", state_dict["sum"])
        outer = check_tensor("state_dict['sum_outer']", state_dict["sum_outer"])
        d = total.shape[0] if total.ndim == 1 else -1
        if d < 1 or outer.shape != (d, d) or count.numel() != 1 or int(count) < 0:
            raise ValueError(
                f"state_dict must hold a count >= 0, a (D,) sum and a (D, D) sum_outer, got shapes "
                f"{tuple(count.shape)}, {tuple(total.shape)} and {tuple(outer.shape)}"
            )
        if self.num_features is not None and d != self.num_features:
            raise ValueError(f"state_dict must have {self.num_features} features, got {d}")
        self._allocate(d, self.device or total.device)
        assert self._sum is not None and self._outer is not None
        self._sum.copy_(total)
        self._outer.copy_(outer)
        self.num_samples = int(count)

    def __repr__(self) -> str:
        return f"FeatureStatistics(num_features={self.num_features}, num_samples={self.num_samples})"
