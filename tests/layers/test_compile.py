"""torch.compile(fullgraph=True) traces a small style-based block built from the layers, without a graph break."""

from __future__ import annotations

import torch
from helpers import assert_close
from torch import nn

from ganblocks.layers import AdaIN, EqualConv2d, EqualLinear, NoiseInjection, PixelNorm


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mapping = nn.Sequential(PixelNorm(), EqualLinear(8, 8, lr_multiplier=0.01, act="lrelu"))
        self.conv = EqualConv2d(3, 4, 3, padding=1, act="lrelu")
        self.noise = NoiseInjection(4, per_channel=True, mode="const", resolution=6)
        self.adain = AdaIN(4, 8)
        with torch.no_grad():
            self.noise.strength.fill_(0.3)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.adain(self.noise(self.conv(x)), self.mapping(z))


def test_compile_fullgraph_forward() -> None:
    block = _Block()
    x, z = torch.randn(2, 3, 6, 6), torch.randn(2, 8)
    compiled = torch.compile(block, fullgraph=True)
    # inductor may reassociate the reductions: a few float32 ulps of the unit-variance outputs
    assert_close(compiled(x, z), block(x, z), scale=10)
