"""MSGGeneratorHeads: 1×1 to-RGB heads against the convolution written out in float64."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close

from ganblocks.generators import MSGGeneratorHeads


def test_generator_heads() -> None:
    heads = MSGGeneratorHeads([4, 8], out_channels=2, act="tanh", equalized_lr=False).double()
    feats = [torch.randn(2, 4, 8, 8, dtype=torch.float64), torch.randn(2, 8, 4, 4, dtype=torch.float64)]
    out = heads(feats)
    for head, f, y in zip(heads.heads, feats, out):
        assert_close(y, torch.tanh(F.conv2d(f, head.weight, head.bias)))  # type: ignore[arg-type]
    eq = MSGGeneratorHeads([4, 8]).double()
    y = eq(feats)[1]
    head = eq.heads[1]
    w = head.weight.double() / math.sqrt(head.weight[0].numel())  # type: ignore[operator, index]  # equalized: 1/sqrt(fan_in)
    assert_close(y, F.conv2d(feats[1], w, head.bias.double()))  # type: ignore[arg-type]
    assert repr(eq).startswith("MSGGeneratorHeads(\n  channels=[4, 8], out_channels=3\n")
    with pytest.raises(
        ValueError,
        match=r"features must be ordered finest first, each half the size of the one before, got sizes \[\(4, 4\), \(8, 8\)\]",
    ):
        MSGGeneratorHeads([4, 4])([torch.randn(1, 4, 4, 4), torch.randn(1, 4, 8, 8)])
    with pytest.raises(ValueError, match=r"features must hold 2 tensors \(one per head\), got 1"):
        eq(feats[:1])
    with pytest.raises(ValueError, match=r"features\[1\] must have 8 channels"):
        eq([feats[0], feats[0]])
    with pytest.raises(TypeError, match="features must be a list or tuple of tensors, got Tensor"):
        eq(feats[0])
    with pytest.raises(ValueError, match="channels must be a non-empty sequence of ints"):
        MSGGeneratorHeads([])
    with pytest.raises(ValueError, match=r"channels\[1\] must be an int >= 1, got 0"):
        MSGGeneratorHeads([3, 0])
    with pytest.raises(ValueError, match="act must be one of"):
        MSGGeneratorHeads([3], act="gelu")  # type: ignore[arg-type]
