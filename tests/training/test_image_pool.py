"""ImagePool: CycleGAN's loop (written out here), in-batch order, the swap rate, detaching, state, errors."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close

from ganblocks.training import ImagePool


def cyclegan_query(
    pool: list[torch.Tensor], pool_size: int, images: torch.Tensor, swap: list[bool], slots: list[int]
) -> torch.Tensor:
    """CycleGAN's ``ImagePool.query`` loop, with its random draws given (one per image after the pool fills)."""
    out = []
    k = 0
    for image in images:
        if len(pool) < pool_size:
            pool.append(image.clone())
            out.append(image)
            continue
        if swap[k]:
            old = pool[slots[k]].clone()
            pool[slots[k]] = image.clone()
            out.append(old)
        else:
            out.append(image)
        k += 1
    return torch.stack(out)


def test_matches_the_cyclegan_loop_with_the_same_draws() -> None:
    # ImagePool draws, per query, the swap decisions for the images after the pool filled, then their slots.
    pool, size = ImagePool(5), 5
    ref_pool: list[torch.Tensor] = []
    g, g_ref = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for step in range(6):
        batch = torch.randn(4, 2, 3, 3, dtype=torch.float64)
        rest = max(0, 4 - max(0, size - len(ref_pool)))
        swap = (torch.rand(rest, generator=g_ref) < 0.5).tolist() if rest else []
        slots = torch.randint(size, (rest,), generator=g_ref).tolist() if rest else []
        expected = cyclegan_query(ref_pool, size, batch, swap, slots)
        got = pool.query(batch, generator=g)
        assert_close(got, expected)
        assert_close(pool.images(), torch.stack(ref_pool))
        assert len(pool) == min(size, 4 * (step + 1))


def test_later_images_of_a_batch_see_earlier_swaps() -> None:
    pool = ImagePool(1, swap_probability=1.0)
    a, b, c = (torch.full((1, 2), v) for v in (1.0, 2.0, 3.0))
    assert torch.equal(pool.query(a), a)  # filling: stored and returned
    # b takes a's slot and returns a; then c takes b's slot (just stored) and returns b.
    assert torch.equal(pool.query(torch.cat([b, c])), torch.cat([a, b]))
    assert torch.equal(pool.images(), c)


def test_fill_phase_returns_the_input_and_stores_it() -> None:
    pool = ImagePool(4)
    x = torch.randn(3, 1, 2, 2)
    assert torch.equal(pool.query(x), x)
    assert torch.equal(pool.images(), x)
    y = torch.randn(2, 1, 2, 2)
    out = pool.query(y, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[0], y[0])  # fills the last slot, returned as is
    assert len(pool) == 4
    everything = torch.cat([x, y]).flatten().sort().values
    assert torch.equal(torch.cat([out[1:], pool.images()]).flatten().sort().values, everything)


def test_swap_rate_and_conservation() -> None:
    pool = ImagePool(8, swap_probability=0.5)
    g = torch.Generator().manual_seed(0)
    pool.query(torch.arange(8.0).view(8, 1), generator=g)
    swapped, total, seen = 0, 0, 8
    for _ in range(50):
        x = torch.arange(seen, seen + 16.0).view(16, 1)
        before = sorted(pool.images().flatten().tolist())
        out = pool.query(x, generator=g)
        # Every image goes out or stays in: the pool and the output hold the old pool and the batch.
        assert sorted(out.flatten().tolist() + pool.images().flatten().tolist()) == sorted(
            before + x.flatten().tolist()
        )
        swapped += int((out != x).sum())
        total += 16
        seen += 16
    assert abs(swapped / total - 0.5) < 0.05  # 800 Bernoulli(0.5) draws: std 0.018


def test_output_is_detached_with_the_input_shape() -> None:
    w = torch.ones(1, requires_grad=True)
    for size in (0, 2):
        pool = ImagePool(size)
        for _ in range(3):
            out = pool.query(torch.randn(3, 2, 4, 4) * w)
            assert out.shape == (3, 2, 4, 4) and not out.requires_grad
    assert len(ImagePool(0)) == 0


def test_swap_probability_zero_never_swaps() -> None:
    pool = ImagePool(2, swap_probability=0.0)
    pool.query(torch.zeros(2, 1))
    x = torch.randn(5, 1)
    assert torch.equal(pool.query(x), x)
    assert torch.equal(pool.images(), torch.zeros(2, 1))


def test_state_dict_round_trip() -> None:
    pool = ImagePool(3)
    pool.query(torch.randn(2, 4))
    other = ImagePool(3)
    other.load_state_dict(pool.state_dict())
    assert torch.equal(other.images(), pool.images()) and len(other) == 2
    x = torch.randn(4, 4)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(pool.query(x, generator=g1), other.query(x, generator=g2))
    with pytest.raises(ValueError, match=r"pool_size=5, got 3"):
        ImagePool(5).load_state_dict(pool.state_dict())


def test_errors_and_repr() -> None:
    with pytest.raises(ValueError, match="pool_size must be an int >= 0, got -1"):
        ImagePool(-1)
    with pytest.raises(ValueError, match=r"swap_probability must be in \[0, 1\], got 1.5"):
        ImagePool(2, swap_probability=1.5)
    pool = ImagePool(2)
    pool.query(torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"image shape \(3, 4, 4\).*got shape \(1, 3, 5, 5\)"):
        pool.query(torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"pool's dtype torch\.float32"):
        pool.query(torch.randn(1, 3, 4, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="images must be a floating-point tensor"):
        pool.query(torch.zeros(1, 3, 4, 4, dtype=torch.long))
    assert repr(pool) == "ImagePool(pool_size=2, swap_probability=0.5)"


def test_filled_under_inference_mode_then_used_in_training() -> None:
    pool = ImagePool(2, swap_probability=1.0)
    with torch.inference_mode():
        pool.query(torch.tensor([[1.0], [2.0]]))
    out = pool.query(torch.tensor([[3.0]]), generator=torch.Generator().manual_seed(0))
    assert out.item() in (1.0, 2.0) and not out.is_inference()
    assert sorted([*pool.images().flatten().tolist(), out.item()]) == [1.0, 2.0, 3.0]
    w = torch.ones(1, requires_grad=True)
    (out * w).sum().backward()  # the pool's output feeds a training step
    assert w.grad is not None
