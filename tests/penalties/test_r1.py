"""R1/R2: golden values, the reuse form, second order, DDP guard, compiled D, mixed precision, errors."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_close
from torch import nn

from ganblocks.discriminators import DiscriminatorOutput
from ganblocks.penalties import R1Penalty, R2Penalty, r1_penalty, r1_penalty_from_outputs, r2_penalty


def half_sq_norm(x: torch.Tensor) -> torch.Tensor:
    """D(x) = 1/2 ||x||^2 per sample: its input gradient is x."""
    return 0.5 * x.flatten(1).square().sum(1)


def small_critic(dtype: torch.dtype = torch.float32) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.Softplus(),  # smooth, so gradcheck/gradgradcheck see true third derivatives
        nn.Conv2d(4, 4, 3, stride=2, padding=1),
        nn.Softplus(),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 1),
    ).to(dtype)


def test_r1_on_half_squared_norm_is_gamma_half_mean_squared_norm() -> None:
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    expected = 10.0 / 2 * x.flatten(1).square().sum(1).mean()
    assert_close(r1_penalty(half_sq_norm, x), expected)
    assert_close(r1_penalty(half_sq_norm, x, gamma=0.5), expected / 20)
    assert_close(R1Penalty(gamma=3.0)(half_sq_norm, x), expected * 0.3)
    assert_close(r2_penalty(half_sq_norm, x, gamma=3.0), expected * 0.3)
    assert_close(R2Penalty(gamma=3.0)(half_sq_norm, x), expected * 0.3)


def test_output_forms_sum_all_logits() -> None:
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)

    def multi(t: torch.Tensor) -> DiscriminatorOutput:
        # Two "scales" of patch logits: the penalised function is the sum of all of them.
        return DiscriminatorOutput([0.5 * t.square(), t[:, :1].sum((2, 3)) * 2.0], [[], []])

    # d/dx [sum 0.5 x^2 + 2 * sum x[:, 0]] = x + 2 * [channel 0]
    g = x.clone()
    g[:, 0] += 2.0
    expected = 5.0 * g.flatten(1).square().sum(1).mean()
    assert_close(r1_penalty(multi, x), expected)
    assert_close(r1_penalty(lambda t: multi(t).logits, x), expected)
    assert_close(r1_penalty(lambda t: multi(t).to_nested(), x), expected)


def test_list_inputs_norm_over_all_scales() -> None:
    xs = [torch.randn(3, 2, 4, 4, dtype=torch.float64), torch.randn(3, 2, 2, 2, dtype=torch.float64)]
    seen: list[list[torch.Tensor]] = []

    def d(images: list[torch.Tensor]) -> torch.Tensor:
        seen.append(images)
        return half_sq_norm(images[0]) + half_sq_norm(images[1])

    expected = 5.0 * (xs[0].flatten(1).square().sum(1) + xs[1].flatten(1).square().sum(1)).mean()
    assert_close(r1_penalty(d, xs), expected)
    assert isinstance(seen[0], list) and len(seen[0]) == 2


def test_from_outputs_equals_penalty_and_keeps_graph() -> None:
    d = small_critic(torch.float64)
    x = torch.randn(4, 3, 6, 6, dtype=torch.float64)
    expected = r1_penalty(d, x, gamma=2.0)
    x_in = x.clone().requires_grad_()
    out = d(x_in)
    got = r1_penalty_from_outputs(out, x_in, gamma=2.0)
    assert_close(got, expected)
    assert_close(R1Penalty(gamma=2.0).from_outputs(out, x_in), expected)
    assert_close(R2Penalty(gamma=2.0).from_outputs(out, x_in), expected)
    # The caller's graph survives the penalty: the adversarial loss can still be backpropagated.
    (out.mean() + got).backward()
    assert all(p.grad is not None for p in d.parameters())


def test_second_order_gradcheck() -> None:
    d = nn.Sequential(nn.Conv2d(2, 2, 3), nn.Softplus(), nn.Flatten(), nn.Linear(2, 1)).double()
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    params = tuple(p.detach().clone().requires_grad_() for p in d.parameters())

    def penalty(*ps: torch.Tensor) -> torch.Tensor:
        def fd(inp: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(d, dict(zip([n for n, _ in d.named_parameters()], ps)), (inp,))

        return r1_penalty(fd, x, gamma=1.0)

    assert torch.autograd.gradcheck(penalty, params)
    assert torch.autograd.gradgradcheck(penalty, params, fast_mode=True)


def test_every_parameter_gets_a_gradient() -> None:
    """The last bias does not affect the input gradient; without the 0 * logits term it has no grad (DDP)."""
    d = small_critic()
    r1_penalty(d, torch.randn(2, 3, 6, 6)).backward()
    last_bias = d[-1].bias
    assert last_bias.grad is not None and torch.equal(last_bias.grad, torch.zeros_like(last_bias))  # type: ignore[arg-type]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())


def test_inputs_are_detached() -> None:
    g = nn.Linear(2, 6)
    fake = g(torch.randn(3, 2)).view(3, 6)
    d = nn.Linear(6, 1)
    r2_penalty(d, fake).backward()
    assert g.weight.grad is None
    assert d.weight.grad is not None


def test_compiled_discriminator_gives_the_eager_value() -> None:
    d = small_critic()
    x = torch.randn(2, 3, 6, 6)
    compiled = torch.compile(d)
    eager = r1_penalty(d, x)
    got = r1_penalty(compiled, x)
    assert_close(got, eager)
    got.backward()  # the double backward runs on the eager module
    assert all(p.grad is not None for p in d.parameters())


def test_bf16_autocast_close_to_float32() -> None:
    d = small_critic()
    x = torch.randn(4, 3, 6, 6)
    ref = r1_penalty(d, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = r1_penalty(d, x)
        scaled = r1_penalty(d, x, scaler=torch.amp.GradScaler("cpu", init_scale=2.0**16))
    assert low.dtype == torch.float32 and scaled.dtype == torch.float32
    assert_close(low, ref, torch.bfloat16, scale=2)
    assert_close(scaled, ref, torch.bfloat16, scale=2)
    low.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())


def test_grad_scaler_rescues_float16_gradients() -> None:
    """Input gradients of 1e-8 flush to zero in float16; through the scaler they survive and are unscaled."""
    conv = nn.Conv2d(3, 1, 3, padding=1)
    x = torch.randn(2, 3, 6, 6)

    def d(t: torch.Tensor) -> torch.Tensor:
        return conv(t) * 1e-8

    ref = r1_penalty(d, x)
    assert ref > 0
    with torch.autocast("cpu", dtype=torch.float16):
        plain = r1_penalty(d, x)
        scaled = r1_penalty(d, x, scaler=torch.amp.GradScaler("cpu"))
    assert plain.item() == 0.0
    assert_close(scaled / ref, torch.ones(()), torch.float16, scale=5)
    # A disabled scaler is a no-op.
    assert_close(r1_penalty(d, x, scaler=torch.amp.GradScaler("cpu", enabled=False)), ref)


def test_channels_last() -> None:
    d = small_critic()
    x = torch.randn(2, 3, 6, 6)
    assert_close(r1_penalty(d, x.contiguous(memory_format=torch.channels_last)), r1_penalty(d, x))


def test_nan_propagates() -> None:
    x = torch.randn(2, 3, 4, 4)
    x[1, 0, 0, 0] = float("nan")
    assert torch.isnan(r1_penalty(half_sq_norm, x))


def test_repr() -> None:
    assert repr(R1Penalty(gamma=5.0)) == "R1Penalty(gamma=5.0, logit_reduction='sum', reduction='mean')"
    assert repr(R2Penalty()) == "R2Penalty(gamma=10.0, logit_reduction='sum', reduction='mean')"


def test_bad_inputs() -> None:
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="gamma must be >= 0, got -1"):
        r1_penalty(half_sq_norm, x, gamma=-1.0)
    with pytest.raises(TypeError, match="gamma must be a number, got str"):
        R1Penalty(gamma="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"real must be a floating-point tensor, got dtype torch\.int64"):
        r1_penalty(half_sq_norm, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="fake must be a Tensor or a list of tensors, got float"):
        r2_penalty(half_sq_norm, 3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"real must have one batch size at every scale, got \[2, 3\]"):
        r1_penalty(lambda xs: xs[0].sum(), [torch.zeros(2, 3), torch.zeros(3, 3)])
    with pytest.raises(ValueError, match=r"inputs\[0\] does not require grad; call \.requires_grad_\(True\)"):
        r1_penalty_from_outputs(half_sq_norm(x), x)
    y = x.clone().requires_grad_()
    with pytest.raises(ValueError, match="output does not depend on inputs\\[0\\]"):
        r1_penalty_from_outputs(half_sq_norm(x.clone().requires_grad_()), y)
    with pytest.raises(
        TypeError, match="discriminator output must be a DiscriminatorOutput, a tensor of logits"
    ):
        r1_penalty(lambda t: {"logits": t}, x)


def test_ambiguous_discriminator_output_raises() -> None:
    """A discriminator returning (logits, features) must not have its features penalised as logits."""
    x = torch.randn(2, 3)

    def d_tuple(t: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return half_sq_norm(t), [t * 3.0]

    with pytest.raises(
        TypeError, match=r"discriminator output is a tuple of 2 \(list, tensor\), which is ambiguous"
    ):
        r1_penalty(d_tuple, x)
    with pytest.raises(TypeError, match=r"discriminator output is a list of 2 .*mixing tensors and lists"):
        r1_penalty(lambda t: list(d_tuple(t)), x)
    with pytest.raises(TypeError, match=r"discriminator output is a tuple of 2 \(tensor\)"):
        R1Penalty(gamma=1.0)(lambda t: (half_sq_norm(t), t.sum(1)), x)
    # Wrapped, only the logits count: D(x) = 1/2 ||x||^2 gives gamma/2 * E||x||^2.
    wrapped = r1_penalty(lambda t: DiscriminatorOutput(*map(list, zip(d_tuple(t)))), x, gamma=2.0)  # type: ignore[arg-type]
    assert_close(wrapped, x.square().sum(1).mean())


def test_needs_autograd() -> None:
    x = torch.randn(2, 3)
    with torch.no_grad():
        with pytest.raises(RuntimeError, match=r"the R1/R2 penalty differentiates .* torch\.no_grad\(\)"):
            R1Penalty()(half_sq_norm, x)
        with pytest.raises(RuntimeError, match="needs autograd"):
            r2_penalty(half_sq_norm, x)
    y = x.clone().requires_grad_()
    out = half_sq_norm(y)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        r1_penalty_from_outputs(out, y)


@pytest.mark.parametrize("gamma", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_gamma_raises(gamma: float) -> None:
    with pytest.raises(ValueError, match=f"gamma must be a finite number, got {gamma}"):
        R1Penalty(gamma=gamma)
    with pytest.raises(ValueError, match=f"gamma must be a finite number, got {gamma}"):
        R2Penalty(gamma=gamma)
    with pytest.raises(ValueError, match=f"gamma must be a finite number, got {gamma}"):
        r1_penalty(half_sq_norm, torch.randn(2, 3), gamma=gamma)


def test_empty_batch_raises() -> None:
    with pytest.raises(ValueError, match=r"real must have a non-empty batch dimension, got shape \(0, 3\)"):
        r1_penalty(half_sq_norm, torch.zeros(0, 3))
    with pytest.raises(
        ValueError, match=r"fake\[1\] must have a non-empty batch dimension, got shape \(0, 2\)"
    ):
        r2_penalty(lambda xs: xs[0].sum(1), [torch.zeros(1, 3), torch.zeros(0, 2)])


def test_unreached_float16_parameter_does_not_overflow_the_penalty() -> None:
    # The zero term that keeps an unreached parameter in the graph must not sum the parameter first:
    # 1000 × 100 overflows float16, and 0 · inf would turn a finite penalty into NaN.
    from ganblocks.penalties._common import keep_parameters_in_graph

    x = torch.randn(4, requires_grad=True)
    w = torch.full((1000,), 100.0, dtype=torch.float16, requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    out = (x * x).sum() + (w * 1).sum().float() * 0 + b
    (g,) = torch.autograd.grad(out, x, create_graph=True)
    penalty = keep_parameters_in_graph(g.square().sum(), out)
    assert torch.isfinite(penalty)
    torch.testing.assert_close(penalty, (2 * x).square().sum())
    penalty.backward()
    assert w.grad is not None and b.grad is not None
    assert (w.grad == 0).all() and b.grad == 0


def test_modules_can_be_built_without_autograd() -> None:
    with torch.no_grad():
        r1 = R1Penalty(gamma=2.0)
    assert_close(r1(half_sq_norm, torch.tensor([[3.0, 4.0]])), torch.tensor(25.0))
    with torch.no_grad(), pytest.raises(RuntimeError, match="the R1/R2 penalty"):
        r1(half_sq_norm, torch.tensor([[3.0, 4.0]]))
