"""MinibatchStdDev against StyleGAN2-ADA's strided-group formula."""

from __future__ import annotations

import formulas
import pytest
import torch
from helpers import assert_close

from ganblocks.functional import minibatch_stddev
from ganblocks.layers import MinibatchStdDev
from ganblocks.ops import Backend, use_backend

F64 = torch.float64


@pytest.mark.parametrize(("n", "group_size", "num_channels"), [(8, 4, 1), (6, 2, 2), (3, 4, 1), (4, None, 2)])
def test_matches_formula(n: int, group_size: int, num_channels: int) -> None:
    x = torch.randn(n, 4, 3, 2, dtype=F64)
    layer = MinibatchStdDev(group_size=group_size, num_channels=num_channels)
    g = n if group_size is None else min(group_size, n)
    assert_close(layer(x), formulas.minibatch_stddev(x, g, num_channels))


def test_adjust_group_size_and_module_equals_function() -> None:
    x = torch.randn(6, 2, 2, 2, dtype=F64)
    layer = MinibatchStdDev(group_size=4, adjust_group_size=True)  # 6 % 4 != 0: uses G = 3
    assert_close(layer(x), formulas.minibatch_stddev(x, 3, 1))
    assert torch.equal(layer(x), minibatch_stddev(x, group_size=4, adjust_group_size=True))
    with pytest.raises(ValueError, match=r"the batch size \(6\) must be divisible by the group size \(4\)"):
        MinibatchStdDev()(x)


def test_gradcheck(backend: Backend, device: torch.device) -> None:
    x = torch.randn(4, 2, 1, 2, dtype=F64, device=device, requires_grad=True)
    layer = MinibatchStdDev(group_size=2, num_channels=2)
    # fast_mode (random Jacobian projections) keeps the interpreted Triton kernels affordable on CPU.
    with use_backend(backend):
        assert torch.autograd.gradcheck(layer, (x,), fast_mode=True)
        assert torch.autograd.gradgradcheck(layer, (x,), fast_mode=True)


def test_channels_last() -> None:
    x = torch.randn(4, 3, 2, 2).to(memory_format=torch.channels_last)
    y = MinibatchStdDev()(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, MinibatchStdDev()(x.contiguous()))


def test_bfloat16() -> None:
    x = torch.randn(4, 4, 3, 3)
    y = MinibatchStdDev()(x.bfloat16())
    assert y.dtype == torch.bfloat16
    assert_close(y, formulas.minibatch_stddev(x.bfloat16().double(), 4, 1), torch.bfloat16)


def test_repr_and_bad_arguments() -> None:
    assert repr(MinibatchStdDev()) == "MinibatchStdDev(group_size=4, num_channels=1)"
    assert repr(MinibatchStdDev(group_size=None, num_channels=2, adjust_group_size=True)) == (
        "MinibatchStdDev(group_size=None, num_channels=2, adjust_group_size=True)"
    )
    with pytest.raises(ValueError, match="group_size must be an int >= 1, got 0"):
        MinibatchStdDev(group_size=0)
    with pytest.raises(ValueError, match="num_channels must be an int >= 1, got True"):
        MinibatchStdDev(num_channels=True)
    with pytest.raises(
        ValueError, match=r"the channel count of x \(3\) must be divisible by num_channels \(2\)"
    ):
        MinibatchStdDev(num_channels=2)(torch.randn(4, 3, 2, 2))
