r"""The adaptive augmentation probability of StyleGAN2-ADA (Karras et al. 2020): the :math:`r_t` heuristic."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .._checks import check_int, check_positive, check_probability
from ..outputs import PredLike, as_logits


class AdaptiveAugmentProbability(nn.Module):
    r"""Adjust the augmentation probability :math:`p` from the discriminator's overfitting heuristic.

    StyleGAN2-ADA measures overfitting by the sign of the discriminator's outputs on real images,

    .. math::
        r_t = \mathbb{E}[\operatorname{sign}(D(x_\text{real}))],

    averaged over every ``interval`` calls of :meth:`update` (every logit of every scale counts for a
    patch or multi-scale discriminator), and then moves :math:`p` by a fixed speed towards the target:

    .. math::
        p \leftarrow \operatorname{clamp}\Big(p + \operatorname{sign}(r_t - \text{target})
        \cdot \frac{n}{1000\, \text{speed\_kimg}},\; 0,\; 1\Big)

    where :math:`n` is the number of images in those calls (StyleGAN2-ADA's ``batch_size * ada_interval``),
    so :math:`p` can go from 0 to 1 in ``speed_kimg`` thousand images. :math:`p` is clamped to
    :math:`[0, 1]`, where StyleGAN2-ADA only floors it at 0: a probability above 1 would augment no more
    than 1 does, and clamping lets :math:`p` start falling as soon as :math:`r_t` drops below the target.

    Non-finite logits (NaN, :math:`\pm\infty`, e.g. from a diverging step) are left out of :math:`r_t`:
    they neither count nor add a sign, so one bad batch cannot drag :math:`p` down (found on the device,
    with no synchronisation). An interval whose logits were all non-finite leaves :math:`p` unchanged and
    sets ``r_t`` to NaN. Feed ``ada.p`` (a 0-d tensor on the logits' device, so nothing synchronises) to
    :class:`~ganblocks.training.AugmentPipe` (``augment(reals, p=ada.p)``, StyleGAN2-ADA's pipeline),
    :func:`~ganblocks.training.diff_augment` or any augmentation taking a probability; ``float(ada.p)``
    for logging.

    Under DDP the sign sums are all-reduced over the processes at each adjustment (when a default process
    group is initialised), so every rank gets the same :math:`p`; pass the per-process logits.

    Args:
        target: the target :math:`r_t` (0.6).
        interval: update calls between adjustments (StyleGAN2-ADA's ``ada_interval``, 4).
        speed_kimg: thousands of images for :math:`p` to go from 0 to 1 (``ada_kimg``, 500).
        initial_p: the starting probability (0).

    Example:
        >>> import torch
        >>> from ganblocks.training import AdaptiveAugmentProbability
        >>> ada = AdaptiveAugmentProbability(interval=2, speed_kimg=0.1)  # 100 images from 0 to 1
        >>> for _ in range(4):
        ...     ada.update(torch.ones(8, 1))  # D sure every real is real: r_t = 1 > 0.6
        >>> float(ada.p)  # two adjustments of 16 / 100
        0.32
        >>> float(ada.r_t)
        1.0

    Reference:
        Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020
        (section 3; ``training/training_loop.py`` of stylegan2-ada-pytorch).
    """

    p: torch.Tensor
    sign_sum: torch.Tensor
    r_t: torch.Tensor
    nonfinite: torch.Tensor

    def __init__(
        self, *, target: float = 0.6, interval: int = 4, speed_kimg: float = 500.0, initial_p: float = 0.0
    ) -> None:
        super().__init__()
        self.target = check_probability("target", target)
        self.interval = check_int("interval", interval)
        self.speed_kimg = check_positive("speed_kimg", speed_kimg)
        # float64 so that many small steps add up exactly enough; torch.rand(n) < p compares fine.
        p0 = check_probability("initial_p", initial_p)
        self.register_buffer("p", torch.tensor(p0, dtype=torch.float64))
        self.register_buffer("sign_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("r_t", torch.tensor(float("nan"), dtype=torch.float64))  # the last r_t
        self.register_buffer("nonfinite", torch.zeros((), dtype=torch.float64))  # logits left out
        self.count = 0  # logits seen, non-finite ones included
        self.images = 0  # images since the last adjustment
        self.calls = 0  # update calls since the last adjustment

    @torch.no_grad()
    def update(self, real_logits: PredLike) -> None:
        """Accumulate :math:`\\mathrm{sign}(D(x_\\text{real}))`; every ``interval`` calls, adjust :math:`p`.

        Args:
            real_logits: the discriminator's logits on real images (a tensor, a list of scales or a
                ``DiscriminatorOutput``); only the signs of the finite ones are used.
        """
        logits = as_logits("real_logits", real_logits)
        device = logits[0].device
        if self.sign_sum.device != device:
            self.to(device)
        for x in logits:
            if x.numel() == 0:
                raise ValueError(f"real_logits must not be empty, got shape {tuple(x.shape)}")
            x = x.detach()
            finite = x.isfinite()
            self.sign_sum += torch.where(finite, x.sign(), 0).sum(dtype=torch.float64)
            self.nonfinite += finite.logical_not().sum(dtype=torch.float64)
            self.count += x.numel()
        self.images += logits[0].shape[0] if logits[0].ndim > 0 else 1
        self.calls += 1
        if self.calls >= self.interval:
            self._adjust()

    def _adjust(self) -> None:
        counts = torch.tensor([self.count, self.images], dtype=torch.float64, device=self.sign_sum.device)
        stats = torch.cat([self.sign_sum.view(1), counts[:1] - self.nonfinite.view(1), counts[1:]])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats)  # sums over the processes: sign sum, finite logits, images
        self.r_t.copy_(stats[0] / stats[1])  # NaN when no logit was finite
        step = torch.sign(self.r_t - self.target) * stats[2] / (self.speed_kimg * 1000.0)
        step = torch.where(stats[1] > 0, step, 0.0)
        self.p.copy_((self.p + step).clamp(0.0, 1.0))
        self.sign_sum.zero_()
        self.nonfinite.zero_()
        self.count = self.images = self.calls = 0

    def get_extra_state(self) -> dict[str, Any]:
        return {"count": self.count, "images": self.images, "calls": self.calls}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.count, self.images, self.calls = int(state["count"]), int(state["images"]), int(state["calls"])

    def extra_repr(self) -> str:
        return f"target={self.target}, interval={self.interval}, speed_kimg={self.speed_kimg}"
