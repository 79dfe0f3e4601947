"""pixel_norm: numerics against an independent formula, both backends, every order of gradient."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import TRITON_DEVICE, assert_close, requires_triton

from ganblocks.functional import pixel_norm


def formula(x: torch.Tensor, eps: float = 1e-8, dim: int = 1) -> torch.Tensor:
    """ProGAN's pixel norm, one feature vector at a time with math, in float64."""
    moved = x.double().movedim(dim, -1)
    rows = moved.reshape(-1, moved.shape[-1]).tolist()
    out = [[v / math.sqrt(sum(u * u for u in row) / len(row) + eps) for v in row] for row in rows]
    return torch.tensor(out, dtype=torch.float64).reshape(moved.shape).movedim(-1, dim)


@pytest.mark.parametrize(("shape", "dim"), [((2, 5, 3, 4), 1), ((4, 7), 1), ((2, 3, 4), -1), ((3, 2, 2), 0)])
@pytest.mark.parametrize("eps", [1e-8, 0.5])
def test_reference_matches_formula(shape: tuple[int, ...], dim: int, eps: float) -> None:
    x = torch.randn(shape, dtype=torch.float64)
    assert_close(pixel_norm(x, eps=eps, dim=dim, backend="torch"), formula(x, eps, dim))


def test_known_values() -> None:
    # mean square of (3, 4) is 12.5: each entry is divided by sqrt(12.5).
    y = pixel_norm(torch.tensor([[3.0, 4.0]], dtype=torch.float64), eps=0.0)
    torch.testing.assert_close(y, torch.tensor([[3.0, 4.0]], dtype=torch.float64) / math.sqrt(12.5))


BACKENDS = ["torch", pytest.param("triton", marks=requires_triton)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_gradcheck_and_gradgradcheck(backend: str, channels_last: bool) -> None:
    device = TRITON_DEVICE if backend == "triton" else "cpu"
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64, device=device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    x.requires_grad_()

    def fn(x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x, eps=1e-3, backend=backend)  # type: ignore[arg-type]

    # The channels_last case checks random projections only (fast_mode): the interpreter is slow.
    assert torch.autograd.gradcheck(fn, (x,), fast_mode=channels_last)
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=channels_last)


def _run_all_orders(x: torch.Tensor, backend: str, **kw: object) -> list[torch.Tensor]:
    x = x.detach().requires_grad_()
    y = pixel_norm(x, backend=backend, **kw)  # type: ignore[arg-type]
    weight = torch.linspace(-1, 1, y.numel(), dtype=torch.float32, device=y.device).reshape(y.shape)
    (gx,) = torch.autograd.grad((y.float() ** 2 * weight).sum(), x, create_graph=True)
    (ggx,) = torch.autograd.grad((gx.float() ** 2).sum(), x)
    return [y, gx, ggx]


CASES = [
    ((1, 1, 1, 1), False),
    ((3, 5, 7, 9), False),
    ((3, 5, 7, 9), True),
    ((1, 1, 1, 1), True),
    ((4, 6), False),
]


@requires_triton
@pytest.mark.parametrize(("shape", "channels_last"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_triton_matches_reference(shape: tuple[int, ...], channels_last: bool, dtype: torch.dtype) -> None:
    x = torch.randn(shape, device=TRITON_DEVICE).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    ref = _run_all_orders(x.double(), "torch")
    out = _run_all_orders(x, "triton")
    for o, r in zip(out, ref):
        assert o.dtype == dtype
        # Low-precision results are compared with float64 ones on the same inputs. Gradients of a norm
        # subtract channel sums of rounded terms, so their error scales with the largest entry, not with
        # each entry: compare relative to that.
        m = r.abs().max().clamp(min=1.0)
        assert_close(o.double() / m, r / m, dtype, scale=4.0)


@requires_triton
@pytest.mark.parametrize(
    ("shape", "dim"), [((3, 5, 7, 9), 1), ((2, 3, 4), -1), ((3, 2, 2), 0), ((2, 5, 3), 2)]
)
def test_triton_float64_any_dim(shape: tuple[int, ...], dim: int) -> None:
    x = torch.randn(shape, dtype=torch.float64, device=TRITON_DEVICE)
    for o, r in zip(_run_all_orders(x, "triton", dim=dim), _run_all_orders(x, "torch", dim=dim)):
        # Triton passes eps as a float32 scalar: float64 results agree to ~1e-7 (1e-15 where eps is negligible).
        torch.testing.assert_close(o, r, rtol=1e-7, atol=1e-7)


@requires_triton
@pytest.mark.parametrize("channels_last", [False, True])
def test_triton_tiled_channels(monkeypatch: pytest.MonkeyPatch, channels_last: bool) -> None:
    """Force tiles smaller than the channel dim, as a GPU uses for wide features, so the loop path runs."""
    from ganblocks.ops.pixel_norm import kernels

    monkeypatch.setattr(kernels, "_launch_config", lambda num_pixels, inner, num_c: (4, 2, False, 4))
    x = torch.randn(2, 5, 3, 3, dtype=torch.float64, device=TRITON_DEVICE)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    for o, r in zip(_run_all_orders(x, "triton"), _run_all_orders(x, "torch")):
        torch.testing.assert_close(o, r, rtol=1e-7, atol=1e-7)


@requires_triton
def test_triton_layouts_preserved() -> None:
    x = torch.randn(2, 5, 3, 4, device=TRITON_DEVICE).to(memory_format=torch.channels_last)
    y = pixel_norm(x, backend="triton")
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, formula(x), torch.float32)
    x = torch.randn(2, 5, 3, 4, device=TRITON_DEVICE)
    assert pixel_norm(x, backend="triton").is_contiguous()


@requires_triton
def test_triton_non_dense_input_and_expanded_gradient() -> None:
    base = torch.randn(2, 3, 8, 5, dtype=torch.float64, device=TRITON_DEVICE)
    x = base[:, :, ::2].requires_grad_()  # a strided view
    y = pixel_norm(x, backend="triton")
    assert_close(y, formula(x.detach()), torch.float32)
    y.sum().backward()  # the incoming gradient is an expanded (stride 0) tensor
    xr = x.detach().requires_grad_()
    pixel_norm(xr, backend="torch").sum().backward()
    assert x.grad is not None and xr.grad is not None
    assert_close(x.grad, xr.grad, torch.float32)


@requires_triton
def test_triton_compiles_without_graph_break() -> None:
    x = torch.randn(2, 3, 4, 4, device=TRITON_DEVICE)

    @torch.compile(fullgraph=True, backend="eager" if TRITON_DEVICE == "cpu" else "inductor")
    def fn(x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x, backend="triton") * 2

    assert_close(fn(x), 2 * formula(x), torch.float32)


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "match"),
    [
        (torch.zeros(3), {}, ValueError, r"x must have at least 2 dimensions, got shape \(3,\)"),
        (torch.zeros(2, 3), {"eps": -1.0}, ValueError, r"eps must be >= 0, got -1.0"),
        (torch.zeros(2, 3), {"dim": 2}, ValueError, r"dim must be in \[-2, 1\].*got 2"),
        (
            torch.zeros(2, 3, dtype=torch.long),
            {},
            TypeError,
            "x must be a floating-point tensor, got dtype torch.int64",
        ),
        ("x", {}, TypeError, "x must be a torch.Tensor, got str"),
    ],
)
def test_bad_inputs(x: object, kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        pixel_norm(x, **kwargs)  # type: ignore[arg-type]


@requires_triton
def test_triton_rejects_unsupported_dtype() -> None:
    x = torch.zeros(2, 3, device=TRITON_DEVICE).to(torch.float8_e4m3fn)
    with pytest.raises(
        TypeError, match=r"pixel_norm: backend='triton' supports x of dtype .*got torch.float8_e4m3fn"
    ):
        pixel_norm(x, backend="triton")


def test_low_precision_keeps_dtype() -> None:
    x = torch.randn(2, 6, 3, 3, dtype=torch.bfloat16)
    y = pixel_norm(x)
    assert y.dtype == torch.bfloat16
    assert_close(y, formula(x), torch.bfloat16)
