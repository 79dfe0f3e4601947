"""AC-GAN's class loss: −log softmax at the class by hand, both networks' sides, reductions, errors."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_close

from ganblocks import AuxiliaryClassifierLoss
from ganblocks.losses import auxiliary_classifier_loss


def hand(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    return -torch.log(p[torch.arange(len(y)), y])


def test_matches_hand_formula_and_reductions() -> None:
    logits, y = torch.randn(6, 5, dtype=torch.float64), torch.tensor([0, 4, 2, 2, 1, 3])
    per = auxiliary_classifier_loss(logits, y, reduction="none")
    assert_close(per, hand(logits, y))
    assert_close(auxiliary_classifier_loss(logits, y), hand(logits, y).mean())
    assert_close(auxiliary_classifier_loss(logits, y, reduction="sum"), hand(logits, y).sum())
    soft = torch.full((6, 5), 0.2, dtype=torch.float64)  # uniform targets: the mean of -log p over classes
    want = -(torch.log_softmax(logits, 1)).mean(1)
    assert_close(auxiliary_classifier_loss(logits, soft, reduction="none"), want)
    assert_close(
        auxiliary_classifier_loss(torch.zeros(2, 4), torch.tensor([1, 2])), torch.tensor(math.log(4.0))
    )


def test_gradient_raises_the_true_class_logit() -> None:
    logits = torch.zeros(1, 3, requires_grad=True)
    auxiliary_classifier_loss(logits, torch.tensor([1])).backward()
    assert logits.grad is not None
    assert_close(logits.grad, torch.tensor([[1 / 3, -2 / 3, 1 / 3]]))  # softmax - onehot


def test_module_d_and_g_sides() -> None:
    real, fake = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    yr, yf = torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2, 1, 0])
    ac = AuxiliaryClassifierLoss()
    assert_close(ac.d_loss(real, yr, fake, yf), hand(real, yr).mean() + hand(fake, yf).mean())
    assert_close(ac.d_loss(real, yr), hand(real, yr).mean())
    assert_close(ac.g_loss(fake, yf), hand(fake, yf).mean())
    assert_close(ac(fake, yf), ac.g_loss(fake, yf))
    half = AuxiliaryClassifierLoss(fake_weight=0.5, reduction="none")
    assert_close(half.d_loss(real, yr, fake, yf), hand(real, yr) + 0.5 * hand(fake, yf))
    assert "fake_weight=0.5" in repr(half)
    out = auxiliary_classifier_loss(real.to(torch.bfloat16), yr)
    assert out.dtype == torch.float32


def test_errors() -> None:
    with pytest.raises(ValueError, match="class_logits must have 2 dimensions"):
        auxiliary_classifier_loss(torch.zeros(2, 3, 1, 1), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"labels must hold class indices in \[0, 2\]"):
        auxiliary_classifier_loss(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(
        ValueError, match=r"labels as class vectors must have shape \(N, num_classes\) = \(2, 3\)"
    ):
        auxiliary_classifier_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="reduction must be"):
        auxiliary_classifier_loss(torch.zeros(2, 3), torch.tensor([0, 1]), reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="give both or neither"):
        AuxiliaryClassifierLoss().d_loss(torch.zeros(2, 3), torch.tensor([0, 1]), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="needs one batch size"):
        AuxiliaryClassifierLoss(reduction="none").d_loss(
            torch.zeros(2, 3), torch.tensor([0, 1]), torch.zeros(3, 3), torch.tensor([0, 1, 2])
        )
    with pytest.raises(ValueError, match="fake_weight must be"):
        AuxiliaryClassifierLoss(fake_weight=-1.0)
