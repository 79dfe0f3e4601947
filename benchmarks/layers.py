"""Layer blocks (``ganblocks.layers``) against StyleGAN2's plain layers (stylegan2-pytorch formulation).

- ``equal_conv2d``: ``EqualConv2d(C, C, 3, padding=1, act="lrelu")`` vs ``ConvLayer`` (EqualConv2d without
  bias + FusedLeakyReLU's reference path).
- ``equal_linear``: ``EqualLinear(512, 512, act="lrelu")`` vs ``EqualLinear(activation="fused_lrelu")``
  (the mapping network's layer).
- ``equalized_lr_hook``: ``equalized_lr(nn.Conv2d(...))`` vs stylegan2-pytorch's ``EqualConv2d`` with bias.
- ``adain``: ``AdaIN(C, 512)`` vs StyleGAN's ``AdaptiveInstanceNorm``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from .blocks import make_tensor, module_provider
from .case import Case, require
from .plain import stylegan2 as sg2

if TYPE_CHECKING:
    from .runner import Config

FWD = ("forward", "backward", "forward+backward")
DB = (*FWD, "double_backward")


def _providers(
    cfg: Config,
    ours: Callable[[], nn.Module],
    plain: Callable[[], nn.Module],
    inputs: Callable[[torch.Generator], list[torch.Tensor]],
    call: Callable[[Any, list[torch.Tensor]], Any],
    *,
    dtype: str,
    layout: str,
    compile_reason: str = "",
) -> dict[str, Any]:
    def compiled_factory() -> Any:
        if compile_reason:
            from .case import Skip

            raise Skip(compile_reason)
        return module_provider(cfg, plain, inputs, call, dtype=dtype, layout=layout, compiled=True)()

    return {
        "ganblocks": module_provider(cfg, ours, inputs, call, backend="auto", dtype=dtype, layout=layout),
        "reference": module_provider(cfg, ours, inputs, call, backend="torch", dtype=dtype, layout=layout),
        "plain": module_provider(cfg, plain, inputs, call, dtype=dtype, layout=layout),
        "compile": compiled_factory,
    }


def _call1(m: Any, ins: list[torch.Tensor]) -> Any:
    return m(ins[0])


def _call2(m: Any, ins: list[torch.Tensor]) -> Any:
    return m(ins[0], ins[1])


def equal_conv2d_case(
    cfg: Config, shape: tuple[int, ...], dtype: str, layout: str, compile_reason: str = ""
) -> Case:
    c = shape[1]

    def ours() -> nn.Module:
        return require("ganblocks.layers", "EqualConv2d")(c, c, 3, padding=1, act="lrelu")

    def inputs(g: torch.Generator) -> list[torch.Tensor]:
        return [make_tensor(cfg, shape, g, requires_grad=True)]

    return Case(
        "layers",
        "equal_conv2d",
        {"shape": list(shape), "dtype": dtype, "layout": layout},
        DB,
        _providers(
            cfg,
            ours,
            lambda: sg2.ConvLayer(c, c, 3),
            inputs,
            _call1,
            dtype=dtype,
            layout=layout,
            compile_reason=compile_reason,
        ),
        note="plain = stylegan2-pytorch ConvLayer: EqualConv2d(bias=False) + FusedLeakyReLU reference",
    )


def equal_linear_case(cfg: Config, batch: int, dtype: str, compile_reason: str = "") -> Case:
    def ours() -> nn.Module:
        return require("ganblocks.layers", "EqualLinear")(512, 512, act="lrelu")

    def inputs(g: torch.Generator) -> list[torch.Tensor]:
        return [make_tensor(cfg, (batch, 512), g, requires_grad=True)]

    return Case(
        "layers",
        "equal_linear",
        {"shape": [batch, 512], "dtype": dtype, "layout": "contiguous"},
        DB,
        _providers(
            cfg,
            ours,
            lambda: sg2.EqualLinear(512, 512, activation="fused_lrelu"),
            inputs,
            _call1,
            dtype=dtype,
            layout="contiguous",
            compile_reason=compile_reason,
        ),
        note="plain = stylegan2-pytorch EqualLinear(activation='fused_lrelu')",
    )


def equalized_lr_case(cfg: Config, shape: tuple[int, ...], dtype: str, compile_reason: str = "") -> Case:
    c = shape[1]

    def ours() -> nn.Module:
        hook = require("ganblocks.layers", "equalized_lr")
        return hook(nn.Conv2d(c, c, 3, padding=1))

    def inputs(g: torch.Generator) -> list[torch.Tensor]:
        return [make_tensor(cfg, shape, g, requires_grad=True)]

    return Case(
        "layers",
        "equalized_lr_hook",
        {"shape": list(shape), "dtype": dtype, "layout": "contiguous"},
        DB,
        _providers(
            cfg,
            ours,
            lambda: sg2.EqualConv2d(c, c, 3, padding=1),
            inputs,
            _call1,
            dtype=dtype,
            layout="contiguous",
            compile_reason=compile_reason,
        ),
        note="ganblocks = equalized_lr(nn.Conv2d) (a parametrization); plain = stylegan2-pytorch EqualConv2d",
    )


def adain_case(cfg: Config, shape: tuple[int, ...], dtype: str, compile_reason: str = "") -> Case:
    n, c = shape[0], shape[1]

    def ours() -> nn.Module:
        return require("ganblocks.layers", "AdaIN")(c, 512)

    def inputs(g: torch.Generator) -> list[torch.Tensor]:
        return [
            make_tensor(cfg, shape, g, requires_grad=True),
            make_tensor(cfg, (n, 512), g, requires_grad=True),
        ]

    return Case(
        "layers",
        "adain",
        {"shape": list(shape), "dtype": dtype, "layout": "contiguous"},
        FWD,
        _providers(
            cfg,
            ours,
            lambda: sg2.AdaptiveInstanceNorm(c, 512),
            inputs,
            _call2,
            dtype=dtype,
            layout="contiguous",
            compile_reason=compile_reason,
        ),
        note="plain = StyleGAN AdaptiveInstanceNorm (EqualLinear style projection, gamma * IN(x) + beta)",
    )


def cases(cfg: Config) -> list[Case]:
    if cfg.quick:
        return [
            equal_conv2d_case(cfg, (2, 8, 16, 16), "float32", "contiguous"),
            equal_linear_case(cfg, 8, "float32"),
            equalized_lr_case(cfg, (2, 8, 16, 16), "float32"),
            adain_case(cfg, (2, 8, 16, 16), "float32"),
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
        return out
    return [
        equal_conv2d_case(cfg, (4, 64, 64, 64), "float32", "contiguous"),
        equal_conv2d_case(
            cfg, (4, 64, 64, 64), "float32", "channels_last", compile_reason="compile on CPU: contiguous only"
        ),
        equal_linear_case(cfg, 256, "float32"),
        equalized_lr_case(cfg, (4, 64, 64, 64), "float32"),
        adain_case(cfg, (4, 64, 64, 64), "float32"),
    ]
