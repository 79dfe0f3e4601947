"""Discriminators against their published plain formulations.

- ``patch``: ``ganblocks.PatchDiscriminator(3)`` vs pix2pixHD's ``NLayerDiscriminator`` (instance norm,
  features on).
- ``multiscale``: ``ganblocks.MultiScaleDiscriminator(3)`` (3 scales) vs pix2pixHD's ``MultiscaleDiscriminator``.
- ``msg``: ``ganblocks.MSGDiscriminator(3, resolution=R)`` vs MSG-GAN's discriminator with the same
  configuration.
- ``style``: an equalized-LR discriminator with minibatch stddev assembled from ganblocks layers vs the
  same network in stylegan2-pytorch's formulation.

Both sides return their intermediate features (pix2pixHD's ``getIntermFeat``, needed for feature
matching); backward starts from the logits. ``double_backward`` is the R1 / WGAN-GP pattern: the gradient
with respect to the input images, then the backward of its squared norm.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

import ganblocks

from .case import Case
from .composed import MSG_CPU, MSG_FULL, MSG_QUICK, msg_pair, multiscale_pair, style_pair
from .config import Config
from .harness import Budget
from .plain import pix2pixhd
from .providers import image_inputs, module_case, msg_pyramid, network_reference_skip

AREA = "discriminators"
MODES = ("forward", "backward", "forward+backward", "double_backward")


def _with_features(m: Any, ins: list[torch.Tensor]) -> Any:
    return m(ins[0], return_features=True)


def _call1(m: Any, ins: list[torch.Tensor]) -> Any:
    return m(ins[0])


def _scale_logits(m: Any, ins: list[torch.Tensor]) -> list[torch.Tensor]:
    return [scale[-1] for scale in m(ins[0])]


def multiscale_case(
    cfg: Config,
    shape: tuple[int, ...],
    dtype: str = "float32",
    layout: str = "contiguous",
    *,
    budget: Optional[Budget] = None,
    modes: tuple[str, ...] = MODES,
) -> Case:
    ours, plain = multiscale_pair(shape, features=True)
    return module_case(
        cfg,
        AREA,
        "multiscale",
        {"shape": list(shape), "dtype": dtype, "layout": layout, "num_scales": 3},
        modes,
        ours=ours,
        plain=plain,
        inputs=image_inputs(cfg, shape, layout),
        call=_with_features,
        call_plain=_scale_logits,
        reference_skip=network_reference_skip(cfg),
        budget=budget,
        note="plain = pix2pixHD MultiscaleDiscriminator(num_D=3, n_layers=3, InstanceNorm, getIntermFeat=True)",
    )


def patch_case(
    cfg: Config, shape: tuple[int, ...], dtype: str = "float32", layout: str = "contiguous"
) -> Case:
    c = shape[1]
    return module_case(
        cfg,
        AREA,
        "patch",
        {"shape": list(shape), "dtype": dtype, "layout": layout},
        MODES,
        ours=lambda: ganblocks.PatchDiscriminator(c),
        plain=lambda: pix2pixhd.NLayerDiscriminator(c),
        inputs=image_inputs(cfg, shape, layout),
        call=_with_features,
        call_plain=lambda m, ins: m(ins[0])[-1],
        reference_skip=network_reference_skip(cfg),
        note="plain = pix2pixHD NLayerDiscriminator(n_layers=3, InstanceNorm, getIntermFeat=True)",
    )


def msg_case(
    cfg: Config,
    shape: tuple[int, ...],
    dtype: str = "float32",
    layout: str = "contiguous",
    combine: str = "simple",
    widths: dict[str, int] = MSG_FULL,
) -> Case:
    ours, plain = msg_pair(shape, widths, combine)
    return module_case(
        cfg,
        AREA,
        "msg",
        {"shape": list(shape), "dtype": dtype, "layout": layout, "combine": combine, **widths},
        MODES,
        ours=ours,
        plain=plain,
        inputs=msg_pyramid(cfg, shape, layout),
        call=lambda m, ins: m(list(ins), return_features=True),
        call_plain=lambda m, ins: m(list(ins)),
        reference_skip=network_reference_skip(cfg),
        note="plain = MSG-GAN (BMSG-GAN) discriminator, equalized convs, same channels/combine as ganblocks",
    )


def style_case(
    cfg: Config, shape: tuple[int, ...], dtype: str = "float32", layout: str = "contiguous"
) -> Case:
    ours, plain = style_pair(shape)
    return module_case(
        cfg,
        AREA,
        "style",
        {"shape": list(shape), "dtype": dtype, "layout": layout},
        MODES,
        ours=ours,
        plain=plain,
        inputs=image_inputs(cfg, shape, layout),
        call=_call1,
        reference_skip=network_reference_skip(cfg),
        note="equalized-LR D + minibatch stddev; ganblocks = EqualConv2d/MinibatchStdDev/EqualLinear, "
        "plain = stylegan2-pytorch ConvLayer/EqualLinear",
    )


def cases(cfg: Config) -> list[Case]:
    if cfg.quick:
        return [
            patch_case(cfg, (2, 3, 32, 32)),
            multiscale_case(cfg, (2, 3, 32, 32)),
            msg_case(cfg, (4, 3, 16, 16), widths=MSG_QUICK),
            style_case(cfg, (4, 3, 16, 16)),
        ]
    if cfg.cuda:
        out = []
        for dtype, layout in (("float32", "contiguous"), ("bfloat16", "channels_last")):
            out.append(multiscale_case(cfg, (4, 3, 512, 512), dtype, layout))
            out.append(multiscale_case(cfg, (4, 3, 1024, 1024), dtype, layout))
            out.append(patch_case(cfg, (16, 3, 256, 256), dtype, layout))
            for r in (64, 256):
                out.append(msg_case(cfg, (16, 3, r, r), dtype, layout))
            out.append(style_case(cfg, (16, 3, 256, 256), dtype, layout))
        out += [
            multiscale_case(cfg, (4, 3, r, r), "bfloat16", "channels_last", modes=("forward+backward",))
            for r in (64, 128, 256)
        ]
        return out
    # CPU: the multi-scale target size (fwd+bwd only, 5 repetitions: about 5 s a step here),
    # everything else at small sizes.
    return [
        multiscale_case(
            cfg,
            (4, 3, 512, 512),
            modes=("forward+backward",),
            budget=Budget(warmup=1, min_reps=5, max_reps=5, seconds=0),
        ),
        multiscale_case(cfg, (2, 3, 128, 128)),
        patch_case(cfg, (2, 3, 128, 128)),
        msg_case(cfg, (4, 3, 64, 64), widths=MSG_CPU),
        style_case(cfg, (4, 3, 64, 64)),
    ]
