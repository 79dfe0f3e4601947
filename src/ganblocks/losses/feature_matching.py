r"""Discriminator feature matching (pix2pixHD), reduced over all scales and layers in one multi-tensor pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, TypeAlias, Union

import torch
from torch import nn

from .._checks import check_nonempty, check_nonnegative
from ..outputs import PredLike, as_features
from ._distance import Criterion, check_criterion, per_sample_mean_distance, weighted_mean_distance
from ._reduction import Reduction, check_reduction, reduce_batch

Weights: TypeAlias = Union[float, Sequence[float]]


def _check_weights(name: str, weights: Optional[Weights]) -> Optional[Weights]:
    """None, one finite number ``>= 0``, or a tuple of them."""
    if weights is None:
        return None
    if isinstance(weights, (int, float)) and not isinstance(weights, bool):
        return check_nonnegative(name, weights)
    if isinstance(weights, Sequence) and not isinstance(weights, str):
        return tuple(check_nonnegative(f"{name}[{i}]", w) for i, w in enumerate(weights))
    raise TypeError(f"{name} must be a number or a sequence of numbers, got {type(weights).__name__}")


def _expand(name: str, weights: Optional[Weights], count: int, default: float, what: str) -> list[float]:
    checked = _check_weights(name, weights)
    if checked is None:
        return [default] * count
    if isinstance(checked, float):
        return [checked] * count
    values = list(checked)
    if len(values) != count:
        raise ValueError(f"{name} must have one weight per {what} ({count}), got {len(values)}")
    return values


def feature_matching_loss(
    fake: PredLike,
    real: PredLike,
    *,
    layer_weights: Optional[Weights] = None,
    scale_weights: Optional[Weights] = None,
    criterion: Criterion = "l1",
    weight: float = 1.0,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""Distance between the discriminator's features on fake and on real samples.

    .. math::
        L = \lambda \sum_{s} w_s \sum_{l} v_l \, \operatorname{mean}\big|F_{s,l}(\text{fake}) -
        \operatorname{sg}[F_{s,l}(\text{real})]\big|^p

    with :math:`p = 1` (``"l1"``) or 2 (``"l2"``, the mean squared error), :math:`\operatorname{sg}` a
    stop-gradient (real features are detached), :math:`v_l` the layer weights, :math:`w_s` the scale
    weights and :math:`\lambda` = ``weight``. Logits are not features: ``DiscriminatorOutput.from_nested``
    takes the last entry of each pix2pixHD scale as its logits and leaves it out, as pix2pixHD's loop does. The sum runs as one multi-tensor
    reduction over every scale and layer (``torch._foreach_*``), not a loop of small kernels.

    pix2pixHD's weighting is :math:`v_l = 4/(n_\text{layers}+1)`, :math:`w_s = 1/n_\text{scales}`,
    :math:`\lambda = 10`; :meth:`FeatureMatchingLoss.pix2pixhd` builds it.

    Args:
        fake: the discriminator's output on fake samples: a :class:`~ganblocks.DiscriminatorOutput`
            with features, as the discriminators here return with ``return_features=True``. pix2pixHD's
            nested lists (per scale ``[*features, logits]``) go through
            ``DiscriminatorOutput.from_nested(...)``: a bare list of per-scale lists raises, since it does
            not say whether each scale ends with its logits.
        real: the same on real samples; same number of scales and of layers, same shapes.
        layer_weights: one number for every layer, or one per layer (the same list at every scale);
            None means 1. Finite and ``>= 0``.
        scale_weights: one number for every scale, or one per scale; None means ``1 / num_scales``.
            Finite and ``>= 0``.
        criterion: ``"l1"`` or ``"l2"``.
        weight: the overall factor :math:`\lambda`, finite and ``>= 0``.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` over the batch. A sample's value is the
            formula above with each mean taken over that sample's elements of the feature map (its
            channels and positions), so ``"none"`` gives shape ``(N,)`` and its mean is the default.

    Returns:
        A scalar tensor, or ``(N,)`` for ``reduction="none"`` (float32 for half-precision features).
        NaN in the features propagates; an empty feature map (a batch of 0) raises a ValueError.

    Example:
        >>> import torch
        >>> from ganblocks import DiscriminatorOutput
        >>> from ganblocks.losses import feature_matching_loss
        >>> fake = DiscriminatorOutput.from_nested([[torch.ones(1, 2, 4, 4), torch.zeros(1, 1, 3, 3)]])
        >>> real = DiscriminatorOutput.from_nested([[torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 3, 3)]])
        >>> feature_matching_loss(fake, real, layer_weights=[2.0], weight=10.0)
        tensor(20.)

    Reference:
        Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs"
        (pix2pixHD), CVPR 2018; Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016.
    """
    check_criterion(criterion)
    check_nonnegative("weight", weight)
    check_reduction(reduction)
    fake_feats = as_features("fake", fake)
    real_feats = as_features("real", real)
    if len(fake_feats) != len(real_feats):
        raise ValueError(
            f"fake and real must have the same number of scales, got {len(fake_feats)} and {len(real_feats)}"
        )
    num_scales = len(fake_feats)
    s_weights = _expand("scale_weights", scale_weights, num_scales, 1.0 / num_scales, "scale")
    inputs: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    coeffs: list[float] = []
    for s, (f_layers, r_layers) in enumerate(zip(fake_feats, real_feats)):
        if len(f_layers) != len(r_layers):
            raise ValueError(
                f"fake and real must have the same number of feature maps at scale {s}, "
                f"got {len(f_layers)} and {len(r_layers)}"
            )
        l_weights = _expand("layer_weights", layer_weights, len(f_layers), 1.0, f"feature map at scale {s}")
        for j, (f, r) in enumerate(zip(f_layers, r_layers)):
            if f.shape != r.shape:
                raise ValueError(
                    f"fake and real must have the same shape at scale {s}, layer {j}, "
                    f"got {tuple(f.shape)} and {tuple(r.shape)}"
                )
            check_nonempty(f"fake (scale {s}, layer {j})", f)
            inputs.append(f)
            targets.append(r)
            coeffs.append(weight * s_weights[s] * l_weights[j])
    if reduction == "mean":
        return weighted_mean_distance(inputs, targets, coeffs, criterion=criterion)
    if any(x.ndim == 0 or x.shape[0] != inputs[0].shape[0] for x in inputs):
        raise ValueError(
            f"reduction={reduction!r} needs one batch size across every feature map, got shapes "
            f"{[tuple(x.shape) for x in inputs]}"
        )
    return reduce_batch(per_sample_mean_distance(inputs, targets, coeffs, criterion=criterion), reduction)


class FeatureMatchingLoss(nn.Module):
    r"""Discriminator feature matching; see :func:`ganblocks.losses.feature_matching_loss`.

    Args:
        layer_weights: one number, or one per layer; None means 1.
        scale_weights: one number, or one per scale; None means ``1 / num_scales``.
        criterion: ``"l1"`` or ``"l2"``.
        weight: the overall factor.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.

    Example:
        >>> import torch
        >>> from ganblocks import DiscriminatorOutput, FeatureMatchingLoss
        >>> loss = FeatureMatchingLoss.pix2pixhd(num_scales=1, num_layers=1)
        >>> fake = DiscriminatorOutput([torch.zeros(1, 1)], [[torch.ones(1, 4), torch.ones(1, 4)]])
        >>> real = DiscriminatorOutput([torch.zeros(1, 1)], [[torch.zeros(1, 4), torch.zeros(1, 4)]])
        >>> loss(fake, real)
        tensor(40.)
    """

    def __init__(
        self,
        *,
        layer_weights: Optional[Weights] = None,
        scale_weights: Optional[Weights] = None,
        criterion: Criterion = "l1",
        weight: float = 1.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        check_criterion(criterion)
        self.reduction: Reduction = check_reduction(reduction)
        self.layer_weights: Optional[Weights] = _check_weights("layer_weights", layer_weights)
        self.scale_weights: Optional[Weights] = _check_weights("scale_weights", scale_weights)
        self.criterion: Criterion = criterion
        self.weight = check_nonnegative("weight", weight)

    @classmethod
    def pix2pixhd(
        cls, num_scales: int = 3, num_layers: int = 3, *, lambda_feat: float = 10.0
    ) -> FeatureMatchingLoss:
        """pix2pixHD's weighting: ``4/(num_layers+1)`` per layer, ``1/num_scales`` per scale, L1, times 10.

        A pix2pixHD ``NLayerDiscriminator`` with ``n_layers`` strided convolutions (``num_layers`` here)
        yields ``num_layers + 1`` feature maps per scale (logits excluded); a call with another count raises.
        """
        for name, value in (("num_scales", num_scales), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        return cls(
            layer_weights=[4.0 / (num_layers + 1)] * (num_layers + 1),
            scale_weights=[1.0 / num_scales] * num_scales,
            criterion="l1",
            weight=lambda_feat,
        )

    def forward(self, fake: PredLike, real: PredLike) -> torch.Tensor:
        return feature_matching_loss(
            fake,
            real,
            layer_weights=self.layer_weights,
            scale_weights=self.scale_weights,
            criterion=self.criterion,
            weight=self.weight,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"layer_weights={self.layer_weights!r}, scale_weights={self.scale_weights!r}, "
            f"criterion={self.criterion!r}, weight={self.weight}, reduction={self.reduction!r}"
        )
