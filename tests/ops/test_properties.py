"""Property-based tests: the Triton kernels against the PyTorch reference over random inputs.

Hypothesis draws the shape, the dtype, the memory layout (contiguous, channels_last, a transposed dense
view, a non-dense strided view), the options of each op, and a few NaN/±inf entries; the values come from a
seeded ``torch.Generator``. Both backends must give the same output (NaN where the other has NaN) and the
same input gradient wherever the input is finite (elementwise ops) or everywhere (reductions, whose whole
vector/plane turns NaN). Settings are derandomized so CI is reproducible; shapes are small so the
interpreter (``TRITON_INTERPRET=1``) runs every example in well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import pytest
import torch
from helpers import TOLERANCES, TRITON_DEVICE, requires_triton
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ganblocks.functional import bias_act, inject_noise, instance_norm_act, minibatch_stddev, pixel_norm
from ganblocks.layers import Activation
from ganblocks.ops import Backend

# The interpreter evaluates kernels with numpy, which warns on the NaN/inf arithmetic these tests are about.
pytestmark = [requires_triton, pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")]

PROPERTY_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
LAYOUTS = ["contiguous", "channels_last", "transposed", "strided"]
ACTS = ["linear", "relu", "lrelu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"]
SPECIALS = [float("nan"), float("inf"), -float("inf")]


@dataclass(frozen=True)
class Drawn:
    """A tensor's recipe; ``make`` builds it on the Triton device."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    layout: str
    seed: int
    scale: float
    specials: tuple[tuple[int, float], ...]  # (flat index, value)

    def make(self, shape: Optional[tuple[int, ...]] = None, *, specials: bool = True) -> torch.Tensor:
        shape = shape or self.shape
        g = torch.Generator().manual_seed(self.seed)
        x = torch.randn(shape, generator=g, dtype=torch.float64) * self.scale
        if specials:
            flat = x.view(-1)
            for index, value in self.specials:
                flat[index % flat.numel()] = value
        return with_layout(x.to(self.dtype).to(TRITON_DEVICE), self.layout)


def with_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values in another layout: a channels_last copy (4-d), a dense view whose last two dims are
    transposed in memory, or a non-dense view that steps over a buffer twice as long in the last dim."""
    if layout == "channels_last" and x.ndim == 4:
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "transposed" and x.ndim >= 2:
        return x.transpose(-1, -2).contiguous().transpose(-1, -2)
    if layout == "strided":
        buf = torch.empty((*x.shape[:-1], 2 * x.shape[-1]), dtype=x.dtype, device=x.device)
        view = buf[..., ::2]
        view.copy_(x)
        return view
    return x.contiguous()


@st.composite
def tensors(
    draw: st.DrawFn,
    *,
    min_ndim: int,
    max_ndim: int,
    max_side: int = 5,
    dtypes: list[torch.dtype] = DTYPES,
    nonfinite: bool = True,
    shape: Optional[tuple[int, ...]] = None,
) -> Drawn:
    if shape is None:
        ndim = draw(st.integers(min_ndim, max_ndim))
        shape = tuple(draw(st.lists(st.integers(1, max_side), min_size=ndim, max_size=ndim)))
    numel = 1
    for s in shape:
        numel *= s
    count = draw(st.integers(0, min(3, numel))) if nonfinite else 0
    specials = tuple((draw(st.integers(0, numel - 1)), draw(st.sampled_from(SPECIALS))) for _ in range(count))
    return Drawn(
        shape=shape,
        dtype=draw(st.sampled_from(dtypes)),
        layout=draw(st.sampled_from(LAYOUTS)),
        seed=draw(st.integers(0, 2**31 - 1)),
        scale=draw(st.sampled_from([0.1, 1.0, 4.0])),
        specials=specials,
    )


def _tolerance(dtype: torch.dtype, scale: float) -> dict[str, float]:
    rtol, atol = TOLERANCES[dtype]
    # A float64 kernel and the float64 reference evaluate the same formula in another order: ~1e-15
    # relative, far inside the table's 1e-10; half precision rounds the output once on each side.
    return {"rtol": rtol * scale, "atol": atol * scale}


def agree(
    actual: torch.Tensor,
    expected: torch.Tensor,
    dtype: torch.dtype,
    *,
    scale: float = 1.0,
    sum_atol: float = 0.0,
) -> None:
    """Same NaN positions, same infinities, finite values within the dtype's tolerance (relative to the
    largest finite entry for reductions, via ``scale``), plus ``sum_atol`` (see :func:`sum_atol`)."""
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    assert a.shape == e.shape
    assert torch.equal(torch.isnan(a), torch.isnan(e)), f"NaN positions differ:\n{a}\n{e}"
    tol = _tolerance(dtype, scale)
    torch.testing.assert_close(a, e, equal_nan=True, rtol=tol["rtol"], atol=tol["atol"] + sum_atol)


def sum_atol(dtype: torch.dtype, length: int, term: float) -> float:
    """How far two evaluations of a sum of ``length`` terms of magnitude at most ``term`` may differ.

    The reference forms each term in ``dtype`` (rounded once, relative error at most ``u``, half the
    dtype's eps) and sums in float32 or float64, the kernel forms and sums them in float32 or float64: the
    difference is a sum of ``length`` independent rounding errors, each at most ``u * term`` (standard
    deviation at most ``u * term / sqrt(3)``), so 4 standard deviations of their sum,
    ``4 * u * term * sqrt(length / 3)``, bounds it; the accumulation's own error (``length`` times the
    float32 eps) is far below that for these lengths. The result's final rounding is the dtype's table
    tolerance on top.
    """
    u = torch.finfo(dtype).eps / 2
    return 4.0 * u * term * math.sqrt(length / 3)


def _largest(t: torch.Tensor) -> float:
    finite = t.detach().double()[torch.isfinite(t.detach().double())]
    return max(1.0, finite.abs().max().item()) if finite.numel() else 1.0


def both_backends(
    fn: Callable[..., torch.Tensor], make_inputs: Callable[[], list[torch.Tensor]], seed: int
) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    """Outputs and input gradients (for a seeded, finite incoming gradient, see :func:`incoming`) on
    triton, then torch.

    ``make_inputs`` builds fresh inputs for each backend, in their drawn layouts (a clone would make a
    non-dense view dense).
    """
    outs: list[torch.Tensor] = []
    grads: list[list[torch.Tensor]] = []
    for backend in ("triton", "torch"):
        leaves = [t.requires_grad_() for t in make_inputs()]
        y = fn(*leaves, backend=backend)
        dy = incoming(y, seed)
        got = torch.autograd.grad(y, leaves, dy, allow_unused=True)
        outs.append(y.detach())
        grads.append([torch.zeros_like(t) if d is None else d for d, t in zip(got, leaves)])
    return outs, grads


def incoming(y: torch.Tensor, seed: int) -> torch.Tensor:
    """The incoming gradient ``both_backends`` uses for the output ``y``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(y.shape, generator=g, dtype=torch.float64).to(y.dtype).to(y.device)


# A smooth activation in its examples where bfloat16 rounding of the pre-activation (in the reference, not
# in the kernel) can move it across lrelu's kink: that changes the local slope, not the sums' rounding.
BF16_625 = Drawn((5, 5, 5, 5), torch.bfloat16, "contiguous", 1, 1.0, ())

# Bound of |gain * act'(z)| over the drawn gains and activations (selu's slope 1.76, |gain| <= 1.5).
MAX_SLOPE = 3.0


# --- bias_act -------------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    x=tensors(min_ndim=1, max_ndim=4),
    act=st.sampled_from(ACTS),
    dim_seed=st.integers(0, 3),
    alpha=st.one_of(st.none(), st.sampled_from([0.05, 0.3])),
    gain=st.one_of(st.none(), st.sampled_from([0.5, -1.5])),
    clamp=st.one_of(st.none(), st.sampled_from([0.25, 1.0, 3.0])),
    with_bias=st.booleans(),
)
# bfloat16 at 625 elements, the sums' worst case among the drawn shapes, always among the examples.
@example(x=BF16_625, act="lrelu", dim_seed=1, alpha=None, gain=None, clamp=None, with_bias=True)
def test_bias_act_triton_matches_reference(
    x: Drawn, act: Activation, dim_seed: int, alpha: Optional[float], gain: Optional[float],
    clamp: Optional[float], with_bias: bool,
) -> None:  # fmt: skip
    xt = x.make()
    dim = dim_seed % xt.ndim
    bias = Drawn((xt.shape[dim],), x.dtype, "contiguous", x.seed + 1, 1.0, ())

    def make() -> list[torch.Tensor]:
        return [x.make(), bias.make()] if with_bias else [x.make()]

    def fn(*t: torch.Tensor, backend: Backend) -> torch.Tensor:
        b = t[1] if len(t) > 1 else None
        return bias_act(t[0], b, act=act, alpha=alpha, gain=gain, clamp=clamp, dim=dim, backend=backend)

    (y_tr, y_ref), (g_tr, g_ref) = both_backends(fn, make, x.seed)
    assert y_tr.dtype == xt.dtype and y_tr.shape == xt.shape
    agree(y_tr, y_ref, x.dtype)
    # Elementwise: compare the gradient where the input is finite (at NaN the derivative of elu/selu is
    # NaN in PyTorch's CPU kernels and 1 in its CUDA kernels; the kernels follow the CPU).
    finite = torch.isfinite(xt)
    agree(g_tr[0][finite], g_ref[0][finite], x.dtype, scale=4.0)
    if with_bias and bool(finite.all()):
        # A sum over every other dim of dy * gain * act'(z).
        term = MAX_SLOPE * _largest(incoming(y_ref, x.seed))
        agree(
            g_tr[1],
            g_ref[1],
            x.dtype,
            scale=4.0,
            sum_atol=sum_atol(x.dtype, xt.numel() // xt.shape[dim], term),
        )


# --- pixel_norm ------------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    x=tensors(min_ndim=2, max_ndim=4, max_side=6),
    dim_seed=st.integers(0, 3),
    eps=st.sampled_from([1e-8, 1e-3, 0.5]),
    huge=st.booleans(),
)
def test_pixel_norm_triton_matches_reference(x: Drawn, dim_seed: int, eps: float, huge: bool) -> None:
    # With huge=True, x² overflows float32: both backends scale each vector first.
    xt = x.make()
    dim = dim_seed % xt.ndim

    def fn(t: torch.Tensor, backend: Backend) -> torch.Tensor:
        return pixel_norm(t, eps=eps, dim=dim, backend=backend)

    factor = 1e20 if huge and x.dtype in (torch.float32, torch.float64) else 1.0
    (y_tr, y_ref), (g_tr, g_ref) = both_backends(fn, lambda: [x.make() * factor], x.seed)
    agree(y_tr, y_ref, x.dtype, scale=4.0)
    # The output of a vector with a NaN or an infinity is all NaN; every other output is finite.
    bad = (~torch.isfinite(xt)).any(dim=dim, keepdim=True).expand_as(xt)
    assert torch.isnan(y_tr[bad]).all() and torch.isfinite(y_tr[~bad]).all()
    # The gradient scales as 1 / |x|: compare relative to its largest finite entry.
    agree(g_tr[0], g_ref[0], x.dtype, scale=4.0 * _largest(g_ref[0]))


# --- instance_norm_act -----------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    x=tensors(min_ndim=3, max_ndim=5, max_side=5),
    act=st.sampled_from(ACTS),
    affine=st.sampled_from(["none", "channel", "sample"]),
    eps=st.sampled_from([1e-5, 0.1]),
    gain=st.one_of(st.none(), st.sampled_from([0.7, -1.0])),
)
@example(x=BF16_625, act="lrelu", affine="channel", eps=1e-5, gain=None)
def test_instance_norm_act_triton_matches_reference(
    x: Drawn, act: Activation, affine: str, eps: float, gain: Optional[float]
) -> None:
    xt = x.make()
    n, c = xt.shape[0], xt.shape[1]
    pshape = (c,) if affine == "channel" else (n, c)
    params = [Drawn(pshape, x.dtype, "contiguous", x.seed + k, 1.0, ()) for k in (1, 2)]

    def make() -> list[torch.Tensor]:
        return [x.make()] + ([p.make() for p in params] if affine != "none" else [])

    def fn(*t: torch.Tensor, backend: Backend) -> torch.Tensor:
        s, b = (t[1], t[2]) if len(t) == 3 else (None, None)
        return instance_norm_act(t[0], s, b, eps=eps, act=act, gain=gain, backend=backend)

    (y_tr, y_ref), (g_tr, g_ref) = both_backends(fn, make, x.seed)
    assert y_tr.shape == xt.shape and y_tr.dtype == xt.dtype
    agree(y_tr, y_ref, x.dtype, scale=8.0 * _largest(y_ref))
    # A plane with a NaN or an infinity is NaN in the output and in its gradient, on both backends.
    agree(g_tr[0], g_ref[0], x.dtype, scale=16.0 * _largest(g_ref[0]))
    if affine != "none" and bool(torch.isfinite(xt).all()):
        # Sums over a plane (and the batch for (C,) parameters) of dz and dz * xhat, dz = dy * gain * act'.
        xhat = torch.nn.functional.instance_norm(xt.double().cpu(), eps=eps)
        term = MAX_SLOPE * _largest(incoming(y_ref, x.seed)) * _largest(xhat)
        length = xt[0, 0].numel() * (n if affine == "channel" else 1)
        for gt, gr in zip(g_tr[1:], g_ref[1:]):
            agree(gt, gr, x.dtype, scale=16.0, sum_atol=sum_atol(x.dtype, length, term))


# --- inject_noise ----------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    x=tensors(min_ndim=4, max_ndim=4, max_side=5),
    act=st.sampled_from(ACTS),
    per_channel=st.booleans(),
    with_bias=st.booleans(),
    clamp=st.one_of(st.none(), st.sampled_from([0.5, 2.0])),
    noise_layout=st.sampled_from(LAYOUTS),
)
@example(x=BF16_625, act="tanh", per_channel=True, with_bias=True, clamp=None, noise_layout="contiguous")
def test_inject_noise_triton_matches_reference(
    x: Drawn, act: Activation, per_channel: bool, with_bias: bool, clamp: Optional[float], noise_layout: str
) -> None:
    xt = x.make()
    n, c, h, w = xt.shape
    others = [
        Drawn((c,) if per_channel else (), x.dtype, "contiguous", x.seed + 2, 1.0, ()),  # strength
        Drawn((n, 1, h, w), x.dtype, noise_layout, x.seed + 1, 1.0, ()),  # noise
        Drawn((c,), x.dtype, "contiguous", x.seed + 3, 1.0, ()),  # bias
    ]

    def make() -> list[torch.Tensor]:
        return [x.make()] + [d.make() for d in others[: 3 if with_bias else 2]]

    def fn(*t: torch.Tensor, backend: Backend) -> torch.Tensor:
        b = t[3] if len(t) > 3 else None
        return inject_noise(t[0], t[1], t[2], bias=b, act=act, clamp=clamp, backend=backend)

    (y_tr, y_ref), (g_tr, g_ref) = both_backends(fn, make, x.seed)
    agree(y_tr, y_ref, x.dtype, scale=2.0)
    finite = torch.isfinite(xt)
    agree(g_tr[0][finite], g_ref[0][finite], x.dtype, scale=4.0)
    if bool(finite.all()):
        # strength, noise, bias: sums over the other dims of dy * gain * act' times noise (strength), the
        # strength (noise) or 1 (bias).
        factor = max(1.0, *(_largest(t) for t in make()[1:3]))
        term = MAX_SLOPE * _largest(incoming(y_ref, x.seed)) * factor
        for gt, gr in zip(g_tr[1:], g_ref[1:]):
            agree(gt, gr, x.dtype, scale=8.0, sum_atol=sum_atol(x.dtype, xt.numel(), term))


# --- minibatch_stddev ------------------------------------------------------------------------------------------


@st.composite
def _mbstd_inputs(draw: st.DrawFn) -> tuple[Drawn, int, int]:
    g = draw(st.integers(1, 3))
    m = draw(st.integers(1, 2))
    f = draw(st.integers(1, 2))
    c = f * draw(st.integers(1, 3))
    shape = (g * m, c, draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    return draw(tensors(min_ndim=4, max_ndim=4, shape=shape)), g, f


@PROPERTY_SETTINGS
@given(case=_mbstd_inputs())
def test_minibatch_stddev_triton_matches_reference(case: tuple[Drawn, int, int]) -> None:
    x, group_size, num_channels = case
    xt = x.make()

    def fn(t: torch.Tensor, backend: Backend) -> torch.Tensor:
        return minibatch_stddev(t, group_size=group_size, num_channels=num_channels, backend=backend)

    (y_tr, y_ref), (g_tr, g_ref) = both_backends(fn, lambda: [x.make()], x.seed)
    assert y_tr.shape == (xt.shape[0], xt.shape[1] + num_channels, *xt.shape[2:])
    agree(y_tr, y_ref, x.dtype, scale=8.0 * _largest(y_ref))
    # dx = dout + mean(dout of the stat maps) * r / std-like terms: elementwise, means rather than sums.
    agree(g_tr[0], g_ref[0], x.dtype, scale=16.0 * _largest(g_ref[0]))


def test_layouts_are_what_they_claim() -> None:
    """The strategy's layouts really are distinct memory layouts (a property test of the test)."""
    x = torch.randn(2, 3, 4, 5)
    assert with_layout(x, "channels_last").is_contiguous(memory_format=torch.channels_last)
    t = with_layout(x, "transposed")
    assert not t.is_contiguous() and t.transpose(-1, -2).is_contiguous()
    s = with_layout(x, "strided")
    assert s.stride(-1) == 2 and not s.is_contiguous()
    for layout in LAYOUTS:
        torch.testing.assert_close(with_layout(x, layout), x, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_agree_detects_a_nan_mismatch(dtype: torch.dtype) -> None:
    """``agree`` fails on a NaN the other side lacks, so the properties above can fail."""
    a = torch.tensor([1.0, float("nan")], dtype=dtype)
    with pytest.raises(AssertionError, match="NaN positions differ"):
        agree(a, torch.tensor([1.0, 2.0], dtype=dtype), dtype)
