"""AugmentPipe: presets, StyleGAN2-ADA's draw order, each transformation against its own formula, identity at
p = 0, per-sample independence, every order of gradient (R1), dtypes, layouts, compile, errors.

The equality with StyleGAN2-ADA's own AugmentPipe for the same draws was measured out of the repository
(float64, CPU: every transformation and preset agree to 1e-13); here each transformation is re-derived.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, cast

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close
from torch import nn

import ganblocks
from ganblocks.functional import downsample2d, upsample2d
from ganblocks.ops import use_backend
from ganblocks.penalties import r1_penalty
from ganblocks.training import AdaptiveAugmentProbability, AugmentParams, AugmentPipe
from ganblocks.training import augment_pipe as module

BLIT = ["xflip", "rotate90", "xint"]
GEOM = ["scale", "rotate", "aniso", "xfrac"]
COLOR = ["brightness", "contrast", "lumaflip", "hue", "saturation"]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def identity_params(x: torch.Tensor) -> AugmentParams:
    """Parameters that change nothing, for a batch like ``x``."""
    n, dt = x.shape[0], torch.float64 if x.dtype == torch.float64 else torch.float32
    zeros, ones, zeros2 = torch.zeros(n, dtype=dt), torch.ones(n, dtype=dt), torch.zeros(n, 2, dtype=dt)
    return AugmentParams(
        xflip=zeros,
        rotate90=zeros,
        xint=zeros2,
        scale=ones,
        rotate_pre=zeros,
        aniso=ones,
        rotate_post=zeros,
        xfrac=zeros2,
        brightness=zeros,
        contrast=ones,
        lumaflip=zeros,
        hue=zeros,
        saturation=ones,
        imgfilter=torch.ones(n, 4, dtype=dt),
        noise=None,
        cutout_size=zeros,
        cutout_center=zeros2,
    )


def pinned(pipe: AugmentPipe, x: torch.Tensor, **values: Any) -> torch.Tensor:
    """``pipe(x)`` with every parameter the identity except ``values`` (one value per sample, broadcast)."""
    params = identity_params(x)
    fields = {}
    for key, v in values.items():
        ref = getattr(params, key)
        fields[key] = torch.as_tensor(v, dtype=ref.dtype).expand_as(ref).clone() if key != "noise" else v
    return pipe(x, params=dataclasses.replace(params, **fields))


def test_presets_are_stylegan2_adas_augpipe_specs() -> None:
    # train.py's augpipe_specs, written out.
    expected = {
        "blit": BLIT,
        "geom": GEOM,
        "color": COLOR,
        "filter": ["imgfilter"],
        "noise": ["noise"],
        "cutout": ["cutout"],
        "bg": BLIT + GEOM,
        "bgc": BLIT + GEOM + COLOR,
        "bgcf": [*BLIT, *GEOM, *COLOR, "imgfilter"],
        "bgcfn": [*BLIT, *GEOM, *COLOR, "imgfilter", "noise"],
        "bgcfnc": [*BLIT, *GEOM, *COLOR, "imgfilter", "noise", "cutout"],
    }
    for name, enabled in expected.items():
        pipe = AugmentPipe.preset(name)  # type: ignore[arg-type]
        assert pipe.enabled == tuple(enabled), name
        assert all(getattr(pipe, t) == 1.0 for t in enabled)
    assert AugmentPipe().enabled == ()
    assert AugmentPipe.preset("bgc", hue=0.5, scale_std=0.3).hue == 0.5


def test_defaults_are_stylegan2_adas() -> None:
    pipe = AugmentPipe()
    strengths = dict(xint_max=0.125, scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125,
                     brightness_std=0.2, contrast_std=0.5, hue_max=1, saturation_std=1, imgfilter_std=1,
                     noise_std=0.1, cutout_size=0.5)  # fmt: skip
    assert {k: getattr(pipe, k) for k in strengths} == strengths
    assert pipe.imgfilter_bands == [1, 1, 1, 1]
    assert float(pipe.p) == 1.0
    assert set(pipe.state_dict()) == {"p", "Hz_geom", "Hz_fbank"}  # StyleGAN2-ADA's buffer names


def test_takes_stylegan2_adas_kwargs_and_state_dict() -> None:
    kwargs = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1,
                  lumaflip=1, hue=1, saturation=1, imgfilter_bands=[1, 1, 0, 0])  # fmt: skip
    pipe = AugmentPipe(**kwargs)  # type: ignore[arg-type]
    state = {k: v.clone() for k, v in pipe.state_dict().items()}
    state["p"] = torch.tensor(0.25)
    pipe.load_state_dict(state)
    assert float(pipe.p) == 0.25 and pipe.imgfilter_bands == [1, 1, 0, 0]


def test_sym6_filter_is_normalised_and_orthogonal() -> None:
    f = AugmentPipe().Hz_geom.double()
    assert f.shape == (12,) and abs(float(f.sum()) - 1) < 1e-7
    # An orthogonal wavelet's low-pass h = f * sqrt(2) is orthonormal to its even shifts.
    h = f * math.sqrt(2)
    for shift in range(1, 6):
        assert abs(float((h[2 * shift :] * h[: -2 * shift]).sum())) < 1e-6
    assert abs(float((h * h).sum()) - 1) < 1e-6


def test_filter_bank_bands_sum_to_an_impulse() -> None:
    bank = module.filter_bank().double()
    assert bank.shape == (4, 43)
    impulse = torch.zeros(43, dtype=torch.float64)
    impulse[21] = 1
    torch.testing.assert_close(bank.sum(0), impulse, atol=1e-7, rtol=0)
    # Band 0 is the low-pass (gain 1 at DC); the three others are band-passes (no DC).
    torch.testing.assert_close(
        bank.sum(1), torch.tensor([1.0, 0, 0, 0], dtype=torch.float64), atol=1e-7, rtol=0
    )
    # Every band is symmetric (zero phase).
    torch.testing.assert_close(bank, bank.flip(1))


def test_draws_are_stylegan2_adas_in_its_order() -> None:
    """The 'bgc' draws replayed here by hand in StyleGAN2-ADA's order (value first, then its gate)."""
    n, h, w, p = 64, 8, 12, 0.7
    x = torch.zeros(n, 3, h, w)
    params = AugmentPipe.preset("bgc").sample_params(x, p=p, generator=gen(5))
    g = gen(5)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=g)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=g)

    def gate(v: torch.Tensor, q: float, identity: float) -> torch.Tensor:
        return torch.where(rand(n, *([1] * (v.ndim - 1))) < q, v, torch.full_like(v, identity))

    xflip = gate(torch.floor(rand(n) * 2), p, 0)
    rot90 = gate(torch.floor(rand(n) * 4), p, 0)
    t = gate((rand(n, 2) * 2 - 1) * 0.125, p, 0)
    xint = torch.stack([torch.round(t[:, 0] * w), torch.round(t[:, 1] * h)], 1)
    scale = gate(torch.exp2(randn(n) * 0.2), p, 1)
    p_rot = 1 - math.sqrt(1 - p)
    rot_pre = gate((rand(n) * 2 - 1) * math.pi, p_rot, 0)
    aniso = gate(torch.exp2(randn(n) * 0.2), p, 1)
    rot_post = gate((rand(n) * 2 - 1) * math.pi, p_rot, 0)
    xfrac = gate(randn(n, 2) * 0.125, p, 0) * torch.tensor([w, h])
    b = gate(randn(n) * 0.2, p, 0)
    c = gate(torch.exp2(randn(n) * 0.5), p, 1)
    lumaflip = gate(torch.floor(rand(n) * 2), p, 0)
    hue = gate((rand(n) * 2 - 1) * math.pi, p, 0)
    sat = gate(torch.exp2(randn(n)), p, 1)
    expected = dict(xflip=xflip, rotate90=rot90, xint=xint, scale=scale, rotate_pre=rot_pre, aniso=aniso,
                    rotate_post=rot_post, xfrac=xfrac, brightness=b, contrast=c, lumaflip=lumaflip, hue=hue,
                    saturation=sat)  # fmt: skip
    for key, value in expected.items():
        torch.testing.assert_close(getattr(params, key), value, rtol=1e-6, atol=1e-6, msg=key)
    # 64 samples at p = 0.7: some transformed and some not, for each transformation.
    assert 0 < int((params.xflip == 1).sum()) < n and 0 < int((params.brightness == 0).sum()) < n


def test_draws_do_not_depend_on_the_dtype() -> None:
    pipe = AugmentPipe.preset("bgcfnc")
    x = torch.rand(4, 3, 24, 24)
    a = pipe(x.double(), p=0.8, generator=gen(3))
    b = pipe(x, p=0.8, generator=gen(3))
    torch.testing.assert_close(b.double(), a, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_p_zero_is_the_identity_exactly(dtype: torch.dtype) -> None:
    pipe = AugmentPipe.preset("bgcfnc")
    x = (torch.rand(3, 3, 24, 24) * 2 - 1).to(dtype).requires_grad_()
    y = pipe(x, p=0.0, generator=gen())
    assert y.dtype == dtype and y.equal(x)
    (g,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert g.equal(torch.ones_like(x))
    ada = AdaptiveAugmentProbability()  # ada.p starts at 0 (a float64 tensor)
    assert pipe(x, p=ada.p).equal(x)


def test_untouched_samples_pass_exactly_and_others_change() -> None:
    pipe = AugmentPipe.preset("bgc")
    x = torch.rand(64, 3, 16, 16, dtype=torch.float64)
    params = pipe.sample_params(x, p=0.15, generator=gen(2))
    y = pipe(x, params=params)
    geom = module.geometric_matrix(params) == torch.eye(3, dtype=torch.float64)
    colour = (params.brightness == 0) & (params.contrast == 1) & (params.lumaflip == 0) & (params.hue == 0)
    untouched = geom.flatten(1).all(1) & colour & (params.saturation == 1)
    same = (y == x).flatten(1).all(1)
    assert 0 < int(untouched.sum()) < 64
    assert same.equal(untouched)


def reflect(i: torch.Tensor, size: int) -> torch.Tensor:
    """Indices mirrored at the borders without repeating the edge (torch's 'reflect' padding), one bounce."""
    i = torch.where(i < 0, -i, i)
    return torch.where(i > size - 1, 2 * (size - 1) - i, i)


# The float32 sym6 taps make the 2x up/down round trip an identity to ~2e-7 (measured 1.8e-7): an integer
# translation is a pixel move to that, and an index or sign error is off by O(1).
BLIT_TOL: dict[str, Any] = dict(rtol=0.0, atol=1e-6)


@pytest.mark.parametrize(("h", "w"), [(10, 10), (9, 14)])
def test_xint_moves_pixels_with_reflection(h: int, w: int) -> None:
    x = torch.rand(1, 2, h, w, dtype=torch.float64)
    pipe = AugmentPipe(xint=1)
    for tx, ty in [(2, 0), (0, -3), (-1, 2)]:
        y = pinned(pipe, x, xint=[float(tx), float(ty)])
        rows = reflect(torch.arange(h) - ty, h)
        cols = reflect(torch.arange(w) - tx, w)
        torch.testing.assert_close(y, x[:, :, rows][:, :, :, cols], **BLIT_TOL)


# sym6 is not symmetric: the 2x up/down pair reproduces a linear function with a phase, so StyleGAN2-ADA's
# transformations pivot on a point PIVOT px off the centre along x and y (measured here; equal to its
# AugmentPipe's to 1e-13 out of the repository). A flip or a quarter turn therefore also shifts the image
# by ~0.1 px, as in StyleGAN2-ADA; an integer or fractional translation does not.
PIVOT = 0.04913125198149435


@pytest.mark.parametrize(
    "values",
    [
        dict(xflip=1.0),
        dict(rotate90=1.0),
        dict(rotate90=2.0),
        dict(rotate90=3.0, xflip=1.0),
        dict(scale=1.3),
        dict(scale=0.8, rotate_pre=0.4),
        dict(aniso=1.2, rotate_post=-0.7),
        dict(xfrac=[0.6, -1.3], xint=[2.0, -1.0]),
        dict(
            xflip=1.0, rotate90=1.0, scale=1.1, rotate_pre=0.2, aniso=0.9, rotate_post=0.3, xfrac=[0.4, 0.2]
        ),
    ],
)
def test_geometric_transform_of_a_linear_image(values: dict[str, Any]) -> None:
    """For f(u) = a·u + c in centred pixel coordinates, out(u) = f(G⁻¹(u + d) - d), G⁻¹ composed here by hand.

    Bilinear sampling is exact on a linear function and sym6 reproduces it (6 vanishing moments), up to the
    pivot offset d; away from the borders (reflect padding is not linear) only float32 taps' error remains.
    """
    h = w = 40
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    u = torch.stack([xs - (w - 1) / 2, ys - (h - 1) / 2])  # (2, H, W) centred (x, y)
    a = torch.tensor([0.05, -0.03], dtype=torch.float64)
    x = ((a.view(2, 1, 1) * u).sum(0) + 0.5).view(1, 1, h, w)
    y = pinned(AugmentPipe.preset("bg"), x, **values)

    def rot(t: float) -> torch.Tensor:
        return torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]], dtype=torch.float64)

    v: dict[str, Any] = {"xflip": 0.0, "rotate90": 0.0, "xint": [0.0, 0.0], "scale": 1.0, "rotate_pre": 0.0, "aniso": 1.0,
         "rotate_post": 0.0, "xfrac": [0.0, 0.0]} | values  # fmt: skip
    lin = torch.diag(torch.tensor([1 - 2 * v["xflip"], 1.0], dtype=torch.float64))
    lin = lin @ rot(math.pi / 2 * v["rotate90"]) @ (torch.eye(2, dtype=torch.float64) / v["scale"])
    lin = (
        lin
        @ rot(v["rotate_pre"])
        @ torch.diag(torch.tensor([1 / v["aniso"], v["aniso"]], dtype=torch.float64))
    )
    lin = lin @ rot(v["rotate_post"])
    shift = torch.tensor(v["xint"], dtype=torch.float64) + torch.tensor(v["xfrac"], dtype=torch.float64)
    src = torch.einsum("ij,jhw->ihw", lin, u + PIVOT - shift.view(2, 1, 1)) - PIVOT
    expected = (a.view(2, 1, 1) * src).sum(0) + 0.5
    inner = (slice(14, -14), slice(14, -14))  # samples at least ~5 px (the filter's reach) inside
    # Residuals measured up to 1e-5 (float32 taps); a pivot of 0 instead of d is off by up to 5e-3.
    torch.testing.assert_close(y[0, 0][inner], expected[inner], rtol=0, atol=5e-5)


def luma_formula(v: torch.Tensor, **p: float) -> torch.Tensor:
    """StyleGAN2-ADA's colour chain on RGB vectors ``v`` (..., 3), by vector algebra, in its order."""
    ax = torch.full((3,), 1 / math.sqrt(3), dtype=v.dtype)
    v = v + p.get("brightness", 0.0)
    v = v * p.get("contrast", 1.0)
    if p.get("lumaflip", 0.0):
        v = v - 2 * (v @ ax).unsqueeze(-1) * ax
    t = p.get("hue", 0.0)  # Rodrigues: rotation by t about the luma axis
    along = (v @ ax).unsqueeze(-1) * ax
    v = v * math.cos(t) + torch.linalg.cross(ax.expand_as(v), v) * math.sin(t) + along * (1 - math.cos(t))
    along = (v @ ax).unsqueeze(-1) * ax
    return along + (v - along) * p.get("saturation", 1.0)


@pytest.mark.parametrize(
    "values",
    [dict(brightness=0.3), dict(contrast=1.7), dict(lumaflip=1.0), dict(hue=1.1), dict(saturation=0.4),
     dict(brightness=-0.2, contrast=0.6, lumaflip=1.0, hue=-2.0, saturation=1.8)],
)  # fmt: skip
def test_colour_transformations_match_their_formulas(values: dict[str, float]) -> None:
    x = torch.rand(1, 3, 5, 6, dtype=torch.float64) * 2 - 1
    y = pinned(AugmentPipe.preset("color"), x, **values)
    expected = luma_formula(x[0].permute(1, 2, 0), **values).permute(2, 0, 1)
    torch.testing.assert_close(y[0], expected, rtol=1e-12, atol=1e-12)


def test_luminance_images_take_the_mean_of_the_rgb_rows() -> None:
    x = torch.rand(1, 1, 5, 6, dtype=torch.float64)
    values = dict(brightness=0.25, contrast=1.4, lumaflip=1.0)
    y = pinned(AugmentPipe.preset("color"), x, **values)
    rgb = luma_formula(x[0, 0].unsqueeze(-1).expand(5, 6, 3), **values)
    torch.testing.assert_close(y[0, 0], rgb.mean(-1), rtol=1e-12, atol=1e-12)


def test_imgfilter_gains_keep_the_expected_power_at_dc() -> None:
    """A constant image passes band 0 only: out = const · g_0², g the product of the normalised gains."""
    gains = [2.0, 0.5, 1.0, 3.0]
    power = torch.tensor([10.0, 1, 1, 1], dtype=torch.float64) / 13
    total = torch.ones(4, dtype=torch.float64)
    for i, gain in enumerate(gains):
        t = torch.ones(4, dtype=torch.float64)
        t[i] = gain
        total = total * t / (power * t * t).sum().sqrt()
    x = torch.full((1, 3, 24, 24), 0.7, dtype=torch.float64)
    y = pinned(AugmentPipe(imgfilter=1), x, imgfilter=gains)
    # The 1-D filter runs along x and then y: the DC gain is g_0 squared (float32 filter-bank taps).
    torch.testing.assert_close(y, x * total[0] ** 2, rtol=1e-6, atol=1e-6)


def test_noise_and_cutout() -> None:
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64) + 1
    noise = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    assert pinned(AugmentPipe(noise=1), x, noise=noise).equal(x + noise)
    y = pinned(AugmentPipe(cutout=1), x, cutout_size=0.5, cutout_center=[0.5, 0.25])
    # |(i + 0.5)/8 - centre| < 0.25: columns 2..5, rows 0..3 (centre 0.25 → (i + 0.5)/8 in (0, 0.5)).
    cut = torch.zeros(8, 8, dtype=torch.bool)
    cut[0:4, 2:6] = True
    assert (y == 0).all(1).equal(cut.expand(2, 8, 8))
    assert y[:, :, ~cut].equal(x[:, :, ~cut])


def test_samples_are_independent() -> None:
    pipe = AugmentPipe.preset("bgcfnc")
    x = torch.rand(5, 3, 24, 24, dtype=torch.float64)
    params = pipe.sample_params(x, p=0.9, generator=gen(4))
    y = pipe(x, params=params)
    for i in range(5):
        one = AugmentParams(**{  # type: ignore[arg-type]
            f.name: None if getattr(params, f.name) is None else getattr(params, f.name)[i : i + 1]
            for f in dataclasses.fields(params)
        })  # fmt: skip
        # The batch shares one reflect-padding margin (the largest any sample needs, as StyleGAN2-ADA), and
        # the wavelet's smallest taps reach its edge: corner pixels move by up to ~1e-5 (measured 8e-6).
        torch.testing.assert_close(pipe(x[i : i + 1], params=one), y[i : i + 1], rtol=0, atol=3e-5)


@pytest.mark.parametrize("up", [True, False])
def test_cpu_resampling_by_matrices_equals_upfirdn2d(up: bool) -> None:
    """The CPU path's two matrix products are upfirdn2d's 2x sym6 resampling (non-square, float64)."""
    pipe = AugmentPipe.preset("bg").double()
    x = torch.randn(2, 3, 30, 44, dtype=torch.float64)
    if up:
        expected = upsample2d(x, pipe.Hz_geom, up=2)
    else:
        expected = downsample2d(x, pipe.Hz_geom, down=2, padding=-6, flip_filter=True)
    y = pipe._resample(x, up=up, pad=3)
    assert y.shape == expected.shape == ((2, 3, 60, 88) if up else (2, 3, 9, 16))
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-13)


def test_static_padding_under_compile_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = AugmentPipe.preset("bgc")
    x = torch.rand(4, 3, 16, 20, dtype=torch.float64)
    params = pipe.sample_params(x, p=1.0, generator=gen(6))
    eager = pipe(x, params=params)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    # The same pixels are read; the wavelet's smallest taps reach the padding's edge (measured 3e-6).
    torch.testing.assert_close(pipe(x, params=params), eager, rtol=0, atol=2e-5)


def test_grid_sample_is_differentiable_to_the_second_order() -> None:
    """torch's grid_sample has no double backward before 2.13; the pipe's has, on every torch."""
    x = torch.randn(2, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    theta = torch.tensor([[[0.9, 0.3, 0.1], [-0.2, 1.1, 0.05]], [[1.0, 0.0, 0.13], [0.0, -1.0, 0.0]]])
    grid = F.affine_grid(theta.double(), [2, 2, 7, 8], align_corners=False)
    torch.testing.assert_close(module._grid_sample(x, grid), F.grid_sample(x, grid, align_corners=False))
    assert torch.autograd.gradcheck(lambda t: module._grid_sample(t, grid), (x,))
    assert torch.autograd.gradgradcheck(lambda t: module._grid_sample(t, grid), (x,))


def test_a_grid_that_needs_a_gradient_gets_one() -> None:
    """Learned augmentation parameters: the grid's gradient equals torch's own grid_sample's."""
    x = torch.randn(2, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    theta = torch.tensor([[[0.9, 0.3, 0.1], [-0.2, 1.1, 0.05]]], dtype=torch.float64).repeat(2, 1, 1)
    grids = [F.affine_grid(theta, [2, 2, 7, 8], align_corners=False).requires_grad_() for _ in range(2)]
    (module._grid_sample(x, grids[0]) ** 2).sum().backward()
    (F.grid_sample(x, grids[1], align_corners=False) ** 2).sum().backward()
    assert grids[0].grad is not None and grids[0].grad.abs().sum() > 0
    torch.testing.assert_close(grids[0].grad, grids[1].grad)


def test_no_resampling_when_no_sample_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    """p = 0 (ADA's start) skips the geometric resampling altogether, not only its result."""

    def fail(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        raise AssertionError("resampled although no sample moves")

    monkeypatch.setattr(module, "_grid_sample", fail)
    x = torch.rand(3, 3, 16, 16, requires_grad=True)
    assert AugmentPipe.preset("bgc")(x, p=0.0).equal(x)
    with pytest.raises(AssertionError, match="resampled"):
        AugmentPipe.preset("bgc")(x, p=1.0, generator=gen())


@pytest.mark.parametrize("preset", ["bgc", "bgcfnc"])
def test_pipe_gradgradcheck(preset: str) -> None:
    pipe = AugmentPipe.preset(preset)  # type: ignore[arg-type]
    x = torch.rand(2, 3, 22, 22, dtype=torch.float64, requires_grad=True)
    params = pipe.sample_params(x, p=0.9, generator=gen(1))
    assert torch.autograd.gradcheck(lambda t: pipe(t, params=params), (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(lambda t: pipe(t, params=params), (x,), fast_mode=True)


def test_r1_on_augmented_reals_reaches_the_discriminator() -> None:
    """R1 through the pipe: D's weight gradient equals the one from the penalty written out with autograd."""
    torch.manual_seed(0)
    d = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Softplus(), nn.Flatten(), nn.LazyLinear(1)).double()
    pipe = AugmentPipe.preset("bgc")
    real = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    d(real)
    params = pipe.sample_params(real, p=1.0, generator=gen(8))
    penalty = r1_penalty(lambda x: d(pipe(x, params=params)), real, gamma=2.0)
    weight = cast(nn.Conv2d, d[0]).weight
    (ours,) = torch.autograd.grad(penalty, weight)
    x = real.clone().requires_grad_()
    (gx,) = torch.autograd.grad(d(pipe(x, params=params)).sum(), x, create_graph=True)
    (expected,) = torch.autograd.grad(gx.square().flatten(1).sum(1).mean(), weight)
    assert ours.abs().sum() > 0
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_is_augmented_in_float32(dtype: torch.dtype) -> None:
    pipe = AugmentPipe.preset("bgcfnc")
    x = torch.rand(2, 3, 24, 24) * 2 - 1
    y = pipe(x.to(dtype), p=1.0, generator=gen(3))
    assert y.dtype == dtype
    expected = pipe(x.to(dtype).float(), p=1.0, generator=gen(3))
    torch.testing.assert_close(y, expected.to(dtype), rtol=0, atol=0)


def test_autocast_computes_in_float32() -> None:
    pipe = AugmentPipe.preset("bgcf")
    x = torch.rand(2, 3, 24, 24)
    expected = pipe(x, p=1.0, generator=gen(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = pipe(x, p=1.0, generator=gen(3))
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, expected)


def test_channels_last_is_kept() -> None:
    pipe = AugmentPipe.preset("bgcf")
    x = torch.rand(2, 3, 24, 24)
    y = pipe(x.contiguous(memory_format=torch.channels_last), p=1.0, generator=gen(3))
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, pipe(x, p=1.0, generator=gen(3)))


def test_p_tensor_equals_p_float_and_buffer() -> None:
    pipe = AugmentPipe.preset("bgc")
    x = torch.rand(4, 3, 16, 16)
    a = pipe(x, p=0.5, generator=gen(1))
    torch.testing.assert_close(pipe(x, p=torch.tensor(0.5, dtype=torch.float64), generator=gen(1)), a)
    pipe.p.fill_(0.5)
    torch.testing.assert_close(pipe(x, generator=gen(1)), a)
    torch.manual_seed(3)
    b = pipe(x)
    torch.manual_seed(3)
    assert pipe(x).equal(b)  # the global generator when none is given


def test_empty_batch() -> None:
    x = torch.rand(0, 3, 24, 24)
    assert AugmentPipe.preset("bgcfnc")(x).shape == (0, 3, 24, 24)


def test_repr() -> None:
    assert repr(AugmentPipe.preset("blit", p=0.25)) == "AugmentPipe(xflip=1, rotate90=1, xint=1, p=0.25)"
    assert repr(AugmentPipe()) == "AugmentPipe(identity, p=1)"


def test_exported() -> None:
    assert ganblocks.AugmentPipe is AugmentPipe


@pytest.mark.slow
def test_compiles_without_graph_breaks() -> None:
    pipe = AugmentPipe.preset("bgc")
    x = torch.rand(2, 3, 16, 16)
    params = pipe.sample_params(x, p=0.9, generator=gen(0))
    compiled = torch.compile(lambda t: pipe(t, params=params), fullgraph=True)
    torch.testing.assert_close(compiled(x), pipe(x, params=params), rtol=1e-5, atol=1e-5)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="name must be one of"):
        AugmentPipe.preset("bgx")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="xflp"):
        AugmentPipe(xflp=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="rotate must be >= 0"):
        AugmentPipe(rotate=-1)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        AugmentPipe(p=1.5)
    with pytest.raises(ValueError, match="imgfilter_bands must be a sequence of 4"):
        AugmentPipe(imgfilter_bands=[1, 1])
    pipe = AugmentPipe.preset("bgc")
    x = torch.rand(2, 3, 16, 16)
    for p in (-0.1, 1.2, torch.tensor(1.5)):
        with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
            pipe(x, p=p)
    with pytest.raises(ValueError, match="one-element floating tensor"):
        pipe(x, p=torch.ones(2))
    with pytest.raises(
        ValueError, match=r"1 \(L\) or 3 \(RGB\) channels .*brightness.*got shape \(2, 2, 16, 16\)"
    ):
        pipe(torch.rand(2, 2, 16, 16))
    assert AugmentPipe.preset("bg")(torch.rand(2, 2, 16, 16)).shape == (2, 2, 16, 16)  # geometry: any C
    with pytest.raises(ValueError, match="images must have 4 dimensions"):
        pipe(torch.rand(3, 16, 16))
    with pytest.raises(TypeError, match="images must be a floating-point tensor"):
        pipe(torch.ones(2, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match="at least 22 pixels high and wide for imgfilter"):
        AugmentPipe(imgfilter=1)(torch.rand(1, 3, 16, 16))
    params = pipe.sample_params(x)
    with pytest.raises(ValueError, match="params must be drawn for a batch of 3"):
        pipe(torch.rand(3, 3, 16, 16), params=params)


def params_to(params: AugmentParams, device: torch.device) -> AugmentParams:
    return AugmentParams(**{  # type: ignore[arg-type]
        f.name: None if (v := getattr(params, f.name)) is None else v.to(device) for f in dataclasses.fields(params)
    })  # fmt: skip


def test_backends_agree(backend: str, device: torch.device) -> None:
    """upfirdn2d's Triton path (on CUDA, or interpreted on CPU) gives the torch path's result."""
    x = torch.rand(2, 3, 16, 16)
    params = AugmentPipe.preset("bg").sample_params(x, p=1.0, generator=gen(2))
    expected = AugmentPipe.preset("bg")(x, params=params)
    with use_backend(backend):  # type: ignore[arg-type]
        y = AugmentPipe.preset("bg").to(device)(x.to(device), params=params_to(params, device))
    assert_close(y, expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_and_differentiates_twice() -> None:
    pipe, x = AugmentPipe.preset("bgcfnc"), torch.rand(3, 3, 24, 24, dtype=torch.float64)
    params = pipe.sample_params(x, p=0.9, generator=gen(5))
    cuda = torch.device("cuda")
    y = pipe.to(cuda)(x.to(cuda), params=params_to(params, cuda))
    torch.testing.assert_close(y.cpu(), pipe.cpu()(x, params=params), rtol=1e-10, atol=1e-10)
    xc = x[:1, :, :22, :22].to(cuda).requires_grad_()
    one = params_to(pipe.cpu().sample_params(xc.cpu(), p=0.9, generator=gen(6)), cuda)
    pipe.to(cuda)
    assert torch.autograd.gradgradcheck(lambda t: pipe(t, params=one), (xc,), fast_mode=True)
    half = x.to(cuda, torch.float16)
    with torch.autocast("cuda", dtype=torch.float16):
        h = pipe(half, params=params_to(params, cuda))
    assert h.dtype == torch.float16  # computed in float32, rounded once
    expected = pipe(half.float(), params=params_to(params, cuda))
    torch.testing.assert_close(h.float(), expected, rtol=2e-3, atol=2e-3)
