"""Every parameter the forward used gets a gradient tensor from every penalty, zero where the penalty has none.

A parameter whose output reaches the logits (or images) only linearly, through an op with a fixed weight such
as a blur, is in the penalty's autograd graph (the op's backward saved its input) yet gets no gradient from
it: Adam would skip its step and DDP wait for it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from helpers import grad_of
from torch import nn

from ganblocks.penalties import (
    DraganPenalty,
    GradientPenalty,
    PathLengthPenalty,
    R1Penalty,
    R2Penalty,
    r1_penalty_from_outputs,
)

BLUR = torch.full((1, 1, 3, 3), 1.0 / 9)


class SkipCritic(nn.Module):
    """A trunk with a nonlinearity, and a skip branch whose bias enters the logits through a fixed blur."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Conv2d(3, 2, 3, padding=1)
        self.skip = nn.Conv2d(3, 1, 1)
        self.head = nn.Linear(3 * 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = F.conv2d(F.pad(self.skip(x), (1, 1, 1, 1)), BLUR)
        return self.head(torch.cat([F.softplus(self.trunk(x)), skip], 1).flatten(1))


def _all_have_gradients(module: nn.Module) -> None:
    missing = [name for name, p in module.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"


def test_discriminator_penalties() -> None:
    real, fake = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    for penalty in (
        lambda d: R1Penalty()(d, real),
        lambda d: R2Penalty()(d, fake),
        lambda d: GradientPenalty()(d, real, fake),
        lambda d: DraganPenalty()(d, real),
        lambda d: R1Penalty(reduction="none")(d, real).sum(),
    ):
        torch.manual_seed(0)
        d = SkipCritic()
        penalty(d).backward()
        _all_have_gradients(d)
        assert d.skip.bias is not None and d.skip.bias.grad is not None and d.skip.weight.grad is not None
        assert torch.equal(d.skip.bias.grad, torch.zeros(1))
        assert d.skip.weight.grad.abs().sum() > 0


def test_penalty_from_outputs_keeps_the_loss_graph() -> None:
    d = SkipCritic()
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = d(x)
    assert d.skip.bias is not None
    (expected,) = torch.autograd.grad(out.mean(), d.skip.bias, retain_graph=True)
    (r1_penalty_from_outputs(out, x) + out.mean()).backward()
    _all_have_gradients(d)
    assert d.skip.bias.grad is not None
    assert torch.equal(d.skip.bias.grad, expected)  # the penalty adds 0


class SkipSynthesis(nn.Module):
    """ws -> images with a to-RGB-like skip whose bias passes a fixed upsampling blur, as in StyleGAN2."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Linear(4, 16)
        self.to_rgb1 = nn.Linear(4, 4)
        self.to_rgb2 = nn.Conv2d(1, 1, 1)

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        w = ws.mean(1)
        low = self.to_rgb1(w).view(-1, 1, 2, 2)
        skip = F.conv2d(F.pad(F.interpolate(low, scale_factor=2.0), (1, 1, 1, 1)), BLUR)
        x = torch.tanh(self.trunk(w)).view(-1, 1, 4, 4)
        return self.to_rgb2(x) + skip


def test_path_length_penalty() -> None:
    torch.manual_seed(0)
    g = SkipSynthesis()
    PathLengthPenalty(batch_shrink=1)(g, torch.randn(3, 2, 4)).backward()
    _all_have_gradients(g)
    assert torch.equal(grad_of(g.to_rgb1.bias), torch.zeros(4))
