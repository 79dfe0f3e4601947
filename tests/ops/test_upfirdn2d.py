"""upfirdn2d beyond the shared contract (``test_contract.py``): StyleGAN2-ADA's semantics against the
explicit loop formula over many configurations, the adjoint rule of its backward in all of them, known
values, several tiles per plane, and each bad input's message."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from formulas import upfirdn2d as formula
from helpers import TRITON_DEVICE, all_orders, assert_close, requires_triton

from ganblocks.functional import upfirdn2d
from ganblocks.ops import Backend

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


@pytest.mark.parametrize(("shape", "fshape", "up", "down", "pad", "flip", "gain"), CASES)
def test_matches_formula(
    backend: Backend,
    device: torch.device,
    shape: tuple[int, ...],
    fshape: tuple[int, ...],
    up: tuple[int, int],
    down: tuple[int, int],
    pad: tuple[int, int, int, int],
    flip: bool,
    gain: float,
) -> None:
    x = torch.randn(shape, dtype=torch.float64)
    f = torch.rand(fshape, dtype=torch.float64) + 0.1
    y = upfirdn2d(
        x.to(device), f.to(device), up=up, down=down, padding=pad, flip_filter=flip, gain=gain,
        backend=backend,
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


@pytest.mark.triton
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
    kw: dict[str, Any] = {"up": up, "down": down, "padding": pad, "flip_filter": flip, "gain": gain}
    ref = all_orders(lambda x: upfirdn2d(x, f, **kw, backend="torch"), [x])
    f = f.to(TRITON_DEVICE)
    out = all_orders(lambda x: upfirdn2d(x, f, **kw, backend="triton"), [x.to(TRITON_DEVICE)])
    for o, r in zip(out, ref):
        assert_close(o, r)


@pytest.mark.triton
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
