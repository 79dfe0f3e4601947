"""Whole training steps, each against its plain formulation: the D step, the G step and the R1 step.

A leaf tensor that requires grad stands in for the generator's output (the G step's backward ends there),
so a step is the discriminator, losses, penalties and optimizer part of a real iteration; Adam on D.

- ``pix2pixhd``: 3-scale D, LSGAN; D step ½(fake + real); G step GAN + feature matching + 10·VGG (random
  weights), D frozen, D(real) without grad (feature matching detaches it).
- ``msg``: MSG D on image pyramids; D step WGAN + WGAN-GP + MSG-GAN's drift term; G step WGAN.
- ``stylegan``: equalized-LR D with minibatch stddev; D and G steps with the non-saturating loss;
  ``r1_step`` is StyleGAN2's lazy R1 (γ/2 · R1 · 16, every 16th iteration).
- ``stylegan2``: the same three steps on ``StyleGAN2Discriminator`` vs rosinality's, and ``pl_step``: the lazy
  path length penalty (× 4) of ``StyleGAN2Generator`` on half the batch vs rosinality's ``g_path_regularize``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

import ganblocks
import ganblocks.functional as gf

from .common import Config, Factory, Row, Variant, Work, backend, build, skipped
from .networks import msg_pair, multiscale_pair, pyramid, style_pair, stylegan2_pairs
from .plain import msggan, pix2pixhd
from .plain import stylegan2 as sg2

LAZY_R1 = 16
DRIFT = 0.001
Nets = dict[str, Any]
Ins = list[torch.Tensor]
Step = Callable[[Nets, Ins], torch.Tensor]  # the loss, computed under autocast and the backend


def step_factory(cfg: Config, nets: Callable[[], dict[str, Any]], inputs: Callable[[], list[torch.Tensor]],
                 step: Step, be: str | None, v: Variant) -> Factory:  # fmt: skip
    """``step(nets, inputs)`` returns the loss; the factory adds zero_grad, backward and D's Adam step (a G
    step freezes D and leaves Adam out)."""

    def factory() -> Work:
        ms = {k: build(cfg, make, v[1]) for k, make in nets().items()}
        torch.manual_seed(1)  # the same inputs for every provider
        d, ins, g_step = ms["d"], inputs(), getattr(step, "g_step", False)
        params = [p for p in d.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=2e-4, betas=(0.0, 0.99))

        def run() -> None:
            opt.zero_grad(set_to_none=True)
            for t in ins:
                t.grad = None
            d.requires_grad_(not g_step)
            with backend(be), cfg.amp(v[0]):
                loss = step(ms, ins)
            with backend(be):
                loss.backward()
            if not g_step:
                opt.step()

        return Work(run, params=params)

    return factory


def g_step(fn: Step) -> Step:
    fn.g_step = True  # type: ignore[attr-defined]
    return fn


def row(cfg: Config, setting: str, name: str, shape: tuple[int, ...], v: Variant,
        nets: tuple[Callable[[], dict[str, Any]], ...], inputs: Callable[[], list[torch.Tensor]],
        ours: Step, plain: Step, note: str) -> Row:  # fmt: skip
    providers = {
        "ganblocks": step_factory(cfg, nets[0], inputs, ours, "auto", v),
        "torch": step_factory(cfg, nets[0], inputs, ours, "torch", v) if cfg.cuda else skipped("CUDA only"),
        "plain": step_factory(cfg, nets[1], inputs, plain, None, v),
    }
    params = {"shape": list(shape), "dtype": v[0], "layout": v[1]}
    return Row("training", f"{setting}/{name}", params, ("step",), providers, note)


def pix2pixhd_rows(cfg: Config, shape: tuple[int, ...], v: Variant) -> list[Row]:
    d_ours, d_plain = multiscale_pair(shape[1], features=True)
    nets = (lambda: {"d": d_ours, "vgg": lambda: ganblocks.VGGLoss.pix2pixhd(weights=None)},
            lambda: {"d": d_plain, "vgg": lambda: pix2pixhd.VGGLoss(pix2pixhd.vgg19_features())})  # fmt: skip

    def inputs() -> list[torch.Tensor]:
        return [cfg.tensor(shape, ("float32", v[1])), cfg.tensor(shape, ("float32", v[1]), grad=True)]

    def d_step(gan: Any) -> Step:
        def step(n: Nets, ins: Ins) -> torch.Tensor:
            return (gan(n["d"](ins[1].detach()), False) + gan(n["d"](ins[0]), True)) * 0.5

        return step

    def make_g_step(gan: Any, fm: Any) -> Step:
        def step(n: Nets, ins: Ins) -> torch.Tensor:
            real, fake = ins
            with torch.no_grad():
                pred_real = n["d"](real)
            pred_fake = n["d"](fake)
            return gan(pred_fake, True) + fm(pred_fake, pred_real) + n["vgg"](fake, real) * 10.0

        return g_step(step)

    ours_gan, plain_gan = ganblocks.AdversarialLoss("lsgan"), pix2pixhd.GANLoss()
    fm = ganblocks.FeatureMatchingLoss.pix2pixhd(3, 3)
    a = (shape, v, nets, inputs)
    return [
        row(cfg, "pix2pixhd", "d_step", *a, d_step(ours_gan), d_step(plain_gan), "LSGAN, ½(fake + real), Adam"),
        row(cfg, "pix2pixhd", "g_step", *a, make_g_step(ours_gan, fm),
            make_g_step(plain_gan, pix2pixhd.feature_matching_loss), "GAN + feature matching + 10·VGG, D frozen"),
    ]  # fmt: skip


def msg_rows(cfg: Config, shape: tuple[int, ...], v: Variant) -> list[Row]:
    d_ours, d_plain = msg_pair(cfg, shape[1], shape[2])
    nets = ((lambda: {"d": d_ours}), (lambda: {"d": d_plain}))
    wgan = ganblocks.AdversarialLoss("wgan")

    def inputs() -> list[torch.Tensor]:
        return [cfg.tensor(shape, ("float32", v[1])), *pyramid(cfg, shape, v[1])]

    def d_ours_step(n: Nets, ins: Ins) -> torch.Tensor:
        real, fake = gf.image_pyramid(ins[0], len(ins) - 1), [f.detach() for f in ins[1:]]
        real_out = n["d"](real)
        loss = wgan.d_loss(real_out, n["d"](fake)) + DRIFT * real_out.logits[0].float().square().mean()
        return loss + gf.gradient_penalty(n["d"], real, fake, weight=10.0)

    def d_plain_step(n: Nets, ins: Ins) -> torch.Tensor:
        real, fake = msggan.image_pyramid(ins[0], len(ins) - 1), [f.detach() for f in ins[1:]]
        r = n["d"](real)
        loss = torch.mean(n["d"](fake)) - torch.mean(r) + DRIFT * torch.mean(r.float() ** 2)
        return loss + msggan.gradient_penalty(n["d"], real, fake, reg_lambda=10.0)

    @g_step
    def g_ours(n: Nets, ins: Ins) -> torch.Tensor:
        return wgan.g_loss(n["d"](ins[1:]))

    @g_step
    def g_plain(n: Nets, ins: Ins) -> torch.Tensor:
        return -torch.mean(n["d"](ins[1:]))

    a = (shape, v, nets, inputs)
    return [
        row(cfg, "msg", "d_step", *a, d_ours_step, d_plain_step, "WGAN + WGAN-GP + drift, Adam"),
        row(cfg, "msg", "g_step", *a, g_ours, g_plain, "WGAN generator loss, D frozen"),
    ]


def stylegan_rows(cfg: Config, shape: tuple[int, ...], v: Variant, pair: Any = None, setting: str = "stylegan") -> list[Row]:  # fmt: skip
    d_ours, d_plain = pair or style_pair(shape[1], shape[2])
    nets = ((lambda: {"d": d_ours}), (lambda: {"d": d_plain}))
    ns = ganblocks.AdversarialLoss("non_saturating")

    def inputs() -> list[torch.Tensor]:
        return [cfg.tensor(shape, ("float32", v[1])), cfg.tensor(shape, ("float32", v[1]), grad=True)]

    def d_ours_step(n: Nets, ins: Ins) -> torch.Tensor:
        return ns.d_loss(n["d"](ins[0]), n["d"](ins[1].detach()))

    def d_plain_step(n: Nets, ins: Ins) -> torch.Tensor:
        return sg2.d_logistic_loss(n["d"](ins[0]).float(), n["d"](ins[1].detach()).float())

    @g_step
    def g_ours(n: Nets, ins: Ins) -> torch.Tensor:
        return ns.g_loss(n["d"](ins[1]))

    @g_step
    def g_plain(n: Nets, ins: Ins) -> torch.Tensor:
        return sg2.g_nonsaturating_loss(n["d"](ins[1]).float())

    def r1_ours(n: Nets, ins: Ins) -> torch.Tensor:
        return gf.r1_penalty(n["d"], ins[0], gamma=10.0) * LAZY_R1

    def r1_plain(n: Nets, ins: Ins) -> torch.Tensor:
        real = ins[0].detach().requires_grad_(True)
        pred = n["d"](real)
        return (10.0 / 2 * sg2.d_r1_loss(pred.float(), real) * LAZY_R1 + 0 * pred[0]).sum()

    a = (shape, v, nets, inputs)
    return [
        row(cfg, setting, "d_step", *a, d_ours_step, d_plain_step, "non-saturating loss, Adam"),
        row(cfg, setting, "g_step", *a, g_ours, g_plain, "non-saturating loss, D frozen"),
        row(cfg, setting, "r1_step", *a, r1_ours, r1_plain, f"lazy R1: γ/2 · R1 · {LAZY_R1}, Adam"),
    ]


def stylegan2_rows(cfg: Config, v: Variant) -> list[Row]:
    n, r, z_dim, (g_ours, g_plain), d_pair = stylegan2_pairs(cfg)
    nets = ((lambda: {"d": g_ours, "pl": ganblocks.PathLengthPenalty}), (lambda: {"d": g_plain}))

    def pl_ours(ms: Nets, ins: Ins) -> torch.Tensor:
        return ms["pl"](ms["d"].synthesis, ms["d"].mapping(ins[0][: n // 2])) * 4  # type: ignore[no-any-return]

    def pl_plain(ms: Nets, ins: Ins) -> torch.Tensor:
        ws = ms["d"].mapping(ins[0][: n // 2])
        return sg2.g_path_regularize(ms["d"].synthesis(ws), ws, torch.zeros((), device=ws.device)) * 4

    inputs = lambda: [cfg.tensor((n, z_dim))]  # noqa: E731
    pl = row(
        cfg,
        "stylegan2",
        "pl_step",
        (n, z_dim),
        v,
        nets,
        inputs,
        pl_ours,
        pl_plain,
        "lazy path length × 4, Adam on G",
    )
    return [*stylegan_rows(cfg, (n, 3, r, r), v, d_pair, "stylegan2"), pl]


def rows(cfg: Config) -> list[Row]:
    p2p = cfg.size((1, 3, 32, 32), (1, 3, 128, 128), (4, 3, 512, 512))
    small = cfg.size((4, 3, 16, 16), (4, 3, 64, 64), (16, 3, 256, 256))
    out = []
    for v in cfg.variants():
        out += pix2pixhd_rows(cfg, p2p, v) + msg_rows(cfg, small, v) + stylegan_rows(cfg, small, v)
        out += stylegan2_rows(cfg, v)
    return out
