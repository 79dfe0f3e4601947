"""Minibatch discrimination (Salimans et al., 2016): ``minibatch_discrimination`` and ``MinibatchDiscrimination``.

A sibling of :class:`~ganblocks.layers.MinibatchStdDev`: both let the discriminator see statistics of the
whole batch, so that a collapsed generator (all samples alike) is easy to tell apart from real data.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from einops import einsum, rearrange
from torch import nn

from .._checks import check_float_tensor, check_int, check_positive, check_tensor


def minibatch_discrimination(
    x: torch.Tensor, weight: torch.Tensor, *, include_self: bool = False
) -> torch.Tensor:
    r"""Append, for every sample, its closeness to the other samples of the batch under learned projections.

    .. math::
        M_{i,b,c} = \sum_a x_{i,a} T_{a,b,c}, \qquad
        c_b(x_i, x_j) = \exp\!\big(-\lVert M_{i,b} - M_{j,b} \rVert_{L_1}\big), \qquad
        o(x_i)_b = \sum_{j \ne i} c_b(x_i, x_j)

    and the output is :math:`[x_i, o(x_i)]`. The sum leaves out each sample's similarity to itself, as the
    authors' code does (improved-gan's ``MinibatchLayer`` adds :math:`10^6` to the diagonal of the
    distances); the paper's equation writes the sum over all :math:`j`. ``include_self=True`` adds that
    self term, :math:`c_b(x_i, x_i) = \exp(0) = 1` per kernel: the features shift by exactly 1 and every
    gradient is unchanged. The self term is masked out of the sum rather than subtracted from it, so
    similarities far below 1 keep their precision. Built from broadcasting and an L1 reduction (no
    ``torch.cdist``), so it is differentiable to every order (R1, WGAN-GP). Memory is :math:`O(N^2 B C)`.

    Args:
        x: features ``(N, A)`` (flatten feature maps first).
        weight: the tensor :math:`T` of shape ``(A, B, C)``: ``B`` kernels of dimension ``C``.
        include_self: also count each sample's similarity to itself (1 per kernel).

    Returns:
        ``(N, A + B)``.

    Example:
        >>> import torch
        >>> from ganblocks.functional import minibatch_discrimination
        >>> x = torch.tensor([[0.0], [0.0], [1.0]])
        >>> minibatch_discrimination(x, torch.ones(1, 1, 2))  # 1 + exp(-2), 1 + exp(-2), 2 exp(-2)
        tensor([[0.0000, 1.1353],
                [0.0000, 1.1353],
                [1.0000, 0.2707]])

    Reference:
        Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016, section 3.2.
    """
    x = check_float_tensor("x", x, exact_ndim=2)
    check_tensor("weight", weight)
    if weight.ndim != 3 or weight.shape[0] != x.shape[1]:
        raise ValueError(
            f"weight must have shape (in_features, num_kernels, kernel_dim) with in_features = {x.shape[1]} "
            f"(the features of x), got {tuple(weight.shape)}"
        )
    m = einsum(x, weight.to(x.dtype), "n a, a b c -> n b c")
    # pairwise L1 distance per kernel: (N, 1, B, C) - (1, N, B, C) summed over C -> (N, N, B)
    dist = (rearrange(m, "i b c -> i 1 b c") - rearrange(m, "j b c -> 1 j b c")).abs().sum(dim=-1)
    sim = torch.exp(-dist)
    if not include_self:
        eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
        sim = sim.masked_fill(rearrange(eye, "i j -> i j 1"), 0.0)
    return torch.cat([x, sim.sum(dim=1)], dim=1)


class MinibatchDiscrimination(nn.Module):
    r"""Minibatch discrimination layer: ``x`` with ``num_kernels`` batch-similarity features appended.

    Holds the learned tensor ``weight`` :math:`T` of shape ``(in_features, num_kernels, kernel_dim)``,
    drawn from :math:`\mathcal{N}(0, \text{init\_std}^2)` (0.05, as the authors' code), and calls
    :func:`ganblocks.functional.minibatch_discrimination`, whose docstring gives the formula. Place it
    before the discriminator's last linear layer.

    Args:
        in_features: features :math:`A` of ``x``.
        num_kernels: number of kernels :math:`B` (appended features).
        kernel_dim: dimension :math:`C` of each kernel's projection.
        include_self: also count each sample's similarity to itself (the paper's sum over all ``j``; the
            authors' code, the default, leaves it out).
        init_std: standard deviation of the initial ``weight``.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: ``(N, in_features)``.
        - Output: ``(N, in_features + num_kernels)``.

    Example:
        >>> import torch
        >>> from ganblocks.layers import MinibatchDiscrimination
        >>> layer = MinibatchDiscrimination(16, 8, 3)
        >>> layer(torch.randn(4, 16)).shape
        torch.Size([4, 24])

    Reference:
        Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016, section 3.2.
    """

    def __init__(
        self,
        in_features: int,
        num_kernels: int,
        kernel_dim: int,
        *,
        include_self: bool = False,
        init_std: float = 0.05,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features)
        self.num_kernels = check_int("num_kernels", num_kernels)
        self.kernel_dim = check_int("kernel_dim", kernel_dim)
        self.include_self = bool(include_self)
        self.init_std = check_positive("init_std", init_std)
        self.weight = nn.Parameter(
            torch.empty((in_features, num_kernels, kernel_dim), device=device, dtype=dtype)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw ``weight`` from :math:`\\mathcal{N}(0, \\text{init\\_std}^2)`."""
        with torch.no_grad():
            self.weight.normal_(0.0, self.init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor("x", x, exact_ndim=2)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"x must have shape (N, in_features) with in_features = {self.in_features}, got {tuple(x.shape)}"
            )
        return minibatch_discrimination(x, self.weight, include_self=self.include_self)

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.num_kernels}, {self.kernel_dim}, include_self={self.include_self}, "
            f"init_std={self.init_std}"
        )
