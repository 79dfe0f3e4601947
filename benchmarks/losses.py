"""Losses against pix2pixHD's formulations.

- ``adversarial``: ``AdversarialLoss("lsgan")(pred, True)`` vs pix2pixHD's ``GANLoss(use_lsgan=True)`` on the
  three logits maps of a 3-scale discriminator.
- ``feature_matching``: ``FeatureMatchingLoss.pix2pixhd(3, 3)`` vs the loop in ``Pix2PixHDModel.forward``,
  on the features a 3-scale pix2pixHD discriminator produces (4 maps per scale).
- ``vgg``: ``VGGLoss.pix2pixhd(weights=None)`` (random weights: speed does not depend on them) vs
  pix2pixHD's ``VGGLoss``; ``batched`` runs input and target as one batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from .blocks import make_tensor, module_provider
from .case import Case, Skip, require
from .plain import pix2pixhd

if TYPE_CHECKING:
    from .runner import Config

MODES = ("forward", "forward+backward")


def pix2pixhd_feature_shapes(n: int, h: int, w: int, num_scales: int = 3) -> list[list[tuple[int, ...]]]:
    """Per scale, the shapes of pix2pixHD's 3-layer PatchGAN outputs ``[*features, logits]``."""

    def conv(s: int, stride: int) -> int:
        return (s + 2 * 2 - 4) // stride + 1

    shapes = []
    for _ in range(num_scales):
        sizes = []
        a, b = h, w
        for stride in (2, 2, 2, 1, 1):
            a, b = conv(a, stride), conv(b, stride)
            sizes.append((a, b))
        chans = (64, 128, 256, 512, 1)
        shapes.append([(n, c, *s) for c, s in zip(chans, sizes)])
        h, w = (h + 1) // 2, (w + 1) // 2
    return shapes


def _nest(flat: list[torch.Tensor], counts: list[int]) -> list[list[torch.Tensor]]:
    out, i = [], 0
    for c in counts:
        out.append(flat[i : i + c])
        i += c
    return out


class _Fn(nn.Module):
    """A loss function as a module, so that the module providers (and torch.compile) can take it."""

    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: Any) -> torch.Tensor:
        return self.fn(*args)


def _providers(
    cfg: Config,
    ours: Callable[[], nn.Module],
    plain: Callable[[], nn.Module],
    inputs: Callable[[torch.Generator], list[torch.Tensor]],
    call_ours: Callable[[Any, list[torch.Tensor]], Any],
    call_plain: Callable[[Any, list[torch.Tensor]], Any],
    *,
    dtype: str = "float32",
    layout: str = "contiguous",
    reference: bool = True,
) -> dict[str, Callable[[], Any]]:
    def ref() -> Any:
        if not cfg.cuda:
            raise Skip(
                "on CPU ganblocks (auto) runs the reference path: same numbers as the ganblocks column"
            )
        if not reference:
            raise Skip("no fused op on this path: same as ganblocks")
        return module_provider(cfg, ours, inputs, call_ours, backend="torch", dtype=dtype, layout=layout)()

    return {
        "ganblocks": module_provider(
            cfg, ours, inputs, call_ours, backend="auto", dtype=dtype, layout=layout
        ),
        "reference": ref,
        "plain": module_provider(cfg, plain, inputs, call_plain, dtype=dtype, layout=layout),
        "compile": module_provider(cfg, plain, inputs, call_plain, dtype=dtype, layout=layout, compiled=True),
    }


def adversarial_case(cfg: Config, image: tuple[int, int, int]) -> Case:
    n, h, w = image
    shapes = [scale[-1] for scale in pix2pixhd_feature_shapes(n, h, w)]

    def inputs(g: torch.Generator) -> list[torch.Tensor]:
        return [make_tensor(cfg, s, g, requires_grad=True) for s in shapes]

    def ours() -> nn.Module:
        return require("ganblocks.losses", "AdversarialLoss")("lsgan")

    gan = pix2pixhd.GANLoss()
    return Case(
        "losses",
        "adversarial",
        {"kind": "lsgan", "image": [n, 3, h, w], "num_scales": 3},
        MODES,
        _providers(
            cfg,
            ours,
            lambda: _Fn(lambda *ls: gan([[t] for t in ls], True)),
            inputs,
            lambda m, ins: m(list(ins), True),
            lambda m, ins: m(*ins),
            reference=False,
        ),
        note="plain = pix2pixHD GANLoss(use_lsgan=True) over the 3 scales' logits",
    )


def feature_matching_case(cfg: Config, image: tuple[int, int, int]) -> Case:
    n, h, w = image
    shapes = pix2pixhd_feature_shapes(n, h, w)
    counts = [len(s) for s in shapes]
    flat_shapes = [s for scale in shapes for s in scale]

    def inputs(g: torch.Generator) -> list[torch.Tensor]:
        fake = [make_tensor(cfg, s, g, requires_grad=True) for s in flat_shapes]
        real = [make_tensor(cfg, s, g) for s in flat_shapes]
        return fake + real

    def split(ins: list[torch.Tensor]) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
        k = len(ins) // 2
        return _nest(ins[:k], counts), _nest(ins[k:], counts)

    def ours() -> nn.Module:
        return require("ganblocks.losses", "FeatureMatchingLoss").pix2pixhd(3, 3)

    return Case(
        "losses",
        "feature_matching",
        {"image": [n, 3, h, w], "num_scales": 3, "maps": len(flat_shapes) - 3},
        MODES,
        _providers(
            cfg,
            ours,
            lambda: _Fn(lambda fake, real: pix2pixhd.feature_matching_loss(fake, real)),
            inputs,
            lambda m, ins: m(*split(ins)),
            lambda m, ins: m(*split(ins)),
            reference=False,
        ),
        note="plain = pix2pixHD's loss_G_GAN_Feat loop (L1 per map, weights 4/(n_layers+1) / num_D, x10)",
    )


def vgg_case(
    cfg: Config,
    shape: tuple[int, ...],
    dtype: str = "float32",
    layout: str = "contiguous",
    batched: bool = True,
) -> Case:
    def ours() -> nn.Module:
        return require("ganblocks.losses", "VGGLoss").pix2pixhd(weights=None, batched=batched)

    def inputs(g: torch.Generator) -> list[torch.Tensor]:
        x = make_tensor(cfg, shape, g, layout=layout, requires_grad=True)
        y = make_tensor(cfg, shape, g, layout=layout)
        return [x, y]

    def call(m: Any, ins: list[torch.Tensor]) -> Any:
        return m(ins[0], ins[1])

    return Case(
        "losses",
        "vgg",
        {"shape": list(shape), "dtype": dtype, "layout": layout, "batched": batched},
        MODES,
        _providers(
            cfg,
            ours,
            lambda: pix2pixhd.VGGLoss(pix2pixhd.vgg19_features()),
            inputs,
            call,
            call,
            dtype=dtype,
            layout=layout,
            reference=False,
        ),
        note="plain = pix2pixHD VGGLoss (Vgg19 slices to relu5_1, L1, weights 1/32..1); random weights",
    )


def cases(cfg: Config) -> list[Case]:
    if cfg.quick:
        return [
            adversarial_case(cfg, (2, 32, 32)),
            feature_matching_case(cfg, (2, 32, 32)),
            vgg_case(cfg, (1, 3, 32, 32)),
        ]
    if cfg.cuda:
        out = [adversarial_case(cfg, (4, 512, 512)), feature_matching_case(cfg, (4, 512, 512))]
        for batched in (True, False):
            out.append(vgg_case(cfg, (4, 3, 256, 256), "bfloat16", "channels_last", batched))
            out.append(vgg_case(cfg, (1, 3, 512, 1024), "bfloat16", "channels_last", batched))
        out.append(vgg_case(cfg, (4, 3, 256, 256), "float32", "contiguous", True))
        return out
    return [
        adversarial_case(cfg, (4, 256, 256)),
        feature_matching_case(cfg, (4, 256, 256)),
        vgg_case(cfg, (1, 3, 128, 128), batched=True),
        vgg_case(cfg, (1, 3, 128, 128), batched=False),
    ]
