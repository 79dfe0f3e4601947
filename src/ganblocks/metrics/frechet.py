r"""The Fréchet distance between Gaussians fitted to features (FID), and the statistics of a feature extractor."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import Any, Callable, Optional, Union, overload

import torch
from torch import nn

from .._checks import check_float_tensor, check_int
from .statistics import FeatureStatistics

# Images: a tensor, an iterable of batches (or of tuples/lists whose first element is the batch), or n -> batch.
Images = Union[
    torch.Tensor, Iterable[Union[torch.Tensor, tuple[Any, ...], list[Any]]], Callable[[int], torch.Tensor]
]


def _trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    r""":math:`\operatorname{tr}\big((\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2})^{1/2}\big)`: the sum of the square roots
    of the eigenvalues of a symmetric matrix similar to :math:`\Sigma_1 \Sigma_2`.

    That matrix is :math:`L^\top \Sigma_2 L` for the Cholesky factor :math:`\Sigma_1 = L L^\top` (a few times
    cheaper than an eigendecomposition with eigenvectors); where :math:`\Sigma_1` is singular and has none, it
    is :math:`\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}` from the eigendecomposition of :math:`\Sigma_1`.
    Eigenvalues below 0 (rounding, on positive semi-definite matrices) count as 0.
    """
    chol, info = torch.linalg.cholesky_ex(sigma1)
    if int(info) == 0:
        product = chol.mT @ sigma2 @ chol
    else:
        vals, vecs = torch.linalg.eigh(sigma1)
        root1 = (vecs * vals.clamp_min(0).sqrt()) @ vecs.mT
        product = root1 @ sigma2 @ root1
    roots: torch.Tensor = torch.linalg.eigvalsh((product + product.mT) / 2).clamp_min(0).sqrt()
    return roots.sum()


@overload
def frechet_distance(mu1: FeatureStatistics, sigma1: FeatureStatistics) -> torch.Tensor: ...
@overload
def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> torch.Tensor: ...
def frechet_distance(
    mu1: Union[torch.Tensor, FeatureStatistics],
    sigma1: Union[torch.Tensor, FeatureStatistics],
    mu2: Optional[torch.Tensor] = None,
    sigma2: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    r"""The Fréchet distance between :math:`\mathcal N(\mu_1, \Sigma_1)` and :math:`\mathcal N(\mu_2, \Sigma_2)`.

    .. math::
        d^2 = \lVert \mu_1 - \mu_2 \rVert_2^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
              - 2 \operatorname{tr}\big((\Sigma_1^{1/2}\, \Sigma_2\, \Sigma_1^{1/2})^{1/2}\big)

    On Inception-v3 pool features this is FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule
    Converge to a Local Nash Equilibrium", NeurIPS 2017). The last trace equals pytorch-fid's
    :math:`\operatorname{tr}\sqrt{\Sigma_1\Sigma_2}` (the two matrices are similar), but is computed in
    float64 from the eigenvalues of a symmetric matrix similar to :math:`\Sigma_1\Sigma_2`
    (:math:`L^\top \Sigma_2 L` with the Cholesky factor :math:`\Sigma_1 = LL^\top`, or
    :math:`\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}` from an eigendecomposition where :math:`\Sigma_1` is
    singular), without scipy and never in complex numbers: the eigenvalues that rounding pushes below 0
    count as 0.

    Called with two :class:`FeatureStatistics` (``frechet_distance(fake, real)``) it takes their means and
    covariances, and warns when one holds no more samples than features: its covariance is then singular
    (rank at most :math:`N - 1`), the distance stays finite but is biased.

    Args:
        mu1: mean of the first set, ``(D,)`` (or its :class:`FeatureStatistics`).
        sigma1: covariance of the first set, ``(D, D)`` (or the second set's :class:`FeatureStatistics`).
        mu2: mean of the second set, ``(D,)``.
        sigma2: covariance of the second set, ``(D, D)``.

    Returns:
        A 0-dimensional float64 tensor on the inputs' device: :math:`d^2` (it is what "FID" reports; it can be
        a rounding error below 0 for two equal sets).

    Example:
        >>> import torch
        >>> from ganblocks.metrics import frechet_distance
        >>> mu, sigma = torch.zeros(2), torch.eye(2)
        >>> frechet_distance(mu, sigma, mu + 1, 4 * sigma)  # 2 + (2 + 8 - 2·(2 + 2))
        tensor(4., dtype=torch.float64)
    """
    if isinstance(mu1, FeatureStatistics) or isinstance(sigma1, FeatureStatistics):
        if not (isinstance(mu1, FeatureStatistics) and isinstance(sigma1, FeatureStatistics)) or (
            mu2 is not None or sigma2 is not None
        ):
            raise TypeError(
                "frechet_distance takes two FeatureStatistics, or four tensors (mu1, sigma1, mu2, sigma2)"
            )
        for name, stats in (("mu1", mu1), ("sigma1", sigma1)):
            if stats.num_features is not None and stats.num_samples <= stats.num_features:
                warnings.warn(
                    f"frechet_distance: the FeatureStatistics passed as {name} hold {stats.num_samples} samples "
                    f"of {stats.num_features} features: their covariance is singular and the distance is "
                    "biased; use more samples than features",
                    stacklevel=2,
                )
        a, b = mu1, sigma1
        mu1, sigma1, mu2, sigma2 = a.mean, a.covariance, b.mean, b.covariance
    if mu2 is None or sigma2 is None:
        raise TypeError(
            "frechet_distance takes two FeatureStatistics, or four tensors (mu1, sigma1, mu2, sigma2)"
        )
    mus = [check_float_tensor(n, t, exact_ndim=1) for n, t in (("mu1", mu1), ("mu2", mu2))]
    sigmas = [check_float_tensor(n, t, exact_ndim=2) for n, t in (("sigma1", sigma1), ("sigma2", sigma2))]
    d = mus[0].shape[0]
    for name, t, shape in (
        ("mu2", mus[1], (d,)),
        ("sigma1", sigmas[0], (d, d)),
        ("sigma2", sigmas[1], (d, d)),
    ):
        if tuple(t.shape) != shape:
            raise ValueError(
                f"{name} must have shape {shape} to match mu1 of shape {(d,)}, got {tuple(t.shape)}"
            )
    for name, t in (("mu1", mus[0]), ("sigma1", sigmas[0]), ("mu2", mus[1]), ("sigma2", sigmas[1])):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} must be finite, got NaN or infinite entries")
    m1, m2, s1, s2 = (t.detach().to(device=mus[0].device, dtype=torch.float64) for t in (*mus, *sigmas))
    s1, s2 = (s1 + s1.mT) / 2, (s2 + s2.mT) / 2
    return (m1 - m2).square().sum() + s1.trace() + s2.trace() - 2 * _trace_sqrt_product(s1, s2)


def _batches(images: Images, num_samples: Optional[int], batch_size: int) -> Iterator[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        yield from torch.split(images[:num_samples], batch_size)
    elif callable(images):
        if num_samples is None:
            raise ValueError("num_samples is required when images is a callable (a generator of batches)")
        for start in range(0, num_samples, batch_size):
            yield images(min(batch_size, num_samples - start))
    else:
        seen = 0
        for item in images:
            # A DataLoader of (images, labels, ...) pairs: the images are the first element.
            batch = item[0] if isinstance(item, (tuple, list)) else item
            if num_samples is not None and seen >= num_samples:
                return
            batch = batch if num_samples is None else batch[: num_samples - seen]
            seen += len(batch)
            yield batch


@torch.no_grad()
def feature_statistics(
    extractor: Callable[[torch.Tensor], torch.Tensor],
    images: Images,
    *,
    num_samples: Optional[int] = None,
    batch_size: int = 50,
) -> FeatureStatistics:
    r"""The :class:`FeatureStatistics` of ``extractor``'s features of ``images``, batch by batch.

    ``images`` is one of:

    * a tensor ``(N, C, H, W)``, run in batches of ``batch_size``;
    * an iterable of image batches (a ``DataLoader`` of images, a list of tensors), run as they come; where
      it yields tuples or lists (a ``DataLoader`` of ``(images, labels)``), their first elements;
    * a callable ``images(n) -> (n, C, H, W)``, e.g. ``lambda n: G(torch.randn(n, z_dim))``, called with
      ``batch_size`` (the last call with the remainder) until ``num_samples`` images are drawn.

    ``extractor`` maps a batch to features ``(n, D)`` (any ``nn.Module`` or function: an Inception network
    for FID, a classifier's penultimate layer, ...); it runs under ``torch.no_grad()``, on whatever device
    the batches are on.

    Args:
        extractor: images ``(n, C, H, W)`` to features ``(n, D)``.
        images: the images: a tensor, an iterable of batches or a callable (see above).
        num_samples: how many images (required for a callable; for the others at most this many, all when
            None).
        batch_size: batch size for a tensor and a callable.

    Returns:
        The accumulated statistics (``frechet_distance(feature_statistics(f, fake), real_stats)`` is FID).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from ganblocks.metrics import feature_statistics, frechet_distance
        >>> extractor = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16))
        >>> real = feature_statistics(extractor, torch.randn(200, 3, 8, 8), batch_size=64)
        >>> fake = feature_statistics(extractor, lambda n: torch.randn(n, 3, 8, 8), num_samples=200)
        >>> real.num_samples, fake.num_samples
        (200, 200)
        >>> float(frechet_distance(fake, real)) > 0
        True
    """
    if not callable(extractor):
        raise TypeError(
            f"extractor must be callable (an nn.Module or a function), got {type(extractor).__name__}"
        )
    check_int("batch_size", batch_size)
    if num_samples is not None:
        check_int("num_samples", num_samples)
    if not (isinstance(images, torch.Tensor) or callable(images) or isinstance(images, Iterable)):
        raise TypeError(
            f"images must be a tensor, an iterable of image batches or a callable n -> images, got "
            f"{type(images).__name__}"
        )
    stats = FeatureStatistics()
    for batch in _batches(images, num_samples, batch_size):
        features = extractor(batch)
        if not isinstance(features, torch.Tensor) or features.ndim != 2 or features.shape[0] != len(batch):
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(
                f"extractor must return features of shape (N, D) for a batch of N = {len(batch)} images, got "
                f"{shape}"
            )
        stats.update(features)
    if num_samples is not None and stats.num_samples < num_samples:
        raise ValueError(f"images gave {stats.num_samples} images, fewer than num_samples={num_samples}")
    return stats


class FrechetDistance(nn.Module):
    r"""FID-style evaluation with any feature extractor: the Fréchet distance of images to a reference set.

    Holds the extractor and the reference (real) :class:`FeatureStatistics`; calling it computes the
    statistics of the given images with :func:`feature_statistics` and returns
    ``frechet_distance(fake, reference)``. The reference is computed once (:meth:`set_reference`) or loaded
    from a saved ``reference.state_dict()`` (``reference.load_state_dict(torch.load(path,
    weights_only=True))``).

    Args:
        extractor: images ``(n, C, H, W)`` to features ``(n, D)`` (a submodule: ``.to(device)`` moves it).
        reference: precomputed statistics of the real images (None: call :meth:`set_reference`).
        batch_size: batch size for tensors and callables.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from ganblocks.metrics import FrechetDistance
        >>> fid = FrechetDistance(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16)), batch_size=64)
        >>> fid.set_reference(torch.randn(300, 3, 8, 8))
        >>> float(fid(lambda n: torch.randn(n, 3, 8, 8) + 1, num_samples=300)) > 1
        True
    """

    def __init__(
        self,
        extractor: nn.Module,
        *,
        reference: Optional[FeatureStatistics] = None,
        batch_size: int = 50,
    ) -> None:
        super().__init__()
        if not isinstance(extractor, nn.Module):
            raise TypeError(f"extractor must be an nn.Module, got {type(extractor).__name__}")
        if reference is not None and not isinstance(reference, FeatureStatistics):
            raise TypeError(f"reference must be a FeatureStatistics or None, got {type(reference).__name__}")
        self.extractor = extractor
        self.reference = reference
        self.batch_size = check_int("batch_size", batch_size)

    def set_reference(self, images: Images, *, num_samples: Optional[int] = None) -> None:
        """Compute the reference statistics from real ``images`` (as :func:`feature_statistics` takes them)."""
        self.reference = feature_statistics(
            self.extractor, images, num_samples=num_samples, batch_size=self.batch_size
        )

    def forward(self, images: Images, *, num_samples: Optional[int] = None) -> torch.Tensor:
        """The Fréchet distance of ``images``' features to the reference: a 0-dimensional float64 tensor."""
        if self.reference is None:
            raise ValueError(
                "FrechetDistance has no reference statistics: call set_reference(real_images) first"
            )
        fake = feature_statistics(self.extractor, images, num_samples=num_samples, batch_size=self.batch_size)
        return frechet_distance(fake, self.reference)

    def extra_repr(self) -> str:
        ref = "None" if self.reference is None else f"{self.reference.num_samples} samples"
        return f"reference={ref}, batch_size={self.batch_size}"
