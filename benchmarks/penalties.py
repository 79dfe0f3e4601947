"""Penalty steps (forward, input gradient with ``create_graph``, double backward into D's parameters).

- ``r1/style``: ``r1_penalty(D, real)`` through the equalized-LR discriminator with minibatch stddev (built
  from ganblocks layers) vs stylegan2-pytorch's ``d_r1_loss`` through the same network in its formulation.
- ``r1/multiscale``: ``r1_penalty`` through ``MultiScaleDiscriminator`` vs the same written by hand through
  pix2pixHD's ``MultiscaleDiscriminator`` (sum of every scale's logits, per-sample squared norm).
- ``gradient_penalty/msg``: ``gradient_penalty(D, real, fake)`` through ``MSGDiscriminator`` (image pyramids)
  vs MSG-GAN's ``__gradient_penalty`` through its discriminator.

``torch.compile`` does not apply: it cannot run a double backward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from .blocks import make_tensor, module_provider
from .case import Case, Skip, require
from .composed import style_discriminator
from .discriminators import msg_pyramid
from .plain import msggan, pix2pixhd
from .plain import stylegan2 as sg2

if TYPE_CHECKING:
    from .runner import Config

GAMMA = 10.0
COMPILE_REASON = "torch.compile cannot run a double backward (AOTAutograd raises)"


def _providers(
    cfg: Config,
    ours: Callable[[], nn.Module],
    plain: Callable[[], nn.Module],
    inputs: Callable[[torch.Generator], list[torch.Tensor]],
    step_ours: Callable[[Any, list[torch.Tensor], Callable[[], Any]], Any],
    step_plain: Callable[[Any, list[torch.Tensor], Callable[[], Any]], Any],
    *,
    dtype: str,
    layout: str,
) -> dict[str, Callable[[], Any]]:
    def unused(m: Any, ins: list[torch.Tensor]) -> Any:
        raise Skip("penalties are timed as whole steps")

    def reference() -> Any:
        if not cfg.cuda:
            raise Skip(
                "on CPU ganblocks (auto) runs the reference path: same numbers as the ganblocks column"
            )
        return module_provider(
            cfg, ours, inputs, unused, backend="torch", dtype=dtype, layout=layout, step=step_ours
        )()

    def compiled() -> Any:
        raise Skip(COMPILE_REASON)

    return {
        "ganblocks": module_provider(
            cfg, ours, inputs, unused, backend="auto", dtype=dtype, layout=layout, step=step_ours
        ),
        "reference": reference,
        "plain": module_provider(cfg, plain, inputs, unused, dtype=dtype, layout=layout, step=step_plain),
        "compile": compiled,
    }


def _r1_ours(d: Any, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    r1_penalty = require("ganblocks.penalties", "r1_penalty")
    with amp():
        penalty = r1_penalty(d, ins[0], gamma=GAMMA)
    penalty.backward()


def _r1_plain_stylegan(d: Any, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    real = ins[0].detach().requires_grad_(True)
    with amp():
        pred = d(real)
    r1 = sg2.d_r1_loss(pred.float(), real)
    (GAMMA / 2 * r1 + 0 * pred[0]).sum().backward()


def _r1_plain_pix2pixhd(d: Any, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    real = ins[0].detach().requires_grad_(True)
    with amp():
        out = d(real)
    total = sum(scale[-1].float().sum() for scale in out)
    (grad,) = torch.autograd.grad(total, real, create_graph=True)
    penalty = GAMMA / 2 * grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()
    penalty.backward()


def r1_style_case(
    cfg: Config, shape: tuple[int, ...], dtype: str = "float32", layout: str = "contiguous"
) -> Case:
    c, r = shape[1], shape[2]
    return Case(
        "penalties",
        "r1/style",
        {"shape": list(shape), "dtype": dtype, "layout": layout},
        ("step",),
        _providers(
            cfg,
            lambda: style_discriminator(r, c),
            lambda: sg2.StyleDiscriminator(r, c),
            lambda g: [make_tensor(cfg, shape, g, layout=layout)],
            _r1_ours,
            _r1_plain_stylegan,
            dtype=dtype,
            layout=layout,
        ),
        note="plain = stylegan2-pytorch d_r1_loss through its ConvLayer/EqualLinear discriminator",
    )


def r1_multiscale_case(
    cfg: Config, shape: tuple[int, ...], dtype: str = "float32", layout: str = "contiguous"
) -> Case:
    def ours() -> nn.Module:
        return require("ganblocks.discriminators", "MultiScaleDiscriminator")(shape[1], num_scales=3)

    return Case(
        "penalties",
        "r1/multiscale",
        {"shape": list(shape), "dtype": dtype, "layout": layout},
        ("step",),
        _providers(
            cfg,
            ours,
            lambda: pix2pixhd.MultiscaleDiscriminator(shape[1], num_d=3, get_interm_feat=False),
            lambda g: [make_tensor(cfg, shape, g, layout=layout)],
            _r1_ours,
            _r1_plain_pix2pixhd,
            dtype=dtype,
            layout=layout,
        ),
        note="plain = R1 written by hand through pix2pixHD's MultiscaleDiscriminator",
    )


def _gp_ours(d: Any, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    gradient_penalty = require("ganblocks.penalties", "gradient_penalty")
    k = len(ins) // 2
    with amp():
        penalty = gradient_penalty(d, ins[:k], ins[k:], weight=10.0)
    penalty.backward()


def _gp_plain(d: Any, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    k = len(ins) // 2
    with amp():
        penalty = msggan.gradient_penalty(d, ins[:k], ins[k:], reg_lambda=10.0)
    penalty.backward()


def gp_msg_case(
    cfg: Config,
    shape: tuple[int, ...],
    dtype: str = "float32",
    layout: str = "contiguous",
    channel_base: int = 16384,
    max_channels: int = 512,
) -> Case:
    c, r = shape[1], shape[2]
    widths = {"channel_base": channel_base, "max_channels": max_channels}
    pyramid = msg_pyramid(cfg, shape, layout)

    def inputs(g: torch.Generator) -> list[torch.Tensor]:
        return [t.detach() for t in pyramid(g) + pyramid(g)]

    def ours() -> nn.Module:
        return require("ganblocks.discriminators", "MSGDiscriminator")(c, resolution=r, **widths)

    return Case(
        "penalties",
        "gradient_penalty/msg",
        {"shape": list(shape), "dtype": dtype, "layout": layout, **widths},
        ("step",),
        _providers(
            cfg,
            ours,
            lambda: msggan.Discriminator(r, c, **widths),
            inputs,
            _gp_ours,
            _gp_plain,
            dtype=dtype,
            layout=layout,
        ),
        note="plain = MSG-GAN's WGAN-GP (one epsilon per sample for all scales) through its discriminator",
    )


def cases(cfg: Config) -> list[Case]:
    if cfg.quick:
        return [
            r1_style_case(cfg, (4, 3, 16, 16)),
            r1_multiscale_case(cfg, (2, 3, 32, 32)),
            gp_msg_case(cfg, (4, 3, 16, 16), channel_base=512, max_channels=64),
        ]
    if cfg.cuda:
        out = []
        for dtype, layout in (("float32", "contiguous"), ("bfloat16", "channels_last")):
            out += [
                r1_style_case(cfg, (16, 3, 256, 256), dtype, layout),
                r1_multiscale_case(cfg, (4, 3, 512, 512), dtype, layout),
                gp_msg_case(cfg, (16, 3, 128, 128), dtype, layout),
            ]
        return out
    return [
        r1_style_case(cfg, (4, 3, 64, 64)),
        r1_multiscale_case(cfg, (2, 3, 128, 128)),
        gp_msg_case(cfg, (4, 3, 64, 64), channel_base=2048, max_channels=256),
    ]
