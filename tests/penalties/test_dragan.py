"""DRAGAN: the perturbation's range, the penalty by hand from the points D saw, scales, options, errors."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close, tensor_sum
from torch import nn

from ganblocks.penalties.dragan import DraganPenalty, dragan_penalty


def test_linear_critic_golden_value() -> None:
    w = torch.randn(12, dtype=torch.float64)
    critic = lambda x: x.flatten(1) @ w  # noqa: E731
    real = torch.randn(5, 3, 2, 2, dtype=torch.float64)
    assert_close(dragan_penalty(critic, real), 10 * (w.norm() - 1) ** 2)
    assert_close(DraganPenalty(weight=2.0, target=0.0)(critic, real), 2 * w.norm() ** 2)


def _recording(seen: list[torch.Tensor]):
    def d(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.detach().clone())
        return 0.5 * x.flatten(1).square().sum(1)  # gradient: the point itself

    return d


def test_perturbation_range_and_penalty_from_the_points() -> None:
    real = 3.0 * torch.randn(64, 2, 4, 4, dtype=torch.float64) + 1.0
    seen: list[torch.Tensor] = []
    got = dragan_penalty(_recording(seen), real, c=0.5, generator=torch.Generator().manual_seed(0))
    delta = (seen[0] - real) / (0.5 * real.std(correction=0))  # u ~ U[0, 1) per element
    assert delta.min() >= 0 and delta.max() < 1
    assert abs(delta.mean().item() - 0.5) < 0.02 and delta.min() < 0.01 and delta.max() > 0.99
    norms = seen[0].flatten(1).norm(dim=1)
    assert_close(got, 10 * ((norms - 1) ** 2).mean())


def test_interpolate_scales_each_sample_by_alpha() -> None:
    real = torch.randn(6, 3, dtype=torch.float64)
    seen: list[torch.Tensor] = []
    dragan_penalty(_recording(seen), real, interpolate=True, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    alpha = torch.rand(6, generator=g, dtype=torch.float32).double()  # drawn first, one per sample
    u = torch.rand(6, 3, generator=g, dtype=torch.float64)
    assert_close(seen[0], real + 0.5 * real.std(correction=0) * u * alpha.view(6, 1))


def test_list_of_scales_joint_norm_and_own_std() -> None:
    real = [torch.randn(4, 2, 4, 4, dtype=torch.float64), 5 * torch.randn(4, 2, 2, 2, dtype=torch.float64)]
    seen: list[list[torch.Tensor]] = []

    def d(xs: list[torch.Tensor]) -> torch.Tensor:
        seen.append([x.detach() for x in xs])
        return tensor_sum(0.5 * x.flatten(1).square().sum(1) for x in xs)

    got = dragan_penalty(d, real, weight=1.0)
    for x, r in zip(seen[0], real):
        ratio = (x - r) / (0.5 * r.std(correction=0))
        assert ratio.min() >= 0 and ratio.max() < 1
    norms = (seen[0][0].flatten(1).square().sum(1) + seen[0][1].flatten(1).square().sum(1)).sqrt()
    assert_close(got, ((norms - 1) ** 2).mean())


def test_gradients_reach_every_parameter_and_not_the_data() -> None:
    first = nn.Linear(4, 8)
    d = nn.Sequential(first, nn.Tanh(), nn.Linear(8, 1))
    real = torch.randn(6, 4, requires_grad=True)
    dragan_penalty(d, real).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0
    assert real.grad is None


def test_module_repr_and_errors() -> None:
    assert repr(DraganPenalty()) == (
        "DraganPenalty(weight=10.0, c=0.5, target=1.0, interpolate=False, logit_reduction='sum', reduction='mean', "
        "autocast=False)"
    )
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="c must be >= 0, got -1"):
        dragan_penalty(lambda v: v.sum(1), x, c=-1.0)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        DraganPenalty(weight=-1.0)
    with pytest.raises(TypeError, match="real must be a floating-point tensor"):
        dragan_penalty(lambda v: v.sum(1), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="does not depend on perturbed real"):
        dragan_penalty(lambda v: torch.zeros(2, requires_grad=True), x)
    with torch.no_grad(), pytest.raises(RuntimeError, match="dragan_penalty differentiates"):
        dragan_penalty(lambda v: v.sum(1), x)
