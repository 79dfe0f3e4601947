"""``condition=``: a conditional D sees cat([condition, x]), and only x's channels are penalised."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close, tensor_sum
from torch import nn

from ganblocks import GradientPenalty, MultiScaleDiscriminator, R1Penalty, R2Penalty
from ganblocks.penalties import gradient_penalty, r1_penalty, r1_penalty_from_outputs, r2_penalty


def conditional_critic(cond_channels: int = 2, image_channels: int = 3) -> nn.Sequential:
    """A smooth D on cat([condition, image]) whose gradient w.r.t. the condition channels is not zero."""
    return nn.Sequential(
        nn.Conv2d(cond_channels + image_channels, 4, 3, padding=1),
        nn.Softplus(),
        nn.Conv2d(4, 1, 3, stride=2, padding=1),
    ).double()


def image_only_r1(d: nn.Module, cond: torch.Tensor, x: torch.Tensor, gamma: float) -> torch.Tensor:
    """R1 by hand: autograd.grad of D(cat([cond, x])) with respect to the image alone."""
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(d(torch.cat([cond, x], 1)).sum(), x, create_graph=True)
    return gamma / 2 * g.square().sum((1, 2, 3)).mean()


def full_input_r1(d: nn.Module, cond: torch.Tensor, x: torch.Tensor, gamma: float) -> torch.Tensor:
    """What the old README snippet computed: R1 on cat([cond, x]), label channels included."""
    both = torch.cat([cond, x], 1).requires_grad_(True)
    (g,) = torch.autograd.grad(d(both).sum(), both, create_graph=True)
    return gamma / 2 * g.square().sum((1, 2, 3)).mean()


def test_r1_with_condition_differentiates_the_image_only() -> None:
    d = conditional_critic()
    cond, x = torch.randn(4, 2, 8, 8, dtype=torch.float64), torch.randn(4, 3, 8, 8, dtype=torch.float64)
    expected = image_only_r1(d, cond, x, gamma=3.0)
    got = r1_penalty(d, x, gamma=3.0, condition=cond)
    assert_close(got, expected)
    assert_close(R1Penalty(gamma=3.0)(d, x, condition=cond), expected)
    assert_close(r2_penalty(d, x, gamma=3.0, condition=cond), expected)
    assert_close(R2Penalty(gamma=3.0)(d, x, condition=cond), expected)
    # The label channels carry gradient, so penalising them too gives a strictly larger value: the test
    # distinguishes the two.
    assert (full_input_r1(d, cond, x, gamma=3.0) - got).item() > 1e-6


def test_condition_is_concatenated_in_front_and_detached() -> None:
    seen: list[torch.Tensor] = []

    def d(t: torch.Tensor) -> torch.Tensor:
        seen.append(t)
        return t.flatten(1).sum(1)

    label_net = nn.Linear(1, 2 * 4 * 4)
    cond = label_net(torch.ones(3, 1)).view(3, 2, 4, 4)
    x = torch.randn(3, 1, 4, 4)
    penalty = r1_penalty(d, x, gamma=2.0, condition=cond)
    # D = sum of every input element: gradient 1 on each of the 16 image elements, none on the label.
    assert_close(penalty, torch.tensor(16.0))
    assert seen[0].shape == (3, 3, 4, 4)
    torch.testing.assert_close(seen[0][:, :2], cond.detach())
    torch.testing.assert_close(seen[0][:, 2:], x)
    penalty.backward()
    assert label_net.weight.grad is None


def test_condition_is_cast_to_the_inputs_dtype() -> None:
    d = conditional_critic(cond_channels=1)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    labels = torch.randint(0, 2, (2, 1, 6, 6))
    assert_close(r1_penalty(d, x, condition=labels), image_only_r1(d, labels.double(), x, gamma=10.0))


def test_condition_per_scale_for_lists() -> None:
    xs = [torch.randn(2, 3, 8, 8, dtype=torch.float64), torch.randn(2, 3, 4, 4, dtype=torch.float64)]
    cs = [torch.randn(2, 1, 8, 8, dtype=torch.float64), torch.randn(2, 1, 4, 4, dtype=torch.float64)]
    d0, d1 = conditional_critic(1), conditional_critic(1)

    def d(images: list[torch.Tensor]) -> list[torch.Tensor]:
        return [d0(images[0]), d1(images[1])]

    leaves = [x.clone().requires_grad_(True) for x in xs]
    total = d([torch.cat([c, x], 1) for c, x in zip(cs, leaves)])
    grads = torch.autograd.grad(tensor_sum(t.sum() for t in total), leaves, create_graph=True)
    expected = 5.0 * tensor_sum(g.square().sum((1, 2, 3)) for g in grads).mean()
    assert_close(r1_penalty(d, xs, condition=cs), expected)


def test_gradient_penalty_with_condition_interpolates_the_image_only() -> None:
    d = conditional_critic()
    cond = torch.randn(4, 2, 8, 8, dtype=torch.float64)
    real, fake = torch.randn(4, 3, 8, 8, dtype=torch.float64), torch.randn(4, 3, 8, 8, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    got = gradient_penalty(d, real, fake, condition=cond, generator=gen)
    alpha = torch.rand(4, generator=torch.Generator().manual_seed(1)).double().view(4, 1, 1, 1)
    x_hat = torch.lerp(fake, real, alpha).requires_grad_(True)
    (g,) = torch.autograd.grad(d(torch.cat([cond, x_hat], 1)).sum(), x_hat, create_graph=True)
    expected = 10.0 * (g.flatten(1).norm(dim=1) - 1).square().mean()
    assert_close(got, expected)
    gen.manual_seed(1)
    assert_close(GradientPenalty()(d, real, fake, condition=cond, generator=gen), expected)


def test_from_outputs_with_a_conditional_forward() -> None:
    d = conditional_critic()
    cond, x = torch.randn(2, 2, 6, 6, dtype=torch.float64), torch.randn(2, 3, 6, 6, dtype=torch.float64)
    x_in = x.clone().requires_grad_(True)
    out = d(torch.cat([cond, x_in], 1))
    assert_close(r1_penalty_from_outputs(out, x_in, gamma=2.0), r1_penalty(d, x, gamma=2.0, condition=cond))


def test_pix2pixhd_discriminator_with_condition() -> None:
    d = MultiScaleDiscriminator(5, num_scales=2, num_layers=2, base_channels=4)
    cond, real = torch.randn(2, 2, 32, 32), torch.randn(2, 3, 32, 32)
    penalty = R1Penalty(gamma=1.0)(d, real, condition=cond)
    x = real.clone().requires_grad_(True)
    logits = d(torch.cat([cond, x], 1)).logits
    (g,) = torch.autograd.grad(tensor_sum(t.sum() for t in logits), x)
    assert_close(penalty.detach(), 0.5 * g.square().sum((1, 2, 3)).mean())
    penalty.backward()
    assert all(p.grad is not None for p in d.parameters())


@pytest.mark.parametrize(
    ("x", "condition", "message"),
    [
        (
            torch.randn(2, 3, 4, 4),
            torch.randn(3, 1, 4, 4),
            r"condition must have shape \(N, C_cond, \*spatial\)",
        ),
        (torch.randn(2, 3, 4, 4), torch.randn(2, 1, 2, 2), r"\(2, C_cond, 4, 4\).*got \(2, 1, 2, 2\)"),
        (torch.randn(2, 3, 4, 4), torch.randn(2, 4, 4), r"of shape \(2, 3, 4, 4\) along dim 1"),
        (torch.randn(2, 3, 4, 4), [torch.randn(2, 1, 4, 4)], "condition must be a tensor like real"),
        (
            [torch.randn(2, 3, 4, 4)],
            torch.randn(2, 1, 4, 4),
            "condition must be a list of 1 scales like real",
        ),
    ],
)
def test_bad_condition(x: object, condition: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        r1_penalty(lambda t: t.sum(), x, condition=condition)  # type: ignore[arg-type]


def test_bad_condition_type() -> None:
    with pytest.raises(TypeError, match="condition must be a Tensor or a list of tensors"):
        r1_penalty(lambda t: t.sum(), torch.randn(2, 3), condition="labels")  # type: ignore[arg-type]
