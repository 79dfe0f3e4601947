"""image_pyramid: values against block means written out, shapes, gradients and errors."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close

from ganblocks.discriminators import ImagePyramid, image_pyramid


def block_mean(x: torch.Tensor, k: int) -> torch.Tensor:
    """Mean over non-overlapping 2^k × 2^k blocks, by an explicit loop (float64)."""
    s = 2**k
    n, c, h, w = x.shape
    out = torch.empty(n, c, h // s, w // s, dtype=torch.float64)
    for i in range(h // s):
        for j in range(w // s):
            out[:, :, i, j] = x[:, :, i * s : (i + 1) * s, j * s : (j + 1) * s].double().mean(dim=(-2, -1))
    return out


def test_levels_are_block_means() -> None:
    x = torch.randn(2, 3, 16, 8, dtype=torch.float64)
    levels = image_pyramid(x, 4)
    assert [tuple(t.shape) for t in levels] == [(2, 3, 16, 8), (2, 3, 8, 4), (2, 3, 4, 2), (2, 3, 2, 1)]
    assert levels[0] is x
    for k, t in enumerate(levels):
        assert_close(t, block_mean(x, k))


def test_odd_sizes_drop_the_last_row() -> None:
    x = torch.randn(1, 1, 5, 7, dtype=torch.float64)
    levels = image_pyramid(x, 2)
    assert tuple(levels[1].shape) == (1, 1, 2, 3)
    assert_close(levels[1], block_mean(x[:, :, :4, :6], 1))


def test_module_equals_function_and_repr() -> None:
    x = torch.randn(2, 3, 8, 8)
    m = ImagePyramid(3)
    for a, b in zip(m(x), image_pyramid(x, 3)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert repr(m) == "ImagePyramid(num_scales=3)"


def test_gradcheck() -> None:
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: tuple(image_pyramid(t, 3)), (x,))


def test_channels_last_and_bfloat16() -> None:
    x = torch.randn(2, 3, 8, 8).to(memory_format=torch.channels_last)
    levels = image_pyramid(x, 3)
    assert levels[1].is_contiguous(memory_format=torch.channels_last)
    low = image_pyramid(x.bfloat16(), 3)
    assert low[2].dtype == torch.bfloat16
    assert_close(low[2], levels[2], torch.bfloat16)


def test_errors() -> None:
    with pytest.raises(
        ValueError, match=r"x of spatial size 4×16 cannot be halved 3 times.*minimum size is 8×8"
    ):
        image_pyramid(torch.zeros(1, 3, 4, 16), 4)
    with pytest.raises(ValueError, match="num_scales must be a positive int, got 0"):
        image_pyramid(torch.zeros(1, 3, 4, 4), 0)
    with pytest.raises(ValueError, match="num_scales must be a positive int"):
        ImagePyramid(True)
    with pytest.raises(ValueError, match=r"x must have 4 dimensions, got shape \(3, 4, 4\)"):
        image_pyramid(torch.zeros(3, 4, 4), 2)
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor, got list"):
        image_pyramid([1.0], 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="floating-point"):
        image_pyramid(torch.zeros(1, 1, 4, 4, dtype=torch.long), 2)
