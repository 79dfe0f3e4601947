"""modulated_conv2d, ModulatedConv2d, ToRGB: against per-sample formulas, both paths, both backends."""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import formulas
import pytest
import torch
import torch.nn.functional as F
from helpers import TRITON_MARKS, assert_close

from ganblocks import ModulatedConv2d, ToRGB
from ganblocks.functional import modulated_conv2d, setup_filter
from ganblocks.ops import Backend, use_backend

TAPS = [1.0, 2.0, 3.0, 1.0]  # asymmetric, so a flipped filter would show
formula = functools.partial(formulas.modulated_conv2d, taps=TAPS)


# (kernel size, up, down, input size)
CONFIGS = [(3, 1, 1, 4), (3, 2, 1, 3), (3, 1, 2, 6), (1, 2, 1, 3), (1, 1, 2, 4), (1, 1, 1, 3)]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize(("k", "up", "down", "size"), CONFIGS)
def test_matches_formula(k: int, up: int, down: int, size: int, demodulate: bool, fused: bool) -> None:
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    weight = torch.randn(4, 3, k, k, dtype=torch.float64)
    styles = torch.randn(2, 3, dtype=torch.float64)
    y = modulated_conv2d(
        x, weight, styles, demodulate=demodulate, up=up, down=down, padding=k // 2,
        resample_filter=setup_filter(TAPS, dtype=torch.float64), flip_weight=up == 1, fused_modconv=fused,
    )  # fmt: skip
    expected = formula(x, weight, styles, demodulate=demodulate, up=up, down=down, padding=k // 2)
    assert y.shape == (2, 4, size * up // down, size * up // down)
    assert_close(y, expected)


def test_known_values() -> None:
    # Demodulation divides by the norm of the modulated weight: (3 + 4) / 5; without it: 2 * 3 + 0.5 * 4.
    x, weight = torch.ones(1, 2, 1, 1), torch.tensor([[[[3.0]], [[4.0]]]])
    assert_close(modulated_conv2d(x, weight, torch.ones(1, 2)), torch.full((1, 1, 1, 1), 1.4))
    y = modulated_conv2d(x, weight, torch.tensor([[2.0, 0.5]]), demodulate=False, fused_modconv=False)
    assert_close(y, torch.full((1, 1, 1, 1), 8.0))


@pytest.mark.parametrize(("k", "up", "down"), [(3, 2, 1), (3, 1, 2), (3, 1, 1)])
def test_fused_and_per_sample_paths_agree(
    backend: Backend, device: torch.device, k: int, up: int, down: int
) -> None:
    x = torch.randn(3, 4, 6, 6, device=device)
    weight, styles = torch.randn(5, 4, k, k, device=device), torch.randn(3, 4, device=device)
    f = setup_filter([1, 3, 3, 1], device=device)
    kw: dict[str, Any] = {"up": up, "down": down, "padding": k // 2, "resample_filter": f, "backend": backend}
    fused = modulated_conv2d(x, weight, styles, fused_modconv=True, **kw)
    per_sample = modulated_conv2d(x, weight, styles, fused_modconv=False, **kw)
    assert_close(fused, per_sample, scale=10.0)  # two float32 orders of summation
    expected = formula(x.cpu(), weight.cpu(), styles.cpu(), demodulate=True, up=up, down=down, padding=k // 2)
    if up == 1 and down == 1:  # formula() uses TAPS for resampling; without resampling it applies as is
        assert_close(fused.cpu(), expected.float(), torch.float32, scale=10.0)


@pytest.mark.parametrize(
    ("backend", "fused"),
    [
        ("torch", True),
        ("torch", False),
        pytest.param("triton", True, marks=TRITON_MARKS),
    ],  # interpreter: slow
    indirect=["backend"],
)
def test_gradcheck_and_gradgradcheck(backend: Backend, device: torch.device, fused: bool) -> None:
    """Second order through the up path (transposed conv + upfirdn2d), as the path length penalty needs."""
    n = 1 if backend == "triton" else 2  # the interpreter is slow; groups > 1 are checked on torch
    x = torch.randn(n, 2, 2, 2, dtype=torch.float64, device=device, requires_grad=True)
    weight = torch.randn(2, 2, 3, 3, dtype=torch.float64, device=device, requires_grad=True)
    styles = torch.randn(n, 2, dtype=torch.float64, device=device, requires_grad=True)
    f = setup_filter([1, 3, 3, 1], device=device, dtype=torch.float64)

    def fn(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        return modulated_conv2d(
            x, weight, styles, up=2, padding=1, resample_filter=f, flip_weight=False, fused_modconv=fused,
            backend=backend,
        )  # fmt: skip

    assert torch.autograd.gradcheck(fn, (x, weight, styles), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x, weight, styles), fast_mode=True)


def test_float16_prenormalization() -> None:
    # Activations large enough that float16 would overflow without the StyleGAN2-ADA pre-normalization.
    x = torch.randn(2, 4, 4, 4) * 100
    weight, styles = torch.randn(3, 4, 3, 3) * 100, torch.randn(2, 4) * 100
    for fused in (True, False):
        y = modulated_conv2d(x.half(), weight.half(), styles.half(), padding=1, fused_modconv=fused)
        assert y.dtype == torch.float16 and torch.isfinite(y).all()
        expected = formula(x.half(), weight.half(), styles.half(), demodulate=True, padding=1)
        assert_close(y.double() / 100, expected / 100, torch.float16, scale=10.0)


def test_channels_last_preserved() -> None:
    x = torch.randn(2, 3, 4, 4).to(memory_format=torch.channels_last)
    weight, styles = torch.randn(4, 3, 3, 3), torch.randn(2, 3)
    for fused in (True, False):
        y = modulated_conv2d(x, weight, styles, padding=1, fused_modconv=fused)
        assert y.is_contiguous(memory_format=torch.channels_last)
        assert_close(y, formula(x, weight, styles, demodulate=True, padding=1).float(), scale=10.0)


@pytest.mark.parametrize(("up", "down"), [(1, 1), (2, 1), (1, 2)])
def test_module_equals_function(up: int, down: int) -> None:
    conv = ModulatedConv2d(3, 4, 3, w_dim=5, up=up, down=down, resample_filter=TAPS, dtype=torch.float64)
    assert {n for n, _ in conv.named_parameters()} == {"weight", "affine.weight", "affine.bias"}
    assert "resample_filter" in dict(conv.named_buffers())
    x, w = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    styles = w @ conv.affine.weight.t() / math.sqrt(5) + 1.0  # the affine: equalized LR, bias starts at 1
    expected = formula(x, conv.weight, styles, demodulate=True, up=up, down=down, padding=1)
    for fused in (True, False):
        assert_close(conv(x, w, fused_modconv=fused), expected)
    # Without demodulation the styles carry 1 / sqrt(fan_in) = 1 / sqrt(3 * 3 * 3).
    plain = ModulatedConv2d(3, 4, 3, w_dim=5, demodulate=False, dtype=torch.float64)
    plain.affine.load_state_dict(conv.affine.state_dict())
    assert_close(plain(x, w), formula(x, plain.weight, styles / math.sqrt(27), demodulate=False, padding=1))


def test_module_default_path_and_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    import ganblocks.layers.modulated as mod

    calls: list[bool] = []
    original = mod.modulated_conv2d

    def spy(*args: Any, fused_modconv: bool, **kw: Any) -> torch.Tensor:
        calls.append(fused_modconv)
        return original(*args, fused_modconv=fused_modconv, **kw)

    monkeypatch.setattr(mod, "modulated_conv2d", spy)
    conv, conv64 = ModulatedConv2d(3, 4, 3, w_dim=5), ModulatedConv2d(3, 4, 3, w_dim=5, dtype=torch.float64)
    x, w = torch.randn(2, 3, 4, 4), torch.randn(2, 5)
    conv.train()(x, w)
    conv.eval()(x, w)
    conv64.eval()(x.double(), w.double())
    conv64.eval()(x[:1].double(), w[:1].double())
    # StyleGAN2-ADA: grouped only in eval mode, for float32 or a batch of one.
    assert calls == [False, True, False, True]
    assert repr(conv).startswith(
        "ModulatedConv2d(\n  3, 4, kernel_size=(3, 3), w_dim=5, demodulate=True, up=1, down=1"
    )


def rect_formula(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, demodulate: bool, up: int, down: int,
    padding: tuple[int, int],
) -> torch.Tensor:  # fmt: skip
    """formulas.modulated_conv2d for a (k_h, k_w) kernel and (p_h, p_w) padding, each axis on its own."""
    x, weight, styles = x.detach().double(), weight.detach().double(), styles.detach().double()
    f2d, big_k = formulas.separable_filter(TAPS), len(TAPS)
    (ph, pw), (kh, kw) = padding, weight.shape[2:]
    out = []
    for n in range(x.shape[0]):
        w = weight * styles[n].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        xn = x[n : n + 1]
        if up == 2:  # full true convolution of the zero-inserted input with w and the filter, then crop
            h, wd = xn.shape[2:]
            z = xn.new_zeros(1, xn.shape[1], 2 * h, 2 * wd)
            z[:, :, ::2, ::2] = xn
            full = F.conv2d(F.pad(z, [kw - 1, kw - 1, kh - 1, kh - 1]), w.flip(2, 3))
            full = formulas.resample2d(full, f2d, pad=(big_k - 1, big_k - 1), gain=4.0)
            oh = (big_k - 1) + (kh - 1) - (ph + (big_k + 1) // 2)
            ow = (big_k - 1) + (kw - 1) - (pw + (big_k + 1) // 2)
            out.append(full[:, :, oh : oh + 2 * h, ow : ow + 2 * wd])
        elif down == 2:  # zero padding, the filter, then a strided correlation
            blurred = formulas.resample2d(
                F.pad(xn, [pw, pw, ph, ph]), f2d, pad=((big_k - 1) // 2, (big_k - 2) // 2)
            )
            out.append(F.conv2d(blurred, w, stride=2))
        else:
            out.append(F.conv2d(xn, w, padding=(ph, pw)))
    return torch.cat(out)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize(("up", "down"), [(1, 1), (2, 1), (1, 2)])
@pytest.mark.parametrize("k", [(3, 1), (1, 3), (3, 5)])
def test_non_square_kernel_matches_formula(k: tuple[int, int], up: int, down: int, fused: bool) -> None:
    x = torch.randn(2, 3, 6, 4, dtype=torch.float64)
    weight, styles = torch.randn(4, 3, *k, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    pad = (k[0] // 2, k[1] // 2)
    y = modulated_conv2d(
        x, weight, styles, up=up, down=down, padding=pad, resample_filter=setup_filter(TAPS, dtype=torch.float64),
        flip_weight=up == 1, fused_modconv=fused,
    )  # fmt: skip
    assert y.shape == (2, 4, 6 * up // down, 4 * up // down)
    assert_close(y, rect_formula(x, weight, styles, demodulate=True, up=up, down=down, padding=pad))
    # The square case of this formula is formulas.modulated_conv2d's.
    if k == (3, 5):
        sq = torch.randn(4, 3, 3, 3, dtype=torch.float64)
        assert_close(
            rect_formula(x, sq, styles, demodulate=False, up=up, down=down, padding=(1, 1)),
            formula(x, sq, styles, demodulate=False, up=up, down=down, padding=1),
        )


@pytest.mark.parametrize(("up", "down"), [(1, 1), (2, 1), (1, 2)])
def test_module_non_square_kernel(up: int, down: int) -> None:
    conv = ModulatedConv2d(
        3, 4, (3, 1), w_dim=5, demodulate=False, up=up, down=down, resample_filter=TAPS, dtype=torch.float64
    )
    assert conv.weight.shape == (4, 3, 3, 1) and conv.kernel_size == (3, 1) and conv.padding == (1, 0)
    assert "kernel_size=(3, 1)" in repr(conv)
    x, w = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    # Without demodulation the styles carry 1 / sqrt(fan_in) = 1 / sqrt(3 * 3 * 1).
    styles = (w @ conv.affine.weight.t() / math.sqrt(5) + 1.0) / math.sqrt(9)
    expected = rect_formula(x, conv.weight, styles, demodulate=False, up=up, down=down, padding=(1, 0))
    for fused in (True, False):
        assert_close(conv(x, w, fused_modconv=fused), expected)
    to_rgb = ToRGB(4, w_dim=5, kernel_size=(1, 3), dtype=torch.float64)
    assert to_rgb.weight.shape == (3, 4, 1, 3)
    h, w2 = torch.randn(2, 4, 4, 4, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    rgb_styles = (w2 @ to_rgb.affine.weight.t() / math.sqrt(5) + 1.0) / math.sqrt(12)
    expected_rgb = rect_formula(h, to_rgb.weight, rgb_styles, demodulate=False, up=1, down=1, padding=(0, 1))
    assert_close(to_rgb(h, w2), expected_rgb)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize(("k", "up", "down"), [(3, 1, 1), (3, 2, 1), (3, 1, 2), (1, 2, 1), (1, 1, 2)])
def test_empty_batch_gives_empty_output(k: int, up: int, down: int, fused: bool) -> None:
    # Like torch's layers: an empty batch is an empty output of the right shape, not a grouped-conv error.
    x, styles, weight = torch.randn(0, 3, 6, 6), torch.randn(0, 3), torch.randn(4, 3, k, k)
    y = modulated_conv2d(
        x, weight, styles, up=up, down=down, padding=k // 2, resample_filter=setup_filter(TAPS),
        flip_weight=up == 1, fused_modconv=fused,
    )  # fmt: skip
    assert y.shape == (0, 4, 6 * up // down, 6 * up // down) and y.dtype == torch.float32
    conv = ModulatedConv2d(3, 4, k, w_dim=5, up=up, down=down).eval()  # eval: the grouped path by default
    assert conv(x, torch.randn(0, 5)).shape == (0, 4, 6 * up // down, 6 * up // down)
    assert ToRGB(3, w_dim=5).eval()(x, torch.randn(0, 5)).shape == (0, 3, 6, 6)


def test_to_rgb_matches_formula() -> None:
    to_rgb = ToRGB(4, w_dim=5, resample_filter=TAPS, dtype=torch.float64)
    with torch.no_grad():
        to_rgb.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x, w = torch.randn(2, 4, 6, 6, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    skip = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    styles = (w @ to_rgb.affine.weight.t() / math.sqrt(5) + 1.0) / math.sqrt(4)  # weight gain 1/sqrt(C k^2)
    rgb = formula(x, to_rgb.weight, styles, demodulate=False) + to_rgb.bias.reshape(1, 3, 1, 1)
    for fused in (True, False):
        assert_close(to_rgb(x, w, fused_modconv=fused), rgb)
        k = len(TAPS)  # StyleGAN2's upsampling: padding (K + 1) // 2, (K - 2) // 2 and gain 4
        up = formulas.resample2d(
            skip, formulas.separable_filter(TAPS), up=2, pad=((k + 1) // 2, (k - 2) // 2), gain=4
        )
        assert_close(to_rgb(x, w, skip, fused_modconv=fused), rgb + up)
    assert {n for n, _ in to_rgb.named_parameters()} == {"weight", "bias", "affine.weight", "affine.bias"}
    clamped = ToRGB(4, w_dim=5, clamp=0.1, dtype=torch.float64)
    assert clamped(x, w).abs().max() <= 0.1
    assert "clamp=0.1" in repr(clamped)


def test_compiles_without_graph_break(backend: Backend, device: torch.device) -> None:
    conv = ModulatedConv2d(3, 4, 3, w_dim=5, up=2, device=device)
    to_rgb = ToRGB(4, w_dim=5, device=device)
    x, w = torch.randn(2, 3, 4, 4, device=device), torch.randn(2, 5, device=device)
    skip = torch.randn(2, 3, 4, 4, device=device)

    def fn(x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return to_rgb(conv(x, w, fused_modconv=True), w, skip, fused_modconv=False)

    compiled = torch.compile(fn, fullgraph=True, backend="eager" if device.type == "cpu" else "inductor")
    with use_backend(backend):
        assert_close(compiled(x, w, skip), fn(x, w, skip))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: modulated_conv2d(torch.zeros(2, 3, 4, 4), torch.zeros(4, 2, 3, 3), torch.zeros(2, 2)),
         r"x must have 2 channels \(in_channels\), got shape \(2, 3, 4, 4\)"),
        (lambda: modulated_conv2d(torch.zeros(2, 3, 4, 4), torch.zeros(4, 3, 3, 3), torch.zeros(1, 3)),
         r"styles must have shape \(N, C_in\) = \(2, 3\), got \(1, 3\)"),
        (lambda: modulated_conv2d(torch.zeros(1, 3, 4, 4), torch.zeros(4, 3, 3), torch.zeros(1, 3)),
         r"weight must have 4 dimensions, got shape \(4, 3, 3\)"),
        (lambda: modulated_conv2d(torch.zeros(1, 3, 4, 4), torch.zeros(4, 3, 3, 3), torch.zeros(1, 3), up=2, down=2),
         "up and down cannot both be above 1, got up=2, down=2"),
        (lambda: ModulatedConv2d(3, 4, 3, w_dim=5, up=0), "up must be an int >= 1, got 0"),
        (lambda: ModulatedConv2d(3, 4, 3, w_dim=5)(torch.zeros(2, 3, 4, 4), torch.zeros(2, 6)),
         r"w \(the style\) must have shape \(N, w_dim\) = \(2, 5\), got \(2, 6\)"),
        (lambda: ModulatedConv2d(3, 4, 3, w_dim=5)(torch.zeros(2, 3, 4, 4), torch.zeros(3, 5)),
         r"w \(the style\) must have shape \(N, w_dim\) = \(2, 5\), got \(3, 5\)"),
        (lambda: ModulatedConv2d(3, 4, 3, w_dim=5)(torch.zeros(2, 3, 4, 4), torch.zeros(2, 1, 5)),
         r"w \(the style\) must have shape \(N, w_dim\) = \(2, 5\), got \(2, 1, 5\)"),
        (lambda: ToRGB(4, w_dim=5)(torch.zeros(2, 4, 6, 6), torch.zeros(2, 6)),
         r"w \(the style\) must have shape \(N, w_dim\) = \(2, 5\), got \(2, 6\)"),
        (lambda: ModulatedConv2d(3, 4, (3, 0), w_dim=5), r"kernel_size must be an int or a pair of ints, each >= 1"),
        (lambda: modulated_conv2d(torch.zeros(1, 3, 4, 4), torch.zeros(4, 3, 3, 3), torch.zeros(1, 3), padding=(1, -1)),
         r"padding must be an int or a pair of ints, each >= 0, got \(1, -1\)"),
        (lambda: ToRGB(4, w_dim=5)(torch.zeros(2, 4, 6, 6), torch.zeros(2, 5), torch.zeros(2, 3, 6, 6)),
         r"skip must have shape \(N, out_channels, H/2, W/2\) = \(2, 3, 3, 3\) .* got \(2, 3, 6, 6\)"),
    ],
)  # fmt: skip
def test_bad_inputs(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
