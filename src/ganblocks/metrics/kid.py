r"""The kernel distance (KID): unbiased MMD² with a cubic polynomial kernel, averaged over random subsets."""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from .._checks import check_finite, check_int, check_positive
from ._features import check_features


class KernelDistance(NamedTuple):
    """The mean and the standard deviation (over the subsets) of the MMD² estimates; float64 tensors."""

    mean: torch.Tensor
    std: torch.Tensor


def polynomial_mmd(
    x: torch.Tensor, y: torch.Tensor, *, degree: int = 3, gamma: Optional[float] = None, coef0: float = 1.0
) -> torch.Tensor:
    r"""The unbiased estimate of the squared MMD between the samples ``x`` and ``y``, polynomial kernel.

    .. math::
        k(a, b) = (\gamma\, a^\top b + c)^p, \qquad
        \widehat{\mathrm{MMD}}^2 = \frac{\sum_{i \ne j} k(x_i, x_j)}{m(m-1)}
            + \frac{\sum_{i \ne j} k(y_i, y_j)}{n(n-1)} - \frac{2 \sum_{i, j} k(x_i, y_j)}{m n}

    with :math:`\gamma = 1/D` by default, :math:`c` = ``coef0`` = 1 and :math:`p` = ``degree`` = 3
    (Bińkowski et al., "Demystifying MMD GANs", ICLR 2018). The within-set sums leave out the diagonal, which
    makes the estimate unbiased: its expectation is 0 for two samples of one distribution (so a single value
    can be below 0). Computed in float64.

    Args:
        x: features ``(m, D)``, ``m >= 2``.
        y: features ``(n, D)``, ``n >= 2``.
        degree: the kernel's power :math:`p`.
        gamma: the scale :math:`\gamma` (None: :math:`1/D`).
        coef0: the constant :math:`c`.

    Returns:
        A 0-dimensional float64 tensor.

    Example:
        >>> import torch
        >>> from ganblocks.metrics import polynomial_mmd
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.randn(2, 1000, 8, generator=g)
        >>> round(polynomial_mmd(x, y).item(), 2), round(polynomial_mmd(x, y + 1).item(), 2)
        (0.0, 8.11)
    """
    x = check_features("x", x, min_samples=2)
    y = check_features("y", y, num_features=x.shape[1], min_samples=2)
    check_int("degree", degree)
    g = 1.0 / x.shape[1] if gamma is None else check_positive("gamma", gamma)
    c = check_finite("coef0", coef0)
    return _mmd(x.detach().double(), y.detach().to(x.device, torch.float64), degree, g, c)


def _mmd(x: torch.Tensor, y: torch.Tensor, degree: int, gamma: float, coef0: float) -> torch.Tensor:
    m, n = x.shape[0], y.shape[0]

    def off_diagonal_sum(a: torch.Tensor) -> torch.Tensor:
        k = (a @ a.T * gamma + coef0).pow(degree)
        return k.sum() - k.diagonal().sum()

    cross = (x @ y.T * gamma + coef0).pow(degree).sum()
    return off_diagonal_sum(x) / (m * (m - 1)) + off_diagonal_sum(y) / (n * (n - 1)) - 2 * cross / (m * n)


def kernel_distance(
    features1: torch.Tensor,
    features2: torch.Tensor,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    generator: Optional[torch.Generator] = None,
) -> KernelDistance:
    r"""KID: :func:`polynomial_mmd` (cubic kernel, :math:`\gamma = 1/D`, :math:`c = 1`) averaged over subsets.

    Each of ``num_subsets`` rounds draws ``subset_size`` rows of ``features1`` and ``subset_size`` rows of
    ``features2`` without replacement (``torch.randperm`` with ``generator``) and computes the unbiased
    :math:`\widehat{\mathrm{MMD}}^2` of the pair; the result is their mean and standard deviation
    (population, ``numpy.std``'s, as torch-fidelity reports it). Defaults of torch-fidelity and clean-fid:
    100 subsets of 1000 samples. On Inception-v3 pool features this is the Kernel Inception Distance
    (Bińkowski et al., "Demystifying MMD GANs", ICLR 2018); unlike FID it is unbiased in the number of
    samples, so values from sets of different sizes compare.

    Args:
        features1: features ``(N1, D)``, e.g. of generated images.
        features2: features ``(N2, D)``, e.g. of real images.
        num_subsets: how many subset pairs.
        subset_size: samples per subset, at most ``min(N1, N2)``.
        generator: the random number generator of the draws (None: torch's global one).

    Returns:
        ``KernelDistance(mean, std)``, 0-dimensional float64 tensors.

    Example:
        >>> import torch
        >>> from ganblocks.metrics import kernel_distance
        >>> g = torch.Generator().manual_seed(0)
        >>> a, b = torch.randn(500, 16, generator=g), torch.randn(500, 16, generator=g) + 0.5
        >>> kid = kernel_distance(a, b, num_subsets=10, subset_size=200, generator=g)
        >>> bool(kid.mean > 10 * kid.std)
        True
    """
    x = check_features("features1", features1, min_samples=2)
    y = check_features("features2", features2, num_features=x.shape[1], min_samples=2)
    check_int("num_subsets", num_subsets)
    check_int("subset_size", subset_size, minimum=2)
    if subset_size > min(x.shape[0], y.shape[0]):
        raise ValueError(
            f"subset_size must be at most the number of samples of each set ({x.shape[0]} and {y.shape[0]}), "
            f"got {subset_size}; pass a smaller subset_size"
        )
    x, y = x.detach().double(), y.detach().to(x.device, torch.float64)
    device = None if generator is None else generator.device
    estimates = []
    for _ in range(num_subsets):
        i = torch.randperm(x.shape[0], generator=generator, device=device)[:subset_size]
        j = torch.randperm(y.shape[0], generator=generator, device=device)[:subset_size]
        estimates.append(_mmd(x[i.to(x.device)], y[j.to(x.device)], 3, 1.0 / x.shape[1], 1.0))
    values = torch.stack(estimates)
    return KernelDistance(values.mean(), values.std(correction=0))
