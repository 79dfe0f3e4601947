"""Path length regularization: lengths against a hand-written Jacobian, the running mean, second order."""

from __future__ import annotations

import math
from typing import Any, Callable

import pytest
import torch
from helpers import TRITON_DEVICE, assert_close, requires_triton

from ganblocks import LazyRegularizer, PathLengthPenalty
from ganblocks.functional import modulated_conv2d, path_length_penalty, path_lengths, setup_filter
from ganblocks.ops import Backend

BACKENDS = ["torch", pytest.param("triton", marks=requires_triton)]


def _tanh_synthesis(m: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """images = tanh(flat(ws) @ m^T) as (N, 1, 2, 3): its Jacobian is diag(1 - tanh²) m."""
    return lambda ws: torch.tanh(ws.reshape(ws.shape[0], -1) @ m.t()).reshape(-1, 1, 2, 3)


def _formula_lengths(ws: torch.Tensor, m: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """sqrt(mean over latents of |J^T g|²), with J written out by hand, in float64."""
    out = []
    for n in range(ws.shape[0]):
        t = torch.tanh(m @ ws[n].reshape(-1))
        jt_g = m.t() @ ((1 - t * t) * noise[n].reshape(-1))  # J^T g
        per_latent = jt_g.reshape(ws.shape[1:]).reshape(-1, ws.shape[-1]).square().sum(-1)
        out.append(per_latent.mean().sqrt())
    return torch.stack(out)


@pytest.mark.parametrize("ws_shape", [(3, 2, 4), (3, 8)])
def test_lengths_match_formula(ws_shape: tuple[int, ...]) -> None:
    ws = torch.randn(ws_shape, dtype=torch.float64, requires_grad=True)
    m = torch.randn(6, 8, dtype=torch.float64)
    noise = torch.randn(3, 1, 2, 3, dtype=torch.float64)
    images = _tanh_synthesis(m)(ws)
    lengths = path_lengths(images, ws, noise=noise)
    assert lengths.shape == (3,) and lengths.requires_grad  # the graph is kept for the second order
    assert_close(lengths, _formula_lengths(ws.detach(), m, noise))


def test_penalty_and_running_mean() -> None:
    ws = torch.randn(4, 2, 4, dtype=torch.float64, requires_grad=True)
    m = torch.randn(6, 8, dtype=torch.float64, requires_grad=True)
    pl = PathLengthPenalty(weight=2.0, decay=0.01).double()
    mean = 0.0
    for _ in range(3):
        noise = torch.randn(4, 1, 2, 3, dtype=torch.float64)
        penalty = pl.from_outputs(_tanh_synthesis(m)(ws), ws, noise=noise)
        # The formula, differentiable in m by plain autograd (the Jacobian is written out).
        lengths = _formula_lengths(ws.detach(), m, noise)
        new_mean = mean + 0.01 * (lengths.mean() - mean)  # not detached, as in StyleGAN2-ADA
        expected = 2.0 * (lengths - new_mean).square().mean()
        mean = new_mean.item()
        assert_close(pl.pl_mean, torch.tensor(mean, dtype=torch.float64))
        assert_close(penalty, expected)
    # The penalty's gradient w.r.t. the generator's parameters (a second derivative of the synthesis).
    (grad,) = torch.autograd.grad(penalty, m)
    (expected_grad,) = torch.autograd.grad(expected, m)
    assert_close(grad, expected_grad)
    assert grad.abs().sum() > 0 and "pl_mean" in pl.state_dict()


def test_known_values() -> None:
    ws = torch.ones(1, 2, requires_grad=True)
    images = (3.0 * ws).reshape(1, 1, 1, 2)
    penalty, mean = path_length_penalty(
        images, ws, torch.tensor(1.0), decay=0.5, noise=torch.tensor([[[[1.0, 0.0]]]])
    )
    assert math.isclose(mean.item(), 2.0) and math.isclose(penalty.item(), 2.0)  # a' = 1 + (3 - 1) / 2


def test_random_noise_is_scaled_by_resolution() -> None:
    """For images = ws the gradient is the noise itself: E|g|² = H W / (H W) = 1."""
    ws = torch.randn(4, 1, 64 * 64, requires_grad=True)
    lengths = path_lengths(ws.reshape(4, 1, 64, 64), ws, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(lengths, torch.ones(4), atol=0.05)
    again = path_lengths(ws.reshape(4, 1, 64, 64), ws, generator=torch.Generator().manual_seed(1))
    assert torch.equal(lengths, again)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_through_a_modulated_synthesis(backend: Backend) -> None:
    """The penalty's gradient w.r.t. the generator's parameters is a second derivative of the synthesis
    (modulated up-conv with upfirdn2d): gradcheck verifies it in float64 on both backends."""
    device = TRITON_DEVICE if backend == "triton" else "cpu"
    kw: dict[str, Any] = {"dtype": torch.float64, "device": device}
    x = torch.randn(1, 2, 2, 2, **kw)
    ws = torch.randn(2, 3, **kw, requires_grad=True)
    noise = torch.randn(2, 1, 4, 4, **kw)
    f = setup_filter([1, 3, 3, 1], **kw)
    weight = torch.randn(1, 2, 3, 3, **kw, requires_grad=True)
    affine = torch.randn(2, 3, **kw, requires_grad=True)

    def penalty(weight: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
        styles = ws @ affine.t() + 1.0
        images = modulated_conv2d(
            x.expand(2, -1, -1, -1), weight, styles, up=2, padding=1, resample_filter=f, flip_weight=False,
            backend=backend,
        )  # fmt: skip
        return path_length_penalty(torch.tanh(images), ws, torch.tensor(0.3), noise=noise)[0]

    assert torch.autograd.gradcheck(penalty, (weight, affine), fast_mode=backend == "triton")


def test_forward_shrinks_the_batch_and_reaches_the_mapping() -> None:
    mapping = torch.nn.Linear(4, 4)
    bias = torch.nn.Parameter(torch.zeros(1))  # enters images, not their gradient: kept for DDP
    seen: list[tuple[int, ...]] = []

    def synthesis(ws: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(ws.shape))
        return torch.tanh(ws.reshape(-1, 1, 2, 4)) + bias

    pl = PathLengthPenalty()
    z = torch.randn(8, 2, 4)
    pl(synthesis, mapping(z)).backward()
    assert seen == [(4, 2, 4)]
    assert mapping.weight.grad is not None and mapping.weight.grad.abs().sum() > 0
    assert bias.grad is not None and bias.grad.item() == 0.0
    pl(synthesis, torch.randn(3, 2, 4))  # detached latents are made a leaf; batch 3 // 2 = 1
    assert seen[-1] == (1, 2, 4)
    assert pl.batch_size(1) == 1 and PathLengthPenalty(batch_shrink=1).batch_size(5) == 5


def test_lazy_regularizer_runs_every_k_steps_scaled_by_k() -> None:
    calls: list[int] = []

    def synthesis(ws: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return (2.0 * ws).reshape(-1, 1, 2, 2)

    pl = PathLengthPenalty(batch_shrink=1)
    lazy = LazyRegularizer(pl, interval=4)
    ws = torch.randn(2, 1, 4)
    results = [lazy(step, synthesis, ws, generator=torch.Generator().manual_seed(0)) for step in range(5)]
    assert [r is None for r in results] == [False, True, True, True, False]
    assert len(calls) == 2  # the synthesis only runs on regularization steps
    # Same noise both times: lengths l, first mean 0.01 l̄, then 0.01 l̄ + 0.01 (l̄ - 0.01 l̄).
    ws_leaf = ws.detach().requires_grad_(True)
    gen = torch.Generator().manual_seed(0)
    lengths = path_lengths(synthesis(ws_leaf), ws_leaf, generator=gen).detach()
    a1 = 0.01 * lengths.mean()
    a2 = a1 + 0.01 * (lengths.mean() - a1)
    assert_close(results[0], 4 * 2.0 * (lengths - a1).square().mean())
    assert_close(results[4], 4 * 2.0 * (lengths - a2).square().mean())
    assert_close(pl.pl_mean, a2)
    assert pl.last_lengths is not None and not pl.last_lengths.requires_grad
    assert_close(pl.last_lengths, lengths)  # for logging: the lengths behind the latest penalty


def test_last_lengths_for_logging() -> None:
    pl = PathLengthPenalty(batch_shrink=2)
    assert pl.last_lengths is None
    ws = torch.randn(6, 2, 4, dtype=torch.float64, requires_grad=True)
    images = (3.0 * ws[:, :, :2]).reshape(6, 1, 2, 2)  # each pixel is 3 times one latent coordinate
    noise = torch.randn(images.shape, dtype=torch.float64)
    pl.from_outputs(images, ws, noise=noise)
    # d(y . g)/d w_l = 3 g on layer l's two pixels; the length is the rms over the 2 layers of its norm
    g = noise.reshape(6, 2, 2)
    expected = (9.0 * g.square().sum(-1)).mean(-1).sqrt()
    assert pl.last_lengths is not None and pl.last_lengths.shape == (6,)
    assert_close(pl.last_lengths, expected)


def test_low_precision_images() -> None:
    ws = torch.randn(2, 1, 4, requires_grad=True)
    images = ws.half().reshape(2, 1, 2, 2)
    lengths = path_lengths(images, ws, generator=torch.Generator().manual_seed(0))
    assert lengths.dtype == torch.float32 and torch.isfinite(lengths).all()


def test_repr() -> None:
    assert repr(PathLengthPenalty()) == (
        "PathLengthPenalty(weight=2.0, decay=0.01, batch_shrink=2, reduction='mean')"
    )


def _bad(kind: str) -> None:
    ws = torch.randn(2, 4, requires_grad=True)
    images = ws.reshape(2, 1, 2, 2)
    if kind == "no_grad":
        with torch.no_grad():
            path_lengths(images, ws)
    elif kind == "leaf":
        path_lengths(images.detach(), ws.detach())
    elif kind == "unused":
        path_lengths(torch.randn(2, 1, 2, 2, requires_grad=True), ws)
    elif kind == "batch":
        path_lengths(images[:1], ws)
    elif kind == "noise":
        path_lengths(images, ws, noise=torch.randn(2, 1, 4))
    elif kind == "ws":
        path_lengths(images, ws.reshape(2, 1, 2, 2))
    elif kind == "pl_mean":
        path_length_penalty(images, ws, torch.zeros(2))


@pytest.mark.parametrize(
    ("kind", "error", "match"),
    [
        ("no_grad", RuntimeError, "needs autograd, but it was called with gradients disabled"),
        ("leaf", ValueError, "ws does not require grad"),
        ("unused", ValueError, "images do not depend on ws"),
        ("batch", ValueError, "images and ws must have one batch size, got 1 and 2"),
        ("noise", ValueError, r"noise must have the shape of images \(2, 1, 2, 2\), got \(2, 1, 4\)"),
        ("ws", ValueError, r"ws must have shape \(N, num_ws, w_dim\) or \(N, w_dim\).*got \(2, 1, 2, 2\)"),
        ("pl_mean", ValueError, r"pl_mean must be a scalar tensor, got shape \(2,\)"),
    ],
)
def test_bad_inputs(kind: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        _bad(kind)


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\], got 1.5"):
        PathLengthPenalty(decay=1.5)
    with pytest.raises(ValueError, match="weight must be >= 0, got -1"):
        PathLengthPenalty(weight=-1)
    with pytest.raises(ValueError, match="batch_shrink must be an int >= 1, got 0"):
        PathLengthPenalty(batch_shrink=0)


def test_reduction_over_samples() -> None:
    ws = torch.randn(4, 2, 4, dtype=torch.float64, requires_grad=True)
    m = torch.randn(6, 8, dtype=torch.float64, requires_grad=True)
    noise = torch.randn(4, 1, 2, 3, dtype=torch.float64)
    images = _tanh_synthesis(m)(ws)
    lengths = _formula_lengths(ws.detach(), m, noise)
    mean = 0.5 + 0.01 * (lengths.mean() - 0.5)
    pl_mean = torch.tensor(0.5, dtype=torch.float64)
    each, new_mean = path_length_penalty(images, ws, pl_mean, reduction="none", noise=noise)
    assert each.shape == (4,)
    assert_close(each, 2.0 * (lengths - mean).square())
    assert_close(new_mean, mean)
    total, _ = path_length_penalty(images, ws, pl_mean, reduction="sum", noise=noise)
    assert_close(total, each.sum())
    default, _ = path_length_penalty(images, ws, pl_mean, noise=noise)
    assert_close(default, each.mean())
    pl = PathLengthPenalty(reduction="none").double()
    pl.pl_mean.fill_(0.5)
    assert_close(pl.from_outputs(images, ws, noise=noise), each)
