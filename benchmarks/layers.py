"""Layers (``ganblocks.EqualConv2d`` and co.) against stylegan2-pytorch's plain layers, float32.

Double backward where a penalty differentiates through the layer (R1 through a discriminator's layers,
path length regularization through ``ModulatedConv2d``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import ganblocks

from .common import Config, Row, module_providers
from .plain import stylegan2 as sg2

FWD = ("forward", "backward", "fwd+bwd")
DB = (*FWD, "double_backward")
W_DIM = 512


def _call(m: Any, ins: list[torch.Tensor]) -> Any:
    return m(*ins)


def layer_row(cfg: Config, name: str, params: dict[str, Any], modes: tuple[str, ...], ours: Callable[[], nn.Module],
              plain: Callable[[], nn.Module], shapes: list[tuple[int, ...]], note: str, call: Callable[..., Any] = _call) -> Row:  # fmt: skip
    def inputs() -> list[torch.Tensor]:
        return [cfg.tensor(s, grad=True) for s in shapes]

    return Row(
        "layers", name, params, modes, module_providers(cfg, "layers", ours, plain, call, _call, inputs), note
    )


def rows(cfg: Config) -> list[Row]:
    n, c, r = cfg.size((2, 8, 16), (4, 64, 64), (16, 512, 64))
    mc, mr = cfg.size((8, 8), (128, 32), (512, 64))  # ModulatedConv2d: StyleGAN2's 64×64 layer on CUDA
    x = (n, c, r, r)
    out = [
        layer_row(cfg, "equal_conv2d", {"shape": list(x)}, DB, lambda: ganblocks.EqualConv2d(c, c, 3, padding=1, act="lrelu"),
                  lambda: sg2.ConvLayer(c, c, 3), [x], "plain = stylegan2-pytorch ConvLayer (EqualConv2d + FusedLeakyReLU)"),
        layer_row(cfg, "equal_linear", {"shape": [n * 64, 512]}, DB, lambda: ganblocks.EqualLinear(512, 512, act="lrelu"),
                  lambda: sg2.EqualLinear(512, 512, activation="lrelu"), [(n * 64, 512)], "plain = stylegan2-pytorch EqualLinear"),
        layer_row(cfg, "equalized_lr_hook", {"shape": list(x)}, DB, lambda: ganblocks.equalized_lr(nn.Conv2d(c, c, 3, padding=1)),
                  lambda: sg2.EqualConv2d(c, c, 3, padding=1), [x], "equalized_lr(nn.Conv2d) vs stylegan2-pytorch EqualConv2d"),
        layer_row(cfg, "adain", {"shape": list(x)}, FWD, lambda: ganblocks.AdaIN(c, W_DIM),
                  lambda: sg2.AdaptiveInstanceNorm(c, W_DIM), [x, (n, W_DIM)], "plain = StyleGAN's AdaptiveInstanceNorm"),
    ]  # fmt: skip
    for up, fused, res in ((1, True, mr), (1, False, mr), (2, True, mr // 2)):
        out.append(layer_row(
            cfg, "modulated_conv2d", {"shape": [n, mc, res, res], "up": up, "fused": fused}, DB,
            lambda up=up: ganblocks.ModulatedConv2d(mc, mc, 3, W_DIM, up=up),
            lambda up=up, fused=fused: sg2.ModulatedConv2d(mc, mc, 3, W_DIM, upsample=up == 2, fused=fused),
            [(n, mc, res, res), (n, W_DIM)], "plain = stylegan2-pytorch ModulatedConv2d (up: transposed conv + Blur)",
            call=lambda m, ins, fused=fused: m(*ins, fused_modconv=fused),
        ))  # fmt: skip
    return out
