"""instance_avg_pool beyond the shared contract (``test_contract.py``): pix2pixHD's per-instance loop over
kinds of ids and map dtypes, the projection's properties, the small-tile kernel path, and each bad input."""

from __future__ import annotations

import pytest
import torch
from formulas import instance_avg_pool as formula
from helpers import TRITON_DEVICE, all_orders, assert_close, requires_triton
from ops.cases import random_instance_map as random_map

from ganblocks.functional import instance_avg_pool
from ganblocks.ops import Backend


def test_known_values() -> None:
    x = torch.tensor([[[[1.0, 2.0, 4.0], [3.0, 6.0, 8.0]]], [[[1.0, 2.0, 4.0], [3.0, 6.0, 8.0]]]])
    inst = torch.tensor([[[[7, 7, 5], [7, 5, 5]]], [[[7, 7, 7], [7, 7, 7]]]])
    expected = torch.tensor([[[[2.0, 2.0, 6.0], [2.0, 6.0, 6.0]]], [[[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]]]])
    # The same id in two samples is two instances: sample 1's id 7 averages only sample 1's pixels.
    torch.testing.assert_close(instance_avg_pool(x, inst), expected)


@pytest.mark.parametrize(
    "ids",
    [(0, 1, 2), (-5, 26001, 26002, 7), (0,)],  # pix2pixHD's 1000-coded ids, negatives, one instance
)
def test_matches_formula(backend: Backend, device: torch.device, ids: tuple[int, ...]) -> None:
    x = torch.randn(3, 4, 5, 7, dtype=torch.float64, device=device)
    inst = random_map(3, 5, 7, ids=ids, device=device)
    assert_close(instance_avg_pool(x, inst, backend=backend), formula(x, inst))


@pytest.mark.parametrize("map_dtype", [torch.uint8, torch.int32, torch.bool])
def test_map_dtypes(backend: Backend, device: torch.device, map_dtype: torch.dtype) -> None:
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, device=device)
    inst = random_map(2, 4, 4, ids=(0, 1), device=device)
    out = instance_avg_pool(x, inst.to(map_dtype), backend=backend)
    assert_close(out, formula(x, inst))


def test_projection_properties(backend: Backend, device: torch.device) -> None:
    """P is an orthogonal projection: P(Px) = Px, <Px, y> = <x, Py>, and the channel sums per instance stay."""
    x, y = torch.randn(2, 2, 2, 4, 6, dtype=torch.float64, device=device).unbind(0)
    inst = random_map(2, 4, 6, device=device)

    def p(t: torch.Tensor) -> torch.Tensor:
        return instance_avg_pool(t, inst, backend=backend)

    assert_close(p(p(x)), p(x))
    assert_close((p(x) * y).sum(), (x * p(y)).sum())
    assert_close(p(x).sum(), x.sum())


@pytest.mark.triton
@requires_triton
@pytest.mark.parametrize("channels_last", [False, True])
def test_triton_small_tiles(monkeypatch: pytest.MonkeyPatch, channels_last: bool) -> None:
    """Tiles of 4 pixels × 2 channels, as many programs as a GPU: uniform and straddling tiles both run."""
    from ganblocks.ops.instance_avg_pool import kernels

    monkeypatch.setattr(kernels, "_launch_config", lambda num_pixels, num_c: (4, 2))
    x = torch.randn(2, 3, 2, 3, dtype=torch.float64, device=TRITON_DEVICE)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    inst = torch.tensor([[[[0, 0, 1], [0, 0, 0]]], [[[0, 0, 0], [0, 0, 0]]]], device=TRITON_DEVICE)
    # Tiles of pixels 0-3 (two instances) and 4-7 (id 0 of sample 0, then of sample 1) straddle; 8-11 do not.
    out = all_orders(lambda x: instance_avg_pool(x, inst, backend="triton"), [x])
    ref = all_orders(lambda x: instance_avg_pool(x, inst, backend="torch"), [x])
    for o, r in zip(out, ref):
        torch.testing.assert_close(o, r, rtol=1e-12, atol=1e-12)


def test_gradient_of_a_sum_is_one(backend: Backend, device: torch.device) -> None:
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, device=device, requires_grad=True)
    instance_avg_pool(x, random_map(2, 4, 5, device=device), backend=backend).sum().backward()
    assert x.grad is not None
    assert_close(x.grad, torch.ones_like(x))  # P(1) = 1


def test_empty() -> None:
    x = torch.randn(0, 3, 4, 4)
    assert instance_avg_pool(x, torch.zeros(0, 1, 4, 4, dtype=torch.long)).shape == (0, 3, 4, 4)


@pytest.mark.parametrize(
    ("features", "instance_map", "error", "match"),
    [
        (
            torch.randn(1, 2, 3, 3),
            torch.zeros(1, 1, 3, 3),
            TypeError,
            r"instance_map must hold integer ids.*float32",
        ),
        (
            torch.randn(1, 2, 3, 3),
            torch.zeros(1, 3, 3, dtype=torch.long),
            ValueError,
            r"\(N, 1, H, W\), got \(1, 3, 3\)",
        ),
        (
            torch.randn(2, 2, 3, 3),
            torch.zeros(1, 1, 3, 4, dtype=torch.long),
            ValueError,
            r"= \(2, 1, 3, 3\) to match features of shape \(2, 2, 3, 3\), got \(1, 1, 3, 4\)",
        ),
        (
            torch.randn(2, 3, 3),
            torch.zeros(2, 1, 3, 3, dtype=torch.long),
            ValueError,
            r"features must have 4 dimensions",
        ),
        (
            torch.ones(1, 2, 3, 3, dtype=torch.long),
            torch.zeros(1, 1, 3, 3, dtype=torch.long),
            TypeError,
            "floating-point",
        ),
        (
            [[1.0]],
            torch.zeros(1, 1, 1, 1, dtype=torch.long),
            TypeError,
            "features must be a torch.Tensor, got list",
        ),
    ],
)
def test_bad_inputs(features: object, instance_map: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        instance_avg_pool(features, instance_map)  # type: ignore[arg-type]
