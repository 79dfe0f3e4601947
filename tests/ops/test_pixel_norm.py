"""pixel_norm beyond the shared contract (``test_contract.py``): any feature dim and eps, known values,
the tiled-channel kernel path, and each bad input's message."""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import formulas
import pytest
import torch
from helpers import TRITON_DEVICE, TRITON_FLOAT64, all_orders, assert_close, requires_triton

from ganblocks.functional import pixel_norm
from ganblocks.ops import Backend


@pytest.mark.parametrize(("shape", "dim"), [((2, 5, 3, 4), 1), ((4, 7), 1), ((2, 3, 4), -1), ((3, 2, 2), 0)])
@pytest.mark.parametrize("eps", [1e-8, 0.5])
def test_reference_matches_formula(shape: tuple[int, ...], dim: int, eps: float) -> None:
    x = torch.randn(shape, dtype=torch.float64)
    assert_close(pixel_norm(x, eps=eps, dim=dim, backend="torch"), formulas.pixel_norm(x, eps, dim))


def test_known_values() -> None:
    # mean square of (3, 4) is 12.5: each entry is divided by sqrt(12.5).
    y = pixel_norm(torch.tensor([[3.0, 4.0]], dtype=torch.float64), eps=1e-300)
    torch.testing.assert_close(y, torch.tensor([[3.0, 4.0]], dtype=torch.float64) / math.sqrt(12.5))


def _formula(x: torch.Tensor, eps: float = 1e-8, dim: int = 1) -> torch.Tensor:
    """The plain formula, op for op, differentiated by autograd."""
    return x * torch.rsqrt(torch.mean(x**2, dim=dim, keepdim=True) + eps)


@pytest.mark.parametrize(("shape", "dim"), [((2, 5, 3, 4), 1), ((4, 7), 1), ((2, 3, 4), -1), ((3, 2, 2), 0)])
def test_every_order_is_autograd_of_the_formula(shape: tuple[int, ...], dim: int) -> None:
    # The per-pixel scale k is detached: the scaled reference differentiates as the unscaled formula.
    x = torch.randn(shape, dtype=torch.float64) * 3
    fn = functools.partial(pixel_norm, dim=dim, backend="torch")
    for o, r in zip(all_orders(fn, [x]), all_orders(functools.partial(_formula, dim=dim), [x])):
        assert_close(o, r)
    assert torch.autograd.gradgradcheck(fn, (x.clone().requires_grad_(),))
    assert torch.autograd.gradcheck(fn, (x.clone().requires_grad_(),), check_forward_ad=True)


@pytest.mark.parametrize("shape", [(2, 64, 2, 2), (2, 8, 16, 16), (16, 64), (8, 512, 4, 4)])
def test_bfloat16_is_rounded_once_and_its_gradient_is_the_formulas(shape: tuple[int, ...]) -> None:
    """Against float64: the bfloat16 output is (nearly always) the correctly rounded value, as when the
    squares are summed and the product taken in float32; the gradient errs no more than the formula's own
    ops in bfloat16."""
    x = torch.randn(shape).bfloat16()
    dy = torch.randn(shape).bfloat16()

    def value_and_grad(fn: Callable[[torch.Tensor], torch.Tensor], t: torch.Tensor) -> list[torch.Tensor]:
        leaf = t.detach().requires_grad_()
        y = fn(leaf)
        (dx,) = torch.autograd.grad(y, leaf, dy.to(t.dtype))
        return [y.detach(), dx]

    exact = value_and_grad(_formula, x.double())
    ours = value_and_grad(functools.partial(pixel_norm, backend="torch"), x)
    plain = value_and_grad(_formula, x)
    assert ours[0].dtype == ours[1].dtype == torch.bfloat16
    # Rounding r to bfloat16 before a bfloat16 product got 69-74% of these right (the formula in bfloat16:
    # 50-72%); one rounding of the float32 product gets 93-99% (the squares themselves are bfloat16).
    assert (ours[0] == exact[0].bfloat16()).double().mean() >= 0.9
    err, plain_err = (ours[1].double() - exact[1]).abs(), (plain[1].double() - exact[1]).abs()
    assert err.mean() <= 1.1 * plain_err.mean()
    assert err.max() <= 1.5 * plain_err.max()
    assert_close(ours[1], exact[1].bfloat16(), scale=2.0)  # bfloat16 spacing is 1/64 between 2 and 4


def _orders(x: torch.Tensor, backend: Backend, **kw: Any) -> list[torch.Tensor]:
    return all_orders(functools.partial(pixel_norm, backend=backend, **kw), [x])


@pytest.mark.triton
@requires_triton
@pytest.mark.parametrize(
    ("shape", "dim"), [((3, 5, 7, 9), 1), ((2, 3, 4), -1), ((3, 2, 2), 0), ((2, 5, 3), 2)]
)
def test_triton_float64_any_dim(shape: tuple[int, ...], dim: int) -> None:
    x = torch.randn(shape, dtype=torch.float64, device=TRITON_DEVICE)
    for o, r in zip(_orders(x, "triton", dim=dim), _orders(x, "torch", dim=dim)):
        torch.testing.assert_close(o, r, rtol=TRITON_FLOAT64[0], atol=TRITON_FLOAT64[1])


@pytest.mark.triton
@requires_triton
@pytest.mark.parametrize("channels_last", [False, True])
def test_triton_tiled_channels(monkeypatch: pytest.MonkeyPatch, channels_last: bool) -> None:
    """Force tiles smaller than the channel dim, as a GPU uses for wide features, so the loop path runs."""
    from ganblocks.ops.pixel_norm import kernels

    monkeypatch.setattr(kernels, "_launch_config", lambda num_pixels, inner, num_c: (4, 2, False, 4))
    x = torch.randn(2, 5, 3, 3, dtype=torch.float64, device=TRITON_DEVICE)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    for o, r in zip(_orders(x, "triton"), _orders(x, "torch")):
        torch.testing.assert_close(o, r, rtol=TRITON_FLOAT64[0], atol=TRITON_FLOAT64[1])


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "match"),
    [
        (torch.zeros(3), {}, ValueError, r"x must have at least 2 dimensions, got shape \(3,\)"),
        (torch.zeros(2, 3), {"eps": -1.0}, ValueError, r"eps must be > 0, got -1.0"),
        (torch.zeros(2, 3), {"eps": 0.0}, ValueError, r"eps must be > 0, got 0.0"),
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


def test_vmap_matches_a_loop() -> None:
    # vmap forbids reading a value back to the host: the reference must not.
    x = torch.randn(3, 2, 4, 5, 5)
    batched = torch.func.vmap(lambda t: pixel_norm(t, backend="torch"))(x)
    looped = torch.stack([pixel_norm(t, backend="torch") for t in x])
    torch.testing.assert_close(batched, looped)
