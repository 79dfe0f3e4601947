"""LeCam: the squared hinges against their anchors by hand, the EMA recurrence, scales, reductions, state."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close

from ganblocks import DiscriminatorOutput, LeCamRegularization
from ganblocks.penalties import lecam_regularization


def hand(r: torch.Tensor, f: torch.Tensor, ar: float, af: float) -> torch.Tensor:
    # google/lecam-gan's lecam_reg: mean(relu(real - ema_fake)^2) + mean(relu(ema_real - fake)^2)
    above = torch.where(r > af, r - af, torch.zeros_like(r)) ** 2
    below = torch.where(f < ar, ar - f, torch.zeros_like(f)) ** 2
    return above.mean() + below.mean()


def test_function_matches_hand_formula_per_scale() -> None:
    real = [torch.randn(4, 1, 5, 5, dtype=torch.float64), torch.randn(4, 1, 3, 3, dtype=torch.float64)]
    fake = [torch.randn(6, 1, 5, 5, dtype=torch.float64), torch.randn(6, 1, 3, 3, dtype=torch.float64)]
    got = lecam_regularization(real, fake, ema_real=[0.3, -0.1], ema_fake=[-0.2, 0.4], weight=0.5)
    want = 0.5 * (hand(real[0], fake[0], 0.3, -0.2) + hand(real[1], fake[1], -0.1, 0.4))
    assert_close(got, want)
    mean = lecam_regularization(
        real,
        fake,
        ema_real=torch.tensor([0.3, -0.1], dtype=torch.float64),
        ema_fake=[-0.2, 0.4],
        scale_reduction="mean",
    )
    assert_close(mean, want)  # halved over two scales, doubled by weight 1 instead of 0.5
    assert_close(
        lecam_regularization(real[0], fake[0], ema_real=0.3, ema_fake=-0.2), hand(real[0], fake[0], 0.3, -0.2)
    )


def test_only_the_one_sided_excess_is_penalised_and_gradients_push_back() -> None:
    real = torch.tensor([[-1.0], [3.0]], requires_grad=True)  # only 3 is above alpha_F = 1
    fake = torch.tensor([[2.0], [-1.0]], requires_grad=True)  # only -1 is below alpha_R = 0
    loss = lecam_regularization(real, fake, ema_real=0.0, ema_fake=1.0)
    assert_close(loss, torch.tensor((2.0**2) / 2 + (1.0**2) / 2))
    loss.backward()
    assert real.grad is not None and fake.grad is not None
    assert_close(real.grad, torch.tensor([[0.0], [2.0]]))  # d/dr (r - 1)^2 / 2: real logits pulled down
    assert_close(fake.grad, torch.tensor([[0.0], [-1.0]]))  # fake logits pulled up


def test_gradcheck() -> None:
    real = torch.randn(3, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(3, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    fn = lambda r, f: lecam_regularization(r, f, ema_real=0.1, ema_fake=-0.1)  # noqa: E731
    torch.autograd.gradcheck(fn, (real, fake))


def test_reductions() -> None:
    real, fake = torch.randn(4, 1, 3, 3, dtype=torch.float64), torch.randn(4, 1, 3, 3, dtype=torch.float64)
    per = lecam_regularization(real, fake, ema_real=0.2, ema_fake=-0.3, reduction="none")
    assert per.shape == (4,)
    assert_close(per, torch.stack([hand(real[i], fake[i], 0.2, -0.3) for i in range(4)]))
    assert_close(per.mean(), lecam_regularization(real, fake, ema_real=0.2, ema_fake=-0.3))
    assert_close(per.sum(), lecam_regularization(real, fake, ema_real=0.2, ema_fake=-0.3, reduction="sum"))


def test_module_ema_recurrence_and_order() -> None:
    lecam = LeCamRegularization(decay=0.9, num_scales=2)
    steps = [
        ([torch.randn(4, 1, 3, 3), torch.randn(4, 1)], [torch.randn(4, 1, 3, 3), torch.randn(4, 1)])
        for _ in range(3)
    ]
    ar = af = None
    for real, fake in steps:
        means_r = torch.stack([r.mean() for r in real])
        means_f = torch.stack([f.mean() for f in fake])
        ar = means_r if ar is None else 0.9 * ar + 0.1 * means_r
        af = means_f if af is None else 0.9 * af + 0.1 * means_f
        got = lecam(DiscriminatorOutput(real, [[], []]), fake)
        # The anchors are updated first, then used (the official order).
        want = sum(hand(r, f, float(a), float(b)) for r, f, a, b in zip(real, fake, ar, af))
        assert_close(got, torch.as_tensor(want))
    assert ar is not None and af is not None
    assert_close(lecam.ema_real, ar)
    assert_close(lecam.ema_fake, af)
    assert int(lecam.num_updates) == 3
    # update=False leaves the anchors alone; state_dict round-trips them.
    before = lecam.ema_real.clone()
    lecam(steps[0][0], steps[0][1], update=False)
    assert torch.equal(lecam.ema_real, before)
    other = LeCamRegularization(decay=0.9, num_scales=2)
    other.load_state_dict(lecam.state_dict())
    assert torch.equal(other.ema_fake, lecam.ema_fake) and sorted(lecam.state_dict()) == [
        "ema_fake",
        "ema_real",
        "num_updates",
    ]
    assert "decay=0.9" in repr(lecam)


def test_half_logits_update_in_float32() -> None:
    lecam = LeCamRegularization()
    loss = lecam(torch.ones(2, 1, dtype=torch.bfloat16), torch.zeros(2, 1, dtype=torch.bfloat16))
    assert loss.dtype == torch.float32 and lecam.ema_real.dtype == torch.float32
    assert_close(loss, torch.tensor(2.0))  # real 1 > alpha_F 0 and fake 0 < alpha_R 1


def test_errors() -> None:
    x = torch.zeros(2, 1)
    with pytest.raises(
        ValueError, match=r"ema_real must be a number, a 0-d tensor or a tensor of shape \(num_scales,\)"
    ):
        lecam_regularization(x, x, ema_real=torch.zeros(3), ema_fake=0.0)
    with pytest.raises(ValueError, match=r"ema_fake must hold one anchor per scale \(1\), got 2"):
        lecam_regularization(x, x, ema_real=0.0, ema_fake=[0.0, 1.0])
    with pytest.raises(ValueError, match="weight must be"):
        lecam_regularization(x, x, ema_real=0.0, ema_fake=0.0, weight=-1.0)
    with pytest.raises(ValueError, match="same shape"):
        lecam_regularization(x, torch.zeros(3, 1), ema_real=0.0, ema_fake=0.0, reduction="none")
    with pytest.raises(ValueError, match="decay must be"):
        LeCamRegularization(decay=1.5)
    with pytest.raises(ValueError, match=r"real_pred must have num_scales=2 scale\(s\), got 1"):
        LeCamRegularization(num_scales=2)(x, x)
    with pytest.raises(ValueError, match="reduction must be"):
        LeCamRegularization(reduction="avg")  # type: ignore[arg-type]


def test_module_equals_function_with_its_anchors() -> None:
    lecam = LeCamRegularization(weight=0.7, num_scales=2, scale_reduction="mean", reduction="none")
    real = [torch.randn(3, 1, 4, 4), torch.randn(3, 1)]
    fake = [torch.randn(3, 1, 4, 4), torch.randn(3, 1)]
    got = lecam(real, fake)
    want = lecam_regularization(
        real,
        fake,
        ema_real=lecam.ema_real,
        ema_fake=lecam.ema_fake,
        weight=0.7,
        scale_reduction="mean",
        reduction="none",
    )
    assert got.shape == (3,)
    assert_close(got, want)


def test_start_step_follows_the_latest_means_first() -> None:
    lecam = LeCamRegularization(decay=0.5, start_step=2)
    for value, want in ((4.0, 4.0), (2.0, 2.0), (0.0, 1.0), (0.0, 0.5)):  # decay 0 twice, then 0.5
        lecam.update(torch.full((2, 1), value), torch.full((2, 1), -value))
        assert_close(lecam.ema_real, torch.tensor([want]))
        assert_close(lecam.ema_fake, torch.tensor([-want]))
    with pytest.raises(ValueError, match="start_step must be an int >= 0"):
        LeCamRegularization(start_step=-1)
