"""reduction= over the batch and logit_reduction= over a patch discriminator's logits, for R1/R2/GP/DRAGAN."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
from helpers import assert_close
from torch import nn

from ganblocks.penalties import (
    DraganPenalty,
    GradientPenalty,
    R1Penalty,
    R2Penalty,
    dragan_penalty,
    gradient_penalty,
    r1_penalty,
    r1_penalty_from_outputs,
    r2_penalty,
)

Penalty = Callable[..., torch.Tensor]


def patch_critic() -> nn.Module:
    """Two scales of patch logits: (N, 1, 4, 4) and (N, 1, 2, 2)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 1, 3, padding=1).double()
    pool = nn.AvgPool2d(2)

    class TwoScales(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = conv

        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            y = torch.nn.functional.softplus(self.conv(x))
            return [y * y, pool(y).sin()]

    return TwoScales()


def _penalties(d: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Callable[..., torch.Tensor]]:
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    return {
        "r1": lambda **kw: r1_penalty(d, x, **kw),
        "r2": lambda **kw: r2_penalty(d, y, **kw),
        "gp": lambda **kw: gradient_penalty(d, x, y, generator=g(), **kw),
        "gp_pixel": lambda **kw: gradient_penalty(d, x, y, norm="pixel", generator=g(), **kw),
        "dragan": lambda **kw: dragan_penalty(d, x, interpolate=True, generator=g(), **kw),
    }


@pytest.mark.parametrize("name", ["r1", "r2", "gp", "gp_pixel", "dragan"])
def test_reduction_mean_sum_none_relate_exactly(name: str) -> None:
    x, y = torch.randn(5, 3, 4, 4, dtype=torch.float64), torch.randn(5, 3, 4, 4, dtype=torch.float64)
    fn = _penalties(patch_critic(), x, y)[name]
    default, mean, total, each = fn(), fn(reduction="mean"), fn(reduction="sum"), fn(reduction="none")
    assert each.shape == (5,) and default.shape == ()
    assert torch.equal(default, mean)
    assert_close(total, each.sum())
    assert_close(mean, each.mean())
    assert (each > 0).all() and not torch.allclose(each, each[:1].expand(5))


def test_none_is_each_samples_own_penalty() -> None:
    d = patch_critic()
    x = torch.randn(4, 3, 4, 4, dtype=torch.float64)
    each = r1_penalty(d, x, gamma=3.0, reduction="none")
    alone = torch.stack([r1_penalty(d, x[i : i + 1], gamma=3.0) for i in range(4)])
    assert_close(each, alone)


def test_r1_from_outputs_reduction_and_logit_reduction() -> None:
    d = patch_critic()
    x = torch.randn(3, 3, 4, 4, dtype=torch.float64)
    leaf = x.clone().requires_grad_(True)
    got = r1_penalty_from_outputs(d(leaf), leaf, gamma=2.0, logit_reduction="mean", reduction="none")
    assert_close(got, r1_penalty(d, x, gamma=2.0, logit_reduction="mean", reduction="none"))


def test_logit_mean_is_each_scales_sum_over_its_logit_count() -> None:
    d = patch_critic()
    x, y = torch.randn(5, 3, 4, 4, dtype=torch.float64), torch.randn(5, 3, 4, 4, dtype=torch.float64)

    def averaged(x: torch.Tensor) -> list[torch.Tensor]:  # each scale's logits over its 16 and 4 per sample
        a, b = d(x)
        return [a / 16, b / 4]

    mean_fns, sum_fns = _penalties(d, x, y), _penalties(averaged, x, y)  # type: ignore[arg-type]
    for name in mean_fns:
        assert_close(mean_fns[name](logit_reduction="mean"), sum_fns[name](logit_reduction="sum"))


def test_logit_mean_on_one_scale_divides_r1_by_the_squared_logit_count() -> None:
    torch.manual_seed(0)
    d = nn.Sequential(nn.Conv2d(3, 1, 3, padding=1), nn.Softplus(), nn.Conv2d(1, 1, 3)).double()
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)  # 5x5 = 25 logits per sample
    assert_close(r1_penalty(d, x, logit_reduction="mean"), r1_penalty(d, x) / 25**2)


def test_modules_store_the_reductions() -> None:
    d = patch_critic()
    x, y = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 3, 4, 4, dtype=torch.float64)
    kw: dict[str, Any] = {"logit_reduction": "mean", "reduction": "none"}
    assert_close(R1Penalty(gamma=2.0, **kw)(d, x), r1_penalty(d, x, gamma=2.0, **kw))
    assert_close(R2Penalty(gamma=2.0, **kw)(d, y), r2_penalty(d, y, gamma=2.0, **kw))
    g = torch.Generator
    assert_close(
        GradientPenalty(**kw)(d, x, y, generator=g().manual_seed(1)),
        gradient_penalty(d, x, y, generator=g().manual_seed(1), **kw),
    )
    assert_close(
        DraganPenalty(**kw)(d, x, generator=g().manual_seed(1)),
        dragan_penalty(d, x, generator=g().manual_seed(1), **kw),
    )


@pytest.mark.parametrize("fn", [R1Penalty, R2Penalty, GradientPenalty, DraganPenalty])
def test_bad_reductions_are_named(fn: Callable[..., nn.Module]) -> None:
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum', 'none'\), got 'avg'"):
        fn(reduction="avg")
    with pytest.raises(ValueError, match=r"logit_reduction must be one of \('sum', 'mean'\), got 'none'"):
        fn(logit_reduction="none")


def test_every_parameter_gets_a_gradient_with_reduction_none() -> None:
    d = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.2), nn.Linear(4, 1))
    r1_penalty(d, torch.randn(4, 3), reduction="none").sum().backward()
    assert all(p.grad is not None for p in d.parameters())


@pytest.mark.parametrize("which", ["gp", "dragan"])
def test_half_inputs_are_computed_in_float32_and_rounded_once(which: str) -> None:
    # The points D sees: the float32 computation from the same draws, rounded to bfloat16 once
    # (rounding each intermediate in bfloat16 moves them by several bfloat16 steps).
    seen: list[torch.Tensor] = []

    def d(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.detach())
        return x.float().flatten(1).sum(1) * 2

    real = (torch.randn(8, 3, 8, 8) * 3 + 5).bfloat16()
    fake = torch.randn(8, 3, 8, 8).bfloat16()
    for r, f in ((real, fake), (real.float(), fake.float())):
        g = torch.Generator().manual_seed(0)
        if which == "gp":
            gradient_penalty(d, r, f, generator=g)
        else:
            dragan_penalty(d, r, interpolate=True, generator=g)
    low, high = seen
    assert low.dtype == torch.bfloat16
    assert torch.equal(low, high.bfloat16())


@pytest.mark.parametrize("which", ["gp", "dragan"])
def test_bf16_autocast_agrees_with_float32(which: str) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(16, 16, 3, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(16, 1, 3, padding=1),
    )
    real, fake = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)

    def penalty(d: Callable[[torch.Tensor], torch.Tensor], **kw: float) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        if which == "gp":
            return gradient_penalty(d, real, fake, generator=g, **kw)  # type: ignore[arg-type]
        return dragan_penalty(d, real, generator=g, **kw)  # type: ignore[arg-type]

    # Scaled so the gradient norms sit near the target 1 (RMS 1.05), as a trained critic's do.
    k = 1.05 / float(penalty(net, weight=1.0, target=0.0)) ** 0.5
    d = lambda x: net(x) * k  # noqa: E731
    ref = penalty(d)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, fast = penalty(d), penalty(d, autocast=True)
    assert got.dtype == torch.float32
    assert_close(got, ref)  # D ran in float32
    # Under the caller's autocast the bfloat16 gradient's error is amplified near the target norm.
    assert abs(float(fast / ref) - 1) > 2e-2
