"""Discriminators against their published plain formulations.

- ``patch``: ``PatchDiscriminator(3)`` vs pix2pixHD's ``NLayerDiscriminator`` (instance norm, features on).
- ``multiscale``: ``MultiScaleDiscriminator(3)`` (3 scales) vs pix2pixHD's ``MultiscaleDiscriminator``.
- ``msg``: ``MSGDiscriminator(3, resolution=R)`` vs MSG-GAN's discriminator with the same configuration.
- ``style``: an equalized-LR discriminator with minibatch stddev assembled from ganblocks layers vs the
  same network in stylegan2-pytorch's formulation.

Both sides return their intermediate features (pix2pixHD's ``getIntermFeat``, needed for feature
matching); backward starts from the logits. ``double_backward`` is the R1 / WGAN-GP pattern: the gradient
with respect to the input images, then the backward of its squared norm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

import torch
from torch import nn

from .blocks import make_tensor, module_provider
from .case import Case, Skip, require
from .composed import style_discriminator
from .harness import Budget
from .plain import msggan, pix2pixhd
from .plain import stylegan2 as sg2

if TYPE_CHECKING:
    from .runner import Config

MODES = ("forward", "backward", "forward+backward", "double_backward")


def _nested_logits(out: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    return [scale[-1] for scale in out]


def _with_features(m: Any, ins: list[torch.Tensor]) -> Any:
    return m(ins[0], return_features=True)


def _call_list(m: Any, ins: list[torch.Tensor]) -> Any:
    return m(list(ins))


def _call1(m: Any, ins: list[torch.Tensor]) -> Any:
    return m(ins[0])


def _providers(
    cfg: Config,
    ours: Callable[[], nn.Module],
    plain: Callable[[], nn.Module],
    inputs: Callable[[torch.Generator], list[torch.Tensor]],
    call_ours: Callable[[Any, list[torch.Tensor]], Any],
    call_plain: Callable[[Any, list[torch.Tensor]], Any],
    *,
    dtype: str,
    layout: str,
) -> dict[str, Callable[[], Any]]:
    def reference() -> Any:
        if not cfg.cuda:
            raise Skip(
                "on CPU ganblocks (auto) runs the reference path: same numbers as the ganblocks column"
            )
        return module_provider(cfg, ours, inputs, call_ours, backend="torch", dtype=dtype, layout=layout)()

    return {
        "ganblocks": module_provider(
            cfg, ours, inputs, call_ours, backend="auto", dtype=dtype, layout=layout
        ),
        "reference": reference,
        "plain": module_provider(cfg, plain, inputs, call_plain, dtype=dtype, layout=layout),
        "compile": module_provider(cfg, plain, inputs, call_plain, dtype=dtype, layout=layout, compiled=True),
    }


def _image_inputs(
    cfg: Config, shape: tuple[int, ...], layout: str
) -> Callable[[torch.Generator], list[torch.Tensor]]:
    return lambda g: [make_tensor(cfg, shape, g, layout=layout, requires_grad=True)]


def multiscale_case(
    cfg: Config,
    shape: tuple[int, ...],
    dtype: str = "float32",
    layout: str = "contiguous",
    *,
    budget: Optional[Budget] = None,
    modes: tuple[str, ...] = MODES,
) -> Case:
    def ours() -> nn.Module:
        return require("ganblocks.discriminators", "MultiScaleDiscriminator")(shape[1], num_scales=3)

    return Case(
        "discriminators",
        "multiscale",
        {"shape": list(shape), "dtype": dtype, "layout": layout, "num_scales": 3},
        modes,
        _providers(
            cfg,
            ours,
            lambda: pix2pixhd.MultiscaleDiscriminator(shape[1], num_d=3),
            _image_inputs(cfg, shape, layout),
            _with_features,
            lambda m, ins: _nested_logits(m(ins[0])),
            dtype=dtype,
            layout=layout,
        ),
        budget=budget,
        note="plain = pix2pixHD MultiscaleDiscriminator(num_D=3, n_layers=3, InstanceNorm, getIntermFeat=True)",
    )


def patch_case(
    cfg: Config, shape: tuple[int, ...], dtype: str = "float32", layout: str = "contiguous"
) -> Case:
    def ours() -> nn.Module:
        return require("ganblocks.discriminators", "PatchDiscriminator")(shape[1])

    return Case(
        "discriminators",
        "patch",
        {"shape": list(shape), "dtype": dtype, "layout": layout},
        MODES,
        _providers(
            cfg,
            ours,
            lambda: pix2pixhd.NLayerDiscriminator(shape[1]),
            _image_inputs(cfg, shape, layout),
            _with_features,
            lambda m, ins: m(ins[0])[-1],
            dtype=dtype,
            layout=layout,
        ),
        note="plain = pix2pixHD NLayerDiscriminator(n_layers=3, InstanceNorm, getIntermFeat=True)",
    )


def msg_pyramid(
    cfg: Config, shape: tuple[int, ...], layout: str
) -> Callable[[torch.Generator], list[torch.Tensor]]:
    """The generator's multi-scale output stand-in: every level requires grad."""

    def make(g: torch.Generator) -> list[torch.Tensor]:
        r = shape[2]
        levels = msggan.image_pyramid(torch.randn(shape, generator=g), r.bit_length() - 2)
        out = []
        for t in levels:
            t = t.to(cfg.device)
            if layout == "channels_last":
                t = t.contiguous(memory_format=torch.channels_last)
            out.append(t.requires_grad_(True))
        return out

    return make


def msg_case(
    cfg: Config,
    shape: tuple[int, ...],
    dtype: str = "float32",
    layout: str = "contiguous",
    combine: str = "simple",
    channel_base: int = 16384,
    max_channels: int = 512,
) -> Case:
    c, r = shape[1], shape[2]
    widths = {"channel_base": channel_base, "max_channels": max_channels}

    def ours() -> nn.Module:
        cls = require("ganblocks.discriminators", "MSGDiscriminator")
        return cls(c, resolution=r, combine=combine, **widths)

    return Case(
        "discriminators",
        "msg",
        {"shape": list(shape), "dtype": dtype, "layout": layout, "combine": combine, **widths},
        MODES,
        _providers(
            cfg,
            ours,
            lambda: msggan.Discriminator(r, c, combine=combine, **widths),
            msg_pyramid(cfg, shape, layout),
            lambda m, ins: m(list(ins), return_features=True),
            _call_list,
            dtype=dtype,
            layout=layout,
        ),
        note="plain = MSG-GAN (BMSG-GAN) discriminator, equalized convs, same channels/combine as ganblocks",
    )


def style_case(
    cfg: Config, shape: tuple[int, ...], dtype: str = "float32", layout: str = "contiguous"
) -> Case:
    c, r = shape[1], shape[2]
    return Case(
        "discriminators",
        "style",
        {"shape": list(shape), "dtype": dtype, "layout": layout},
        MODES,
        _providers(
            cfg,
            lambda: style_discriminator(r, c),
            lambda: sg2.StyleDiscriminator(r, c),
            _image_inputs(cfg, shape, layout),
            _call1,
            _call1,
            dtype=dtype,
            layout=layout,
        ),
        note="equalized-LR D + minibatch stddev; ganblocks = EqualConv2d/MinibatchStdDev/EqualLinear, "
        "plain = stylegan2-pytorch ConvLayer/EqualLinear",
    )


def cases(cfg: Config) -> list[Case]:
    if cfg.quick:
        return [
            patch_case(cfg, (2, 3, 32, 32)),
            multiscale_case(cfg, (2, 3, 32, 32)),
            msg_case(cfg, (4, 3, 16, 16), channel_base=512, max_channels=64),
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
        msg_case(cfg, (4, 3, 64, 64), channel_base=2048, max_channels=256),
        style_case(cfg, (4, 3, 64, 64)),
    ]
