"""unrolled_discriminator: hand-derived unrolled gradients of a linear D, finite differences, options, errors."""

from __future__ import annotations

from typing import cast

import pytest
import torch
from helpers import assert_close
from torch import nn
from torch.func import functional_call

from ganblocks.training import unrolled_discriminator


def wgan_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return fake.mean() - real.mean()


def linear_d() -> nn.Linear:
    d = nn.Linear(3, 1).double()
    with torch.no_grad():
        d.weight.copy_(torch.tensor([[0.5, -1.0, 2.0]]))
        d.bias.fill_(0.25)
    return d


@pytest.mark.parametrize("steps", [0, 1, 4])
def test_wgan_linear_d_matches_the_hand_gradient(steps: int) -> None:
    # D(x) = w.x + b, L_D = mean(D(f)) - mean(D(r)) = w.(f_bar - r_bar): each SGD step moves w by
    # -lr (f_bar - r_bar), so w_K = w0 - K lr (f_bar - r_bar). The generator shifts latents by theta,
    # f = z + theta, and L_G = -mean(D_K(f)) = -(w_K . f_bar + b), whose gradient is
    # -w_K + K lr f_bar (the unrolling's term), i.e. -w0 + K lr (2 f_bar - r_bar).
    d, lr = linear_d(), 0.1
    real, z = torch.randn(6, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    theta = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64, requires_grad=True)
    unrolled = unrolled_discriminator(d, None, wgan_d, real, lambda: z + theta, steps=steps, lr=lr)
    f_bar, r_bar, w0 = (z + theta).mean(0).detach(), real.mean(0), d.weight.detach().flatten()
    assert_close(unrolled["weight"].detach().flatten(), w0 - steps * lr * (f_bar - r_bar))
    assert_close(unrolled["bias"].detach(), d.bias.detach())  # the bias' gradient cancels
    g_loss = -functional_call(d, unrolled, (z + theta,)).mean()
    (grad,) = torch.autograd.grad(g_loss, theta)
    assert_close(grad, -w0 + steps * lr * (2 * f_bar - r_bar))
    assert_close(d.weight.detach().flatten(), w0)  # the module itself is not changed


def sigmoid(v: torch.Tensor) -> torch.Tensor:
    return 1 / (1 + torch.exp(-v))


def unrolled_objective(
    theta: torch.Tensor,
    w: torch.Tensor,
    b: float | torch.Tensor,
    real: torch.Tensor,
    z: torch.Tensor,
    steps: int,
    lr: float,
) -> torch.Tensor:
    """The non-saturating unrolled G loss with D's BCE gradients written in closed form (no autograd)."""
    f = z + theta
    for _ in range(steps):
        dr, df = real @ w + b, f @ w + b
        # d/dw [softplus(-dr) + softplus(df)] = -sigmoid(-dr) r + sigmoid(df) f (means over samples)
        gw = -(sigmoid(-dr)[:, None] * real).mean(0) + (sigmoid(df)[:, None] * f).mean(0)
        gb = -sigmoid(-dr).mean() + sigmoid(df).mean()
        w, b = w - lr * gw, b - lr * gb
    return torch.log1p(torch.exp(-(f @ w + b))).mean()


def test_non_saturating_gradient_matches_finite_differences() -> None:
    d, lr, steps = linear_d(), 0.5, 3
    real, z = torch.randn(6, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    theta = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64, requires_grad=True)
    softplus = torch.nn.functional.softplus
    d_loss = lambda r, f: softplus(-r).mean() + softplus(f).mean()  # noqa: E731
    unrolled = unrolled_discriminator(d, None, d_loss, real, z + theta, steps=steps, lr=lr)
    (grad,) = torch.autograd.grad(softplus(-functional_call(d, unrolled, (z + theta,))).mean(), theta)
    w, b = d.weight.detach().flatten(), d.bias.item()
    eps, expected = 1e-6, torch.zeros(3, dtype=torch.float64)
    for i in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[i] = eps
        plus = unrolled_objective(theta.detach() + e, w, b, real, z, steps, lr)
        minus = unrolled_objective(theta.detach() - e, w, b, real, z, steps, lr)
        expected[i] = (plus - minus) / (2 * eps)
    torch.testing.assert_close(grad, expected, rtol=1e-7, atol=1e-8)  # central differences: O(eps^2)


def test_not_differentiable_keeps_only_the_direct_term() -> None:
    d, lr, steps = linear_d(), 0.1, 2
    real, z = torch.randn(6, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    theta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    unrolled = unrolled_discriminator(
        d, None, wgan_d, real, z + theta, steps=steps, lr=lr, differentiable=False
    )
    (grad,) = torch.autograd.grad(-functional_call(d, unrolled, (z + theta,)).mean(), theta)
    assert_close(grad, -unrolled["weight"].detach().flatten())  # -w_K: w_K treated as a constant


def test_step_fn_frozen_module_and_partial_params() -> None:
    d, real, fake = linear_d(), torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    sgd = unrolled_discriminator(d, None, wgan_d, real, fake, steps=2, lr=0.2)
    d.requires_grad_(False)  # as during the generator's step
    custom = unrolled_discriminator(
        d, None, wgan_d, real, fake, steps=2, step_fn=lambda p, g: {n: p[n] - 0.2 * g[n] for n in p}
    )
    for name in ("weight", "bias"):
        assert_close(custom[name], sgd[name])
    only_bias = unrolled_discriminator(d, {"bias": d.bias}, wgan_d, real, fake, steps=2, lr=0.2)
    assert set(only_bias) == {"bias"}


def test_unwraps_compile() -> None:
    d = linear_d()
    out = unrolled_discriminator(
        cast(nn.Module, torch.compile(d)),
        None,
        wgan_d,
        torch.zeros(2, 3, dtype=torch.float64),
        torch.ones(2, 3, dtype=torch.float64),
        steps=1,
        lr=1.0,
    )
    assert_close(out["weight"].detach(), d.weight.detach() - 1.0)


def test_errors() -> None:
    d, x = linear_d(), torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="steps must be an int >= 0, got -1"):
        unrolled_discriminator(d, None, wgan_d, x, x, steps=-1)
    with pytest.raises(ValueError, match=r"unknown names \['nope'\]"):
        unrolled_discriminator(d, {"nope": x}, wgan_d, x, x, steps=1)
    with pytest.raises(ValueError, match="lr must be > 0"):
        unrolled_discriminator(d, None, wgan_d, x, x, steps=1, lr=0.0)
    with pytest.raises(ValueError, match="step_fn must return a dict with the names"):
        unrolled_discriminator(d, None, wgan_d, x, x, steps=1, step_fn=lambda p, g: {})
    with torch.no_grad(), pytest.raises(RuntimeError, match="needs autograd"):
        unrolled_discriminator(d, None, wgan_d, x, x, steps=1)
