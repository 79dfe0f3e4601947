"""Losses against pix2pixHD's formulations.

- ``adversarial``: ``ganblocks.AdversarialLoss("lsgan")(pred, True)`` vs pix2pixHD's
  ``GANLoss(use_lsgan=True)`` on the three logits maps of a 3-scale discriminator.
- ``feature_matching``: ``FeatureMatchingLoss.pix2pixhd(3, 3)`` vs the loop in ``Pix2PixHDModel.forward``,
  on the features a 3-scale pix2pixHD discriminator produces (4 maps per scale; ganblocks reads them
  through ``DiscriminatorOutput.from_nested``).
- ``vgg``: ``VGGLoss.pix2pixhd(weights=None)`` (random weights: speed does not depend on them) vs
  pix2pixHD's ``VGGLoss``; ``batched`` runs input and target as one batch.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

import ganblocks

from .case import Case
from .config import Config
from .plain import pix2pixhd
from .providers import Call, make_tensor, module_case, network_reference_skip

AREA = "losses"
MODES = ("forward", "forward+backward")
NO_FUSED_OP = "no fused op on this path: same as ganblocks"


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


def adversarial_case(cfg: Config, image: tuple[int, int, int]) -> Case:
    n, h, w = image
    shapes = [scale[-1] for scale in pix2pixhd_feature_shapes(n, h, w)]
    gan = pix2pixhd.GANLoss()
    return module_case(
        cfg,
        AREA,
        "adversarial",
        {"kind": "lsgan", "image": [n, 3, h, w], "num_scales": 3},
        MODES,
        ours=lambda: ganblocks.AdversarialLoss("lsgan"),
        plain=lambda: _Fn(lambda *ls: gan([[t] for t in ls], True)),
        inputs=lambda g: [make_tensor(cfg, s, g, requires_grad=True) for s in shapes],
        call=lambda m, ins: m(list(ins), True),
        call_plain=lambda m, ins: m(*ins),
        reference_skip=network_reference_skip(cfg, NO_FUSED_OP),
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

    def nested(wrap: Callable[[list[list[torch.Tensor]]], Any]) -> Call:
        """Calls the loss on (fake, real), each as pix2pixHD's nested lists passed through ``wrap``."""

        def call(m: Any, ins: list[torch.Tensor]) -> Any:
            k = len(ins) // 2
            return m(wrap(_nest(ins[:k], counts)), wrap(_nest(ins[k:], counts)))

        return call

    return module_case(
        cfg,
        AREA,
        "feature_matching",
        {"image": [n, 3, h, w], "num_scales": 3, "maps": len(flat_shapes) - 3},
        MODES,
        ours=lambda: ganblocks.FeatureMatchingLoss.pix2pixhd(3, 3),
        plain=lambda: _Fn(lambda fake, real: pix2pixhd.feature_matching_loss(fake, real)),
        inputs=inputs,
        # Features come from the discriminator's output; pix2pixHD's lists say which maps are features.
        call=nested(ganblocks.DiscriminatorOutput.from_nested),
        call_plain=nested(lambda lists: lists),
        reference_skip=network_reference_skip(cfg, NO_FUSED_OP),
        note="plain = pix2pixHD's loss_G_GAN_Feat loop (L1 per map, weights 4/(n_layers+1) / num_D, x10)",
    )


def vgg_case(
    cfg: Config,
    shape: tuple[int, ...],
    dtype: str = "float32",
    layout: str = "contiguous",
    batched: bool = True,
) -> Case:
    def inputs(g: torch.Generator) -> list[torch.Tensor]:
        x = make_tensor(cfg, shape, g, layout=layout, requires_grad=True)
        y = make_tensor(cfg, shape, g, layout=layout)
        return [x, y]

    return module_case(
        cfg,
        AREA,
        "vgg",
        {"shape": list(shape), "dtype": dtype, "layout": layout, "batched": batched},
        MODES,
        ours=lambda: ganblocks.VGGLoss.pix2pixhd(weights=None, batched=batched),
        plain=lambda: pix2pixhd.VGGLoss(pix2pixhd.vgg19_features()),
        inputs=inputs,
        call=lambda m, ins: m(ins[0], ins[1]),
        reference_skip=network_reference_skip(cfg, NO_FUSED_OP),
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
