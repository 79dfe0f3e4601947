"""Non-finite and extreme values: NaN/inf propagate alike on both backends, pixel_norm near the top of float32,
float64 constants in the kernels, the clamp's gradient at the bound (bounds included), eps > 0.

Every Triton case runs against the PyTorch reference of the same call (the reference is the specification),
and against a hand formula where one exists.
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import TRITON_DEVICE, assert_close, requires_triton

from ganblocks.functional import adain, bias_act, inject_noise, instance_norm_act, pixel_norm
from ganblocks.layers import Activation
from ganblocks.ops import Backend

NAN, INF = float("nan"), float("inf")
# The interpreter evaluates kernels with numpy, which warns on the NaN/inf arithmetic these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
ACTS = ["linear", "relu", "lrelu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"]
BACKENDS = ["torch", pytest.param("triton", marks=requires_triton)]


def _device(backend: Backend) -> str:
    return TRITON_DEVICE if backend == "triton" else "cpu"


def _same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal values, NaN where the other has NaN, infinities with their sign."""
    torch.testing.assert_close(actual.cpu(), expected.cpu(), rtol=1e-12, atol=1e-12, equal_nan=True)


def _specials(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """NaN, ±inf, zero, the lrelu/elu branches, and values beyond a clamp of 1, as a (1, 12) row."""
    return torch.tensor([[NAN, INF, -INF, 0.0, -0.0, 2.0, -2.0, 0.5, -0.5, 30.0, -30.0, 1e30]], dtype=dtype)


# --- NaN and infinity: the Triton kernels agree with PyTorch --------------------------------------------------


@requires_triton
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("clamp", [None, 1.0])
@pytest.mark.parametrize("gain", [None, -0.5])
def test_bias_act_nonfinite_forward_and_backward_agree(
    act: Activation, clamp: float | None, gain: float | None
) -> None:
    z = _specials().to(TRITON_DEVICE)
    outs, grads = [], []
    for backend in ("triton", "torch"):
        x = z.clone().requires_grad_()
        y = bias_act(x, act=act, gain=gain, clamp=clamp, backend=backend)
        (g,) = torch.autograd.grad(y, x, torch.ones_like(y))
        outs.append(y.detach())
        grads.append(g)
    _same(outs[0], outs[1])
    # NaN in the input stays NaN in the output (torch.relu, elu, selu and torch.clamp propagate it).
    assert torch.isnan(outs[0][0, 0])
    if act in ("elu", "selu"):
        # torch's own elu backward is not consistent at a NaN input: its vectorized loop gives NaN, its scalar
        # tail the incoming gradient, so which one the reference shows depends on the row length and the
        # CPU's vector width (torch 2.13: a 12-element float64 row is all tail under AVX-512, mostly vector
        # under AVX2). The kernel propagates the NaN; every other position must match the reference.
        assert torch.isnan(grads[0][0, 0])
        grads = [g[:, 1:] for g in grads]
    _same(grads[0], grads[1])


@requires_triton
@pytest.mark.parametrize("act", ["relu", "elu", "selu", "lrelu"])
def test_bias_act_nan_bias_propagates(act: Activation) -> None:
    x = torch.randn(2, 3, 4, dtype=torch.float64, device=TRITON_DEVICE)
    b = torch.tensor([0.0, NAN, 1.0], dtype=torch.float64, device=TRITON_DEVICE)
    y = bias_act(x, b, act=act, clamp=2.0, backend="triton")
    assert torch.isnan(y[:, 1]).all() and not torch.isnan(y[:, [0, 2]]).any()
    _same(y, bias_act(x, b, act=act, clamp=2.0, backend="torch"))


@requires_triton
@pytest.mark.parametrize("act", ["relu", "elu", "selu", "lrelu", "tanh"])
@pytest.mark.parametrize("clamp", [None, 0.5])
def test_inject_noise_nonfinite_agrees(act: Activation, clamp: float | None) -> None:
    x = torch.randn(2, 3, 2, 6, dtype=torch.float64, device=TRITON_DEVICE)
    x[0, 0, 0, :] = _specials()[0, :6]
    noise = torch.randn(2, 1, 2, 6, dtype=torch.float64, device=TRITON_DEVICE)
    noise[1, 0, 1, :] = _specials()[0, 6:]
    strength = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, device=TRITON_DEVICE)
    outs = [inject_noise(x, strength, noise, act=act, clamp=clamp, backend=b) for b in ("triton", "torch")]
    _same(outs[0], outs[1])
    assert torch.isnan(outs[0][0, 0, 0, 0])


@requires_triton
@pytest.mark.parametrize("act", ["linear", "relu", "elu", "selu"])
def test_instance_norm_act_nonfinite_planes_agree(act: Activation) -> None:
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64, device=TRITON_DEVICE)
    x[0, 1, 1, 1] = NAN
    x[1, 2, 0, 0] = INF
    outs = [instance_norm_act(x, act=act, backend=b) for b in ("triton", "torch")]
    _same(outs[0], outs[1])
    # A non-finite value spoils its own plane's statistics and nothing else.
    bad = torch.zeros(2, 4, dtype=torch.bool)
    bad[0, 1] = bad[1, 2] = True
    assert torch.isnan(outs[0][bad]).all()
    assert torch.isfinite(outs[0][~bad]).all()


# --- pixel_norm of huge values ---------------------------------------------------------------------------------


def _pixel_norm_formula(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """In float64, where 1e20 squared is far from overflowing."""
    x = x.double()
    return x * torch.rsqrt(x.square().mean(dim=dim, keepdim=True) + eps)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("magnitude", [1e19, 1e20, 3e38])
@pytest.mark.parametrize("channels", [3, 200])
def test_pixel_norm_of_huge_float32_values_is_right(
    backend: Backend, magnitude: float, channels: int
) -> None:
    # x² overflows float32 from |x| ≈ 1.8e19; the unscaled formula gave exact zeros here.
    x = torch.randn(2, channels, 3, 3, device=_device(backend))
    x = (x / x.abs().amax() * magnitude).float()
    y = pixel_norm(x, backend=backend)
    assert torch.isfinite(y).all()
    assert_close(y, _pixel_norm_formula(x), torch.float32)
    assert_close(y.double().square().mean(dim=1), torch.ones(2, 3, 3, dtype=torch.float64), torch.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pixel_norm_huge_values_channels_last_and_other_dims(backend: Backend) -> None:
    x = (torch.randn(2, 5, 4, 3, device=_device(backend)) * 1e25).contiguous(
        memory_format=torch.channels_last
    )
    y = pixel_norm(x, backend=backend)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, _pixel_norm_formula(x), torch.float32)
    assert_close(pixel_norm(x, dim=2, backend=backend), _pixel_norm_formula(x, dim=2), torch.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pixel_norm_small_values_are_not_rescaled(backend: Backend) -> None:
    # Vectors whose largest |x| is <= 1 take the unscaled path bit for bit: eps dominates tiny inputs.
    x = torch.tensor([[1e-30, -2e-30, 0.0], [0.5, -1.0, 0.25]], device=_device(backend))
    y = pixel_norm(x, backend=backend)
    expected = x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)
    torch.testing.assert_close(y.cpu(), expected.cpu(), rtol=0, atol=0)
    assert y[0, 0].item() == pytest.approx(1e-30 / math.sqrt(1e-8), rel=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("magnitude", [1e100, 1e200])
def test_pixel_norm_huge_values_gradients(backend: Backend, magnitude: float) -> None:
    # float64 at 1e200 (x² overflows float64 there) and at 1e100 (k² = 1e200 still fits): the backward
    # kernel and the double-backward formula, both in scaled form, match the scale-free formula.
    base = torch.randn(2, 4, 2, dtype=torch.float64)
    x = (base * magnitude).to(_device(backend)).requires_grad_()
    y = pixel_norm(x, backend=backend)
    dy = torch.randn_like(y)
    (g,) = torch.autograd.grad(y, x, dy, create_graph=True)
    (gg,) = torch.autograd.grad(g, x, torch.ones_like(g))
    # Without eps (1e-8 is nothing next to x²) pixel_norm is scale invariant: y(c x) = y(x), so
    # g(c x) = g(x) / c and gg(c x) = gg(x) / c².
    xb = base.clone().requires_grad_()
    yb = _pixel_norm_formula(xb, eps=0.0)
    (gb,) = torch.autograd.grad(yb, xb, dy.cpu(), create_graph=True)
    (ggb,) = torch.autograd.grad(gb, xb, torch.ones_like(gb))
    assert_close((g * magnitude).detach(), gb.detach())
    if magnitude == 1e200:
        # gg ~ 1e-400 underflows to 0; the unscaled formula gave NaN (0 * inf) here.
        assert torch.isfinite(gg).all()
    else:
        assert_close(gg * magnitude * magnitude, ggb)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pixel_norm_gradgradcheck_across_the_scaling_threshold(backend: Backend) -> None:
    # Pixels on both sides of max|x| = 1: the scale k is piecewise, its detach must not change derivatives.
    x = torch.tensor([[0.3, -0.9], [1.7, 0.2], [-4.0, 3.0]], dtype=torch.float64, device=_device(backend))
    f = lambda t: pixel_norm(t, eps=1e-3, backend=backend)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x.requires_grad_(),))
    assert torch.autograd.gradgradcheck(f, (x,))


@pytest.mark.parametrize("backend", BACKENDS)
def test_pixel_norm_nonfinite_vector_is_nan(backend: Backend) -> None:
    x = torch.ones(3, 4, device=_device(backend))
    x[0, 1], x[1, 2] = NAN, INF
    y = pixel_norm(x, backend=backend)
    assert torch.isnan(y[:2]).all()
    assert_close(y[2], torch.ones(4))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("eps", [0.0, -1e-12])
def test_eps_must_be_positive(backend: Backend, eps: float) -> None:
    # eps = 0 turns a zero vector (pixel_norm) or a constant plane (instance norm) into NaN: rejected.
    x = torch.ones(1, 2, 2, 2, dtype=torch.float64, device=_device(backend))
    s = torch.ones(1, 2, dtype=torch.float64, device=x.device)
    for call in (
        lambda: pixel_norm(x, eps=eps, backend=backend),
        lambda: instance_norm_act(x, eps=eps, backend=backend),
        lambda: adain(x, s, s, eps=eps, backend=backend),
    ):
        with pytest.raises(ValueError, match=rf"eps must be > 0, got {eps}"):
            call()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adain_constant_and_single_pixel_planes_give_exactly_the_bias(
    backend: Backend, dtype: torch.dtype
) -> None:
    # x - mean is exactly 0 on a constant plane and on a 1 x 1 plane: the output is exactly the style bias.
    dev = _device(backend)
    g = torch.Generator().manual_seed(0)
    scale = torch.randn(2, 3, generator=g).to(dtype).to(dev)
    bias = torch.randn(2, 3, generator=g).to(dtype).to(dev)
    constant = (torch.rand(2, 3, 1, 1, generator=g) * 2e3 - 1e3).expand(2, 3, 3, 5).contiguous()
    for x in (constant.to(dtype).to(dev), torch.randn(2, 3, 1, 1, generator=g).to(dtype).to(dev) * 100):
        y = adain(x, scale, bias, backend=backend)
        assert torch.equal(y, bias[:, :, None, None].expand_as(y))


@pytest.mark.parametrize("backend", BACKENDS)
def test_instance_norm_of_a_large_mean_is_as_accurate_as_torch(backend: Backend) -> None:
    # 1e4 + N(0, 0.01²) in float32: statistics of raw values lose the spread to cancellation. Against the
    # float64 result of the same float32 input, F.instance_norm errs by about 5e-2 here.
    g = torch.Generator().manual_seed(0)
    x = 1e4 + 0.01 * torch.randn(2, 3, 16, 16, generator=g)
    exact = torch.nn.functional.instance_norm(x.double())
    torch_err = (torch.nn.functional.instance_norm(x).double() - exact).abs().max()
    y = instance_norm_act(x.to(_device(backend)), backend=backend)
    err = (y.double().cpu() - exact).abs().max()
    assert err <= torch_err
    assert err < 1e-5


# --- float64 constants and the clamp bound -----------------------------------------------------------------


@requires_triton
@pytest.mark.parametrize(("act", "alpha"), [("lrelu", 0.2), ("lrelu", 0.1), ("elu", 0.3)])
def test_float64_kernels_use_float64_constants(act: Activation, alpha: float) -> None:
    x = torch.tensor([[-1.0, -0.25, 2.0]], dtype=torch.float64, device=TRITON_DEVICE, requires_grad=True)
    gain = 1.0 / 3.0  # not a float32 number either
    y = bias_act(x, act=act, alpha=alpha, gain=gain, clamp=0.7, backend="triton")
    (g,) = torch.autograd.grad(y.sum(), x)
    ref_x = x.detach().clone().requires_grad_()
    ref = bias_act(ref_x, act=act, alpha=alpha, gain=gain, clamp=0.7, backend="torch")
    (ref_g,) = torch.autograd.grad(ref.sum(), ref_x)
    # Float32-rounded constants would be off by ~1e-9 (0.2 is 0.20000000298 in float32).
    torch.testing.assert_close(y, ref, rtol=1e-15, atol=1e-15)
    torch.testing.assert_close(g, ref_g, rtol=1e-15, atol=1e-15)
    if act == "lrelu":
        assert g[0, 0].item() == alpha * gain  # exactly, not float32(alpha)


@requires_triton
def test_float64_eps_is_not_rounded() -> None:
    # With variance far below eps the result is x / sqrt(eps): eps rounded to float32 changes it by 1e-8.
    # Compiled, an unannotated float argument is float32; the interpreter keeps Python floats exact, so
    # on CPU this guards the conversion inside the kernels (scalar(), not tl.cast) rather than the launch.
    x = torch.tensor([[[1e-9, -1e-9, 2e-9, 0.0]]], dtype=torch.float64, device=TRITON_DEVICE)
    for eps in (1e-5, 0.1):
        a = instance_norm_act(x, eps=eps, backend="triton")
        b = instance_norm_act(x, eps=eps, backend="torch")
        torch.testing.assert_close(a, b, rtol=1e-14, atol=0)
    p = torch.tensor([[1e-7, 3e-7]], dtype=torch.float64, device=TRITON_DEVICE)
    torch.testing.assert_close(
        pixel_norm(p, eps=0.1, backend="triton"), pixel_norm(p, eps=0.1, backend="torch"), rtol=1e-14, atol=0
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", ["linear", "lrelu", "relu", "tanh", "swish"])
def test_clamp_gradient_is_one_on_the_bound_and_zero_beyond(backend: Backend, act: Activation) -> None:
    # The clamp's gradient: 1 for -c <= y <= c, bounds included, 0 outside (torch.clamp's up to torch 2.14).
    dev = _device(backend)
    z = torch.tensor([[0.5, 1.0, 1.5, -0.5, -1.0, -3.0]], dtype=torch.float64, device=dev)
    # The bound is the backend's own output at z = 1 (Triton 3.0's float64 tanh is a last bit off torch's).
    y0 = bias_act(z, act=act, gain=1.0, backend=backend)
    c = y0[0, 1].abs().item()
    x = z.clone().requires_grad_()
    y = bias_act(x, act=act, gain=1.0, clamp=c, backend=backend)
    (g,) = torch.autograd.grad(y.sum(), x)
    ref_x = z.clone().requires_grad_()
    (act_grad,) = torch.autograd.grad(bias_act(ref_x, act=act, gain=1.0, backend="torch").sum(), ref_x)
    inside = y0.abs() <= c
    assert_close(g, torch.where(inside, act_grad, 0.0))
    assert g[0, 1].item() != 0.0  # on the bound: the activation's derivative, not 0
    assert (g[~inside] == 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_clamp_second_order_on_the_bound(backend: Backend) -> None:
    # The double-backward formula of a saved-input activation masks with the bound included.
    dev = _device(backend)
    z = torch.tensor([[0.25, 1.0, 2.0]], dtype=torch.float64, device=dev)
    c = math.tanh(1.0)

    def second(fn):
        x = z.clone().requires_grad_()
        (g,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
        return torch.autograd.grad(g.sum(), x)[0]

    got = second(lambda x: bias_act(x, act="tanh", clamp=c, backend=backend))
    expected = second(
        lambda x: torch.where(torch.tanh(x).abs() <= c, torch.tanh(x), torch.tanh(x).clamp(-c, c))
    )
    assert_close(got, expected)
    assert got[0, 1].item() != 0.0


@requires_triton
def test_inject_noise_clamp_bound_matches_reference() -> None:
    x = torch.tensor([[[[0.5, 1.0, 2.0]]]], dtype=torch.float64, device=TRITON_DEVICE)
    noise = torch.zeros(1, 1, 1, 3, dtype=torch.float64, device=TRITON_DEVICE)
    strength = torch.zeros((), dtype=torch.float64, device=TRITON_DEVICE)
    grads = []
    for backend in ("triton", "torch"):
        xx = x.clone().requires_grad_()
        y = inject_noise(xx, strength, noise, act="lrelu", gain=1.0, clamp=1.0, backend=backend)
        grads.append(torch.autograd.grad(y.sum(), xx)[0])
    assert grads[0].flatten().tolist() == [1.0, 1.0, 0.0]
    _same(grads[0], grads[1])


@requires_triton
def test_grad_kernels_from_a_clamped_output_treat_the_bound_as_clamped() -> None:
    # Called with the output (ref_is_input=False) and a clamp, the backward kernels cannot tell |y| == clamp
    # (gradient 1) from a clamped value (gradient 0) and take it as clamped, as their docstrings say; the
    # autograd glue itself always passes the input when there is a clamp.
    from ganblocks.ops._activations import ACTIVATIONS
    from ganblocks.ops.bias_act.kernels import bias_act_backward
    from ganblocks.ops.inject_noise.kernels import inject_noise_backward

    lrelu = ACTIVATIONS["lrelu"]
    y = torch.tensor([[[[0.5, 1.0, -1.0, -0.2]]]], dtype=torch.float64, device=TRITON_DEVICE)
    dy = torch.full_like(y, 3.0)
    expected = torch.tensor([[[[3.0, 0.0, 0.0, 0.6]]]], dtype=torch.float64)  # 3 · f'(y) inside, 0 on |y| = 1
    dx, _ = bias_act_backward(dy, y, None, lrelu.code, 0.2, 1.0, 1.0, 1, False)
    _same(dx, expected)
    strength = torch.zeros((), dtype=torch.float64, device=TRITON_DEVICE)
    noise = torch.zeros(1, 1, 1, 4, dtype=torch.float64, device=TRITON_DEVICE)
    dz, _, _ = inject_noise_backward(dy, y, strength, noise, None, lrelu.code, 0.2, 1.0, 1.0, False)
    _same(dz, expected)


# --- every tensor argument on the device of x -----------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arg", ["b", "strength", "noise", "bias", "scale", "instance_bias"])
def test_an_argument_on_another_device_is_named(backend: Backend, arg: str) -> None:
    # A Triton kernel would read such an argument through a raw pointer (garbage on CPU, a fault on CUDA).
    # "meta" is a device every machine has and no kernel can read.
    dev = _device(backend)
    x = torch.randn(2, 3, 4, 4, device=dev)
    meta = {"b": torch.zeros(3), "strength": torch.zeros(3), "noise": torch.zeros(2, 1, 4, 4),
            "bias": torch.zeros(3), "scale": torch.ones(3), "instance_bias": torch.zeros(3)}  # fmt: skip
    args = {k: v.to(dev) for k, v in meta.items()}
    args[arg] = meta[arg].to("meta")
    calls = {
        "b": lambda: bias_act(x, args["b"], act="lrelu", backend=backend),
        "strength": lambda: inject_noise(x, args["strength"], args["noise"], backend=backend),
        "noise": lambda: inject_noise(x, args["strength"], args["noise"], backend=backend),
        "bias": lambda: inject_noise(x, args["strength"], args["noise"], bias=args["bias"], backend=backend),
        "scale": lambda: instance_norm_act(x, args["scale"], args["instance_bias"], backend=backend),
        "instance_bias": lambda: instance_norm_act(x, args["scale"], args["instance_bias"], backend=backend),
    }
    name = "bias" if arg == "instance_bias" else arg
    with pytest.raises(ValueError, match=rf"{name} must be on the device of x \({x.device}\), got meta"):
        calls[arg]()
