"""instance_avg_pool: numerics against pix2pixHD's per-instance loop, both backends, every order of gradient."""

from __future__ import annotations

import pytest
import torch
from helpers import TRITON_DEVICE, assert_close, requires_triton

from ganblocks.functional import instance_avg_pool


def formula(features: torch.Tensor, instance_map: torch.Tensor) -> torch.Tensor:
    """pix2pixHD's ``Encoder.forward`` loop: for each sample and each id, the mean over its pixels, in float64."""
    x = features.double()
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        for i in instance_map[b].unique().tolist():
            mask = instance_map[b, 0] == i
            for c in range(x.shape[1]):
                out[b, c][mask] = x[b, c][mask].mean()
    return out


def random_map(
    n: int, h: int, w: int, *, ids: tuple[int, ...] = (0, 1, 2), device: str = "cpu"
) -> torch.Tensor:
    """Blocky instance maps like real ones, with arbitrary ids, on ``device``."""
    choice = torch.randint(len(ids), (n, 1, (h + 1) // 2, (w + 1) // 2))
    coarse = torch.tensor(ids)[choice]
    return coarse.repeat_interleave(2, 2).repeat_interleave(2, 3)[..., :h, :w].contiguous().to(device)


BACKENDS = ["torch", pytest.param("triton", marks=requires_triton)]


def _device(backend: str) -> str:
    return TRITON_DEVICE if backend == "triton" else "cpu"


def test_known_values() -> None:
    x = torch.tensor([[[[1.0, 2.0, 4.0], [3.0, 6.0, 8.0]]], [[[1.0, 2.0, 4.0], [3.0, 6.0, 8.0]]]])
    inst = torch.tensor([[[[7, 7, 5], [7, 5, 5]]], [[[7, 7, 7], [7, 7, 7]]]])
    expected = torch.tensor([[[[2.0, 2.0, 6.0], [2.0, 6.0, 6.0]]], [[[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]]]])
    # The same id in two samples is two instances: sample 1's id 7 averages only sample 1's pixels.
    torch.testing.assert_close(instance_avg_pool(x, inst), expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "ids",
    [(0, 1, 2), (-5, 26001, 26002, 7), (0,)],  # pix2pixHD's 1000-coded ids, negatives, one instance
)
def test_matches_formula(backend: str, ids: tuple[int, ...]) -> None:
    device = _device(backend)
    x = torch.randn(3, 4, 5, 7, dtype=torch.float64, device=device)
    inst = random_map(3, 5, 7, ids=ids, device=device)
    assert_close(instance_avg_pool(x, inst, backend=backend), formula(x, inst))  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("map_dtype", [torch.uint8, torch.int32, torch.bool])
def test_map_dtypes(backend: str, map_dtype: torch.dtype) -> None:
    device = _device(backend)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, device=device)
    inst = random_map(2, 4, 4, ids=(0, 1), device=device)
    out = instance_avg_pool(x, inst.to(map_dtype), backend=backend)  # type: ignore[arg-type]
    assert_close(out, formula(x, inst))


@pytest.mark.parametrize("backend", BACKENDS)
def test_projection_properties(backend: str) -> None:
    """P is an orthogonal projection: P(Px) = Px, <Px, y> = <x, Py>, and the channel sums per instance stay."""
    device = _device(backend)
    x, y = torch.randn(2, 2, 2, 4, 6, dtype=torch.float64, device=device).unbind(0)
    inst = random_map(2, 4, 6, device=device)

    def p(t: torch.Tensor) -> torch.Tensor:
        return instance_avg_pool(t, inst, backend=backend)  # type: ignore[arg-type]

    assert_close(p(p(x)), p(x))
    assert_close((p(x) * y).sum(), (x * p(y)).sum())
    assert_close(p(x).sum(), x.sum())


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_and_gradgradcheck(backend: str) -> None:
    device = _device(backend)
    x = torch.randn(2, 2, 2, 3, dtype=torch.float64, device=device, requires_grad=True)
    inst = torch.tensor([[[[0, 0, 1], [2, 1, 1]]], [[[0, 0, 0], [0, 0, 9]]]], device=device)

    def fn(x: torch.Tensor) -> torch.Tensor:
        return instance_avg_pool(x, inst, backend=backend)  # type: ignore[arg-type]

    # The Triton case checks random projections only (fast_mode): the interpreter is slow.
    assert torch.autograd.gradcheck(fn, (x,), fast_mode=backend == "triton")
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=backend == "triton")


def _run_all_orders(x: torch.Tensor, inst: torch.Tensor, backend: str) -> list[torch.Tensor]:
    x = x.detach().requires_grad_()
    y = instance_avg_pool(x, inst, backend=backend)  # type: ignore[arg-type]
    weight = torch.linspace(-1, 1, y.numel(), dtype=torch.float32, device=y.device).reshape(y.shape)
    (gx,) = torch.autograd.grad((y.float() ** 2 * weight).sum(), x, create_graph=True)
    (ggx,) = torch.autograd.grad((gx.float() ** 2 * weight).sum(), x)
    return [y, gx, ggx]


CASES = [((1, 1, 1, 1), False), ((3, 5, 6, 7), False), ((3, 5, 6, 7), True), ((2, 40, 3, 2), True)]


@requires_triton
@pytest.mark.parametrize(("shape", "channels_last"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_triton_matches_reference(shape: tuple[int, ...], channels_last: bool, dtype: torch.dtype) -> None:
    n, _, h, w = shape
    x = torch.randn(shape, device=TRITON_DEVICE).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    inst = random_map(n, h, w, ids=(3, 1000, 1001), device=TRITON_DEVICE)
    ref = _run_all_orders(x.double(), inst, "torch")
    for o, r in zip(_run_all_orders(x, inst, "triton"), ref):
        assert o.dtype == dtype
        # Means of rounded inputs: the error of a mean scales with its largest term.
        m = r.abs().max().clamp(min=1.0)
        assert_close(o.double() / m, r / m, dtype, scale=4.0)


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
    for o, r in zip(_run_all_orders(x, inst, "triton"), _run_all_orders(x, inst, "torch")):
        torch.testing.assert_close(o, r, rtol=1e-12, atol=1e-12)


@requires_triton
@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_layouts_preserved(backend: str) -> None:
    device = _device(backend)
    inst = random_map(2, 3, 4, device=device)
    x = torch.randn(2, 5, 3, 4, device=device).to(memory_format=torch.channels_last)
    y = instance_avg_pool(x, inst, backend=backend)  # type: ignore[arg-type]
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, formula(x, inst), torch.float32)
    x = torch.randn(2, 5, 3, 4, device=device)
    assert instance_avg_pool(x, inst, backend=backend).is_contiguous()  # type: ignore[arg-type]


@requires_triton
def test_triton_non_dense_input_and_expanded_gradient() -> None:
    base = torch.randn(2, 3, 8, 5, dtype=torch.float64, device=TRITON_DEVICE)
    x = base[:, :, ::2].requires_grad_()  # a strided view
    inst = random_map(2, 4, 5, device=TRITON_DEVICE)
    y = instance_avg_pool(x, inst, backend="triton")
    assert_close(y, formula(x.detach(), inst))
    y.sum().backward()  # the incoming gradient is an expanded (stride 0) tensor: P(1) = 1
    assert x.grad is not None
    assert_close(x.grad, torch.ones_like(x))


@requires_triton
def test_triton_compiles_without_graph_break() -> None:
    x = torch.randn(2, 3, 4, 4, device=TRITON_DEVICE)
    inst = random_map(2, 4, 4, ids=(2, 2000), device=TRITON_DEVICE)

    @torch.compile(fullgraph=True, backend="eager" if TRITON_DEVICE == "cpu" else "inductor")
    def fn(x: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
        return instance_avg_pool(x, inst, backend="triton") * 2

    assert_close(fn(x, inst), 2 * formula(x, inst), torch.float32)


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
