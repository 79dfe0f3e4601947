"""ProGAN fade-in helpers and the alpha schedule against the formulas of the paper."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close

from ganblocks.layers.progressive import FadeInSchedule, FadeInState, fade_in, fade_in_input

F64 = torch.float64


def nearest_up(x: torch.Tensor, k: int) -> torch.Tensor:
    n, c, h, w = x.shape
    out = torch.empty(n, c, k * h, k * w, dtype=x.dtype)
    for i in range(k * h):
        for j in range(k * w):
            out[:, :, i, j] = x[:, :, i // k, j // k]
    return out


def avg_pool(x: torch.Tensor, k: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // k, k, w // k, k).mean(dim=(3, 5))


@pytest.mark.parametrize(("alpha", "k"), [(0.0, 2), (0.3, 2), (1.0, 2), (0.6, 4)])
def test_fade_in_formula(alpha: float, k: int) -> None:
    low, high = torch.randn(2, 3, 2, 3, dtype=F64), torch.randn(2, 3, 2 * k, 3 * k, dtype=F64)
    expected = (1 - alpha) * nearest_up(low, k) + alpha * high
    assert_close(fade_in(low, high, alpha), expected)
    assert_close(fade_in(low, high, torch.tensor(alpha, dtype=F64)), expected)


def test_fade_in_bilinear_and_gradients() -> None:
    low, high = torch.randn(1, 1, 2, 2, dtype=F64), torch.randn(1, 1, 4, 4, dtype=F64)
    # ×2 bilinear with half-pixel centres: rows 0.75/0.25 of the nearest two, clamped at the edges
    m = torch.tensor([[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]], dtype=F64)
    assert_close(fade_in(low, high, 0.25, mode="bilinear"), 0.75 * (m @ low @ m.T) + 0.25 * high)
    alpha = torch.tensor(0.4, dtype=F64, requires_grad=True)
    low.requires_grad_(True)
    high.requires_grad_(True)
    fade_in(low, high, alpha).sum().backward()
    assert alpha.grad is not None and low.grad is not None and high.grad is not None
    assert_close(alpha.grad, (high - nearest_up(low, 2)).sum().detach())
    assert_close(low.grad, torch.full((1, 1, 2, 2), 0.6 * 4, dtype=F64))
    assert_close(high.grad, torch.full((1, 1, 4, 4), 0.4, dtype=F64))


def test_fade_in_input_formula() -> None:
    images = torch.randn(2, 3, 8, 8, dtype=F64)
    from_rgb = torch.nn.Conv2d(3, 5, 1, dtype=F64)
    high = torch.randn(2, 5, 4, 4, dtype=F64)
    out = fade_in_input(images, from_rgb, high, 0.3)
    expected = 0.7 * from_rgb(avg_pool(images, 2)) + 0.3 * high
    assert_close(out, expected.detach())
    assert_close(fade_in_input(images, from_rgb, high, 1.0), high)
    quarter = fade_in_input(images, from_rgb, high[:, :, :2, :2], 0.0)
    assert_close(quarter, from_rgb(avg_pool(images, 4)).detach())


def test_fade_in_errors() -> None:
    low, high = torch.randn(1, 3, 2, 2), torch.randn(1, 3, 4, 4)
    with pytest.raises(ValueError, match=r"weight must be in \[0, 1\], got 1\.5"):
        fade_in(low, high, 1.5)
    with pytest.raises(
        ValueError, match="weight must be a number or a one-element tensor, got shape \\(2,\\)"
    ):
        fade_in(low, high, torch.ones(2))
    with pytest.raises(ValueError, match=r"the same \(N, C\), got shapes \(1, 3, 2, 2\) and \(1, 2, 4, 4\)"):
        fade_in(low, high[:, :2], 0.5)
    with pytest.raises(
        ValueError, match="the height of high must be a whole multiple of the other size, got 5 and 2"
    ):
        fade_in(low, torch.randn(1, 3, 5, 4), 0.5)
    with pytest.raises(ValueError, match="mode must be one of \\('nearest', 'bilinear'\\), got 'area'"):
        fade_in(low, high, 0.5, mode="area")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"from_rgb_low must return the shape of high \(1, 3, 2, 2\), got \(1, 4, 2, 2\)",
    ):
        fade_in_input(high, lambda t: torch.cat([t, t[:, :1]], dim=1), low, 0.5)
    with pytest.raises(TypeError, match="from_rgb_low must be callable"):
        fade_in_input(high, 3, low, 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="images and high must have the same batch size"):
        fade_in_input(high, lambda t: t, torch.randn(2, 3, 2, 2), 0.5)


def expected_state(t: int, fade: int, stab: int, max_stage: int) -> FadeInState:
    """Walk the phases one image at a time: stabilize at 4, then (fade, stabilize) per doubling."""
    stage, phase, pos = 0, "stabilize", 0
    for _ in range(t):
        pos += 1
        length = fade if phase == "fade" else stab
        if pos >= length and not (stage == max_stage and phase == "stabilize"):
            if phase == "stabilize":
                stage, phase = stage + 1, "fade"
            else:
                phase = "stabilize"
            pos = 0
    if stage == 0:
        return FadeInState(0, 4, "stabilize", 1.0)
    alpha = pos / fade if phase == "fade" else 1.0
    return FadeInState(stage, 4 * 2**stage, phase, alpha)  # type: ignore[arg-type]


def test_schedule_matches_the_phase_walk() -> None:
    schedule = FadeInSchedule(fade_images=4, stabilize_images=3, max_resolution=32)
    for t in range(40):
        assert schedule.state(t) == expected_state(t, 4, 3, max_stage=3), t
    assert schedule.state(10) == FadeInState(2, 16, "fade", 0.0)
    assert schedule.state(12) == FadeInState(2, 16, "fade", 0.5)
    assert schedule.state(10**6) == FadeInState(3, 32, "stabilize", 1.0)  # stays at max_resolution
    unbounded = FadeInSchedule(fade_images=4, stabilize_images=3, start_resolution=8)
    assert unbounded.state(3 + 7 * 5 + 1) == FadeInState(6, 8 * 64, "fade", 0.25)


def test_schedule_step_and_state_dict() -> None:
    schedule = FadeInSchedule(fade_images=10, stabilize_images=10, max_resolution=16)
    assert (schedule.alpha, schedule.resolution, schedule.stage, schedule.phase) == (1.0, 4, 0, "stabilize")
    grew = [schedule.step(4) for _ in range(10)]  # 40 images: growth at 10 and 30
    assert [i for i, g in enumerate(grew) if g] == [2, 7]
    assert (schedule.images_seen, schedule.resolution, schedule.phase, schedule.alpha) == (
        40,
        16,
        "stabilize",
        1.0,
    )
    state = schedule.state_dict()
    restored = FadeInSchedule(fade_images=10, stabilize_images=10, max_resolution=16)
    restored.load_state_dict(state)
    assert restored.images_seen == 40 and restored.state() == schedule.state()
    assert "images_seen=40" in repr(restored)
    with pytest.raises(
        ValueError, match="state_dict was saved with fade_images=10, but this schedule has fade_images=5"
    ):
        FadeInSchedule(fade_images=5, stabilize_images=10, max_resolution=16).load_state_dict(state)


def test_schedule_without_stabilization_and_errors() -> None:
    schedule = FadeInSchedule(fade_images=2, stabilize_images=0)
    assert [schedule.state(t) for t in (0, 1, 2)] == [
        FadeInState(1, 8, "fade", 0.0),
        FadeInState(1, 8, "fade", 0.5),
        FadeInState(2, 16, "fade", 0.0),
    ]
    with pytest.raises(
        ValueError, match="max_resolution must be start_resolution \\(4\\) times a power of 2, got 24"
    ):
        FadeInSchedule(fade_images=1, stabilize_images=1, max_resolution=24)
    with pytest.raises(ValueError, match="fade_images must be an int >= 1, got 0"):
        FadeInSchedule(fade_images=0, stabilize_images=1)
    with pytest.raises(ValueError, match="num_images must be an int >= 0, got -3"):
        schedule.step(-3)
