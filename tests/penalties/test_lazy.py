"""Lazy regularization: the schedule, the factor and StyleGAN2's optimizer adjustment."""

from __future__ import annotations

import io
import math

import pytest
import torch
from helpers import assert_close

from ganblocks.penalties import (
    LazyRegularizer,
    PathLengthPenalty,
    R1Penalty,
    lazy_optimizer_kwargs,
    r1_penalty,
)


def test_runs_every_k_steps_scaled_by_k() -> None:
    calls: list[int] = []

    def penalty(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return x.sum()

    lazy = LazyRegularizer(penalty, interval=16)
    x = torch.tensor([1.5, 2.0])
    results = [lazy(step, x) for step in range(33)]
    assert [i for i, r in enumerate(results) if r is not None] == [0, 16, 32]
    assert len(calls) == 3  # nothing is computed on the other steps
    assert_close(results[16], torch.tensor(16 * 3.5))
    assert lazy.should_run(48) and not lazy.should_run(47)


def test_wraps_penalty_modules_and_functions() -> None:
    x = torch.randn(3, 4, dtype=torch.float64)

    def d(t: torch.Tensor) -> torch.Tensor:
        return 0.5 * t.square().sum(1)

    expected = 4 * 5.0 * x.square().sum(1).mean()
    assert_close(LazyRegularizer(R1Penalty(gamma=10.0), interval=4)(8, d, x), expected)
    assert_close(LazyRegularizer(r1_penalty, interval=4)(8, d, x, gamma=10.0), expected)
    assert repr(LazyRegularizer(r1_penalty, interval=4)) == "LazyRegularizer(r1_penalty, interval=4)"


def test_stylegan2_optimizer_adjustment() -> None:
    # StyleGAN2 (config-f): D lr 0.002, betas (0, 0.99), R1 every 16 steps.
    kw = lazy_optimizer_kwargs(0.002, (0.0, 0.99), interval=16)
    c = 16 / 17
    assert kw == {"lr": 0.002 * c, "betas": (0.0, 0.99**c)}
    assert math.isclose(kw["betas"][1], 0.990585, rel_tol=1e-6)
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], **kw)
    assert opt.defaults["lr"] == kw["lr"]
    assert lazy_optimizer_kwargs(0.1, (0.5, 0.9), interval=1) == {"lr": 0.05, "betas": (0.5**0.5, 0.9**0.5)}


def test_bad_every() -> None:
    with pytest.raises(ValueError, match="interval must be a positive integer, got 0"):
        LazyRegularizer(r1_penalty, interval=0)
    with pytest.raises(ValueError, match=r"interval must be a positive integer, got 2\.0"):
        lazy_optimizer_kwargs(0.1, interval=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="penalty must be callable"):
        LazyRegularizer(3.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"lr": float("nan")}, "lr must be a finite number, got nan"),
    ({"lr": 0.0}, "lr must be > 0, got 0.0"),
    ({"betas": (0.0, float("inf"))}, r"betas\[1\] must be a finite number, got inf"),
    ({"betas": (1.5, 0.99)}, r"betas\[0\] must be in \[0, 1\], got 1.5"),
    ({"betas": (0.9,)}, r"betas must be a pair of numbers in \[0, 1\], got \(0.9,\)"),
])  # fmt: skip
def test_bad_optimizer_settings(kwargs: dict[str, object], match: str) -> None:
    settings: dict[str, object] = {"lr": 0.002, "betas": (0.0, 0.99), **kwargs}
    with pytest.raises(ValueError, match=match):
        lazy_optimizer_kwargs(settings["lr"], settings["betas"], interval=4)  # type: ignore[arg-type]


def test_state_dict_carries_the_penalty_state() -> None:
    def synthesis(ws: torch.Tensor) -> torch.Tensor:
        return (2.0 * ws).reshape(-1, 1, 2, 2)

    pl = PathLengthPenalty(batch_shrink=1)
    lazy = LazyRegularizer(pl, interval=4)
    for step in range(5):
        lazy(step, synthesis, torch.randn(2, 1, 4), generator=torch.Generator().manual_seed(step))
    state = lazy.state_dict()
    assert list(state) == ["penalty.pl_mean"]
    trained = pl.pl_mean.clone()
    assert trained.item() > 0  # two regularization steps moved it from 0

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    pl_resumed = PathLengthPenalty(batch_shrink=1)
    resumed = LazyRegularizer(pl_resumed, interval=4)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(pl_resumed.pl_mean, trained)
    # The resumed regularizer continues as the original: the same penalty on the same draw.
    ws = torch.randn(2, 1, 4)
    a = lazy(8, synthesis, ws, generator=torch.Generator().manual_seed(9))
    b = resumed(8, synthesis, ws, generator=torch.Generator().manual_seed(9))
    assert a is not None and b is not None and torch.equal(a, b)
    # A function penalty has no state.
    assert LazyRegularizer(r1_penalty, interval=4).state_dict() == {}
