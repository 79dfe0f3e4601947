r"""Class-conditional batch normalization (de Vries et al. 2017; SNGAN, BigGAN): per-class gain and bias."""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

from .._checks import check_float_tensor, check_int, check_ndim, check_positive, check_probability
from .._class_labels import check_class_labels


class ConditionalBatchNorm2d(nn.Module):
    r"""BatchNorm2d whose affine gain and bias depend on the class (or on a class embedding).

    .. math::
        y = \gamma(c) \odot \frac{x - \mathbb{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} + \beta(c)

    with the statistics of :class:`torch.nn.BatchNorm2d` (``affine=False``: batch statistics in training,
    running ones in eval; ``eps``, ``momentum`` and ``track_running_stats`` as torch's). The conditional
    :math:`\gamma, \beta` replace its affine parameters:

    - ``num_classes=K`` (SNGAN's categorical conditional BN): one learned row per class,
      :math:`\gamma(y) = \Gamma_y`, :math:`\beta(y) = B_y`, initialised to 1 and 0 like BatchNorm's affine;
      ``y`` is integer classes :math:`(N,)` or class vectors :math:`(N, K)` (then :math:`c^\top \Gamma`,
      :math:`c^\top B`).
    - ``embedding_dim=E`` (BigGAN's ``ccbn``): ``y`` is a float vector :math:`e` of size :math:`E` (a
      shared class embedding, in BigGAN concatenated with a chunk of :math:`z`), and
      :math:`\gamma = 1 + W_\gamma e + b_\gamma`, :math:`\beta = W_\beta e + b_\beta` with linear layers
      ``gain`` and ``shift`` (wrap them in :func:`torch.nn.utils.parametrizations.spectral_norm` for
      BigGAN's spectral norm).

    Args:
        num_features: channels :math:`C`.
        num_classes: :math:`K`, for per-class gains and biases (exactly one of ``num_classes`` and
            ``embedding_dim``).
        embedding_dim: :math:`E`, for gains and biases computed from an embedding.
        eps: added to the variance (1e-5, torch's; BigGAN uses 1e-5, SNGAN's Chainer code 2e-5).
        momentum: running-statistics momentum (0.1, torch's; None: a cumulative average).
        track_running_stats: keep running statistics for eval mode (torch's meaning).
        device: device of the parameters and buffers.
        dtype: dtype of the parameters and buffers.

    Shape:
        - x: :math:`(N, C, H, W)`.
        - y: :math:`(N,)` integer classes or :math:`(N, K)` class vectors (``num_classes``), or
          :math:`(N, E)` (``embedding_dim``).
        - Output: the shape of ``x``.

    Example:
        >>> import torch
        >>> from ganblocks.layers import ConditionalBatchNorm2d
        >>> bn = ConditionalBatchNorm2d(4, num_classes=10)
        >>> with torch.no_grad():
        ...     _ = bn.bias[7].fill_(3.0)  # class 7's bias; every gain starts at 1
        >>> out = bn(torch.randn(8, 4, 5, 5), torch.full((8,), 7))
        >>> out.shape, round(out.mean().item(), 4)
        (torch.Size([8, 4, 5, 5]), 3.0)

    Reference:
        de Vries et al., "Modulating early visual processing by language", NeurIPS 2017 (conditional BN);
        Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018 (class-conditional BN in the
        generator); Brock et al., "Large Scale GAN Training for High Fidelity Natural Image Synthesis"
        (BigGAN), ICLR 2019 (shared embedding).
    """

    def __init__(
        self,
        num_features: int,
        *,
        num_classes: Optional[int] = None,
        embedding_dim: Optional[int] = None,
        eps: float = 1e-5,
        momentum: Optional[float] = 0.1,
        track_running_stats: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.num_features = check_int("num_features", num_features)
        if (num_classes is None) == (embedding_dim is None):
            raise ValueError(
                "exactly one of num_classes (per-class gains and biases) and embedding_dim (gains and biases "
                f"from an embedding) must be given, got num_classes={num_classes!r}, "
                f"embedding_dim={embedding_dim!r}"
            )
        check_positive("eps", eps)
        if momentum is not None:
            check_probability("momentum", momentum)
        self.num_classes = None if num_classes is None else check_int("num_classes", num_classes)
        self.embedding_dim = None if embedding_dim is None else check_int("embedding_dim", embedding_dim)
        self.norm = nn.BatchNorm2d(
            num_features,
            eps=eps,
            momentum=momentum,
            affine=False,
            track_running_stats=track_running_stats,
            device=device,
            dtype=dtype,
        )
        self.weight: Optional[nn.Parameter] = None
        self.bias: Optional[nn.Parameter] = None
        self.gain: Optional[nn.Linear] = None
        self.shift: Optional[nn.Linear] = None
        if self.num_classes is not None:
            shape = (self.num_classes, num_features)
            self.weight = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
            self.bias = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        else:
            assert self.embedding_dim is not None
            self.gain = nn.Linear(self.embedding_dim, num_features, device=device, dtype=dtype)
            self.shift = nn.Linear(self.embedding_dim, num_features, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Running statistics reset; per-class gains 1 and biases 0 (linear layers keep torch's init)."""
        self.norm.reset_running_stats()
        if self.weight is not None and self.bias is not None:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def _affine(self, y: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.weight is not None and self.bias is not None:
            assert self.num_classes is not None
            y = check_class_labels("y", y, self.num_classes, n)
            if y.is_floating_point():
                return y.to(self.weight.dtype) @ self.weight, y.to(self.bias.dtype) @ self.bias
            return self.weight[y], self.bias[y]
        assert self.gain is not None and self.shift is not None
        e = check_float_tensor("y", y)
        if e.shape != (n, self.embedding_dim):
            raise ValueError(
                f"y must be the embedding of shape (N, embedding_dim) = ({n}, {self.embedding_dim}), got "
                f"{tuple(e.shape)}"
            )
        return 1.0 + self.gain(e), self.shift(e)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = check_float_tensor("x", x)
        check_ndim("x", x, exact=4)
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"x must have num_features={self.num_features} channels, got shape {tuple(x.shape)}"
            )
        gamma, beta = self._affine(y, x.shape[0])
        out: torch.Tensor = self.norm(x)
        return out * gamma[:, :, None, None].to(out.dtype) + beta[:, :, None, None].to(out.dtype)

    def extra_repr(self) -> str:
        cond = (
            f"num_classes={self.num_classes}"
            if self.num_classes is not None
            else f"embedding_dim={self.embedding_dim}"
        )
        return (
            f"{self.num_features}, {cond}, eps={self.norm.eps}, momentum={self.norm.momentum}, "
            f"track_running_stats={self.norm.track_running_stats}"
        )
