"""Perceptual path length against closed forms: a great-circle speed in z, a linear synthesis in w."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_close
from losses.test_perceptual import hand_vgg, torchvision_state_dict

from ganblocks.metrics import (
    PerceptualPathLength,
    path_length_distances,
    percentile_filtered_mean,
    perceptual_path_length,
    slerp,
)
from ganblocks.metrics.path_length import LPIPS_VGG19_LAYERS, _VGGDistance

Z_DIM = 12


def squared_l2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).square().flatten(1).sum(1)


def as_images(w: torch.Tensor) -> torch.Tensor:
    return w.reshape(w.shape[0], 3, 2, 2)


def draws(
    seed: int, num_samples: int, batch_size: int
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(t, z0, z1) per batch, drawn in StyleGAN2-ADA's order from a generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        t = torch.rand(n, generator=g, dtype=torch.float64)
        z = torch.randn(2 * n, Z_DIM, generator=g, dtype=torch.float64)
        out.append((t, z[:n], z[n:]))
    return out


def angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The angle between rows, from atan2 (accurate for small and large angles alike)."""
    cross = (a.norm(dim=1) ** 2 * b.norm(dim=1) ** 2 - (a * b).sum(1) ** 2).clamp_min(0).sqrt()
    return torch.atan2(cross, (a * b).sum(1))


# ------------------------------------------------------------------------------------------------------
# slerp


def test_slerp_endpoints_norm_and_angular_speed() -> None:
    a = torch.randn(5, 7, dtype=torch.float64) * 3
    b = torch.randn(5, 7, dtype=torch.float64)
    a_hat, b_hat = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    theta = angle(a, b)
    assert_close(slerp(a, b, 0.0), a_hat)
    assert_close(slerp(a, b, 1.0), b_hat)
    for t in (0.25, 0.5, 1.7, -0.3):
        p = slerp(a, b, t)
        assert_close(p.norm(dim=1), torch.ones(5, dtype=torch.float64))
        # On the great circle through â and b̂, at angle tθ from â and (1 - t)θ from b̂.
        assert_close((a_hat * p).sum(1), torch.cos(t * theta))
        assert_close((b_hat * p).sum(1), torch.cos((1 - t) * theta))
        # In the plane of a and b: no component outside span(a, b).
        q, _ = torch.linalg.qr(torch.stack([a_hat, b_hat], dim=2))
        inside = (q @ (q.transpose(1, 2) @ p.unsqueeze(2))).squeeze(2)
        assert_close(inside, p)


def test_slerp_per_row_t_and_the_plane_formula() -> None:
    e1 = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64).repeat(3, 1)
    e2 = torch.tensor([[0.0, 2.0, 0.0]], dtype=torch.float64).repeat(3, 1)
    t = torch.tensor([[0.0], [1.0 / 3], [0.5]], dtype=torch.float64)
    expected = torch.cat([torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2), torch.zeros_like(t)], dim=1)
    assert_close(slerp(e1, e2, t), expected)


def test_slerp_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"a and b must have the same shape, got \(2, 3\) and \(2, 4\)"):
        slerp(torch.randn(2, 3), torch.randn(2, 4), 0.5)


# ------------------------------------------------------------------------------------------------------
# the percentile filter


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1001])
def test_percentile_filter_equals_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    values = np.round(rng.standard_cauchy(n), 1)  # heavy tails and ties
    lo = np.percentile(values, 1, method="lower")
    hi = np.percentile(values, 99, method="higher")
    expected = values[(values >= lo) & (values <= hi)].mean()
    assert percentile_filtered_mean(torch.from_numpy(values)) == pytest.approx(expected, rel=1e-12)
    lo, hi = np.percentile(values, 10, method="lower"), np.percentile(values, 60, method="higher")
    expected = values[(values >= lo) & (values <= hi)].mean()
    assert percentile_filtered_mean(torch.from_numpy(values), lower=10, upper=60) == pytest.approx(
        expected, rel=1e-12
    )


def test_percentile_filter_drops_the_outliers() -> None:
    values = torch.cat([torch.full((990,), 2.0), torch.full((5,), -1e6), torch.full((5,), 1e6)])
    assert percentile_filtered_mean(values) == 2.0
    assert percentile_filtered_mean(values, lower=0, upper=100) == pytest.approx(1.98, rel=1e-12)
    # With 100 samples the 1st percentile rounded down is the minimum: nothing is dropped (numpy's "lower").
    few = torch.cat([torch.full((98,), 2.0), torch.tensor([-1e6, 1e6])])
    assert percentile_filtered_mean(few) == pytest.approx(1.96, rel=1e-12)


@pytest.mark.parametrize(
    ("values", "kwargs", "match"),
    [
        (torch.zeros(0), {}, "non-empty 1-d"),
        (torch.zeros(2, 2), {}, "non-empty 1-d"),
        (torch.tensor([1.0, float("nan")]), {}, "1 NaN or infinite"),
        (torch.ones(3), {"lower": 50, "upper": 10}, "lower <= upper"),
        (torch.ones(3), {"upper": 101}, "upper <= 100"),
    ],
)
def test_percentile_filter_bad_input(values: torch.Tensor, kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        percentile_filtered_mean(values, **kwargs)


# ------------------------------------------------------------------------------------------------------
# closed forms


@pytest.mark.parametrize("sampling", ["end", "full"])
@pytest.mark.parametrize("batch_size", [40, 16])
def test_z_space_is_the_squared_great_circle_speed(sampling: str, batch_size: int) -> None:
    """w = z and an image that is z itself: a step of ε along the great circle moves the image by εθ."""
    d = path_length_distances(
        synthesis=as_images,
        z_dim=Z_DIM,
        distance=squared_l2,
        num_samples=40,
        batch_size=batch_size,
        space="z",
        sampling=sampling,  # type: ignore[arg-type]
        generator=torch.Generator().manual_seed(3),
        dtype=torch.float64,
    )
    theta = torch.cat([angle(z0, z1) for _, z0, z1 in draws(3, 40, batch_size)])
    # The chord 2 sin(εθ/2) differs from the arc εθ by (εθ)²/24 relative: far below this tolerance.
    torch.testing.assert_close(d, theta**2, rtol=1e-6, atol=0)


def _mapping(z: torch.Tensor) -> torch.Tensor:
    """A nonlinear mapping to (N, 2, Z_DIM) (two copies, as num_ws = 2)."""
    w = torch.tanh(z * 0.7) + 0.1 * z**2
    return torch.stack([w, -w], dim=1)


A = torch.randn(3 * 4 * 4, Z_DIM, generator=torch.Generator().manual_seed(11), dtype=torch.float64)


def _linear_synthesis(ws: torch.Tensor) -> torch.Tensor:
    return ((ws[:, 0] - 0.5 * ws[:, 1]) @ A.T).reshape(-1, 3, 4, 4)


@pytest.mark.parametrize("sampling", ["end", "full"])
def test_w_space_with_a_linear_synthesis(sampling: str) -> None:
    """Linear synthesis and lerp in w: every t gives ||A (w1 - w0)||² (the 1.5 from ws[0] - 0.5 ws[1])."""
    d = path_length_distances(
        mapping=_mapping,
        synthesis=_linear_synthesis,
        z_dim=Z_DIM,
        distance=squared_l2,
        num_samples=24,
        batch_size=24,
        space="w",
        sampling=sampling,  # type: ignore[arg-type]
        generator=torch.Generator().manual_seed(5),
        dtype=torch.float64,
    )
    ((_, z0, z1),) = draws(5, 24, 24)
    w0, w1 = _mapping(z0)[:, 0], _mapping(z1)[:, 0]
    expected = ((1.5 * (w1 - w0)) @ A.T).square().sum(1)
    torch.testing.assert_close(d, expected, rtol=1e-8, atol=0)


class _StyleG(torch.nn.Module):
    """A conditional generator in StyleGAN2-ADA's form: ``mapping(z, c)``, ``synthesis(ws)``, ``z_dim``."""

    z_dim = Z_DIM

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))

    def mapping(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return _mapping(z * (1 + c)) * self.scale

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        return _linear_synthesis(ws)


def test_generator_with_mapping_and_synthesis_and_labels() -> None:
    c = torch.rand(10, 1, dtype=torch.float64)
    G = _StyleG()
    d = path_length_distances(
        G,
        distance=squared_l2,
        num_samples=10,
        batch_size=4,
        c=c,
        generator=torch.Generator().manual_seed(2),
        dtype=torch.float64,
    )
    batches = draws(2, 10, 4)
    z0 = torch.cat([b[1] for b in batches])
    z1 = torch.cat([b[2] for b in batches])
    w0, w1 = _mapping(z0 * (1 + c))[:, 0], _mapping(z1 * (1 + c))[:, 0]
    torch.testing.assert_close(d, ((1.5 * (w1 - w0)) @ A.T).square().sum(1), rtol=1e-8, atol=0)
    # The module calls the function with its settings (float32 latents: other draws than float64's).
    ppl = PerceptualPathLength(distance=squared_l2, num_samples=10, batch_size=4)
    value = ppl(G, c=c, generator=torch.Generator().manual_seed(2))
    kwargs = {"distance": squared_l2, "num_samples": 10, "batch_size": 4, "c": c}
    assert value == perceptual_path_length(G, **kwargs, generator=torch.Generator().manual_seed(2))  # type: ignore[arg-type]
    assert value != perceptual_path_length(G, **kwargs, generator=torch.Generator().manual_seed(3))  # type: ignore[arg-type]


def test_perceptual_path_length_is_the_filtered_mean_and_deterministic() -> None:
    kwargs = {
        "synthesis": as_images,
        "z_dim": Z_DIM,
        "distance": squared_l2,
        "num_samples": 300,
        "space": "z",
    }
    samples = path_length_distances(**kwargs, generator=torch.Generator().manual_seed(9))  # type: ignore[arg-type]
    values = samples.numpy()
    lo, hi = np.percentile(values, 1, method="lower"), np.percentile(values, 99, method="higher")
    expected = values[(values >= lo) & (values <= hi)].mean()
    first = perceptual_path_length(**kwargs, generator=torch.Generator().manual_seed(9))  # type: ignore[arg-type]
    again = perceptual_path_length(**kwargs, generator=torch.Generator().manual_seed(9))  # type: ignore[arg-type]
    other = perceptual_path_length(**kwargs, generator=torch.Generator().manual_seed(10))  # type: ignore[arg-type]
    assert first == again
    assert first == pytest.approx(float(expected), rel=1e-12)
    assert other != first
    # E[θ²] for two independent directions in 12 dimensions is close to (π/2)² + 1/12 (θ ≈ π/2 ± 1/√12).
    assert first == pytest.approx((math.pi / 2) ** 2 + 1 / 12, rel=0.1)


def test_crop_downsample_and_grayscale() -> None:
    seen: list[torch.Tensor] = []
    full: list[torch.Tensor] = []

    def synthesis(w: torch.Tensor) -> torch.Tensor:
        img = torch.randn(w.shape[0], 1, 512, 512, generator=torch.Generator().manual_seed(0))
        full.append(img)
        return img

    def record(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen.append(torch.cat([x, y]))
        return squared_l2(x, y)

    path_length_distances(synthesis=synthesis, z_dim=4, distance=record, num_samples=2, crop=True)
    (img,) = full
    # Rows 192..448 and columns 128..384 of 512 (3/8..7/8, 2/8..6/8), then 2x2 box averages to 128x128.
    region = img[:, :, 192:448, 128:384]
    expected = region.reshape(4, 1, 128, 2, 128, 2).mean((3, 5)).repeat(1, 3, 1, 1)
    assert seen[0].shape == (4, 3, 128, 128)
    assert_close(seen[0], expected)


def test_no_downsampling_at_or_below_256() -> None:
    shapes: list[tuple[int, ...]] = []

    def record(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(x.shape))
        return squared_l2(x, y)

    path_length_distances(
        synthesis=lambda w: torch.zeros(w.shape[0], 3, 16, 16), z_dim=4, distance=record, num_samples=3
    )
    path_length_distances(
        synthesis=lambda w: torch.zeros(w.shape[0], 3, 16, 16),
        z_dim=4,
        distance=record,
        num_samples=3,
        crop=True,
    )
    assert shapes == [(3, 3, 16, 16), (3, 3, 8, 8)]


# ------------------------------------------------------------------------------------------------------
# the default distance


@pytest.fixture(scope="module")
def vgg_state() -> dict[str, torch.Tensor]:
    return torchvision_state_dict()


def test_default_distance_is_lpips_formula_on_vgg19(vgg_state: dict[str, torch.Tensor]) -> None:
    dist = _VGGDistance(vgg_state, input_range="[-1,1]", dtype=torch.float64)
    x, y = torch.rand(2, 2, 3, 32, 32, dtype=torch.float64) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    fx = hand_vgg(((x + 1) / 2 - mean) / std, vgg_state, "relu5_4")
    fy = hand_vgg(((y + 1) / 2 - mean) / std, vgg_state, "relu5_4")
    expected = torch.zeros(2, dtype=torch.float64)
    for name in LPIPS_VGG19_LAYERS:
        nx = fx[name] / (fx[name].norm(dim=1, keepdim=True) + 1e-10)
        ny = fy[name] / (fy[name].norm(dim=1, keepdim=True) + 1e-10)
        expected += (nx - ny).square().sum(1).mean((1, 2))
    assert_close(dist(x, y), expected)
    assert torch.equal(dist(x, x), torch.zeros(2, dtype=torch.float64))
    unit = _VGGDistance(vgg_state, input_range="[0,1]", dtype=torch.float64)
    assert_close(unit((x + 1) / 2, (y + 1) / 2), expected)


def test_module_with_the_default_distance(vgg_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(vgg_state, path)
    ppl = PerceptualPathLength(vgg_weights=path, num_samples=4, batch_size=4, space="z")
    assert isinstance(ppl.distance, _VGGDistance)
    assert "space='z'" in repr(ppl) and "features" in repr(ppl)
    lift = torch.randn(Z_DIM, 3 * 16 * 16, generator=torch.Generator().manual_seed(0))
    value = ppl(synthesis=lambda w: torch.tanh(w @ lift).view(-1, 3, 16, 16), z_dim=Z_DIM)
    assert math.isfinite(value) and value > 0
    ppl.train()
    assert not ppl.distance.features.training
    with pytest.warns(UserWarning, match="vgg_weights=None"):
        PerceptualPathLength()


# ------------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"space": "x"}, ValueError, r"space must be one of \('z', 'w'\), got 'x'"),
        ({"sampling": "mid"}, ValueError, "sampling must be one of"),
        ({"epsilon": 0.0}, ValueError, "epsilon must be > 0"),
        ({"num_samples": 0}, ValueError, "num_samples must be an int >= 1"),
        ({"distance": lambda x, y: squared_l2(x, y)[:1]}, ValueError, r"shape \(3,\), got \(1,\)"),
        ({"distance": 3}, TypeError, "distance must be a callable"),
        ({"z_dim": None}, ValueError, "z_dim must be given"),
        ({"c": torch.zeros(2, 1)}, ValueError, r"c must have shape \(num_samples, c_dim\) = \(3, c_dim\)"),
        (
            {"synthesis": lambda w: w},
            ValueError,
            r"synthesis must return images \(2N, C, H, W\), got \(6, 12\)",
        ),
        ({"crop": True, "synthesis": lambda w: torch.zeros(w.shape[0], 3, 8, 16)}, ValueError, "square"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    base: dict[str, object] = {
        "synthesis": as_images,
        "z_dim": Z_DIM,
        "distance": squared_l2,
        "num_samples": 3,
    }
    with pytest.raises(error, match=match):
        path_length_distances(**{**base, **kwargs})  # type: ignore[arg-type]


def test_generator_arguments() -> None:
    with pytest.raises(TypeError, match=r"G must have callable \.mapping and \.synthesis"):
        path_length_distances(object(), distance=squared_l2)
    with pytest.raises(ValueError, match="not both"):
        path_length_distances(_StyleG(), synthesis=as_images, distance=squared_l2)
    with pytest.raises(ValueError, match="synthesis must be given"):
        path_length_distances(z_dim=3, distance=squared_l2)
