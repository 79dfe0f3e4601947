"""upfirdn2d: StyleGAN2-ADA's semantics against an explicit loop formula, both backends, every order."""

from __future__ import annotations

import pytest
import torch
from helpers import TRITON_DEVICE, assert_close, requires_triton

from ganblocks.functional import upfirdn2d

BACKENDS = ["torch", pytest.param("triton", marks=requires_triton)]


def formula(
    x: torch.Tensor,
    f: torch.Tensor,
    up: tuple[int, int] = (1, 1),
    down: tuple[int, int] = (1, 1),
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """Explicit sums in float64, written from the definition (not from the implementation).

    The upsampled frame holds ``x[i // up]`` at multiples of ``up``; padding shifts it by ``p0``; output
    pixel ``o`` reads frame positions ``o * down + k``; a convolution pairs tap ``k`` with ``f[K - 1 - k]``.
    A 1-D filter means the outer product ``f f^T`` (the gain is applied once overall).
    """
    x = x.double()
    f2 = torch.outer(f, f) if f.ndim == 1 else f
    f2 = f2.double()
    fh, fw = f2.shape
    n, c, h, w = x.shape
    (ux, uy), (dx, dy) = up, down
    px0, px1, py0, py1 = pad
    out_h = (h * uy + py0 + py1 - fh) // dy + 1
    out_w = (w * ux + px0 + px1 - fw) // dx + 1
    y = torch.zeros(n, c, out_h, out_w, dtype=torch.float64)
    for oy in range(out_h):
        for ox in range(out_w):
            for ky in range(fh):
                for kx in range(fw):
                    sy, sx = oy * dy + ky - py0, ox * dx + kx - px0  # position in the upsampled frame
                    if sy < 0 or sx < 0 or sy % uy or sx % ux or sy // uy >= h or sx // ux >= w:
                        continue
                    tap = f2[ky, kx] if flip_filter else f2[fh - 1 - ky, fw - 1 - kx]
                    y[:, :, oy, ox] += tap * x[:, :, sy // uy, sx // ux]
    return gain * y


# (shape, filter shape, up, down, padding, flip, gain): up/down in (x, y) order like StyleGAN2-ADA.
CASES = [
    ((2, 3, 4, 5), (4, 4), (1, 1), (1, 1), (1, 2, 1, 2), False, 1.0),
    ((2, 3, 4, 5), (4,), (2, 2), (1, 1), (2, 1, 2, 1), False, 4.0),
    ((1, 2, 6, 7), (3, 2), (1, 1), (2, 2), (1, 1, 0, 2), True, 0.5),
    ((1, 2, 5, 4), (4,), (1, 1), (2, 2), (1, 1, 1, 1), True, 1.0),
    ((1, 2, 3, 4), (3, 4), (3, 2), (2, 1), (0, 2, 1, 1), False, 2.5),
    ((1, 1, 6, 6), (2, 2), (2, 2), (1, 1), (-1, 2, 3, -2), False, 1.0),  # negative padding crops
    ((2, 1, 7, 8), (5,), (1, 1), (3, 2), (-1, 2, 1, -1), True, -1.5),
    ((1, 1, 4, 4), (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), False, 1.0),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("shape", "fshape", "up", "down", "pad", "flip", "gain"), CASES)
def test_matches_formula(
    backend: str,
    shape: tuple[int, ...],
    fshape: tuple[int, ...],
    up: tuple[int, int],
    down: tuple[int, int],
    pad: tuple[int, int, int, int],
    flip: bool,
    gain: float,
) -> None:
    device = TRITON_DEVICE if backend == "triton" else "cpu"
    x = torch.randn(shape, dtype=torch.float64)
    f = torch.rand(fshape, dtype=torch.float64) + 0.1
    y = upfirdn2d(
        x.to(device), f.to(device), up=up, down=down, padding=pad, flip_filter=flip, gain=gain,
        backend=backend,  # type: ignore[arg-type]
    )  # fmt: skip
    assert_close(y.cpu(), formula(x, f, up, down, pad, flip, gain))


def test_known_values() -> None:
    # Nearest-neighbour upsampling: zero insertion and the box filter [1, 1] along W.
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    y = upfirdn2d(x, torch.ones(2, 2), up=2, padding=(1, 0, 1, 0))
    assert torch.equal(y, torch.tensor([[[[1.0, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]]]))
    # 2x2 average pooling: box filter / 4, every second pixel.
    z = upfirdn2d(y, torch.full((2, 2), 0.25), down=2)
    assert torch.equal(z, x)
    # A 1-D filter is separable, [1, 2] -> [[1, 2], [2, 4]]. A true convolution of an impulse returns the
    # filter; flip_filter (correlation) returns it reversed.
    one = torch.ones(1, 1, 1, 1)
    f = torch.tensor([1.0, 2.0])
    assert torch.equal(upfirdn2d(one, f, padding=1), torch.tensor([[[[1.0, 2], [2, 4]]]]))
    assert torch.equal(upfirdn2d(one, f, padding=1, flip_filter=True), torch.tensor([[[[4.0, 2], [2, 1]]]]))


# (up, down, padding, filter shape): the resampling configurations of StyleGAN2 and a few odd ones.
GRAD_CASES = [
    ((2, 2), (1, 1), (2, 1, 2, 1), (4,)),
    ((1, 1), (2, 2), (1, 1, 1, 1), (4, 4)),
    ((3, 1), (1, 2), (0, -1, 2, 1), (2, 3)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("up", "down", "pad", "fshape"), GRAD_CASES)
def test_gradcheck_and_gradgradcheck(
    backend: str, up: tuple[int, int], down: tuple[int, int], pad: tuple[int, ...], fshape: tuple[int, ...]
) -> None:
    device = TRITON_DEVICE if backend == "triton" else "cpu"
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64, device=device, requires_grad=True)
    f = torch.rand(fshape, dtype=torch.float64, device=device) + 0.1

    def fn(x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, f, up=up, down=down, padding=pad, gain=1.5, backend=backend)  # type: ignore[arg-type]

    # fast_mode checks random projections of the Jacobians (the interpreter is slow); the full Jacobians
    # are compared below, where the Triton gradients must equal autograd of the reference in every case.
    assert torch.autograd.gradcheck(fn, (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)


def _all_orders(x: torch.Tensor, f: torch.Tensor, backend: str, **kw: object) -> list[torch.Tensor]:
    x = x.detach().requires_grad_()
    y = upfirdn2d(x, f, backend=backend, **kw)  # type: ignore[arg-type]
    weight = torch.linspace(-1, 1, y.numel(), device=y.device).reshape(y.shape)
    (gx,) = torch.autograd.grad((y.float() ** 2 * weight).sum(), x, create_graph=True)
    (ggx,) = torch.autograd.grad((gx.float() ** 2).sum(), x)
    return [y, gx, ggx]


@requires_triton
@pytest.mark.parametrize(("shape", "fshape", "up", "down", "pad", "flip", "gain"), CASES)
def test_triton_gradients_match_reference(
    shape: tuple[int, ...],
    fshape: tuple[int, ...],
    up: tuple[int, int],
    down: tuple[int, int],
    pad: tuple[int, int, int, int],
    flip: bool,
    gain: float,
) -> None:
    """The adjoint rule (flipped filter, swapped up/down, adjusted padding) equals autograd of the reference."""
    x = torch.randn(shape, dtype=torch.float64)
    f = torch.rand(fshape, dtype=torch.float64) + 0.1
    kw = {"up": up, "down": down, "padding": pad, "flip_filter": flip, "gain": gain}
    ref = _all_orders(x, f, "torch", **kw)
    out = _all_orders(x.to(TRITON_DEVICE), f.to(TRITON_DEVICE), "triton", **kw)
    for o, r in zip(out, ref):
        assert_close(o.cpu(), r)


@requires_triton
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_triton_matches_reference_low_precision(channels_last: bool, dtype: torch.dtype) -> None:
    x = torch.randn(2, 3, 5, 6, device=TRITON_DEVICE).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], device=TRITON_DEVICE) / 8
    kw = {"up": 2, "padding": (2, 1, 2, 1), "gain": 4.0}
    ref = _all_orders(x.double(), f.double(), "torch", **kw)
    out = _all_orders(x, f, "triton", **kw)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    assert out[0].is_contiguous(memory_format=memory_format)
    for o, r in zip(out, ref):
        assert o.dtype == dtype
        m = r.abs().max().clamp(min=1.0)  # errors scale with the largest entry of a sum of rounded terms
        assert_close(o.double() / m, r / m, dtype, scale=4.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_layout_and_dtype_preserved(backend: str) -> None:
    device = TRITON_DEVICE if backend == "triton" else "cpu"
    x = torch.randn(2, 3, 4, 4, device=device).to(memory_format=torch.channels_last)
    f = torch.ones(3, 3, device=device) / 9
    y = upfirdn2d(x, f, down=2, padding=1, backend=backend)  # type: ignore[arg-type]
    assert y.is_contiguous(memory_format=torch.channels_last) and y.shape == (2, 3, 2, 2)
    assert_close(y, formula(x, f, down=(2, 2), pad=(1, 1, 1, 1)).float())
    xb = torch.randn(1, 2, 4, 4, dtype=torch.bfloat16, device=device)
    yb = upfirdn2d(xb, f, padding=1, backend=backend)  # type: ignore[arg-type]
    assert yb.dtype == torch.bfloat16 and yb.is_contiguous()
    assert_close(yb, formula(xb, f, pad=(1, 1, 1, 1)), torch.bfloat16)


@requires_triton
def test_triton_multiple_tiles_and_strided_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small tiles (as on a GPU) so several tiles per plane run; a strided view and an expanded gradient."""
    from ganblocks.ops.upfirdn2d import kernels

    monkeypatch.setattr(kernels, "_tiles", lambda out_h, out_w: (2, 4))
    base = torch.randn(1, 2, 10, 5, dtype=torch.float64, device=TRITON_DEVICE)
    x = base[:, :, ::2].requires_grad_()
    f = torch.rand(3, 4, dtype=torch.float64, device=TRITON_DEVICE)
    y = upfirdn2d(x, f, up=2, down=(1, 2), padding=(1, 2, 0, 1), backend="triton")
    assert_close(y.detach().cpu(), formula(x.detach().cpu(), f.cpu(), (2, 2), (1, 2), (1, 2, 0, 1)))
    y.sum().backward()  # the incoming gradient is expanded (stride 0)
    xr = x.detach().requires_grad_()
    upfirdn2d(xr, f, up=2, down=(1, 2), padding=(1, 2, 0, 1), backend="torch").sum().backward()
    assert x.grad is not None and xr.grad is not None
    assert_close(x.grad, xr.grad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_compiles_without_graph_break(backend: str) -> None:
    device = TRITON_DEVICE if backend == "triton" else "cpu"
    x = torch.randn(2, 3, 4, 4, device=device)
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], device=device) / 8

    @torch.compile(fullgraph=True, backend="eager" if device == "cpu" else "inductor")
    def fn(x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, f, up=2, padding=(2, 1, 2, 1), gain=4.0, backend=backend) * 2  # type: ignore[arg-type]

    assert_close(fn(x), 2 * formula(x, f, (2, 2), pad=(2, 1, 2, 1), gain=4.0).float())


def test_identity_filter_and_empty_batch() -> None:
    x = torch.randn(2, 3, 4, 5)
    assert torch.equal(upfirdn2d(x, None), x)
    assert upfirdn2d(torch.zeros(0, 3, 4, 4), torch.ones(2, 2), up=2).shape == (0, 3, 7, 7)


@pytest.mark.parametrize(
    ("x", "f", "kwargs", "error", "match"),
    [
        (
            torch.zeros(2, 3, 4),
            torch.ones(2),
            {},
            ValueError,
            r"x must have 4 dimensions, got shape \(2, 3, 4\)",
        ),
        (torch.zeros(1, 1, 4, 4, dtype=torch.long), None, {}, TypeError, "x must be a floating-point tensor"),
        (
            torch.zeros(1, 1, 4, 4),
            torch.ones(2, 2, 2),
            {},
            ValueError,
            r"f must be a non-empty 1-D .*\(2, 2, 2\)",
        ),
        (
            torch.zeros(1, 1, 4, 4),
            torch.ones(0),
            {},
            ValueError,
            r"f must be a non-empty 1-D .*got shape \(0,\)",
        ),
        (
            torch.zeros(1, 1, 4, 4),
            torch.ones(2, requires_grad=True),
            {},
            ValueError,
            "f must not require grad",
        ),
        (torch.zeros(1, 1, 4, 4), None, {"up": 0}, ValueError, r"up must be an int or a pair .*>= 1, got 0"),
        (torch.zeros(1, 1, 4, 4), None, {"down": (2, 2, 2)}, ValueError, r"down must be .*got \(2, 2, 2\)"),
        (
            torch.zeros(1, 1, 4, 4),
            None,
            {"padding": (1, 2, 3)},
            ValueError,
            r"padding must be an int, a pair",
        ),
        (torch.zeros(1, 1, 4, 4), None, {"gain": float("nan")}, ValueError, "gain must be a finite number"),
        (
            torch.zeros(1, 1, 2, 2),
            torch.ones(4, 4),
            {"padding": (0, 1, 0, 1)},
            ValueError,
            r"output would be empty \(0 x 0\): x of shape \(1, 1, 2, 2\) .* filter size \(4 x 4\)",
        ),
    ],
)
def test_bad_inputs(
    x: torch.Tensor, f: object, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        upfirdn2d(x, f, **kwargs)  # type: ignore[arg-type]


@requires_triton
def test_triton_rejects_unsupported_dtype() -> None:
    x = torch.zeros(1, 1, 2, 2, device=TRITON_DEVICE).to(torch.float8_e4m3fn)
    with pytest.raises(TypeError, match=r"upfirdn2d: the Triton backend .* got torch.float8_e4m3fn"):
        upfirdn2d(x, None, backend="triton")


@requires_triton
@pytest.mark.parametrize(
    "args",
    [
        ((2, 3, 4, 5), (4,), 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0),
        ((1, 2, 5, 4), (3, 2), 1, 1, 2, 1, 1, 0, -1, 2, True, 0.5),
    ],
)
def test_opcheck(args: tuple[object, ...]) -> None:
    """Schema, fake kernel, autograd registration and AOT dispatch of the registered custom op."""
    import ganblocks.ops.upfirdn2d.custom_op  # noqa: F401  (registers the op)

    xshape, fshape, *rest = args
    x = torch.randn(xshape, dtype=torch.float64, device=TRITON_DEVICE, requires_grad=True)  # type: ignore[arg-type]
    f = torch.rand(fshape, dtype=torch.float64, device=TRITON_DEVICE)  # type: ignore[arg-type]
    torch.library.opcheck(torch.ops.ganblocks.upfirdn2d.default, (x, f, *rest))
