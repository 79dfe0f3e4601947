r"""The AC-GAN auxiliary-classifier loss (Odena et al. 2017): cross-entropy of D's class logits."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_float_tensor, check_ndim, check_nonempty, check_nonnegative
from .._class_labels import check_class_labels
from ._reduction import Reduction, check_reduction, reduce_batch


def auxiliary_classifier_loss(
    class_logits: torch.Tensor, labels: torch.Tensor, *, reduction: Reduction = "mean"
) -> torch.Tensor:
    r"""The cross-entropy of the discriminator's class logits against the classes of its inputs.

    .. math::
        L_C = \mathbb{E}\big[-\log \mathrm{softmax}(\ell(x))_{y}\big]

    with :math:`\ell(x)` the auxiliary classifier's :math:`K` logits; AC-GAN's discriminator minimises it on
    real images (their classes) and on generated ones (the classes they were generated for), and its
    generator minimises it on generated ones (see :class:`AuxiliaryClassifierLoss`). Class vectors
    (one-hot or soft, :math:`(N, K)` floats) are probabilities: :math:`-\sum_k y_k \log \mathrm{softmax}(\ell)_k`.
    Computed in float32 for half-precision logits, as :func:`torch.nn.functional.cross_entropy`.

    Args:
        class_logits: :math:`(N, K)` logits.
        labels: :math:`(N,)` integer classes in :math:`[0, K)` or :math:`(N, K)` class probabilities.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``) over the batch.

    Returns:
        A scalar, or ``(N,)`` for ``reduction="none"``.

    Example:
        >>> import torch
        >>> from ganblocks.losses import auxiliary_classifier_loss
        >>> auxiliary_classifier_loss(torch.zeros(2, 4), torch.tensor([0, 3]))  # log 4
        tensor(1.3863)

    Reference:
        Odena et al., "Conditional Image Synthesis with Auxiliary Classifier GANs", ICML 2017.
    """
    check_reduction(reduction)
    x = check_float_tensor("class_logits", class_logits)
    check_ndim("class_logits", x, exact=2)
    check_nonempty("class_logits", x)
    y = check_class_labels("labels", labels, x.shape[1], x.shape[0])
    wide = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    per_sample = F.cross_entropy(wide, y.to(wide.dtype) if y.is_floating_point() else y, reduction="none")
    return reduce_batch(per_sample, reduction)


class AuxiliaryClassifierLoss(nn.Module):
    r"""AC-GAN's class loss for both networks; see :func:`auxiliary_classifier_loss`.

    .. math::
        L_C^{D} = \mathrm{CE}(\ell(x_r), y_r) + \lambda_f\, \mathrm{CE}(\ell(G(z, y_f)), y_f), \qquad
        L_C^{G} = \mathrm{CE}(\ell(G(z, y_f)), y_f)

    added to the adversarial losses: AC-GAN's discriminator maximises
    :math:`L_S + L_C` and its generator :math:`L_C - L_S` in the paper's log-likelihood notation, i.e. both
    minimise the cross-entropy. ``fake_weight`` :math:`\lambda_f` (1, the paper's) set to 0 drops the
    fake images from the discriminator's class loss, as several later implementations do.

    Args:
        fake_weight: :math:`\lambda_f` in the discriminator's loss (1).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch; ``d_loss`` with ``"none"`` is
            sample :math:`i`'s real term plus its fake term and needs one batch size for both.

    Example:
        >>> import torch
        >>> from ganblocks import AuxiliaryClassifierLoss
        >>> ac = AuxiliaryClassifierLoss()
        >>> real, fake = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]])
        >>> ac.d_loss(real, torch.tensor([0]), fake, torch.tensor([1]))  # softplus(-2) + log 2
        tensor(0.8201)
        >>> ac.g_loss(fake, torch.tensor([1]))
        tensor(0.6931)
    """

    def __init__(self, *, fake_weight: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.fake_weight = check_nonnegative("fake_weight", fake_weight)
        self.reduction: Reduction = check_reduction(reduction)

    def d_loss(
        self,
        real_logits: torch.Tensor,
        real_labels: torch.Tensor,
        fake_logits: Optional[torch.Tensor] = None,
        fake_labels: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """The discriminator's class loss on real (and, when given, fake) class logits."""
        real = auxiliary_classifier_loss(real_logits, real_labels, reduction=self.reduction)
        if (fake_logits is None) != (fake_labels is None):
            raise ValueError("fake_logits and fake_labels go together: give both or neither")
        if fake_logits is None or fake_labels is None or self.fake_weight == 0.0:
            return real
        if self.reduction == "none" and fake_logits.shape[0] != real_logits.shape[0]:
            raise ValueError(
                "reduction='none' needs one batch size for real_logits and fake_logits, got "
                f"{real_logits.shape[0]} and {fake_logits.shape[0]}"
            )
        fake = auxiliary_classifier_loss(fake_logits, fake_labels, reduction=self.reduction)
        return real + self.fake_weight * fake

    def g_loss(self, fake_logits: torch.Tensor, fake_labels: torch.Tensor) -> torch.Tensor:
        """The generator's class loss: its images should be classified as the classes asked for."""
        return auxiliary_classifier_loss(fake_logits, fake_labels, reduction=self.reduction)

    def forward(self, class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One batch's class loss; see :func:`ganblocks.losses.auxiliary_classifier_loss`."""
        return auxiliary_classifier_loss(class_logits, labels, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"fake_weight={self.fake_weight}, reduction={self.reduction!r}"
