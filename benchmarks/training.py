"""End-to-end discriminator-side training steps, each against its plain formulation in the same run.

No generator: a leaf tensor that requires grad stands in for its output (the G step's backward ends there),
so the numbers are the discriminator, losses, penalties and optimizer part of a real step.

- ``pix2pixhd``: 3-scale discriminator, LSGAN, feature matching, VGG loss (random weights): pix2pixHD's
  ``Pix2PixHDModel.forward`` order (D on detached fake, D on real, D on fake; G loss = GAN + FM + 10·VGG,
  D loss = ½(fake + real)), then G backward, D backward, Adam step on D.
- ``msg``: MSG discriminator on image pyramids, WGAN loss + WGAN-GP + MSG-GAN's drift term, Adam step;
  then the G side (WGAN generator loss backward into the fake pyramid).
- ``stylegan``: equalized-LR discriminator with minibatch stddev, non-saturating loss: D step (fake and
  real), Adam step, G step (D frozen). ``stylegan_r1`` is the lazy R1 step that StyleGAN2 adds every 16th
  iteration (R1 × 16, Adam step); the amortized cost per iteration is ``stylegan + stylegan_r1 / 16``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

import torch
from torch import nn

from .blocks import make_tensor, module_provider
from .case import Case, Skip, require
from .composed import style_discriminator
from .discriminators import msg_pyramid
from .harness import Budget
from .plain import msggan, pix2pixhd
from .plain import stylegan2 as sg2

if TYPE_CHECKING:
    from .runner import Config

LAZY_R1_EVERY = 16


class Bundle(nn.Module):
    """The networks of one step (moved and laid out together) and the optimizer, made on first use."""

    def __init__(self, d: nn.Module, vgg: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.d = d
        self.vgg = vgg
        self.opt: Optional[torch.optim.Optimizer] = None

    def optimizer(self) -> torch.optim.Optimizer:
        if self.opt is None:
            params = [p for p in self.d.parameters() if p.requires_grad]
            self.opt = torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))
        return self.opt

    def compiled(self) -> Bundle:
        self.d = torch.compile(self.d)  # type: ignore[assignment]
        if self.vgg is not None:
            self.vgg = torch.compile(self.vgg)  # type: ignore[assignment]
        return self


def _unused(m: Any, ins: list[torch.Tensor]) -> Any:
    raise Skip("training steps are timed as whole steps")


def _providers(
    cfg: Config,
    ours: Callable[[], Bundle],
    plain: Callable[[], Bundle],
    inputs: Callable[[torch.Generator], list[torch.Tensor]],
    step_ours: Callable[[Any, list[torch.Tensor], Callable[[], Any]], Any],
    step_plain: Callable[[Any, list[torch.Tensor], Callable[[], Any]], Any],
    *,
    dtype: str,
    layout: str,
    compile_reason: str = "",
) -> dict[str, Callable[[], Any]]:
    def reference() -> Any:
        if not cfg.cuda:
            raise Skip(
                "on CPU ganblocks (auto) runs the reference path: same numbers as the ganblocks column"
            )
        return module_provider(
            cfg, ours, inputs, _unused, backend="torch", dtype=dtype, layout=layout, step=step_ours
        )()

    def compiled() -> Any:
        if compile_reason:
            raise Skip(compile_reason)
        wl = module_provider(
            cfg, lambda: plain().compiled(), inputs, _unused, dtype=dtype, layout=layout, step=step_plain
        )()
        wl.compiled = True
        return wl

    return {
        "ganblocks": module_provider(
            cfg, ours, inputs, _unused, backend="auto", dtype=dtype, layout=layout, step=step_ours
        ),
        "reference": reference,
        "plain": module_provider(cfg, plain, inputs, _unused, dtype=dtype, layout=layout, step=step_plain),
        "compile": compiled,
    }


def _zero(b: Bundle, fakes: list[torch.Tensor]) -> None:
    b.optimizer().zero_grad(set_to_none=True)
    for f in fakes:
        f.grad = None


# pix2pixHD ---------------------------------------------------------------------------------------------


def _p2p_ours_bundle() -> Bundle:
    msd = require("ganblocks.discriminators", "MultiScaleDiscriminator")
    vgg = require("ganblocks.losses", "VGGLoss").pix2pixhd(weights=None)
    return Bundle(msd(3, num_scales=3, return_features=True), vgg)


def _p2p_plain_bundle() -> Bundle:
    return Bundle(
        pix2pixhd.MultiscaleDiscriminator(3, num_d=3), pix2pixhd.VGGLoss(pix2pixhd.vgg19_features())
    )


def _p2p_step_ours(b: Bundle, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    adversarial, fm_loss = require("ganblocks.losses", "AdversarialLoss", "FeatureMatchingLoss")
    gan = adversarial("lsgan")
    fm = fm_loss.pix2pixhd(3, 3)
    real, fake = ins
    with amp():
        pred_fake_pool = b.d(fake.detach())
        loss_d_fake = gan(pred_fake_pool, False)
        pred_real = b.d(real)
        loss_d_real = gan(pred_real, True)
        pred_fake = b.d(fake)
        loss_g = gan(pred_fake, True) + fm(pred_fake, pred_real) + b.vgg(fake, real) * 10.0
        loss_d = (loss_d_fake + loss_d_real) * 0.5
    _zero(b, [fake])
    loss_g.backward()
    b.optimizer().zero_grad(set_to_none=True)
    loss_d.backward()
    b.optimizer().step()


def _p2p_step_plain(b: Bundle, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    gan = pix2pixhd.GANLoss()
    real, fake = ins
    with amp():
        pred_fake_pool = b.d(fake.detach())
        loss_d_fake = gan(pred_fake_pool, False)
        pred_real = b.d(real)
        loss_d_real = gan(pred_real, True)
        pred_fake = b.d(fake)
        loss_g_gan = gan(pred_fake, True)
        loss_g_feat = pix2pixhd.feature_matching_loss(pred_fake, pred_real)
        loss_g_vgg = b.vgg(fake, real) * 10.0
        loss_g = loss_g_gan + loss_g_feat + loss_g_vgg
        loss_d = (loss_d_fake + loss_d_real) * 0.5
    _zero(b, [fake])
    loss_g.backward()
    b.optimizer().zero_grad(set_to_none=True)
    loss_d.backward()
    b.optimizer().step()


def pix2pixhd_case(
    cfg: Config,
    shape: tuple[int, ...],
    dtype: str = "float32",
    layout: str = "contiguous",
    budget: Optional[Budget] = None,
) -> Case:
    def inputs(g: torch.Generator) -> list[torch.Tensor]:
        return [
            make_tensor(cfg, shape, g, layout=layout),
            make_tensor(cfg, shape, g, layout=layout, requires_grad=True),
        ]

    return Case(
        "training",
        "pix2pixhd",
        {"shape": list(shape), "dtype": dtype, "layout": layout},
        ("step",),
        _providers(
            cfg,
            _p2p_ours_bundle,
            _p2p_plain_bundle,
            inputs,
            _p2p_step_ours,
            _p2p_step_plain,
            dtype=dtype,
            layout=layout,
        ),
        budget=budget,
        note="3-scale D + LSGAN + feature matching + VGG (random weights); plain = pix2pixHD modules and loop",
    )


# MSG-GAN -----------------------------------------------------------------------------------------------

DRIFT = 0.001


def _msg_step_ours(b: Bundle, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    adversarial = require("ganblocks.losses", "AdversarialLoss")
    gradient_penalty = require("ganblocks.penalties", "gradient_penalty")
    image_pyramid = require("ganblocks.discriminators", "image_pyramid")
    wgan = adversarial("wgan")
    real_image, fakes = ins[0], ins[1:]
    real = image_pyramid(real_image, len(fakes))
    with amp():
        real_out = b.d(real)
        fake_out = b.d([f.detach() for f in fakes])
        loss_d = wgan.d_loss(real_out, fake_out) + DRIFT * real_out.logits[0].float().square().mean()
        loss_d = loss_d + gradient_penalty(b.d, real, [f.detach() for f in fakes], weight=10.0)
    _zero(b, fakes)
    loss_d.backward()
    b.optimizer().step()
    b.d.requires_grad_(False)
    with amp():
        loss_g = wgan.g_loss(b.d(list(fakes)))
    loss_g.backward()
    b.d.requires_grad_(True)


def _msg_step_plain(b: Bundle, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    real_image, fakes = ins[0], ins[1:]
    real = msggan.image_pyramid(real_image, len(fakes))
    with amp():
        r_preds = b.d(real)
        f_preds = b.d([f.detach() for f in fakes])
        loss_d = torch.mean(f_preds) - torch.mean(r_preds) + DRIFT * torch.mean(r_preds.float() ** 2)
        loss_d = loss_d + msggan.gradient_penalty(b.d, real, [f.detach() for f in fakes], reg_lambda=10.0)
    _zero(b, fakes)
    loss_d.backward()
    b.optimizer().step()
    b.d.requires_grad_(False)
    with amp():
        loss_g = -torch.mean(b.d(list(fakes)))
    loss_g.backward()
    b.d.requires_grad_(True)


def msg_case(
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
        return [make_tensor(cfg, shape, g, layout=layout), *pyramid(g)]

    def ours() -> Bundle:
        return Bundle(require("ganblocks.discriminators", "MSGDiscriminator")(c, resolution=r, **widths))

    return Case(
        "training",
        "msg",
        {"shape": list(shape), "dtype": dtype, "layout": layout, **widths},
        ("step",),
        _providers(
            cfg,
            ours,
            lambda: Bundle(msggan.Discriminator(r, c, **widths)),
            inputs,
            _msg_step_ours,
            _msg_step_plain,
            dtype=dtype,
            layout=layout,
            compile_reason="torch.compile cannot run the WGAN-GP double backward",
        ),
        note="MSG D + WGAN + WGAN-GP + drift; plain = MSG-GAN (BMSG-GAN) discriminator and loss",
    )


# StyleGAN ----------------------------------------------------------------------------------------------


def _style_step_ours(b: Bundle, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    loss = require("ganblocks.losses", "AdversarialLoss")("non_saturating")
    real, fake = ins
    with amp():
        loss_d = loss.d_loss(b.d(real), b.d(fake.detach()))
    _zero(b, [fake])
    loss_d.backward()
    b.optimizer().step()
    b.d.requires_grad_(False)
    with amp():
        loss_g = loss.g_loss(b.d(fake))
    loss_g.backward()
    b.d.requires_grad_(True)


def _style_step_plain(b: Bundle, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    real, fake = ins
    with amp():
        fake_pred = b.d(fake.detach())
        real_pred = b.d(real)
        loss_d = sg2.d_logistic_loss(real_pred.float(), fake_pred.float())
    _zero(b, [fake])
    loss_d.backward()
    b.optimizer().step()
    b.d.requires_grad_(False)
    with amp():
        loss_g = sg2.g_nonsaturating_loss(b.d(fake).float())
    loss_g.backward()
    b.d.requires_grad_(True)


def _style_r1_ours(b: Bundle, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    lazy_cls, r1_penalty = require("ganblocks.penalties", "LazyRegularizer", "r1_penalty")
    lazy = lazy_cls(r1_penalty, every=LAZY_R1_EVERY)
    real = ins[0]
    _zero(b, [])
    with amp():
        penalty = lazy(0, b.d, real, gamma=10.0)
    assert penalty is not None
    penalty.backward()
    b.optimizer().step()


def _style_r1_plain(b: Bundle, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    real = ins[0].detach().requires_grad_(True)
    _zero(b, [])
    with amp():
        real_pred = b.d(real)
    r1_loss = sg2.d_r1_loss(real_pred.float(), real)
    (10.0 / 2 * r1_loss * LAZY_R1_EVERY + 0 * real_pred[0]).sum().backward()
    b.optimizer().step()


def stylegan_cases(
    cfg: Config, shape: tuple[int, ...], dtype: str = "float32", layout: str = "contiguous"
) -> list[Case]:
    c, r = shape[1], shape[2]

    def inputs(g: torch.Generator) -> list[torch.Tensor]:
        return [
            make_tensor(cfg, shape, g, layout=layout),
            make_tensor(cfg, shape, g, layout=layout, requires_grad=True),
        ]

    params = {"shape": list(shape), "dtype": dtype, "layout": layout}
    ours = lambda: Bundle(style_discriminator(r, c))  # noqa: E731
    plain = lambda: Bundle(sg2.StyleDiscriminator(r, c))  # noqa: E731
    return [
        Case(
            "training",
            "stylegan",
            params,
            ("step",),
            _providers(
                cfg, ours, plain, inputs, _style_step_ours, _style_step_plain, dtype=dtype, layout=layout
            ),
            note="equalized-LR D + minibatch stddev, non-saturating loss (D step + G step); "
            "plain = stylegan2-pytorch formulation",
        ),
        Case(
            "training",
            "stylegan_r1",
            params,
            ("step",),
            _providers(
                cfg,
                ours,
                plain,
                inputs,
                _style_r1_ours,
                _style_r1_plain,
                dtype=dtype,
                layout=layout,
                compile_reason="torch.compile cannot run the R1 double backward",
            ),
            note=f"lazy R1 step (every {LAZY_R1_EVERY}: gamma/2 * R1 * {LAZY_R1_EVERY}) + Adam step",
        ),
    ]


def cases(cfg: Config) -> list[Case]:
    if cfg.quick:
        return [
            pix2pixhd_case(cfg, (1, 3, 32, 32)),
            msg_case(cfg, (4, 3, 16, 16), channel_base=512, max_channels=64),
            *stylegan_cases(cfg, (4, 3, 16, 16)),
        ]
    if cfg.cuda:
        out = []
        for dtype, layout in (("float32", "contiguous"), ("bfloat16", "channels_last")):
            out.append(pix2pixhd_case(cfg, (4, 3, 512, 512), dtype, layout))
            out.append(msg_case(cfg, (16, 3, 256, 256), dtype, layout))
            out += stylegan_cases(cfg, (16, 3, 256, 256), dtype, layout)
        return out
    return [
        pix2pixhd_case(cfg, (1, 3, 128, 128), budget=Budget(warmup=1, min_reps=4, max_reps=20, seconds=1.0)),
        msg_case(cfg, (4, 3, 64, 64), channel_base=2048, max_channels=256),
        *stylegan_cases(cfg, (4, 3, 64, 64)),
    ]
