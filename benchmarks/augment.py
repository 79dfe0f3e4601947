"""ADA's augmentation pipeline: ``AugmentPipe.preset("bgc")`` at p = 1 (every transformation on every image)
against StyleGAN2-ADA's formulation in plain torch ops and kornia's nearest sequence (where kornia imports:
its oracle venv), forward and forward+backward to the images (the G step differentiates through it)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import ganblocks
import ganblocks.functional as gf
from ganblocks.training.augment_pipe import SYM6

from .common import Config, Row, Skip, module_factory, skipped
from .plain import stylegan2 as sg2


class PlainBGC(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("f", gf.setup_filter(SYM6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sg2.augment_bgc(x, self.f)


def kornia_bgc() -> nn.Module:
    """xflip, rotate90, one affine (rotation, anisotropic scale, translation; reflection padding), colour
    jitter: kornia has no luma flip and no 2× anti-aliased resampling."""
    try:
        import kornia.augmentation as K
    except Exception as error:
        raise Skip(f"kornia unavailable ({type(error).__name__}): run in its oracle venv") from error
    s = (2**-0.4, 2**0.4)
    return nn.Sequential(
        K.RandomHorizontalFlip(p=0.5), K.RandomRotation90(times=(0, 3), p=1.0),
        K.RandomAffine(180.0, translate=(0.125, 0.125), scale=(*s, *s), padding_mode="reflection", p=1.0),
        K.ColorJiggle(brightness=0.2, contrast=0.5, saturation=0.5, hue=0.5, p=1.0),
    )  # fmt: skip


def _call(m: Any, ins: list[torch.Tensor]) -> Any:
    return m(ins[0])


def rows(cfg: Config) -> list[Row]:
    shape = cfg.size((2, 3, 32, 32), (8, 3, 128, 128), (32, 3, 256, 256))  # CPU: a minute per call at 256²

    def inputs() -> list[torch.Tensor]:
        return [(cfg.tensor(shape).sigmoid()).requires_grad_()]  # images in [0, 1]: kornia's colour range

    providers = {
        "ganblocks": module_factory(cfg, lambda: ganblocks.AugmentPipe.preset("bgc"), _call, inputs, ("float32", "contiguous"), "auto"),
        "torch": skipped("the pipe's only op with a Triton path is upfirdn2d (rows in ops)"),
        "plain": module_factory(cfg, PlainBGC, _call, inputs, ("float32", "contiguous"), None),
        "kornia": module_factory(cfg, kornia_bgc, _call, inputs, ("float32", "contiguous"), None),
    }  # fmt: skip
    note = "p = 1; kornia: flip, rot90, affine with reflection, ColorJiggle (no luma flip, no 2x resampling)"
    return [
        Row("augment", "augment_pipe/bgc", {"shape": list(shape)}, ("forward", "fwd+bwd"), providers, note)
    ]
