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

from typing import Any, Callable

import torch

import ganblocks.functional as gf

from .case import Case
from .composed import MSG_CPU, MSG_FULL, MSG_QUICK, Builder, msg_pair, multiscale_pair, style_pair
from .config import Config
from .plain import msggan
from .plain import stylegan2 as sg2
from .providers import (
    NO_DOUBLE_BACKWARD,
    Step,
    image_inputs,
    module_case,
    msg_pyramid,
    network_reference_skip,
)

AREA = "penalties"
GAMMA = 10.0


def _penalty_case(cfg: Config, name: str, params: dict[str, Any], **kw: Any) -> Case:
    """A penalty timed as one whole step; ``kw`` are :func:`module_case`'s (networks, inputs, steps, note)."""
    return module_case(
        cfg,
        AREA,
        name,
        params,
        ("step",),
        reference_skip=network_reference_skip(cfg),
        compile_skip=NO_DOUBLE_BACKWARD,
        **kw,
    )


def _r1_ours(d: Any, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    with amp():
        penalty = gf.r1_penalty(d, ins[0], gamma=GAMMA)
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


# network -> (ganblocks and plain builders from the image shape, R1 written plainly, note)
R1_NETWORKS: dict[str, tuple[Callable[[tuple[int, ...]], tuple[Builder, Builder]], Step, str]] = {
    "style": (
        style_pair,
        _r1_plain_stylegan,
        "plain = stylegan2-pytorch d_r1_loss through its ConvLayer/EqualLinear discriminator",
    ),
    "multiscale": (
        lambda shape: multiscale_pair(shape, features=False),
        _r1_plain_pix2pixhd,
        "plain = R1 written by hand through pix2pixHD's MultiscaleDiscriminator",
    ),
}


def r1_case(
    cfg: Config, network: str, shape: tuple[int, ...], dtype: str = "float32", layout: str = "contiguous"
) -> Case:
    pair, step_plain, note = R1_NETWORKS[network]
    ours, plain = pair(shape)
    return _penalty_case(
        cfg,
        f"r1/{network}",
        {"shape": list(shape), "dtype": dtype, "layout": layout},
        ours=ours,
        plain=plain,
        inputs=image_inputs(cfg, shape, layout, requires_grad=False),
        step=_r1_ours,
        step_plain=step_plain,
        note=note,
    )


def _gp_ours(d: Any, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    k = len(ins) // 2
    with amp():
        penalty = gf.gradient_penalty(d, ins[:k], ins[k:], weight=10.0)
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
    widths: dict[str, int] = MSG_FULL,
) -> Case:
    ours, plain = msg_pair(shape, widths)
    pyramid = msg_pyramid(cfg, shape, layout)
    return _penalty_case(
        cfg,
        "gradient_penalty/msg",
        {"shape": list(shape), "dtype": dtype, "layout": layout, **widths},
        ours=ours,
        plain=plain,
        inputs=lambda g: [t.detach() for t in pyramid(g) + pyramid(g)],
        step=_gp_ours,
        step_plain=_gp_plain,
        note="plain = MSG-GAN's WGAN-GP (one epsilon per sample for all scales) through its discriminator",
    )


def cases(cfg: Config) -> list[Case]:
    if cfg.quick:
        return [
            r1_case(cfg, "style", (4, 3, 16, 16)),
            r1_case(cfg, "multiscale", (2, 3, 32, 32)),
            gp_msg_case(cfg, (4, 3, 16, 16), widths=MSG_QUICK),
        ]
    if cfg.cuda:
        out = []
        for dtype, layout in (("float32", "contiguous"), ("bfloat16", "channels_last")):
            out += [
                r1_case(cfg, "style", (16, 3, 256, 256), dtype, layout),
                r1_case(cfg, "multiscale", (4, 3, 512, 512), dtype, layout),
                gp_msg_case(cfg, (16, 3, 128, 128), dtype, layout),
            ]
        return out
    return [
        r1_case(cfg, "style", (4, 3, 64, 64)),
        r1_case(cfg, "multiscale", (2, 3, 128, 128)),
        gp_msg_case(cfg, (4, 3, 64, 64), widths=MSG_CPU),
    ]
