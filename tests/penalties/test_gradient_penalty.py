"""WGAN-GP: the linear-critic golden value, interpolation, norms, options, second order, errors."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close, grad_of, tensor_sum
from torch import nn

from ganblocks.penalties import GradientPenalty, gradient_penalty


def linear_critic(w: torch.Tensor, b: float = 0.3):
    return lambda x: x.flatten(1) @ w + b


def half_sq_norm(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x.flatten(1).square().sum(1)


def test_linear_critic_is_lambda_norm_minus_one_squared() -> None:
    w = torch.randn(3 * 4 * 4, dtype=torch.float64)
    real, fake = torch.randn(6, 3, 4, 4, dtype=torch.float64), torch.randn(6, 3, 4, 4, dtype=torch.float64)
    expected = 10.0 * (w.norm() - 1) ** 2
    assert_close(gradient_penalty(linear_critic(w), real, fake), expected)
    assert_close(GradientPenalty(weight=2.5)(linear_critic(w), real, fake), expected / 4)
    assert_close(gradient_penalty(linear_critic(w), real, fake, target=3.0, weight=1.0), (w.norm() - 3) ** 2)


def test_one_sided() -> None:
    real, fake = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    small = torch.full((5,), 0.1, dtype=torch.float64)  # norm 0.22 < 1
    big = torch.full((5,), 1.0, dtype=torch.float64)  # norm 2.24 > 1
    assert gradient_penalty(linear_critic(small), real, fake, one_sided=True).item() == 0.0
    assert gradient_penalty(linear_critic(small), real, fake).item() > 0
    assert_close(gradient_penalty(linear_critic(big), real, fake, one_sided=True), 10 * (big.norm() - 1) ** 2)


def test_interpolation_uses_one_alpha_per_sample_shared_by_scales() -> None:
    real = [torch.randn(5, 2, 4, 4, dtype=torch.float64), torch.randn(5, 2, 2, 2, dtype=torch.float64)]
    fake = [torch.randn(5, 2, 4, 4, dtype=torch.float64), torch.randn(5, 2, 2, 2, dtype=torch.float64)]
    seen: list[list[torch.Tensor]] = []

    def d(xs: list[torch.Tensor]) -> torch.Tensor:
        seen.append([x.detach() for x in xs])
        return half_sq_norm(xs[0]) + half_sq_norm(xs[1])

    out = gradient_penalty(d, real, fake, generator=torch.Generator().manual_seed(7))
    alpha = torch.rand(5, generator=torch.Generator().manual_seed(7)).double().view(5, 1, 1, 1)
    points = [alpha * r + (1 - alpha) * f for r, f in zip(real, fake)]
    assert_close(seen[0][0], points[0])
    assert_close(seen[0][1], points[1])
    # Joint per-sample norm over both scales (the gradient of d is the point itself).
    norm = (points[0].flatten(1).square().sum(1) + points[1].flatten(1).square().sum(1)).sqrt()
    assert_close(out, 10 * ((norm - 1) ** 2).mean())


def test_pixel_norm() -> None:
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    # real == fake, so the interpolate is x and the gradient of d is x.
    got = gradient_penalty(half_sq_norm, x, x, norm="pixel", weight=2.0)
    expected = 2.0 * ((x.square().sum(1).sqrt() - 1) ** 2).mean()
    assert_close(got, expected)
    xs = [x, x[:, :, :2, :2]]
    got2 = gradient_penalty(
        lambda t: half_sq_norm(t[0]) + half_sq_norm(t[1]), xs, xs, norm="pixel", weight=1.0
    )
    dev = [(t.square().sum(1).sqrt() - 1) ** 2 for t in xs]
    assert_close(got2, tensor_sum(d.sum() for d in dev) / sum(d.numel() for d in dev))
    with pytest.raises(ValueError, match="norm='pixel' needs inputs"):
        gradient_penalty(half_sq_norm, torch.zeros(2, 3), torch.zeros(2, 3), norm="pixel")


def test_zero_gradient_stays_finite_in_double_backward() -> None:
    lin = nn.Linear(4, 1)
    with torch.no_grad():
        lin.weight.zero_()
    gp = gradient_penalty(lin, torch.randn(3, 4), torch.randn(3, 4))
    assert_close(gp, torch.tensor(10.0))
    gp.backward()
    assert torch.isfinite(grad_of(lin.weight)).all()


def test_second_order_gradcheck() -> None:
    d = nn.Sequential(nn.Linear(3, 3), nn.Softplus(), nn.Linear(3, 1)).double()
    real, fake = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    names = [n for n, _ in d.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in d.parameters())

    def penalty(*ps: torch.Tensor) -> torch.Tensor:
        def fd(x: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(d, dict(zip(names, ps)), (x,))

        return gradient_penalty(fd, real, fake, generator=torch.Generator().manual_seed(0))

    assert torch.autograd.gradcheck(penalty, params)
    assert torch.autograd.gradgradcheck(penalty, params, fast_mode=True)


def test_every_parameter_gets_a_gradient_and_inputs_detached() -> None:
    g = nn.Linear(2, 6)
    fake = g(torch.randn(3, 2))
    d = nn.Sequential(nn.Linear(6, 4), nn.LeakyReLU(0.2), nn.Linear(4, 1))
    gradient_penalty(d, torch.randn(3, 6), fake).backward()
    assert g.weight.grad is None
    assert all(p.grad is not None for p in d.parameters())
    assert torch.equal(grad_of(d[2].bias), torch.zeros(1))  # type: ignore[arg-type]


def test_compiled_and_bf16_autocast() -> None:
    d = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Softplus(), nn.Flatten(), nn.Linear(4 * 4 * 4, 1))
    real, fake = torch.randn(4, 3, 6, 6), torch.randn(4, 3, 6, 6)
    ref = gradient_penalty(d, real, fake, generator=torch.Generator().manual_seed(0))
    got = gradient_penalty(torch.compile(d), real, fake, generator=torch.Generator().manual_seed(0))
    assert_close(got, ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = gradient_penalty(d, real, fake, generator=torch.Generator().manual_seed(0))
    assert low.dtype == torch.float32
    assert_close(low, ref, torch.bfloat16, scale=5)  # (norm - 1)^2 amplifies the bf16 error of the norm


def test_channels_last() -> None:
    d = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 1))
    real, fake = torch.randn(2, 3, 6, 6), torch.randn(2, 3, 6, 6)
    cl = [t.contiguous(memory_format=torch.channels_last) for t in (real, fake)]
    gen = torch.Generator
    assert_close(
        gradient_penalty(d, *cl, generator=gen().manual_seed(1)),
        gradient_penalty(d, real, fake, generator=gen().manual_seed(1)),
    )


def test_nan_propagates() -> None:
    real = torch.randn(2, 3)
    real[0, 0] = float("nan")
    assert torch.isnan(gradient_penalty(half_sq_norm, real, torch.randn(2, 3)))


def test_repr() -> None:
    assert (
        repr(GradientPenalty()) == "GradientPenalty(weight=10.0, norm='sample', target=1.0, one_sided=False, "
        "logit_reduction='sum', reduction='mean', autocast=False)"
    )


def test_bad_inputs() -> None:
    x = torch.zeros(2, 3)
    with pytest.raises(
        ValueError, match=r"real and fake must have the same shape at scale 0, got \(2, 3\) and \(2, 4\)"
    ):
        gradient_penalty(half_sq_norm, x, torch.zeros(2, 4))
    with pytest.raises(
        ValueError, match=r"real and fake must have the same shape at scale 0, got \(2, 3\) and \(3, 3\)"
    ):
        gradient_penalty(half_sq_norm, x, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="real and fake must have the same number of scales, got 2 and 1"):
        gradient_penalty(half_sq_norm, [x, x], [x])
    with pytest.raises(ValueError, match="both be tensors or both be lists"):
        gradient_penalty(half_sq_norm, x, [x])
    with pytest.raises(ValueError, match="norm must be one of"):
        GradientPenalty(norm="frobenius")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weight must be >= 0"):
        gradient_penalty(half_sq_norm, x, x, weight=-1.0)
    with pytest.raises(ValueError, match="target must be >= 0"):
        GradientPenalty(target=-1.0)
    with pytest.raises(ValueError, match="real must hold at least one tensor"):
        gradient_penalty(half_sq_norm, [], [])


def test_mixed_dtypes_raise_like_shapes() -> None:
    real, fake = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3)
    with pytest.raises(
        TypeError, match=r"real and fake must have the same dtype, got torch\.float64 and torch\.float32"
    ):
        GradientPenalty()(half_sq_norm, real, fake)
    with pytest.raises(TypeError, match=r"real\[1\] and fake\[1\] must have the same dtype"):
        gradient_penalty(lambda xs: xs[0].sum(1), [real, real], [real, fake])
    # Converted, the same inputs give the formula: D = 1/2 ||x||^2 has gradient norm ||x_hat||.
    gen = torch.Generator().manual_seed(3)
    alpha = torch.rand(2, generator=torch.Generator().manual_seed(3), dtype=torch.float32).double()
    x_hat = alpha[:, None] * real + (1 - alpha[:, None]) * fake.double()
    expected = ((x_hat.norm(dim=1) - 1) ** 2).mean()
    assert_close(gradient_penalty(half_sq_norm, real, fake.double(), weight=1.0, generator=gen), expected)


def test_needs_autograd() -> None:
    x = torch.randn(2, 3)
    with (
        torch.no_grad(),
        pytest.raises(RuntimeError, match=r"gradient_penalty differentiates .* torch\.no_grad\(\)"),
    ):
        GradientPenalty()(half_sq_norm, x, x)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="needs autograd"):
        gradient_penalty(half_sq_norm, x, x)


def test_ambiguous_discriminator_output_raises() -> None:
    x = torch.randn(2, 3)
    with pytest.raises(
        TypeError, match=r"discriminator output is a tuple of 2 \(list, tensor\), which is ambiguous"
    ):
        gradient_penalty(lambda t: (half_sq_norm(t), [t]), x, x)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"weight": float("nan")}, "weight must be a finite number, got nan"),
    ({"weight": float("inf")}, "weight must be a finite number, got inf"),
    ({"target": float("nan")}, "target must be a finite number, got nan"),
])  # fmt: skip
def test_non_finite_options_raise(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GradientPenalty(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=match):
        gradient_penalty(half_sq_norm, torch.randn(2, 3), torch.randn(2, 3), **kwargs)  # type: ignore[arg-type]


def test_empty_batch_raises() -> None:
    with pytest.raises(ValueError, match=r"real must have a non-empty batch dimension, got shape \(0, 3\)"):
        gradient_penalty(half_sq_norm, torch.zeros(0, 3), torch.zeros(0, 3))
