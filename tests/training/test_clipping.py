"""WGAN weight clipping: every parameter clamped in place, parametrized weights, iterables, errors."""

from __future__ import annotations

import pytest
import torch
from helpers import original
from torch import nn

from ganblocks.training import clip_weights_


def test_clamps_every_parameter_in_place() -> None:
    critic = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 1))
    before = {n: p.detach().clone() for n, p in critic.named_parameters()}
    ids = {n: id(p) for n, p in critic.named_parameters()}
    clip_weights_(critic, c=0.05)
    for n, p in critic.named_parameters():
        assert id(p) == ids[n] and p.requires_grad
        assert torch.equal(p.detach(), before[n].clamp(-0.05, 0.05)), n  # biases and norm scales too


def test_iterable_of_parameters_and_spectral_norm_original() -> None:
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    with torch.no_grad():
        a.weight.fill_(1.0)
        b.weight.fill_(1.0)
    clip_weights_([a.weight], c=0.01)
    assert torch.equal(a.weight, torch.full((3, 3), 0.01)) and torch.equal(b.weight, torch.ones(3, 3))
    sn = nn.utils.parametrizations.spectral_norm(nn.Linear(3, 3))
    clip_weights_(sn, c=0.001)
    assert original(sn).abs().max() <= 0.001


def test_errors() -> None:
    with pytest.raises(ValueError, match="c must be > 0, got 0"):
        clip_weights_(nn.Linear(2, 2), c=0.0)
    with pytest.raises(TypeError, match="iterable of tensors, got item 0"):
        clip_weights_([1.0])  # type: ignore[list-item]
