"""zCR: both terms by hand, the perturbation's scale, pyramids and scales, reductions, gradients' reach."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close
from torch import nn

from ganblocks import DiscriminatorOutput, LatentConsistencyRegularization
from ganblocks.penalties import latent_consistency_d_penalty, latent_consistency_g_penalty


def test_d_term_by_hand_and_images_detached() -> None:
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    d = lambda x: x @ w  # noqa: E731
    fake = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    moved = fake + 0.1 * torch.randn(5, 3, dtype=torch.float64)
    got = latent_consistency_d_penalty(d, fake, moved, weight=2.0)
    assert_close(got, 2.0 * ((fake @ w - moved @ w) ** 2).mean())
    got.backward()
    assert fake.grad is None and w.grad is not None  # only the discriminator is penalised
    # The caller's D(G(z)) is reused instead of a second forward.
    assert_close(
        latent_consistency_d_penalty(d, fake, moved, fake_pred=(fake @ w).detach()),
        5 * ((fake @ w - moved @ w) ** 2).mean(),
    )


def test_d_term_scales_and_pyramid_input() -> None:
    def d(pyramid: list[torch.Tensor]) -> DiscriminatorOutput:
        return DiscriminatorOutput([p.mean((1, 2, 3)).unsqueeze(1) for p in pyramid], [[], []])

    fake = [torch.randn(3, 2, 4, 4, dtype=torch.float64), torch.randn(3, 2, 2, 2, dtype=torch.float64)]
    moved = [f + 0.5 for f in fake]  # every level's logit moves by 0.5
    assert_close(
        latent_consistency_d_penalty(d, fake, moved), torch.tensor(5 * 2 * 0.25, dtype=torch.float64)
    )
    got = latent_consistency_d_penalty(d, fake, moved, scale_reduction="mean", reduction="none")
    assert_close(got, torch.full((3,), 5 * 0.25, dtype=torch.float64))


def test_g_term_by_hand_rewards_diversity() -> None:
    fake = torch.randn(4, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    moved = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    got = latent_consistency_g_penalty(fake, moved)
    assert_close(got, -0.5 * ((fake - moved) ** 2).mean())
    got.backward()
    assert fake.grad is not None
    assert_close(
        fake.grad, -0.5 * 2 * (fake - moved).detach() / fake.numel()
    )  # pushes G(z) away from G(z + dz)
    per = latent_consistency_g_penalty(fake, moved, weight=1.0, reduction="none")
    assert_close(per, -((fake - moved) ** 2).mean((1, 2, 3)))
    assert_close(latent_consistency_g_penalty(fake, moved, weight=1.0, reduction="sum"), per.sum())
    pyramid = latent_consistency_g_penalty([fake, fake[:, :, :1]], [moved, moved[:, :, :1]], reduction="none")
    assert_close(
        pyramid,
        -0.5 * (((fake - moved) ** 2).mean((1, 2, 3)) + ((fake - moved)[:, :, :1] ** 2).mean((1, 2, 3))),
    )


def test_module_perturbation_and_terms() -> None:
    zcr = LatentConsistencyRegularization(sigma=0.03)
    z = torch.zeros(20000, 4)
    noise = zcr.perturb(z, generator=torch.Generator().manual_seed(0)) - z
    assert abs(float(noise.std()) - 0.03) < 0.001 and abs(float(noise.mean())) < 0.001
    g, d = nn.Linear(4, 3).double(), nn.Linear(3, 1).double()
    z = torch.randn(8, 4, dtype=torch.float64)
    fake, moved = g(z), g(zcr.perturb(z))
    assert_close(zcr(d, fake, moved), latent_consistency_d_penalty(d, fake, moved))
    assert_close(zcr.g_penalty(fake, moved), latent_consistency_g_penalty(fake, moved))
    zcr.g_penalty(fake, moved).backward()
    assert g.weight.grad is not None and g.weight.grad.abs().sum() > 0
    assert "sigma=0.03, weight_dis=5.0, weight_gen=0.5" in repr(zcr)


def test_errors() -> None:
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="weight must be"):
        latent_consistency_d_penalty(lambda t: t, x, x, weight=-1.0)
    with pytest.raises(ValueError, match="sigma must be"):
        LatentConsistencyRegularization(sigma=-0.1)
    with pytest.raises(ValueError, match="weight_gen must be"):
        LatentConsistencyRegularization(weight_gen=float("nan"))
    with pytest.raises(ValueError, match="fake and fake_perturbed must have the same shape"):
        latent_consistency_g_penalty(x, torch.zeros(3, 3))
    with pytest.raises(TypeError, match="fake must be a floating-point tensor"):
        latent_consistency_d_penalty(lambda t: t, torch.zeros(2, 3, dtype=torch.long), x)
    with pytest.raises(RuntimeError, match="needs autograd"), torch.no_grad():
        latent_consistency_d_penalty(lambda t: t, x, x)


def test_gradcheck_both_terms() -> None:
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    fake, moved = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    torch.autograd.gradcheck(lambda v: latent_consistency_d_penalty(lambda x: x @ v, fake, moved), (w,))
    a = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda x, y: latent_consistency_g_penalty(x, y, reduction="none"), (a, b))
