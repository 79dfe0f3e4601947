"""Historical averaging: the running mean of past values, the penalty and its gradient by hand, state."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close, tensor_sum
from torch import nn

from ganblocks.penalties.historical import HistoricalAveraging, historical_averaging_penalty


def test_penalty_against_the_mean_of_past_values() -> None:
    model = nn.Linear(3, 2).double()
    ha = HistoricalAveraging(model, weight=0.5)
    history: list[list[torch.Tensor]] = []
    for _ in range(5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        if history:
            means = [torch.stack([h[i] for h in history]).mean(0) for i in range(2)]
            params = list(model.parameters())
            expected = 0.5 * tensor_sum(((p - m) ** 2).sum() for p, m in zip(params, means))
            penalty = ha.penalty()
            assert_close(penalty, expected)
            grads = torch.autograd.grad(penalty, params)
            for g, p, m in zip(grads, params, means):
                assert_close(g, 0.5 * 2 * (p.detach() - m))
        history.append([p.detach().clone() for p in model.parameters()])
        ha.update()
    assert ha.steps == 5
    for avg, i in zip(ha.averages(), range(2)):
        assert_close(avg, torch.stack([h[i] for h in history]).mean(0))


def test_zero_before_any_update_but_in_the_graph() -> None:
    model = nn.Linear(2, 1)
    penalty = HistoricalAveraging(model).penalty()
    assert penalty.item() == 0.0
    penalty.backward()
    assert all(p.grad is not None and torch.equal(p.grad, torch.zeros_like(p)) for p in model.parameters())


def test_function_state_dict_and_frozen_parameters() -> None:
    got = historical_averaging_penalty(
        [torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])], [torch.zeros(2), torch.ones(1, 1)], weight=2.0
    )
    assert_close(got, torch.tensor(2.0 * (1 + 4 + 4)))
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model[0].requires_grad_(False)  # only trainable parameters are averaged
    ha = HistoricalAveraging(model)
    assert ha.names == ["1.weight", "1.bias"] and list(ha.parameters()) == []
    ha.update()
    restored = HistoricalAveraging(model)
    restored.load_state_dict(ha.state_dict())
    assert restored.steps == 1
    for a, b in zip(restored.averages(), ha.averages()):
        assert torch.equal(a, b)
    assert "steps=1" in repr(restored)


def test_errors() -> None:
    with pytest.raises(ValueError, match="weight must be >= 0, got -1"):
        HistoricalAveraging(nn.Linear(2, 1), weight=-1.0)
    with pytest.raises(ValueError, match="at least one parameter that requires grad"):
        HistoricalAveraging(nn.Linear(2, 1).requires_grad_(False))
    with pytest.raises(
        ValueError, match=r"averages\[0\] must have the shape of parameters\[0\] \(2,\), got \(3,\)"
    ):
        historical_averaging_penalty([torch.zeros(2)], [torch.zeros(3)])
    with pytest.raises(ValueError, match="non-empty and of one length, got 1 and 0"):
        historical_averaging_penalty([torch.zeros(2)], [])
