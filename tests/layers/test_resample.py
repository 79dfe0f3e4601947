"""setup_filter, upsample2d / downsample2d / filter2d and their modules, against StyleGAN2-ADA's rules."""

from __future__ import annotations

import formulas
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close

from ganblocks import Blur, Downsample2d, Upsample2d
from ganblocks.functional import downsample2d, filter2d, setup_filter, upsample2d
from ganblocks.ops import Backend, use_backend


def test_setup_filter_rules() -> None:
    two_d = setup_filter([1, 3, 3, 1])
    assert two_d.shape == (4, 4) and two_d.dtype == torch.float32
    assert_close(two_d, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64)
    # 8 taps or more stay separable by default (StyleGAN2-ADA), shorter ones become outer products.
    long = setup_filter(list(range(1, 9)))
    assert long.shape == (8,) and torch.allclose(long, torch.arange(1.0, 9.0) / 36)
    assert setup_filter(list(range(1, 9)), separable=False).shape == (8, 8)
    assert_close(setup_filter([1, 2, 1], separable=True), torch.tensor([0.25, 0.5, 0.25]))
    assert torch.equal(setup_filter(None), torch.ones(1, 1))
    assert torch.equal(setup_filter(2.0), torch.ones(1, 1))
    assert torch.equal(setup_filter([1, 2], normalize=False), torch.tensor([[1.0, 2], [2, 4]]))
    assert torch.equal(setup_filter([[1, 2]], normalize=False, flip_filter=True), torch.tensor([[2.0, 1]]))
    # The gain is gain ** (ndim / 2): once overall for a separable filter applied along both axes.
    assert_close(setup_filter([1, 2, 1], gain=4.0), 4 * setup_filter([1, 2, 1]))
    assert_close(
        setup_filter([1, 2, 1], gain=4.0, separable=True), 2 * setup_filter([1, 2, 1], separable=True)
    )
    f64 = setup_filter([1, 3, 3, 1], dtype=torch.float64)
    assert f64.dtype == torch.float64 and f64.sum().item() == 1.0


def test_setup_filter_on_the_meta_device() -> None:
    # Networks are built on the meta device to check a checkpoint's shapes without allocating: the taps are
    # still checked (on the CPU) and the filter has the shape it would have elsewhere.
    f = setup_filter([1, 3, 3, 1], device="meta")
    assert f.device.type == "meta" and f.shape == (4, 4) and f.dtype == torch.float32
    assert setup_filter(list(range(1, 9)), device="meta", dtype=torch.float64).shape == (8,)
    with pytest.raises(ValueError, match="f must have finite taps"):
        setup_filter([1, float("nan")], device="meta")
    with pytest.raises(ValueError, match="f must not sum to zero"):
        setup_filter([1, -1], device=torch.device("meta"))


@pytest.mark.parametrize(
    ("f", "kwargs", "error", "match"),
    [
        (torch.ones(2, 2, 2), {}, ValueError, r"f must be a number or a non-empty 1-D or 2-D filter, got shape \(2, 2, 2\)"),
        ([], {}, ValueError, r"got shape \(0,\)"),
        ([[1, 2]], {"separable": True}, ValueError, r"separable=True needs a 1-D filter, got shape \(1, 2\)"),
        ([1, -1], {}, ValueError, "f must not sum to zero when normalize=True"),
        ([1, 2], {"gain": float("inf")}, ValueError, "gain must be a finite number"),
        ([1, 2], {"dtype": torch.int64}, TypeError, "dtype must be a floating-point dtype, got torch.int64"),
        ([1, 2], {"gain": -1.0, "separable": True}, ValueError, "gain must be >= 0 for a separable filter"),
        ([1, float("nan"), 1], {}, ValueError, r"f must have finite taps, got \[1\.0, nan, 1\.0\]"),
        ([[1, 2], [float("inf"), 1]], {"normalize": False}, ValueError, "f must have finite taps"),
        (torch.tensor([1.0, float("-inf")]), {"separable": True}, ValueError, "f must have finite taps"),
        ([[1, 2], [1]], {}, ValueError, r"f must be a number, a tensor, or a 1-D or 2-D sequence of numbers with rows of equal length, got \[\[1, 2\], \[1\]\]"),
        ("abc", {}, ValueError, "f must be a number, a tensor, or a 1-D or 2-D sequence"),
    ],
)  # fmt: skip
def test_setup_filter_bad_inputs(
    f: object, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        setup_filter(f, **kwargs)  # type: ignore[arg-type]


# taps, StyleGAN2-ADA paddings (p0, p1) for up=2, down=2 and filter2d, worked out by hand from
# up: ((K + 1) // 2, (K - 2) // 2), down: ((K - 1) // 2, (K - 2) // 2), filter2d: (K // 2, (K - 1) // 2).
FILTERS = [
    ([1.0, 3.0, 3.0, 1.0], (2, 1), (1, 1), (2, 1)),
    ([1.0, 2.0, 4.0], (2, 0), (1, 0), (1, 1)),
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], (4, 3), (3, 3), (4, 3)),  # separable by default
]


@pytest.mark.parametrize(("taps", "up_pad", "down_pad", "blur_pad"), FILTERS)
def test_resampling_matches_formula(
    backend: Backend,
    device: torch.device,
    taps: list[float],
    up_pad: tuple[int, int],
    down_pad: tuple[int, int],
    blur_pad: tuple[int, int],
) -> None:
    x = torch.randn(2, 3, 4, 6, dtype=torch.float64)
    f2d = formulas.separable_filter(taps)
    f = setup_filter(taps, device=device, dtype=torch.float64)
    xd = x.to(device)
    with use_backend(backend):
        up, down, blur = upsample2d(xd, f), downsample2d(xd, f), filter2d(xd, f)
    assert up.shape == (2, 3, 8, 12) and down.shape == (2, 3, 2, 3) and blur.shape == x.shape
    assert_close(up, formulas.resample2d(x, f2d, up=2, down=1, pad=up_pad, gain=4.0))
    assert_close(down, formulas.resample2d(x, f2d, up=1, down=2, pad=down_pad, gain=1.0))
    assert_close(blur, formulas.resample2d(x, f2d, up=1, down=1, pad=blur_pad, gain=1.0))


def test_constant_image_stays_constant_inside() -> None:
    """The gain keeps the mean: zero insertion keeps 1 pixel in 4, so the upsampling gain is 4."""
    f = setup_filter([1, 3, 3, 1])
    ones = torch.ones(1, 1, 8, 8)
    assert torch.allclose(upsample2d(ones, f)[..., 2:-2, 2:-2], torch.ones(1, 1, 12, 12))
    assert torch.allclose(downsample2d(ones, f)[..., 1:-1, 1:-1], torch.ones(1, 1, 2, 2))
    assert torch.allclose(filter2d(ones, f)[..., 2:-2, 2:-2], torch.ones(1, 1, 4, 4))


def test_extra_padding_gain_and_anisotropic_factor() -> None:
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64)
    t = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    f = setup_filter(t, dtype=torch.float64)
    f2d = torch.outer(t, t) / 16
    # up=(2, 1): x upsampled along W only with gain 2; padding (1, 1) added on top of the rule's (2, 0).
    y = upsample2d(x, f, up=(2, 1), padding=1, gain=0.5)
    z = x.new_zeros(1, 2, 3, 8)
    z[..., ::2] = x
    # Along W (up 2): 1 + (K + 1) // 2 = 3 and 1 + (K - 2) // 2 = 1; along H (up 1): 1 + K // 2 = 2, 1 + (K - 1) // 2 = 2.
    expected = F.conv2d(F.pad(z, [3, 1, 2, 2]), f2d.expand(2, 1, 3, 3), groups=2)
    assert_close(y, 0.5 * 2 * expected)
    assert_close(
        filter2d(x, f, gain=3.0, padding=(0, 1, 0, 0)),
        3.0 * F.conv2d(F.pad(x, [1, 2, 1, 1]), f2d.expand(2, 1, 3, 3), groups=2),
    )


def test_modules_equal_functions(backend: Backend, device: torch.device) -> None:
    x = torch.randn(1, 2, 4, 4, device=device)
    f = setup_filter([1, 3, 3, 1], device=device)
    with use_backend(backend):
        assert_close(Upsample2d(device=device)(x), upsample2d(x, f))
        assert_close(Downsample2d(device=device)(x), downsample2d(x, f))
        assert_close(Blur(device=device)(x), filter2d(x, f))
        assert_close(
            Upsample2d(up=4, padding=1, gain=2.0, device=device)(x),
            upsample2d(x, f, up=4, padding=1, gain=2.0),
        )
        assert_close(Downsample2d(down=(2, 1), device=device)(x), downsample2d(x, f, down=(2, 1)))
        assert_close(
            Blur(resample_filter=[1, 2, 1], flip_filter=True, device=device)(x),
            filter2d(x, setup_filter([1, 2, 1], device=device), flip_filter=True),
        )


def test_buffers_and_repr() -> None:
    up = Upsample2d()
    assert list(up.state_dict()) == ["resample_filter"] and not list(up.parameters())
    assert (
        repr(up)
        == "Upsample2d(up=(2, 2), filter_shape=(4, 4), padding=(0, 0, 0, 0), gain=1.0, flip_filter=False)"
    )
    assert repr(Downsample2d(resample_filter=list(range(1, 9)), down=(2, 1))).startswith(
        "Downsample2d(down=(2, 1), filter_shape=(8,)"
    )
    assert (
        repr(Blur(padding=(1, 2)))
        == "Blur(filter_shape=(4, 4), padding=(1, 1, 2, 2), gain=1.0, flip_filter=False)"
    )
    assert Upsample2d(dtype=torch.float64).double().resample_filter.dtype == torch.float64


def test_second_order_through_downsample(backend: Backend, device: torch.device) -> None:
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, device=device, requires_grad=True)
    f = setup_filter([1, 3, 3, 1], device=device, dtype=torch.float64)

    def fn(x: torch.Tensor) -> torch.Tensor:
        return downsample2d(x, f, backend=backend).square()

    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=backend == "triton")


def test_compiles_without_graph_break(backend: Backend, device: torch.device) -> None:
    model = torch.nn.Sequential(Upsample2d(device=device), Blur(device=device), Downsample2d(device=device))
    x = torch.randn(2, 3, 4, 4, device=device)
    compiled = torch.compile(model, fullgraph=True, backend="eager" if device.type == "cpu" else "inductor")
    with use_backend(backend):
        assert_close(compiled(x), model(x))


def test_module_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"up must be an int or a pair of ints, each >= 1, got 0"):
        Upsample2d(up=0)
    with pytest.raises(ValueError, match=r"down must be an int or a pair of ints, each >= 1, got \(2, 0\)"):
        Downsample2d(down=(2, 0))
    with pytest.raises(ValueError, match=r"padding must be an int, a pair \(px, py\) or a 4-tuple"):
        Blur(padding=(1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gain must be a finite number, got nan"):
        Downsample2d(gain=float("nan"))


@pytest.mark.parametrize("module", [Upsample2d, Downsample2d, Blur])
def test_module_filter_errors_name_resample_filter(module: type[torch.nn.Module]) -> None:
    with pytest.raises(
        ValueError, match=r"resample_filter must be a number, a tensor, or a 1-D or 2-D sequence"
    ):
        module(resample_filter=[[1, 2], [1]])
    with pytest.raises(ValueError, match=r"resample_filter must have finite taps, got \[1\.0, nan, 1\.0\]"):
        module(resample_filter=[1, float("nan"), 1])
