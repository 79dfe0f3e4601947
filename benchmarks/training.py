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

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

import ganblocks
import ganblocks.functional as gf

from .case import Case
from .composed import MSG_CPU, MSG_FULL, MSG_QUICK, msg_pair, multiscale_pair, style_pair
from .config import Config
from .harness import Budget
from .plain import msggan, pix2pixhd
from .plain import stylegan2 as sg2
from .providers import Step, make_tensor, module_case, msg_pyramid, network_reference_skip, real_fake_inputs

AREA = "training"
LAZY_R1_EVERY = 16
DRIFT = 0.001


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
        """The ``compile`` provider's compiler: each network through ``torch.compile``, the step eager."""
        self.d = torch.compile(self.d)  # type: ignore[assignment]
        if self.vgg is not None:
            self.vgg = torch.compile(self.vgg)  # type: ignore[assignment]
        return self


def _training_case(
    cfg: Config,
    name: str,
    params: dict[str, Any],
    ours: Callable[[], Bundle],
    plain: Callable[[], Bundle],
    **kw: Any,
) -> Case:
    """A training step timed whole; ``kw`` are :func:`module_case`'s (inputs, steps, skips, budget, note)."""
    return module_case(
        cfg,
        AREA,
        name,
        params,
        ("step",),
        ours=ours,
        plain=plain,
        reference_skip=network_reference_skip(cfg),
        compiler=Bundle.compiled,
        **kw,
    )


def _zero(b: Bundle, fakes: list[torch.Tensor]) -> None:
    b.optimizer().zero_grad(set_to_none=True)
    for f in fakes:
        f.grad = None


# pix2pixHD ---------------------------------------------------------------------------------------------


def _p2p_step(gan: Callable[[Any, bool], torch.Tensor], fm: Callable[[Any, Any], torch.Tensor]) -> Step:
    """pix2pixHD's ``Pix2PixHDModel.forward`` order with the LSGAN loss ``gan`` and feature matching ``fm``."""

    def step(b: Bundle, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
        assert b.vgg is not None
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

    return step


def pix2pixhd_case(
    cfg: Config,
    shape: tuple[int, ...],
    dtype: str = "float32",
    layout: str = "contiguous",
    budget: Optional[Budget] = None,
) -> Case:
    d_ours, d_plain = multiscale_pair(shape, features=True)
    return _training_case(
        cfg,
        "pix2pixhd",
        {"shape": list(shape), "dtype": dtype, "layout": layout},
        lambda: Bundle(d_ours(), ganblocks.VGGLoss.pix2pixhd(weights=None)),
        lambda: Bundle(d_plain(), pix2pixhd.VGGLoss(pix2pixhd.vgg19_features())),
        inputs=real_fake_inputs(cfg, shape, layout),
        step=_p2p_step(ganblocks.AdversarialLoss("lsgan"), ganblocks.FeatureMatchingLoss.pix2pixhd(3, 3)),
        step_plain=_p2p_step(pix2pixhd.GANLoss(), pix2pixhd.feature_matching_loss),
        budget=budget,
        note="3-scale D + LSGAN + feature matching + VGG (random weights); plain = pix2pixHD modules and loop",
    )


# A D step then a G step (D frozen): MSG-GAN and StyleGAN -----------------------------------------------


@dataclass(frozen=True)
class Formulation:
    """One side's losses for :func:`_d_then_g_step`.

    Attributes:
        split: the step's inputs -> (real, fake) as the discriminator takes them.
        d_loss: ``d_loss(D, real, detached fake)``, the whole discriminator loss.
        g_loss: ``g_loss(D(fake))``, the generator loss.
    """

    split: Callable[[list[torch.Tensor]], tuple[Any, Any]]
    d_loss: Callable[[nn.Module, Any, Any], torch.Tensor]
    g_loss: Callable[[Any], torch.Tensor]


def _leaves(fake: Any) -> list[torch.Tensor]:
    return list(fake) if isinstance(fake, list) else [fake]


def _detached(fake: Any) -> Any:
    return [f.detach() for f in fake] if isinstance(fake, list) else fake.detach()


def _d_then_g_step(f: Formulation) -> Step:
    def step(b: Bundle, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
        real, fake = f.split(ins)
        with amp():
            loss_d = f.d_loss(b.d, real, _detached(fake))
        _zero(b, _leaves(fake))
        loss_d.backward()
        b.optimizer().step()
        b.d.requires_grad_(False)
        with amp():
            loss_g = f.g_loss(b.d(fake))
        loss_g.backward()
        b.d.requires_grad_(True)

    return step


def _msg_formulations() -> tuple[Formulation, Formulation]:
    """WGAN + WGAN-GP + MSG-GAN's drift term: ganblocks' public API, and MSG-GAN's code."""
    wgan = ganblocks.AdversarialLoss("wgan")

    def d_ours(d: nn.Module, real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
        real_out = d(real)
        loss = wgan.d_loss(real_out, d(fake)) + DRIFT * real_out.logits[0].float().square().mean()
        return loss + gf.gradient_penalty(d, real, fake, weight=10.0)

    def d_plain(d: nn.Module, real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
        r_preds = d(real)
        loss = torch.mean(d(fake)) - torch.mean(r_preds) + DRIFT * torch.mean(r_preds.float() ** 2)
        return loss + msggan.gradient_penalty(d, real, fake, reg_lambda=10.0)

    ours = Formulation(lambda ins: (gf.image_pyramid(ins[0], len(ins) - 1), ins[1:]), d_ours, wgan.g_loss)
    plain = Formulation(
        lambda ins: (msggan.image_pyramid(ins[0], len(ins) - 1), ins[1:]),
        d_plain,
        lambda pred: -torch.mean(pred),
    )
    return ours, plain


def msg_case(
    cfg: Config,
    shape: tuple[int, ...],
    dtype: str = "float32",
    layout: str = "contiguous",
    widths: dict[str, int] = MSG_FULL,
) -> Case:
    d_ours, d_plain = msg_pair(shape, widths)
    pyramid = msg_pyramid(cfg, shape, layout)
    ours, plain = _msg_formulations()
    return _training_case(
        cfg,
        "msg",
        {"shape": list(shape), "dtype": dtype, "layout": layout, **widths},
        lambda: Bundle(d_ours()),
        lambda: Bundle(d_plain()),
        inputs=lambda g: [make_tensor(cfg, shape, g, layout=layout), *pyramid(g)],
        step=_d_then_g_step(ours),
        step_plain=_d_then_g_step(plain),
        compile_skip="torch.compile cannot run the WGAN-GP double backward",
        note="MSG D + WGAN + WGAN-GP + drift; plain = MSG-GAN (BMSG-GAN) discriminator and loss",
    )


def _pair(ins: list[torch.Tensor]) -> tuple[Any, Any]:
    return ins[0], ins[1]


def _style_formulations() -> tuple[Formulation, Formulation]:
    """The non-saturating logistic loss: ganblocks' public API, and stylegan2-pytorch's functions."""
    loss = ganblocks.AdversarialLoss("non_saturating")
    ours = Formulation(_pair, lambda d, real, fake: loss.d_loss(d(real), d(fake)), loss.g_loss)
    plain = Formulation(
        _pair,
        lambda d, real, fake: sg2.d_logistic_loss(d(real).float(), d(fake).float()),
        lambda pred: sg2.g_nonsaturating_loss(pred.float()),
    )
    return ours, plain


def _style_r1_ours(b: Bundle, ins: list[torch.Tensor], amp: Callable[[], Any]) -> None:
    lazy = ganblocks.LazyRegularizer(gf.r1_penalty, every=LAZY_R1_EVERY)
    _zero(b, [])
    with amp():
        penalty = lazy(0, b.d, ins[0], gamma=10.0)
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
    d_ours, d_plain = style_pair(shape)
    ours, plain = _style_formulations()
    params = {"shape": list(shape), "dtype": dtype, "layout": layout}
    inputs = real_fake_inputs(cfg, shape, layout)
    bundles = (lambda: Bundle(d_ours()), lambda: Bundle(d_plain()))
    return [
        _training_case(
            cfg,
            "stylegan",
            params,
            *bundles,
            inputs=inputs,
            step=_d_then_g_step(ours),
            step_plain=_d_then_g_step(plain),
            note="equalized-LR D + minibatch stddev, non-saturating loss (D step + G step); "
            "plain = stylegan2-pytorch formulation",
        ),
        _training_case(
            cfg,
            "stylegan_r1",
            params,
            *bundles,
            inputs=inputs,
            step=_style_r1_ours,
            step_plain=_style_r1_plain,
            compile_skip="torch.compile cannot run the R1 double backward",
            note=f"lazy R1 step (every {LAZY_R1_EVERY}: gamma/2 * R1 * {LAZY_R1_EVERY}) + Adam step",
        ),
    ]


def cases(cfg: Config) -> list[Case]:
    if cfg.quick:
        return [
            pix2pixhd_case(cfg, (1, 3, 32, 32)),
            msg_case(cfg, (4, 3, 16, 16), widths=MSG_QUICK),
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
        msg_case(cfg, (4, 3, 64, 64), widths=MSG_CPU),
        *stylegan_cases(cfg, (4, 3, 64, 64)),
    ]
