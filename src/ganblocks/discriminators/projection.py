r"""The projection discriminator (Miyato & Koyama 2018): class conditioning of any ganblocks discriminator."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, Optional, TypeAlias, Union

import torch
from torch import nn

from .._checks import check_choice, check_int, check_tensor
from .._class_labels import check_class_labels
from ..outputs import DiscriminatorOutput
from .multiscale import MultiScaleDiscriminator

Pool: TypeAlias = Literal["sum", "mean"]
POOLS: tuple[Pool, ...] = ("sum", "mean")


def _feature_channels(feature_channels: Union[int, Sequence[int]]) -> list[int]:
    if isinstance(feature_channels, int) and not isinstance(feature_channels, bool):
        return [check_int("feature_channels", feature_channels)]
    if isinstance(feature_channels, Sequence) and len(feature_channels) > 0:
        return [check_int(f"feature_channels[{i}]", c) for i, c in enumerate(feature_channels)]
    raise TypeError(
        "feature_channels must be a positive int or a non-empty sequence of them (one per scale), "
        f"got {feature_channels!r}"
    )


class ProjectionHead(nn.Module):
    r"""Adds the class projection :math:`\langle e_y, \phi_s(x) \rangle` to each scale's logits.

    For scale :math:`s` with logits :math:`\ell_s(x)` and last feature map :math:`h_s(x)` (the last entry
    of ``output.features[s]``, shape :math:`(N, C_s, H, W)` or :math:`(N, C_s)`),

    .. math::
        \ell'_s(x, y) = \ell_s(x) + g_s \, \langle e^{(s)}_y,\ \phi_s(x) \rangle, \qquad
        \phi_s(x) = \sum_{h, w} h_s(x)_{:, h, w}

    with :math:`\phi_s` the global *sum* pooling of the paper and SNGAN (``pool="mean"`` averages
    instead), :math:`e^{(s)}_y` a learned embedding of class :math:`y` per scale, and the projection added
    to every element of the scale's logits (one value per image, broadcast over a patch discriminator's
    patches). Class vectors :math:`c` (one-hot or soft, shape :math:`(N, K)`) use
    :math:`e_c = c^\top E`.

    ``equalized_lr=True`` (default) scales as StyleGAN2-ADA's conditional discriminator: :math:`E` stored
    :math:`\mathcal{N}(0, 1)`, used as :math:`E / \sqrt{K}` (an equalized linear layer of the one-hot
    code; StyleGAN2-ADA passes that embedding through a mapping network first), and
    :math:`g_s = 1/\sqrt{C_s}` (its ``1 / sqrt(cmap_dim)``) keeps the projection at the logit's scale. ``equalized_lr=False``
    is SNGAN's: :math:`E` initialised Xavier-uniform (as SNGAN's ``l_y``) and :math:`g_s = 1`; wrap
    ``head.embeddings[s]`` in :func:`torch.nn.utils.parametrizations.spectral_norm` for its spectral norm.

    Args:
        num_classes: :math:`K`.
        feature_channels: :math:`C_s`, the channels of each scale's last feature map: one int for one
            scale (or the same for all scales with ``num_scales``), or one per scale, finest first.
        num_scales: the number of scales when ``feature_channels`` is one int (default 1).
        pool: ``"sum"`` (the paper's) or ``"mean"`` over the feature map's spatial positions.
        equalized_lr: StyleGAN2-ADA's scaling (True) or SNGAN's plain embedding (False).
        device: device of the embeddings.
        dtype: dtype of the embeddings.

    Shape:
        - ``output``: a :class:`DiscriminatorOutput` with features (built with ``return_features=True``).
        - ``y``: :math:`(N,)` integer classes in :math:`[0, K)` or :math:`(N, K)` float class vectors.
        - Output: a :class:`DiscriminatorOutput`, the same shapes, features passed through.

    Example:
        >>> import torch
        >>> from ganblocks import DiscriminatorOutput
        >>> from ganblocks.discriminators import ProjectionHead
        >>> head = ProjectionHead(3, 2, equalized_lr=False)
        >>> with torch.no_grad():
        ...     _ = head.embeddings[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        >>> out = DiscriminatorOutput([torch.zeros(1, 1)], [[torch.ones(1, 2, 2, 2)]])  # φ = (4, 4)
        >>> head(out, torch.tensor([2])).logits[0]
        tensor([[8.]], grad_fn=<AddBackward0>)

    Reference:
        Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018; Karras et al., "Training
        Generative Adversarial Networks with Limited Data" (StyleGAN2-ADA), NeurIPS 2020 (the scaling).
    """

    def __init__(
        self,
        num_classes: int,
        feature_channels: Union[int, Sequence[int]],
        *,
        num_scales: int = 1,
        pool: Pool = "sum",
        equalized_lr: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes)
        channels = _feature_channels(feature_channels)
        check_int("num_scales", num_scales)
        if isinstance(feature_channels, int):
            channels = channels * num_scales
        elif num_scales not in (1, len(channels)):
            raise ValueError(
                f"num_scales ({num_scales}) must match the {len(channels)} entries of feature_channels, or "
                "be left at 1"
            )
        self.feature_channels = channels
        self.pool: Pool = check_choice("pool", pool, POOLS)
        self.equalized_lr = bool(equalized_lr)
        self.embeddings = nn.ModuleList(
            self._embedding(num_classes, c, device=device, dtype=dtype) for c in channels
        )
        self.reset_parameters()

    @staticmethod
    def _embedding(
        num_classes: int,
        channels: int,
        *,
        device: Optional[Union[torch.device, str]],
        dtype: Optional[torch.dtype],
    ) -> nn.Embedding:
        # Built on the meta device and given uninitialised storage, so that reset_parameters draws the
        # initial values once (nn.Embedding's constructor draws its own first).
        emb = nn.Embedding(num_classes, channels, device="meta")
        emb.weight = nn.Parameter(torch.empty(num_classes, channels, device=device, dtype=dtype))
        return emb

    def reset_parameters(self) -> None:
        for emb in self.embeddings:
            assert isinstance(emb, nn.Embedding)
            if self.equalized_lr:
                nn.init.normal_(emb.weight)
            else:
                nn.init.xavier_uniform_(emb.weight)

    @property
    def num_scales(self) -> int:
        return len(self.embeddings)

    def embed(self, y: torch.Tensor, scale: int = 0) -> torch.Tensor:
        """:math:`e^{(s)}_y` with the equalized gain, shape :math:`(N, C_s)` (``y`` unchecked)."""
        emb = self.embeddings[scale]
        assert isinstance(emb, nn.Embedding)
        weight = emb.weight
        e = y.to(weight.dtype) @ weight if y.is_floating_point() else weight[y]
        return e * (1.0 / math.sqrt(self.num_classes)) if self.equalized_lr else e

    def forward(self, output: DiscriminatorOutput, y: torch.Tensor) -> DiscriminatorOutput:
        if not isinstance(output, DiscriminatorOutput):
            raise TypeError(
                f"output must be a DiscriminatorOutput (with features), got {type(output).__name__}"
            )
        if len(output.logits) != self.num_scales or len(output.features) != self.num_scales:
            raise ValueError(
                f"output must have {self.num_scales} scale(s), one per entry of feature_channels "
                f"{self.feature_channels}; got {len(output.logits)}"
            )
        n = output.logits[0].shape[0]
        y = check_class_labels("y", y, self.num_classes, n)
        logits = []
        for s, (logit, feats) in enumerate(zip(output.logits, output.features)):
            if not feats:
                raise ValueError(
                    f"output holds no features at scale {s}: build or call the discriminator with "
                    "return_features=True"
                )
            h = feats[-1]
            if h.ndim < 2 or h.shape[0] != n or h.shape[1] != self.feature_channels[s]:
                raise ValueError(
                    f"the last feature map of scale {s} must have shape (N={n}, C={self.feature_channels[s]}, "
                    f"...) to match feature_channels, got {tuple(h.shape)}"
                )
            # Pooled and projected in float32 (or wider) under autocast: a sum over H·W positions and C
            # channels can leave float16's range; the result is added in the logits' dtype.
            h = h.to(torch.promote_types(h.dtype, torch.float32))
            phi = h.flatten(2).sum(2) if h.ndim > 2 else h
            if self.pool == "mean" and h.ndim > 2:
                phi = phi / math.prod(h.shape[2:])
            proj = (self.embed(y, s).to(phi.dtype) * phi).sum(1)
            if self.equalized_lr:
                proj = proj * (1.0 / math.sqrt(self.feature_channels[s]))
            logits.append(logit + proj.reshape(n, *([1] * (logit.ndim - 1))).to(logit.dtype))
        return DiscriminatorOutput(logits, output.features)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, feature_channels={self.feature_channels}, pool={self.pool!r}, "
            f"equalized_lr={self.equalized_lr}"
        )


class ProjectionDiscriminator(nn.Module):
    r"""A class-conditional discriminator: any ganblocks discriminator plus a :class:`ProjectionHead`.

    ``forward(x, y)`` runs ``discriminator(x, return_features=True)`` and adds
    :math:`g_s\langle e^{(s)}_y, \phi_s(x)\rangle` to each scale's logits (see :class:`ProjectionHead`); the
    result is a :class:`DiscriminatorOutput` like the wrapped discriminator's, so every loss and penalty
    takes it unchanged (R1 through it differentiates the projection too).

    Args:
        discriminator: a module whose forward takes ``return_features=True`` and returns a
            :class:`DiscriminatorOutput` (:class:`PatchDiscriminator`, :class:`MultiScaleDiscriminator`,
            :class:`MSGDiscriminator`, ...).
        num_classes: number of classes :math:`K`.
        feature_channels: channels of each scale's last feature map (one int for every scale, or one
            per scale); e.g. ``PatchDiscriminator``'s penultimate width, an MSG discriminator's 4×4 block.
        num_scales: the number of scales of the discriminator's output, for one int ``feature_channels``
            (None: a :class:`MultiScaleDiscriminator`'s ``num_scales``, else 1).
        pool: ``"sum"`` (the paper's) or ``"mean"``.
        equalized_lr: StyleGAN2-ADA's scaling (True) or SNGAN's (False); see :class:`ProjectionHead`.
        device: device of the embeddings.
        dtype: dtype of the embeddings.

    Example:
        >>> import torch
        >>> from ganblocks import PatchDiscriminator, ProjectionDiscriminator
        >>> d = ProjectionDiscriminator(PatchDiscriminator(3, num_layers=2), num_classes=10, feature_channels=256)
        >>> out = d(torch.randn(2, 3, 32, 32), torch.tensor([3, 7]))
        >>> out.logits[0].shape
        torch.Size([2, 1, 11, 11])

    Reference:
        Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018.
    """

    head: ProjectionHead

    def __init__(
        self,
        discriminator: nn.Module,
        *,
        num_classes: int,
        feature_channels: Union[int, Sequence[int]],
        num_scales: Optional[int] = None,
        pool: Pool = "sum",
        equalized_lr: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if not isinstance(discriminator, nn.Module):
            raise TypeError(f"discriminator must be an nn.Module, got {type(discriminator).__name__}")
        self.discriminator = discriminator
        if num_scales is None:
            # MSGDiscriminator's num_scales counts its input images; its output has one scale.
            num_scales = discriminator.num_scales if isinstance(discriminator, MultiScaleDiscriminator) else 1
        self.head = ProjectionHead(
            num_classes,
            feature_channels,
            num_scales=num_scales,
            pool=pool,
            equalized_lr=equalized_lr,
            device=device,
            dtype=dtype,
        )

    def forward(self, x: Any, y: torch.Tensor, **kwargs: Any) -> DiscriminatorOutput:
        """``x`` as the wrapped discriminator takes it (an image batch, or an MSG pyramid); ``y`` the classes."""
        check_tensor("y", y)
        out = self.discriminator(x, return_features=True, **kwargs)
        if not isinstance(out, DiscriminatorOutput):
            raise TypeError(
                "discriminator must return a DiscriminatorOutput when called with return_features=True, "
                f"got {type(out).__name__}"
            )
        result: DiscriminatorOutput = self.head(out, y)
        return result
