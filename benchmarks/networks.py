"""Discriminators and generators against their published plain formulations, and the network pairs
(ganblocks, plain: the same architecture and initialization on both sides) that penalties and training reuse.

- ``multiscale`` / ``patch``: ``MultiScaleDiscriminator`` (3 scales) / ``PatchDiscriminator``, features on,
  vs pix2pixHD's ``MultiscaleDiscriminator`` / ``NLayerDiscriminator``.
- ``msg``: ``MSGDiscriminator`` vs MSG-GAN's discriminator (same widths, "simple" combine).
- ``style``: an equalized-LR discriminator with minibatch stddev built from ``EqualConv2d``,
  ``MinibatchStdDev`` and ``EqualLinear`` vs the same network in stylegan2-pytorch's layers.
- ``global_generator``: ``GlobalGenerator`` vs pix2pixHD's (a label map in: no input gradient).
- ``stylegan2_g`` / ``stylegan2_d``: ``StyleGAN2Generator`` (skip, random noise) / ``StyleGAN2Discriminator``
  (resnet) vs the same networks in rosinality's stylegan2-pytorch layers (``benchmarks/plain/stylegan2.py``).

Backward starts from the logits; double backward is the R1 / WGAN-GP pattern. Inputs are float32 (in the
variant's layout); bfloat16 rows run under autocast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import ganblocks

from .common import Config, Row, Variant, module_providers
from .plain import msggan, pix2pixhd
from .plain import stylegan2 as sg2

Pair = tuple[Callable[[], nn.Module], Callable[[], nn.Module]]
DB = ("forward", "backward", "fwd+bwd", "double_backward")


def style_discriminator(resolution: int, in_channels: int = 3) -> nn.Module:
    ch = sg2.stylegan_channels(resolution)

    def conv(cin: int, cout: int, k: int) -> nn.Module:
        return ganblocks.EqualConv2d(cin, cout, k, padding=k // 2, act="lrelu")

    layers: list[nn.Module] = [conv(in_channels, ch[resolution], 1)]
    for r in (resolution >> i for i in range(resolution.bit_length() - 3)):
        layers += [conv(ch[r], ch[r], 3), conv(ch[r], ch[r // 2], 3), nn.AvgPool2d(2)]
    layers += [
        ganblocks.MinibatchStdDev(group_size=4, num_channels=1),
        conv(ch[4] + 1, ch[4], 3),
        nn.Flatten(),
    ]
    layers += [ganblocks.EqualLinear(ch[4] * 16, ch[4], act="lrelu"), ganblocks.EqualLinear(ch[4], 1)]
    return nn.Sequential(*layers)


def style_pair(c: int, r: int) -> Pair:
    return (lambda: style_discriminator(r, c)), (lambda: sg2.StyleDiscriminator(r, c))


def multiscale_pair(c: int, features: bool = True) -> Pair:
    return (
        lambda: ganblocks.MultiScaleDiscriminator(c, num_scales=3, return_features=features),
        lambda: pix2pixhd.MultiscaleDiscriminator(c, num_d=3),
    )


def msg_pair(cfg: Config, c: int, r: int) -> Pair:
    """MSG-GAN's published widths (channels ``base // resolution``, capped) on CUDA, narrower ones on CPU."""
    base, top = cfg.size((512, 64), (2048, 256), (16384, 512))
    return (
        lambda: ganblocks.MSGDiscriminator(c, resolution=r, base_channels=base // r, max_channels=top),
        lambda: msggan.Discriminator(r, c, channel_base=base, max_channels=top),
    )


def stylegan2_pairs(cfg: Config) -> tuple[int, int, int, Pair, Pair]:
    """Batch, resolution, z_dim = w_dim, the (G, D) pairs: StyleGAN2-ADA's channel rule on both sides."""
    n, r, cb, cm = cfg.size((4, 16, 256, 32), (4, 32, 2048, 64), (16, 256, 16384, 512))
    g: Pair = (
        lambda: ganblocks.StyleGAN2Generator(
            cm, 0, cm, r, 3, channel_base=cb, channel_max=cm, num_mapping_layers=2
        ),
        lambda: sg2.Generator(r, cm, cb, cm, 2),
    )
    d: Pair = (
        lambda: ganblocks.StyleGAN2Discriminator(0, r, 3, channel_base=cb, channel_max=cm),
        lambda: sg2.ResDiscriminator(r, cb, cm),
    )
    return n, r, cm, g, d


def pyramid(cfg: Config, shape: tuple[int, ...], layout: str, grad: bool = True) -> list[torch.Tensor]:
    """MSG-GAN's input: the image at every resolution down to 4×4, finest first."""
    n, c, r, _ = shape
    return [cfg.tensor((n, c, r >> j, r >> j), ("float32", layout), grad) for j in range(r.bit_length() - 2)]


def images(
    cfg: Config, shape: tuple[int, ...], layout: str, grad: bool = True
) -> Callable[[], list[torch.Tensor]]:
    return lambda: [cfg.tensor(shape, ("float32", layout), grad)]


def network_row(cfg: Config, area: str, name: str, shape: tuple[int, ...], pair: Pair, v: Variant,
                modes: tuple[str, ...], call: Callable[..., Any], call_plain: Callable[..., Any],
                inputs: Callable[[], list[torch.Tensor]], note: str) -> Row:  # fmt: skip
    params = {"shape": list(shape), "dtype": v[0], "layout": v[1]}
    return Row(
        area, name, params, modes, module_providers(cfg, area, *pair, call, call_plain, inputs, v), note
    )


def _features(m: Any, ins: list[torch.Tensor]) -> Any:
    return m(ins[0] if len(ins) == 1 else ins, return_features=True)


def _scale_logits(m: Any, ins: list[torch.Tensor]) -> list[torch.Tensor]:
    return [s[-1] for s in m(ins[0])]


def _first(m: Any, ins: list[torch.Tensor]) -> Any:
    return m(ins[0])


def variant_rows(cfg: Config, v: Variant) -> list[Row]:
    img = cfg.size((2, 3, 32, 32), (2, 3, 128, 128), (4, 3, 512, 512))
    small = cfg.size((4, 3, 16, 16), (4, 3, 64, 64), (16, 3, 256, 256))
    # pix2pixHD's G1 depth (4 downsamplings, 9 residual blocks) at half its width on CPU; 36 channels:
    # Cityscapes' 35 labels and the instance edges.
    g_in, ngf, nd, nb = cfg.size(
        ((1, 4, 32, 32), 8, 2, 2), ((1, 36, 128, 128), 32, 4, 9), ((1, 36, 512, 1024), 64, 4, 9)
    )
    g_pair = (
        lambda: ganblocks.GlobalGenerator(g_in[1], 3, base_channels=ngf, num_downsampling=nd, num_blocks=nb),
        lambda: pix2pixhd.GlobalGenerator(g_in[1], 3, ngf=ngf, n_downsampling=nd, n_blocks=nb),
    )
    patch = (lambda: ganblocks.PatchDiscriminator(3), lambda: pix2pixhd.NLayerDiscriminator(3))
    d, lay = "discriminators", v[1]
    n, r, z_dim, sg2_g, sg2_d = stylegan2_pairs(cfg)
    return [
        network_row(cfg, "generators", "stylegan2_g", (n, z_dim), sg2_g, v, DB[:3], _first, _first,
                    images(cfg, (n, z_dim), lay, grad=False), "plain = rosinality's layers, skip G, same widths"),
        network_row(cfg, d, "stylegan2_d", (n, 3, r, r), sg2_d, v, DB, _first, _first, images(cfg, (n, 3, r, r), lay),
                    "plain = rosinality's residual D, same widths"),
        network_row(cfg, d, "multiscale", img, multiscale_pair(3), v, DB, _features, _scale_logits,
                    images(cfg, img, lay), "plain = pix2pixHD MultiscaleDiscriminator(num_D=3, n_layers=3)"),
        network_row(cfg, d, "patch", img, patch, v, DB, _features, lambda m, ins: m(ins[0])[-1],
                    images(cfg, img, lay), "plain = pix2pixHD NLayerDiscriminator(n_layers=3)"),
        network_row(cfg, d, "msg", small, msg_pair(cfg, 3, small[2]), v, DB, _features, lambda m, ins: m(ins),
                    lambda: pyramid(cfg, small, lay), "plain = MSG-GAN's discriminator, same widths"),
        network_row(cfg, d, "style", small, style_pair(3, small[2]), v, DB, _first, _first,
                    images(cfg, small, lay), "plain = the same network in stylegan2-pytorch's layers"),
        network_row(cfg, "generators", "global_generator", g_in, g_pair, v, DB[:3], _first, _first,
                    images(cfg, g_in, lay, grad=False), "plain = pix2pixHD GlobalGenerator"),
    ]  # fmt: skip


def rows(cfg: Config) -> list[Row]:
    out = [r for v in cfg.variants() for r in variant_rows(cfg, v)]
    if not cfg.quick and not cfg.cuda:  # issue #3's CPU target size, fwd+bwd only (seconds per repetition)
        shape = (4, 3, 512, 512)
        out.append(network_row(cfg, "discriminators", "multiscale", shape, multiscale_pair(3), ("float32", "contiguous"),
                               ("fwd+bwd",), _features, _scale_logits, images(cfg, shape, "contiguous"), "issue #3's target"))  # fmt: skip
    return out
