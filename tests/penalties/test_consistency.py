"""bCR: the squared logit difference by hand, both terms and weights, scales, reuse of outputs, gradients."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers import assert_close
from torch import nn

from ganblocks.discriminators import DiscriminatorOutput
from ganblocks.penalties.consistency import ConsistencyRegularization, consistency_regularization
from ganblocks.training import DiffAugment


def test_linear_d_and_a_fixed_shift_by_hand() -> None:
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    d = lambda x: x @ w  # noqa: E731
    t = torch.tensor([0.2, 0.1, -0.4], dtype=torch.float64)
    real, fake = torch.randn(5, 3, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64)
    diff2 = (t @ w) ** 2  # D(x + t) - D(x) = t.w for every sample
    got = consistency_regularization(d, real, fake, augment=lambda x: x + t, weight_real=3.0, weight_fake=0.5)
    assert_close(got, 3.0 * diff2 + 0.5 * diff2)
    assert_close(consistency_regularization(d, real, None, augment=lambda x: x + t), 10 * diff2)


def test_random_augmentation_mean_squared_difference() -> None:
    d = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 1)).double()
    real, fake = torch.randn(4, 3, 8, 8, dtype=torch.float64), torch.randn(4, 3, 8, 8, dtype=torch.float64)
    augmented: list[torch.Tensor] = []

    def augment(x: torch.Tensor) -> torch.Tensor:
        augmented.append(DiffAugment()(x))
        return augmented[-1]

    got = consistency_regularization(d, real, fake, augment=augment)
    with torch.no_grad():
        expected = (
            10 * ((d(real) - d(augmented[0])) ** 2).mean() + 10 * ((d(fake) - d(augmented[1])) ** 2).mean()
        )
    assert_close(got, expected)


def test_multiscale_sum_or_mean_and_given_outputs() -> None:
    def d(x: torch.Tensor) -> DiscriminatorOutput:
        return DiscriminatorOutput([x.sum((1, 2, 3)).view(-1, 1), x[:, :, :2, :2]], [[], []])

    real = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    aug = lambda x: 2 * x  # noqa: E731  (logits double: the difference is the logits themselves)
    per_scale = [d(real).logits[0].square().mean(), d(real).logits[1].square().mean()]
    got_sum = consistency_regularization(d, real, None, augment=aug, weight_real=1.0)
    got_mean = consistency_regularization(d, real, None, augment=aug, weight_real=1.0, scale_reduction="mean")
    assert_close(got_sum, per_scale[0] + per_scale[1])
    assert_close(got_mean, (per_scale[0] + per_scale[1]) / 2)
    reused = consistency_regularization(d, real, None, augment=aug, weight_real=1.0, real_pred=d(real))
    assert_close(reused, got_sum)


def test_gradients_reach_both_sides_of_d_and_not_the_generator() -> None:
    d = nn.Linear(3, 1).double()
    g_param = torch.ones(3, dtype=torch.float64, requires_grad=True)
    real, fake = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64) * g_param
    t = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    cr = ConsistencyRegularization(lambda x: x + t, weight_real=1.0, weight_fake=2.0)
    cr(d, real, fake).backward()
    # L = 3 (w.t)^2 = 3 w_0^2: dL/dw = 6 w_0 e_0; the bias cancels; fake was detached.
    expected = torch.zeros(1, 3, dtype=torch.float64)
    expected[0, 0] = 6 * d.weight[0, 0].item()
    assert d.weight.grad is not None and d.bias.grad is not None
    assert_close(d.weight.grad, expected)
    assert_close(d.bias.grad, torch.zeros(1, dtype=torch.float64))
    assert g_param.grad is None


def test_module_repr_and_errors() -> None:
    cr = ConsistencyRegularization(DiffAugment("translation"), weight_fake=5.0)
    assert "augment): DiffAugment" in repr(
        cr
    ) and "weight_real=10.0, weight_fake=5.0, scale_reduction='sum', reduction='mean'" in repr(cr)
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="weight_real must be >= 0, got -1"):
        consistency_regularization(lambda v: v, x, x, augment=lambda v: v, weight_real=-1.0)
    with pytest.raises(TypeError, match="augment must be callable"):
        ConsistencyRegularization(3)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"augment must return a tensor of real's shape \(2, 3\), got \(2, 2\)"
    ):
        consistency_regularization(lambda v: v, x, x, augment=lambda v: v[:, :2])
    with pytest.raises(ValueError, match="scale_reduction must be one of"):
        ConsistencyRegularization(lambda v: v, scale_reduction="max")  # type: ignore[arg-type]
    with torch.no_grad(), pytest.raises(RuntimeError, match="needs autograd"):
        consistency_regularization(lambda v: v, x, x, augment=lambda v: v)


def test_reduction_over_samples() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 1, 3).double()
    d = lambda x: [conv(x), conv(x).mean((2, 3))]  # noqa: E731  two scales: 2x2 patches and one logit
    flip = lambda x: x.flip(-1) * 0.5  # noqa: E731
    real, fake = torch.randn(3, 3, 4, 4, dtype=torch.float64), torch.randn(3, 3, 4, 4, dtype=torch.float64)
    kw: dict[str, Any] = {"augment": flip, "weight_real": 2.0, "weight_fake": 0.5, "scale_reduction": "mean"}
    each = consistency_regularization(d, real, fake, reduction="none", **kw)
    alone = torch.stack(
        [consistency_regularization(d, real[i : i + 1], fake[i : i + 1], **kw) for i in range(3)]
    )
    assert each.shape == (3,)
    assert_close(each, alone)
    assert_close(consistency_regularization(d, real, fake, **kw), each.mean())
    assert_close(consistency_regularization(d, real, fake, reduction="sum", **kw), each.sum())
    # "sum" with unequal batches sums each side over its own batch; "none" refuses them.
    fake5 = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    total = consistency_regularization(d, real, fake5, reduction="sum", **kw)
    real_only = consistency_regularization(d, real, None, reduction="sum", **kw)
    fake_only = consistency_regularization(d, fake5, None, reduction="sum", **{**kw, "weight_real": 0.5})
    assert_close(total, real_only + fake_only)
    with pytest.raises(ValueError, match="reduction='none' needs one batch size for real and fake"):
        consistency_regularization(d, real, fake5, reduction="none", **kw)
