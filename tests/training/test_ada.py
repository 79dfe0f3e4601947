"""AdaptiveAugmentProbability: StyleGAN2-ADA's adjustment written out, clamping, scales, state, errors."""

from __future__ import annotations

import pytest
import torch

from ganblocks.discriminators import DiscriminatorOutput
from ganblocks.training import AdaptiveAugmentProbability, diff_augment


def test_p_follows_the_stylegan2_ada_rule() -> None:
    ada = AdaptiveAugmentProbability(target=0.6, interval=3, speed_kimg=0.5)
    p, batch, signs = 0.0, 4, []
    g = torch.Generator().manual_seed(0)
    for step in range(24):
        # Logits drifting from mostly negative to mostly positive, so r_t crosses the target.
        logits = torch.randn(batch, 1, generator=g, dtype=torch.float64) + (step - 10) / 4
        signs.append(logits.sign().flatten())
        ada.update(logits)
        if (step + 1) % 3 == 0:
            r_t = torch.cat(signs).mean().item()
            adjust = (1.0 if r_t > 0.6 else -1.0 if r_t < 0.6 else 0.0) * (batch * 3) / (0.5 * 1000)
            p = min(max(p + adjust, 0.0), 1.0)  # clamped into [0, 1]
            signs = []
            assert float(ada.r_t) == pytest.approx(r_t, abs=1e-12)
        assert float(ada.p) == pytest.approx(p, abs=1e-12), step
    assert 0.0 < float(ada.p) < 1.0


def test_clamps_to_zero_and_one() -> None:
    ada = AdaptiveAugmentProbability(interval=1, speed_kimg=0.001)  # each image moves p by 1/1
    ada.update(-torch.ones(2))
    assert float(ada.p) == 0.0
    ada.update(torch.ones(3))
    assert float(ada.p) == 1.0
    ada.update(torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0]))  # r_t = 0.2 < 0.6
    assert float(ada.p) == 0.0


def test_counts_every_logit_of_every_scale_and_images_once() -> None:
    ada = AdaptiveAugmentProbability(interval=1, speed_kimg=1.0, initial_p=0.5)
    out = DiscriminatorOutput([torch.ones(2, 1, 3, 3), -torch.ones(2, 1, 1, 1)], [[], []])
    ada.update(out)  # 18 positive and 2 negative logits: r_t = 16 / 20 = 0.8; 2 images
    assert float(ada.r_t) == pytest.approx(0.8)
    assert float(ada.p) == pytest.approx(0.5 + 2 / 1000)


def test_non_finite_logits_are_left_out() -> None:
    ada = AdaptiveAugmentProbability(interval=2, speed_kimg=1.0, initial_p=0.5)
    ada.update(torch.tensor([1.0, 1.0, float("nan"), -1.0]))
    ada.update(torch.tensor([float("inf"), 1.0, -float("inf"), 1.0]))
    assert float(ada.r_t) == pytest.approx(3 / 5)  # 4 positive, 1 negative finite logits; target 0.6
    ada = AdaptiveAugmentProbability(interval=1, speed_kimg=1.0, initial_p=0.5)
    ada.update(torch.tensor([1.0, float("nan"), 1.0, 1.0]))  # r_t = 1 > 0.6: p rises by 4 / 1000
    assert float(ada.p) == pytest.approx(0.504)
    ada.update(torch.full((4,), float("nan")))  # nothing finite: p stays, r_t is NaN
    assert float(ada.p) == pytest.approx(0.504) and torch.isnan(ada.r_t)
    ada.update(torch.ones(4))  # the next interval starts clean
    assert float(ada.p) == pytest.approx(0.508) and float(ada.r_t) == 1.0


def test_r_t_equal_to_target_keeps_p() -> None:
    ada = AdaptiveAugmentProbability(target=0.5, interval=1, initial_p=0.25)
    ada.update(torch.tensor([1.0, 1.0, 1.0, -1.0]))  # r_t = 0.5
    assert float(ada.p) == 0.25


def test_state_dict_round_trip_and_use_as_probability() -> None:
    ada = AdaptiveAugmentProbability(interval=4)
    for _ in range(6):
        ada.update(torch.ones(8))
    restored = AdaptiveAugmentProbability(interval=4)
    restored.load_state_dict(ada.state_dict())
    assert float(restored.p) == float(ada.p) == pytest.approx(32 / 500_000)
    assert (restored.calls, restored.count, restored.images) == (2, 16, 16)
    for a in (ada, restored):
        for _ in range(2):
            a.update(torch.ones(8))
    assert float(restored.p) == float(ada.p) == pytest.approx(64 / 500_000)
    x = torch.randn(4, 3, 8, 8)
    assert diff_augment(x, p=ada.p).shape == x.shape  # a 0-d tensor probability


def test_errors_and_repr() -> None:
    with pytest.raises(ValueError, match=r"target must be in \[0, 1\], got 1.5"):
        AdaptiveAugmentProbability(target=1.5)
    with pytest.raises(ValueError, match="interval must be an int >= 1, got 0"):
        AdaptiveAugmentProbability(interval=0)
    with pytest.raises(ValueError, match="speed_kimg must be > 0"):
        AdaptiveAugmentProbability(speed_kimg=0.0)
    with pytest.raises(ValueError, match="real_logits must not be empty"):
        AdaptiveAugmentProbability().update(torch.zeros(0, 1))
    assert repr(AdaptiveAugmentProbability()) == (
        "AdaptiveAugmentProbability(target=0.6, interval=4, speed_kimg=500.0)"
    )
