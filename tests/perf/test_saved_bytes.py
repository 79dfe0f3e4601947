"""What autograd keeps for the backward: every block saves no more than the plain formulation.

Networks, losses and the ops with a CPU fast path are measured on the PyTorch path. The references of
``pixel_norm``, ``minibatch_stddev`` and ``adain`` are the formula written for a reader (the overflow-safe
``x / k``, a centred copy, float32 statistics), so their bytes are the Triton kernels' business: those
tests run ``backend="triton"`` (under ``TRITON_INTERPRET=1`` on CPU).

Bytes saved for backward are exact and deterministic (unlike timings, which no test asserts): each is the
sum over the distinct storages that ``torch.autograd.graph.saved_tensors_hooks`` sees, without the inputs'
and parameters' own storages (they exist anyway). The plain formulations are those users write today:
pix2pixHD's ``InstanceNorm2d`` + in-place ``LeakyReLU``, its ``NLayerDiscriminator`` and ``VGGLoss``,
StyleGAN2's ``fused_leaky_relu``, noise injection, AdaIN and minibatch standard deviation.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganblocks
import ganblocks.functional as gf
from ganblocks.losses.vgg import VGG19_LAYERS, vgg19_features


# float16/bfloat16: group norm keeps its per-plane mean and rstd in float32 where batch norm (plain
# F.instance_norm) keeps them in the input dtype: 4 more bytes per (n, c) plane, 1/(H*W) of the activations.
def stats_allowance(dtype: torch.dtype, planes: int) -> int:
    return 4 * planes if dtype in (torch.float16, torch.bfloat16) else 0


def saved_bytes(fn: Callable[[], Any], exclude: list[torch.Tensor]) -> int:
    """Bytes of the distinct storages ``fn``'s graph saves for backward, ``exclude``'s storages left out."""
    excluded = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in excluded:
            seen.setdefault(storage.data_ptr(), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(seen.values())


# ----------------------------------------------------------------------------------------------------- ops

DTYPES = [torch.float32, torch.bfloat16]


def _leaf(*shape: int, dtype: torch.dtype, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(shape) * scale).to(dtype).requires_grad_(True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_instance_norm_act_saves_what_pix2pixhd_saves(dtype: torch.dtype) -> None:
    x = _leaf(2, 8, 16, 16, dtype=dtype)
    # In a network the input is a conv's output, which only the norm keeps: ``x * 1.0`` stands for it, so
    # a norm that saves a shifted copy instead of its input is charged the same bytes as one that saves x.
    ours = saved_bytes(lambda: gf.instance_norm_act(x * 1.0, act="lrelu", gain=1.0, backend="torch"), [x])
    plain = saved_bytes(lambda: F.leaky_relu(F.instance_norm(x * 1.0, eps=1e-5), 0.2, inplace=True), [x])
    # The activation's output, in the dtype of x (no float32 copy), plus the per-plane statistics.
    assert ours <= plain + stats_allowance(dtype, 2 * 8)
    assert ours < 3 * x.numel() * x.element_size()


@pytest.mark.triton
@pytest.mark.parametrize("dtype", DTYPES)
def test_adain_saves_no_more_than_plain(dtype: torch.dtype) -> None:
    x = _leaf(2, 8, 16, 16, dtype=dtype)
    scale, bias = _leaf(2, 8, dtype=dtype), _leaf(2, 8, dtype=dtype)
    ours = saved_bytes(lambda: gf.adain(x, scale, bias, backend="triton"), [x, scale, bias])
    plain = saved_bytes(
        lambda: scale[:, :, None, None] * F.instance_norm(x, eps=1e-5) + bias[:, :, None, None],
        [x, scale, bias],
    )
    assert ours <= plain + stats_allowance(dtype, 2 * 8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_act_saves_no_more_than_plain(dtype: torch.dtype) -> None:
    x, b = _leaf(2, 8, 16, 16, dtype=dtype), _leaf(8, dtype=dtype)
    ours = saved_bytes(lambda: gf.bias_act(x, b, act="lrelu", backend="torch"), [x, b])
    plain = saved_bytes(lambda: F.leaky_relu(x + b.view(1, -1, 1, 1), 0.2) * math.sqrt(2), [x, b])
    assert ours <= plain


@pytest.mark.parametrize("dtype", DTYPES)
def test_inject_noise_saves_no_more_than_plain(dtype: torch.dtype) -> None:
    x, b = _leaf(2, 8, 16, 16, dtype=dtype), _leaf(8, dtype=dtype)
    s = _leaf(dtype=dtype, scale=0.1)
    noise = torch.randn(2, 1, 16, 16).to(dtype)
    leaves = [x, b, s, noise]
    ours = saved_bytes(lambda: gf.inject_noise(x, s, noise, bias=b, act="lrelu", backend="torch"), leaves)
    plain = saved_bytes(lambda: F.leaky_relu(x + s * noise + b.view(1, -1, 1, 1), 0.2) * math.sqrt(2), leaves)
    assert ours <= plain


@pytest.mark.triton
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [4, 16])
def test_pixel_norm_saves_no_more_than_plain(dtype: torch.dtype, size: int) -> None:
    x = _leaf(2, 8, size, size, dtype=dtype)
    ours = saved_bytes(lambda: gf.pixel_norm(x, backend="triton"), [x])
    plain = saved_bytes(lambda: x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8), [x])
    assert ours <= plain  # the per-pixel r, in the dtype of x
    assert ours < x.numel() * x.element_size() // 2  # nothing full-size (the overflow-safe form's x / k)


@pytest.mark.triton
@pytest.mark.parametrize("dtype", DTYPES)
def test_minibatch_stddev_saves_no_more_than_plain(dtype: torch.dtype) -> None:
    x = _leaf(4, 32, 8, 8, dtype=dtype)

    def plain() -> torch.Tensor:
        std = torch.sqrt(x.view(4, -1, 1, 32, 8, 8).var(0, unbiased=False) + 1e-8)
        std = std.mean([2, 3, 4], keepdim=True).squeeze(2).repeat(4, 1, 8, 8)
        return torch.cat([x, std], 1)

    ours = saved_bytes(lambda: gf.minibatch_stddev(x, backend="triton"), [x])
    assert ours <= saved_bytes(plain, [x])


# ------------------------------------------------------------------------------------------ discriminators


def _plain_nlayer(input_nc: int, ndf: int = 64, n_layers: int = 3) -> nn.ModuleList:
    """pix2pixHD's NLayerDiscriminator (instance norm, in-place LeakyReLU), one Sequential per layer."""
    layers = [nn.Sequential(nn.Conv2d(input_nc, ndf, 4, 2, 2), nn.LeakyReLU(0.2, True))]
    nf = ndf
    for i in range(1, n_layers + 1):
        nf_prev, nf = nf, min(nf * 2, 512)
        layers.append(
            nn.Sequential(
                nn.Conv2d(nf_prev, nf, 4, 2 if i < n_layers else 1, 2),
                nn.InstanceNorm2d(nf),
                nn.LeakyReLU(0.2, True),
            )
        )
    layers.append(nn.Sequential(nn.Conv2d(nf, 1, 4, 1, 2)))
    return nn.ModuleList(layers)


def _plain_multiscale(x: torch.Tensor, scales: list[nn.ModuleList]) -> list[torch.Tensor]:
    out = []
    for k, layers in enumerate(scales):
        if k:
            x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        h = x
        for layer in layers:
            h = layer(h)
        out.append(h)
    return out


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_multiscale_discriminator_saves_no_more_than_pix2pixhd(dtype: str) -> None:
    ours = ganblocks.MultiScaleDiscriminator(3, num_scales=3, base_channels=16, return_features=True)
    plain = [_plain_nlayer(3, 16) for _ in range(3)]
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16")

    def run(fn: Callable[[], Any]) -> Callable[[], Any]:
        def inner() -> Any:
            with amp:
                return fn()

        return inner

    with ganblocks.ops.use_backend("torch"):
        b_ours = saved_bytes(run(lambda: ours(x)), [x, *ours.parameters()])
    b_plain = saved_bytes(
        run(lambda: _plain_multiscale(x, plain)), [x, *(p for s in plain for p in s.parameters())]
    )
    # Instance norm after 3 convs per scale, channels 32, 64, 128 with base_channels=16, batch 2.
    planes = 3 * 2 * (32 + 64 + 128)
    assert b_ours <= b_plain + stats_allowance(
        torch.bfloat16 if dtype == "bfloat16" else torch.float32, planes
    )


# ------------------------------------------------------------------------------------------ feature losses


@pytest.mark.parametrize("criterion", ["l1", "l2"])
def test_feature_matching_saves_no_more_than_pix2pixhd(criterion: str) -> None:
    shapes = [(2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4)]
    fake = [torch.randn(s, requires_grad=True) for s in shapes]
    real = [torch.randn(s) for s in shapes]
    dist = F.l1_loss if criterion == "l1" else F.mse_loss
    ours = saved_bytes(
        lambda: gf.feature_matching_loss(
            ganblocks.DiscriminatorOutput([torch.zeros(1)], [fake]),
            ganblocks.DiscriminatorOutput([torch.zeros(1)], [real]),
            criterion=criterion,  # type: ignore[arg-type]
        ),
        fake,  # the real features are not excluded: keeping them alive until the backward is the cost
    )
    plain = saved_bytes(lambda: sum(dist(f, r.detach()) for f, r in zip(fake, real)), fake)
    # The differences, as plain keeps them, and one float32 scalar per map for the multi-tensor norm
    # (two for l2: the norm and its square).
    assert ours <= plain + len(shapes) * 4 * (1 if criterion == "l1" else 2)


# ------------------------------------------------------------------------------------------------ VGG loss


class _PlainVGGLoss(nn.Module):
    """pix2pixHD's VGGLoss: both images through VGG19 up to relu5_1, L1 per tap, target features detached."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features.requires_grad_(False)
        self.taps = [VGG19_LAYERS[n] for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")]

    def _run(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, m in enumerate(self.features):
            x = m(x)
            if i in self.taps:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(())
        for w, a, b in zip((1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0), self._run(x), self._run(y)):
            total = total + w * F.l1_loss(a, b.detach())
        return total


@pytest.mark.parametrize("batched", [True, False])
def test_vgg_loss_saves_no_more_than_pix2pixhd(batched: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights
        ours = ganblocks.VGGLoss.pix2pixhd(weights=None, batched=batched)
    plain = _PlainVGGLoss(vgg19_features(VGG19_LAYERS["relu5_1"] + 1))
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    y = torch.randn(1, 3, 32, 32)
    b_ours = saved_bytes(lambda: ours(x, y), [x, y, *ours.parameters()])
    b_plain = saved_bytes(lambda: plain(x, y), [x, y, *plain.parameters()])
    assert b_ours <= b_plain
