"""Layer blocks (``ganblocks.EqualConv2d`` and co.) against stylegan2-pytorch's plain layers.

- ``equal_conv2d``: ``EqualConv2d(C, C, 3, padding=1, act="lrelu")`` vs ``ConvLayer`` (EqualConv2d without
  bias + FusedLeakyReLU's reference path).
- ``equal_linear``: ``EqualLinear(512, 512, act="lrelu")`` vs ``EqualLinear(activation="fused_lrelu")``
  (the mapping network's layer).
- ``equalized_lr_hook``: ``equalized_lr(nn.Conv2d(...))`` vs stylegan2-pytorch's ``EqualConv2d`` with bias.
- ``adain``: ``AdaIN(C, 512)`` vs StyleGAN's ``AdaptiveInstanceNorm``.
- ``modulated_conv2d``: ``ModulatedConv2d(C, C, 3, w_dim=512, up=1|2)`` called with ``fused_modconv=True``
  (one grouped convolution over the batch) or ``False`` (activations scaled around a shared convolution) vs
  stylegan2-pytorch's ``ModulatedConv2d(fused=...)`` (upsampling: transposed conv + ``Blur`` on
  StyleGAN2-ADA's ``_upfirdn2d_ref``). Double backward is path length regularization's pattern.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import ganblocks

from .case import Case
from .config import Config
from .plain import stylegan2 as sg2
from .providers import Inputs, make_tensor, module_case

AREA = "layers"
FWD = ("forward", "backward", "forward+backward")
DB = (*FWD, "double_backward")


def _call1(m: Any, ins: list[torch.Tensor]) -> Any:
    return m(ins[0])


def _call2(m: Any, ins: list[torch.Tensor]) -> Any:
    return m(ins[0], ins[1])


def _inputs(cfg: Config, *shapes: tuple[int, ...]) -> Inputs:
    return lambda g: [make_tensor(cfg, s, g, requires_grad=True) for s in shapes]


def equal_conv2d_case(
    cfg: Config, shape: tuple[int, ...], dtype: str, layout: str, compile_reason: str = ""
) -> Case:
    c = shape[1]
    return module_case(
        cfg,
        AREA,
        "equal_conv2d",
        {"shape": list(shape), "dtype": dtype, "layout": layout},
        DB,
        ours=lambda: ganblocks.EqualConv2d(c, c, 3, padding=1, act="lrelu"),
        plain=lambda: sg2.ConvLayer(c, c, 3),
        inputs=_inputs(cfg, shape),
        call=_call1,
        compile_skip=compile_reason,
        note="plain = stylegan2-pytorch ConvLayer: EqualConv2d(bias=False) + FusedLeakyReLU reference",
    )


def equal_linear_case(cfg: Config, batch: int, dtype: str, compile_reason: str = "") -> Case:
    return module_case(
        cfg,
        AREA,
        "equal_linear",
        {"shape": [batch, 512], "dtype": dtype, "layout": "contiguous"},
        DB,
        ours=lambda: ganblocks.EqualLinear(512, 512, act="lrelu"),
        plain=lambda: sg2.EqualLinear(512, 512, activation="fused_lrelu"),
        inputs=_inputs(cfg, (batch, 512)),
        call=_call1,
        compile_skip=compile_reason,
        note="plain = stylegan2-pytorch EqualLinear(activation='fused_lrelu')",
    )


def equalized_lr_case(cfg: Config, shape: tuple[int, ...], dtype: str, compile_reason: str = "") -> Case:
    c = shape[1]
    return module_case(
        cfg,
        AREA,
        "equalized_lr_hook",
        {"shape": list(shape), "dtype": dtype, "layout": "contiguous"},
        DB,
        ours=lambda: ganblocks.equalized_lr(nn.Conv2d(c, c, 3, padding=1)),
        plain=lambda: sg2.EqualConv2d(c, c, 3, padding=1),
        inputs=_inputs(cfg, shape),
        call=_call1,
        compile_skip=compile_reason,
        note="ganblocks = equalized_lr(nn.Conv2d) (a parametrization); plain = stylegan2-pytorch EqualConv2d",
    )


def adain_case(cfg: Config, shape: tuple[int, ...], dtype: str, compile_reason: str = "") -> Case:
    n, c = shape[0], shape[1]
    return module_case(
        cfg,
        AREA,
        "adain",
        {"shape": list(shape), "dtype": dtype, "layout": "contiguous"},
        FWD,
        ours=lambda: ganblocks.AdaIN(c, 512),
        plain=lambda: sg2.AdaptiveInstanceNorm(c, 512),
        inputs=_inputs(cfg, shape, (n, 512)),
        call=_call2,
        compile_skip=compile_reason,
        note="plain = StyleGAN AdaptiveInstanceNorm (EqualLinear style projection, gamma * IN(x) + beta)",
    )


def modulated_conv2d_case(
    cfg: Config,
    shape: tuple[int, ...],
    dtype: str,
    *,
    up: int,
    fused: bool,
    compile_reason: str = "",
    modes: tuple[str, ...] = DB,
) -> Case:
    n, c = shape[0], shape[1]
    return module_case(
        cfg,
        AREA,
        "modulated_conv2d",
        {"shape": list(shape), "dtype": dtype, "layout": "contiguous", "up": up, "fused": fused},
        modes,
        ours=lambda: ganblocks.ModulatedConv2d(c, c, 3, w_dim=512, up=up),
        plain=lambda: sg2.ModulatedConv2d(c, c, 3, 512, upsample=up == 2, fused=fused),
        inputs=_inputs(cfg, shape, (n, 512)),
        call=lambda m, ins: m(ins[0], ins[1], fused_modconv=fused),
        call_plain=_call2,
        compile_skip=compile_reason,
        note="plain = stylegan2-pytorch ModulatedConv2d (demodulated; fused = grouped conv, else scaled "
        "activations; up: conv_transpose2d stride 2 + Blur([1,3,3,1]) on StyleGAN2-ADA's _upfirdn2d_ref)",
    )


def cases(cfg: Config) -> list[Case]:
    if cfg.quick:
        return [
            equal_conv2d_case(cfg, (2, 8, 16, 16), "float32", "contiguous"),
            equal_linear_case(cfg, 8, "float32"),
            equalized_lr_case(cfg, (2, 8, 16, 16), "float32"),
            adain_case(cfg, (2, 8, 16, 16), "float32"),
            modulated_conv2d_case(cfg, (2, 8, 8, 8), "float32", up=2, fused=True),
        ]
    if cfg.cuda:
        out = []
        for dtype, layout in (
            ("float32", "contiguous"),
            ("bfloat16", "contiguous"),
            ("bfloat16", "channels_last"),
        ):
            out.append(equal_conv2d_case(cfg, (16, 512, 64, 64), dtype, layout))
        out.append(equal_conv2d_case(cfg, (8, 128, 256, 256), "bfloat16", "channels_last"))
        out += [equal_linear_case(cfg, 4096, "float32"), equal_linear_case(cfg, 4096, "bfloat16")]
        out += [equalized_lr_case(cfg, (16, 512, 64, 64), "bfloat16")]
        out += [adain_case(cfg, (16, 512, 64, 64), "bfloat16")]
        # StyleGAN2's 64×64 layer (512 channels) and its upsampling layer from 32×32.
        for dtype in ("float32", "bfloat16"):
            for fused in (True, False):
                out.append(modulated_conv2d_case(cfg, (16, 512, 64, 64), dtype, up=1, fused=fused))
            out.append(modulated_conv2d_case(cfg, (16, 512, 32, 32), dtype, up=2, fused=True))
        return out
    return [
        equal_conv2d_case(cfg, (4, 64, 64, 64), "float32", "contiguous"),
        equal_conv2d_case(
            cfg, (4, 64, 64, 64), "float32", "channels_last", compile_reason="compile on CPU: contiguous only"
        ),
        equal_linear_case(cfg, 256, "float32"),
        equalized_lr_case(cfg, (4, 64, 64, 64), "float32"),
        adain_case(cfg, (4, 64, 64, 64), "float32"),
        *modulated_conv2d_cpu(cfg),
    ]


def modulated_conv2d_cpu(cfg: Config) -> list[Case]:
    """CPU: 4×128×32×32 (up=1, both paths) and its upsampling layer from 16×16; compile at up=1 fused only."""
    reason = "compile on CPU: up=1 fused only"
    return [
        modulated_conv2d_case(cfg, (4, 128, 32, 32), "float32", up=1, fused=True),
        modulated_conv2d_case(cfg, (4, 128, 32, 32), "float32", up=1, fused=False, compile_reason=reason),
        modulated_conv2d_case(cfg, (4, 128, 16, 16), "float32", up=2, fused=True, compile_reason=reason),
    ]
