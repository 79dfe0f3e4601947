"""minibatch_stddev: strided groups against explicit loops and StyleGAN2-ADA, both backends, all orders."""

from __future__ import annotations

import math
from typing import Optional

import pytest
import torch
from helpers import TRITON_DEVICE, assert_close, requires_triton

from ganblocks.functional import minibatch_stddev


def formula(x: torch.Tensor, group_size: int, num_channels: int) -> torch.Tensor:
    """The definition with explicit loops: sample i is in group slot i % M, members i, i + M, i + 2M, ..."""
    n_, c_, h_, w_ = x.shape
    g_, f_ = group_size, num_channels
    m_, cf = n_ // g_, c_ // f_
    xd = x.double()
    out = torch.empty(n_, c_ + f_, h_, w_, dtype=torch.float64)
    out[:, :c_] = xd
    for m in range(m_):
        members = [g * m_ + m for g in range(g_)]
        for f in range(f_):
            total = 0.0
            for c in range(f * cf, (f + 1) * cf):
                for h in range(h_):
                    for w in range(w_):
                        vals = [float(xd[i, c, h, w]) for i in members]
                        mean = sum(vals) / g_
                        var = sum((v - mean) ** 2 for v in vals) / g_
                        total += math.sqrt(var + 1e-8)
            for i in members:
                out[i, c_ + f] = total / (cf * h_ * w_)
    return out


def stylegan2_ada(x: torch.Tensor, group_size: Optional[int], num_channels: int = 1) -> torch.Tensor:
    """Transcription of ``MinibatchStdLayer.forward`` from StyleGAN2-ADA (training/networks.py)."""
    N, C, H, W = x.shape
    G = min(group_size, N) if group_size is not None else N
    F = num_channels
    c = C // F
    y = x.reshape(G, -1, F, c, H, W)  # [GnFcHW] Split minibatch N into n groups of size G.
    y = y - y.mean(dim=0)  # [GnFcHW] Subtract mean over group.
    y = y.square().mean(dim=0)  # [nFcHW]  Calc variance over group.
    y = (y + 1e-8).sqrt()  # [nFcHW]  Calc stddev over group.
    y = y.mean(dim=[2, 3, 4])  # [nF]     Take average over channels and pixels.
    y = y.reshape(-1, F, 1, 1)  # [nF11]   Add missing dimensions.
    y = y.repeat(G, 1, H, W)  # [NFHW]   Replicate over group and pixels.
    return torch.cat([x, y], dim=1)  # [NCHW]   Append to input as new channels.


BACKENDS = ["torch", pytest.param("triton", marks=requires_triton)]
CASES = [((4, 2, 2, 3), 2, 1), ((6, 4, 1, 2), 3, 2), ((3, 5, 7, 9), 3, 5), ((1, 1, 1, 1), 4, 1)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("shape", "group_size", "num_channels"), CASES)
def test_matches_loops_and_stylegan2_ada(
    backend: str, shape: tuple[int, int, int, int], group_size: int, num_channels: int
) -> None:
    x = torch.randn(shape, dtype=torch.float64)
    kw = {"group_size": group_size, "num_channels": num_channels}
    y = minibatch_stddev(x.to(TRITON_DEVICE if backend == "triton" else "cpu"), **kw, backend=backend).cpu()  # type: ignore[arg-type]
    assert y.shape == (shape[0], shape[1] + num_channels, *shape[2:])
    assert_close(y, formula(x, min(group_size, shape[0]), num_channels))
    assert_close(y, stylegan2_ada(x, group_size, num_channels))


def test_groups_are_strided() -> None:
    # Slot 0 holds samples 0 and 2, slot 1 samples 1 and 3; making 0 and 2 equal zeroes only slot 0's std.
    x = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    x[2] = x[0]
    y = minibatch_stddev(x, group_size=2, backend="torch")[:, 3, 0, 0]
    assert_close(y[[0, 2]], torch.full((2,), 1e-4, dtype=torch.float64))
    assert (y[[1, 3]] > 0.1).all()


def test_group_size_choices() -> None:
    x = torch.randn(6, 2, 3, 3, dtype=torch.float64)
    assert_close(minibatch_stddev(x, group_size=None, backend="torch"), formula(x, 6, 1))
    assert_close(minibatch_stddev(x, group_size=8, backend="torch"), formula(x, 6, 1))  # min(group, N)
    assert_close(minibatch_stddev(x, group_size=4, adjust_group_size=True, backend="torch"), formula(x, 3, 1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("shape", "group_size", "num_channels"), [((4, 2, 1, 2), 2, 1), ((6, 2, 1, 1), 3, 2)]
)
def test_gradcheck_and_gradgradcheck(
    backend: str, shape: tuple[int, int, int, int], group_size: int, num_channels: int
) -> None:
    device = TRITON_DEVICE if backend == "triton" else "cpu"
    x = torch.randn(shape, dtype=torch.float64, device=device, requires_grad=True)

    def fn(x: torch.Tensor) -> torch.Tensor:
        return minibatch_stddev(x, group_size=group_size, num_channels=num_channels, backend=backend)  # type: ignore[arg-type]

    # The interpreted kernels are slow: on CPU the Triton backend checks random projections (fast mode).
    fast = backend == "triton" and TRITON_DEVICE == "cpu"
    assert torch.autograd.gradcheck(fn, (x,), fast_mode=fast)
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=fast)


def _run_all_orders(x: torch.Tensor, backend: str, **kw: object) -> list[torch.Tensor]:
    x = x.detach().requires_grad_()
    y = minibatch_stddev(x, backend=backend, **kw)  # type: ignore[arg-type]
    weight = torch.linspace(-1, 1, y.numel(), dtype=torch.float32, device=y.device).reshape(y.shape)
    (gx,) = torch.autograd.grad((y.float() ** 2 * weight).sum(), x, create_graph=True)
    (ggx,) = torch.autograd.grad((gx.float() ** 2).sum(), x, create_graph=x.dtype == torch.float64)
    out = [y, gx, ggx]
    if x.dtype == torch.float64:  # third order: the backward's backward is differentiable too
        out += torch.autograd.grad((ggx * weight[:, : x.shape[1]]).sum(), x)
    return out


@requires_triton
@pytest.mark.parametrize(
    ("shape", "kw", "channels_last"),
    [
        ((1, 1, 1, 1), {}, False),
        ((3, 5, 7, 9), {"group_size": 3, "num_channels": 5}, False),
        ((6, 4, 3, 5), {"group_size": 3, "num_channels": 2}, True),
        ((6, 2, 3, 2), {"group_size": 4, "adjust_group_size": True}, True),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_triton_matches_reference(
    shape: tuple[int, int, int, int], kw: dict[str, object], channels_last: bool, dtype: torch.dtype
) -> None:
    x = torch.randn(shape, device=TRITON_DEVICE).to(dtype)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = x.contiguous(memory_format=fmt)
    ref = _run_all_orders(x.double(), "torch", **kw)
    out = _run_all_orders(x, "triton", **kw)
    assert out[0].is_contiguous(memory_format=fmt)
    # Against float64: the output is rounded once to ``dtype``, each order of gradient rounds once more
    # and sums over the group; errors are measured relative to each tensor's largest magnitude.
    for o, r, scale in zip(out, ref, (1.0, 4.0, 8.0)):
        assert o.dtype == dtype
        m = max(1.0, r.abs().max().item())
        assert_close(o.double() / m, r / m, dtype, scale=scale)


@requires_triton
def test_triton_float64_every_order() -> None:
    x = torch.randn(6, 4, 3, 2, dtype=torch.float64, device=TRITON_DEVICE)
    kw = {"group_size": 3, "num_channels": 2}
    for o, r in zip(_run_all_orders(x, "triton", **kw), _run_all_orders(x, "torch", **kw)):
        assert_close(o, r, scale=10.0)  # float64 throughout, sums in another order


@pytest.mark.parametrize("backend", BACKENDS)
def test_channels_last_preserved(backend: str) -> None:
    x = torch.randn(4, 3, 2, 5).contiguous(memory_format=torch.channels_last)
    y = minibatch_stddev(x.to(TRITON_DEVICE if backend == "triton" else "cpu"), group_size=2, backend=backend)  # type: ignore[arg-type]
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y.cpu(), formula(x, 2, 1), torch.float32)


@requires_triton
def test_triton_strided_input_and_expanded_gradient() -> None:
    base = torch.randn(4, 3, 8, 5, device=TRITON_DEVICE, dtype=torch.float64)
    x = base[:, :, ::2].requires_grad_()  # H and W do not merge: the launcher copies
    y = minibatch_stddev(x, group_size=2, backend="triton")
    assert_close(y.detach().cpu(), formula(x.detach().cpu(), 2, 1))
    y.sum().backward()  # the incoming gradient is an expanded (stride 0) tensor
    ref = x.detach().clone().requires_grad_()
    stylegan2_ada(ref, 2).sum().backward()
    assert x.grad is not None and ref.grad is not None
    assert_close(x.grad, ref.grad)


@requires_triton
def test_triton_compiles_without_graph_break() -> None:
    x = torch.randn(4, 3, 2, 2, device=TRITON_DEVICE)

    @torch.compile(fullgraph=True, backend="eager" if TRITON_DEVICE == "cpu" else "inductor")
    def fn(x: torch.Tensor) -> torch.Tensor:
        return minibatch_stddev(x, group_size=2, backend="triton") * 2

    assert_close(fn(x).cpu(), 2 * formula(x.cpu(), 2, 1), torch.float32)


@pytest.mark.parametrize(
    ("shape", "kwargs", "error", "match"),
    [
        ((6, 2, 2, 2), {"group_size": 4}, ValueError,
         r"the batch size \(6\) must be divisible by the group size \(4\).*adjust_group_size=True.*\(3\)"),
        ((4, 3, 2, 2), {"num_channels": 2}, ValueError,
         r"the channel count of x \(3\) must be divisible by num_channels \(2\)"),
        ((4, 3, 2, 2), {"num_channels": 0}, ValueError, "num_channels must be a positive int, got 0"),
        ((4, 3, 2, 2), {"group_size": 0}, ValueError, "group_size must be None or a positive int, got 0"),
        ((4, 3, 2), {}, ValueError, r"x must have 4 dimensions, got shape \(4, 3, 2\)"),
        ((0, 3, 2, 2), {}, ValueError, r"x must have a non-empty batch, got shape \(0, 3, 2, 2\)"),
    ],
)  # fmt: skip
def test_bad_inputs(
    shape: tuple[int, ...], kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        minibatch_stddev(torch.zeros(shape), **kwargs)  # type: ignore[arg-type]


@requires_triton
def test_triton_rejects_unsupported_dtype() -> None:
    x = torch.zeros(4, 2, 2, 2, device=TRITON_DEVICE).to(torch.float8_e4m3fn)
    with pytest.raises(
        TypeError, match=r"minibatch_stddev: backend='triton' supports x of dtype .*float8_e4m3fn"
    ):
        minibatch_stddev(x, backend="triton")
