"""Losses and penalties against pix2pixHD's, stylegan2-pytorch's and MSG-GAN's formulations.

- ``adversarial``: ``AdversarialLoss("lsgan")`` vs pix2pixHD's ``GANLoss`` on a 3-scale discriminator's logits.
- ``feature_matching``: ``FeatureMatchingLoss.pix2pixhd(3, 3)`` vs pix2pixHD's loop (4 feature maps per scale).
- ``vgg``: ``VGGLoss.pix2pixhd(weights=None)`` (speed does not depend on the weights) vs pix2pixHD's.
- penalties, timed as a step (the penalty and its double backward into D's parameters): ``r1/style`` and
  ``r1/multiscale`` (``r1_penalty`` vs stylegan2-pytorch's ``d_r1_loss`` / R1 written by hand through
  pix2pixHD's discriminator), ``gradient_penalty/msg`` (vs MSG-GAN's WGAN-GP).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import ganblocks
import ganblocks.functional as gf

from .common import Config, Factory, Row, Variant, Work, module_factory, module_providers, skipped
from .networks import images, msg_pair, multiscale_pair, pyramid, style_pair
from .plain import msggan, pix2pixhd
from .plain import stylegan2 as sg2

GAMMA = 10.0
LOSS_MODES = ("forward", "fwd+bwd")


class Fn(nn.Module):
    """A loss function as a module, for the module providers."""

    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: Any) -> torch.Tensor:
        return self.fn(*args)


def pix2pixhd_shapes(n: int, h: int) -> list[list[tuple[int, ...]]]:
    """Per scale, the shapes of pix2pixHD's 3-layer discriminator outputs ``[*features, logits]``."""
    out = []
    for _ in range(3):
        sizes, s = [], h
        for stride in (2, 2, 2, 1, 1):  # 4×4 convolutions, padding 2
            s = s // stride + 1
            sizes.append(s)
        out.append([(n, c, s, s) for c, s in zip((64, 128, 256, 512, 1), sizes)])
        h = (h + 1) // 2
    return out


def loss_rows(cfg: Config) -> list[Row]:
    n, h = cfg.size((2, 32), (4, 256), (4, 512))
    shapes = pix2pixhd_shapes(n, h)
    flat = [s for scale in shapes for s in scale]
    gan = pix2pixhd.GANLoss()

    def fm(wrap: Callable[[list[list[torch.Tensor]]], Any]) -> Callable[[Any, list[torch.Tensor]], Any]:
        def nest(ts: list[torch.Tensor]) -> Any:
            return wrap([ts[i : i + 5] for i in range(0, len(ts), 5)])

        return lambda m, ins: m(nest(ins[: len(flat)]), nest(ins[len(flat) :]))

    vgg_shape, v = cfg.size((1, 3, 32, 32), (1, 3, 128, 128), (4, 3, 256, 256)), cfg.variants()[-1]
    img = {"image": [n, 3, h, h]}
    return [
        Row("losses", "adversarial", img, LOSS_MODES, module_providers(
            cfg, "losses", lambda: ganblocks.AdversarialLoss("lsgan"), lambda: Fn(lambda *ls: gan([[t] for t in ls], True)),
            lambda m, ins: m(list(ins), True), lambda m, ins: m(*ins), lambda: [cfg.tensor(s[-1], grad=True) for s in shapes]),
            "plain = pix2pixHD GANLoss(use_lsgan=True) over the 3 scales' logits"),
        Row("losses", "feature_matching", img, LOSS_MODES, module_providers(
            cfg, "losses", lambda: ganblocks.FeatureMatchingLoss.pix2pixhd(3, 3), lambda: Fn(pix2pixhd.feature_matching_loss),
            fm(ganblocks.DiscriminatorOutput.from_nested), fm(lambda lists: lists),
            lambda: [cfg.tensor(s, grad=True) for s in flat] + [cfg.tensor(s) for s in flat]),
            "plain = pix2pixHD's loss_G_GAN_Feat loop"),
        Row("losses", "vgg", {"shape": list(vgg_shape), "dtype": v[0], "layout": v[1]}, LOSS_MODES, module_providers(
            cfg, "losses", lambda: ganblocks.VGGLoss.pix2pixhd(weights=None), lambda: pix2pixhd.VGGLoss(pix2pixhd.vgg19_features()),
            lambda m, ins: m(*ins), lambda m, ins: m(*ins),
            lambda: [cfg.tensor(vgg_shape, ("float32", v[1]), grad=True), cfg.tensor(vgg_shape, ("float32", v[1]))], v),
            "plain = pix2pixHD VGGLoss (VGG19 to relu5_1, L1, weights 1/32..1); random weights"),
    ]  # fmt: skip


def r1_ours(d: Any, ins: list[torch.Tensor]) -> None:
    gf.r1_penalty(d, ins[0], gamma=GAMMA).backward()


def r1_stylegan2(d: Any, ins: list[torch.Tensor]) -> None:
    real = ins[0].detach().requires_grad_(True)
    pred = d(real)
    (GAMMA / 2 * sg2.d_r1_loss(pred.float(), real) + 0 * pred[0]).sum().backward()


def r1_pix2pixhd(d: Any, ins: list[torch.Tensor]) -> None:
    real = ins[0].detach().requires_grad_(True)
    total = sum(scale[-1].float().sum() for scale in d(real))
    (grad,) = torch.autograd.grad(total, real, create_graph=True)
    (GAMMA / 2 * grad.square().reshape(grad.shape[0], -1).sum(1).mean()).backward()


def gp_ours(d: Any, ins: list[torch.Tensor]) -> None:
    gf.gradient_penalty(d, ins[: len(ins) // 2], ins[len(ins) // 2 :], weight=10.0).backward()


def gp_msggan(d: Any, ins: list[torch.Tensor]) -> None:
    msggan.gradient_penalty(d, ins[: len(ins) // 2], ins[len(ins) // 2 :], reg_lambda=10.0).backward()


def penalty_providers(cfg: Config, pair: Any, ours: Callable[..., None], plain: Callable[..., None],
                      inputs: Callable[[], list[torch.Tensor]], v: Variant) -> dict[str, Factory]:  # fmt: skip
    """The penalty step per provider (torch.compile cannot run its double backward)."""

    def step(make: Any, fn: Callable[..., None], be: str | None) -> Factory:
        inner = module_factory(cfg, make, fn, inputs, v, be)

        def factory() -> Work:
            w = inner()
            return Work(lambda: ([setattr(p, "grad", None) for p in w.params], w.run()), params=w.params)

        return factory

    cuda_only = skipped("CUDA only")
    return {
        "ganblocks": step(pair[0], ours, "auto"),
        "torch": step(pair[0], ours, "torch") if cfg.cuda else cuda_only,
        "plain": step(pair[1], plain, None),
        "compile": skipped("torch.compile cannot run a double backward"),
    }


def penalty_rows(cfg: Config, v: Variant) -> list[Row]:
    small = cfg.size((4, 3, 16, 16), (4, 3, 64, 64), (16, 3, 256, 256))
    img = cfg.size((2, 3, 32, 32), (2, 3, 128, 128), (4, 3, 512, 512))
    p = {"dtype": v[0], "layout": v[1]}

    def two_pyramids() -> list[torch.Tensor]:
        return pyramid(cfg, small, v[1], grad=False) + pyramid(cfg, small, v[1], grad=False)

    return [
        Row("penalties", "r1/style", {"shape": list(small), **p}, ("step",), penalty_providers(
            cfg, style_pair(3, small[2]), r1_ours, r1_stylegan2, images(cfg, small, v[1], grad=False), v),
            "plain = stylegan2-pytorch d_r1_loss through the same network"),
        Row("penalties", "r1/multiscale", {"shape": list(img), **p}, ("step",), penalty_providers(
            cfg, multiscale_pair(3, False), r1_ours, r1_pix2pixhd, images(cfg, img, v[1], grad=False), v),
            "plain = R1 written by hand through pix2pixHD's MultiscaleDiscriminator"),
        Row("penalties", "gradient_penalty/msg", {"shape": list(small), **p}, ("step",), penalty_providers(
            cfg, msg_pair(cfg, 3, small[2]), gp_ours, gp_msggan, two_pyramids, v),
            "plain = MSG-GAN's WGAN-GP through its discriminator"),
    ]  # fmt: skip


def rows(cfg: Config) -> list[Row]:
    return loss_rows(cfg) + [r for v in cfg.variants() for r in penalty_rows(cfg, v)]
