r"""Differentiable augmentation (Zhao et al. 2020): colour, translation and cutout, per sample and batched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Optional, TypeAlias, Union, get_args

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_float_tensor, check_probability

AugmentOp: TypeAlias = Literal["color", "translation", "cutout"]
AUGMENT_OPS: tuple[str, ...] = get_args(AugmentOp)
DEFAULT_POLICY: tuple[AugmentOp, ...] = ("color", "translation", "cutout")
Probability: TypeAlias = Union[float, torch.Tensor]


def _policy(policy: Union[str, Sequence[AugmentOp]]) -> tuple[AugmentOp, ...]:
    """A policy as a tuple of op names: ``"color,translation"`` or ``("color", "translation")``."""
    names: Sequence[str]
    if isinstance(policy, str):
        names = [p.strip() for p in policy.split(",") if p.strip()]
    elif isinstance(policy, Sequence):
        names = list(policy)
    else:
        raise TypeError(f"policy must be a comma-separated str or a sequence of names, got {policy!r}")
    return tuple(check_choice("policy entry", n, get_args(AugmentOp)) for n in names)


def _ratio(name: str, value: float) -> float:
    v = check_probability(name, value)
    if v == 0.0:
        raise ValueError(f"{name} must be in (0, 1], got {value}; leave the op out of the policy instead")
    return v


def _check_p(p: Probability, x: torch.Tensor) -> Optional[torch.Tensor]:
    """None when every sample is augmented (p == 1), else ``p`` as a 0-d tensor on ``x``'s device."""
    if isinstance(p, torch.Tensor):
        if p.numel() != 1 or not p.is_floating_point():
            raise ValueError(f"p must be a float or a one-element floating tensor, got {p!r:.80}")
        return p.reshape(()).to(x.device)
    if check_probability("p", p) == 1.0:
        return None
    return torch.tensor(p, device=x.device)


def _chosen(
    n: int, p: Optional[torch.Tensor], x: torch.Tensor, generator: Optional[torch.Generator]
) -> Optional[torch.Tensor]:
    """Per sample, whether this transform applies (a bool ``(N,)`` tensor), or None for all."""
    if p is None:
        return None
    return torch.rand(n, device=x.device, generator=generator) < p


def _uniform(n: int, x: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    # Drawn in float32 whatever x's dtype: the same generator gives the same factors in every dtype.
    return torch.rand(n, 1, 1, 1, device=x.device, generator=generator).to(x.dtype)


def _gate(value: torch.Tensor, identity: float, chosen: Optional[torch.Tensor]) -> torch.Tensor:
    """``value`` where the sample is chosen, else the identity of the transform."""
    if chosen is None:
        return value
    return torch.where(chosen.view(-1, *([1] * (value.ndim - 1))), value, torch.full_like(value, identity))


def _color(x: torch.Tensor, p: Optional[torch.Tensor], generator: Optional[torch.Generator]) -> torch.Tensor:
    n = x.shape[0]
    brightness = _gate(_uniform(n, x, generator) - 0.5, 0.0, _chosen(n, p, x, generator))
    x = x + brightness
    saturation = _gate(_uniform(n, x, generator) * 2.0, 1.0, _chosen(n, p, x, generator))
    mean_c = x.mean(dim=1, keepdim=True)
    x = torch.addcmul(mean_c, x - mean_c, saturation)
    contrast = _gate(_uniform(n, x, generator) + 0.5, 1.0, _chosen(n, p, x, generator))
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return torch.addcmul(mean, x - mean, contrast)


def _shifts(
    n: int, size: int, ratio: float, x: torch.Tensor, generator: Optional[torch.Generator]
) -> torch.Tensor:
    s = int(size * ratio + 0.5)
    return torch.randint(-s, s + 1, (n,), device=x.device, generator=generator)


def _translation(
    x: torch.Tensor, ratio: float, p: Optional[torch.Tensor], generator: Optional[torch.Generator]
) -> torch.Tensor:
    n, c, h, w = x.shape
    chosen = _chosen(n, p, x, generator)
    ty = _gate(_shifts(n, h, ratio, x, generator), 0, chosen)
    tx = _gate(_shifts(n, w, ratio, x, generator), 0, chosen)
    # out[i, j] = x[i + ty, j + tx], zero outside: index the zero-padded image, clamped into its border.
    rows = (torch.arange(h, device=x.device) + ty.view(n, 1) + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device) + tx.view(n, 1) + 1).clamp(0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1))
    y = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2))
    return y.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def _cutout(
    x: torch.Tensor, ratio: float, p: Optional[torch.Tensor], generator: Optional[torch.Generator]
) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    chosen = _chosen(n, p, x, generator)
    # The square's centre: uniform over the image (one more position for an even size, as the reference).
    cy = torch.randint(0, h + (1 - sh % 2), (n, 1), device=x.device, generator=generator)
    cx = torch.randint(0, w + (1 - sw % 2), (n, 1), device=x.device, generator=generator)
    i = torch.arange(h, device=x.device)
    j = torch.arange(w, device=x.device)
    in_rows = (i >= cy - sh // 2) & (i < cy - sh // 2 + sh)
    in_cols = (j >= cx - sw // 2) & (j < cx - sw // 2 + sw)
    cut = in_rows.view(n, 1, h, 1) & in_cols.view(n, 1, 1, w)
    if chosen is not None:
        cut = cut & chosen.view(n, 1, 1, 1)
    return x * (~cut).to(x.dtype)


def diff_augment(
    x: torch.Tensor,
    policy: Union[str, Sequence[AugmentOp]] = DEFAULT_POLICY,
    *,
    p: Probability = 1.0,
    translation_ratio: float = 0.125,
    cutout_ratio: float = 0.5,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    r"""DiffAugment: random colour, translation and cutout, differentiable with respect to ``x``.

    Apply the same function to real and generated images, in the discriminator's and in the generator's
    step, so that the generator is trained through the augmentation. Each op draws its own parameters per
    sample, in policy order (each sample independently, no Python loop over the batch):

    - ``color``: brightness :math:`x + b`, :math:`b \sim U(-0.5, 0.5)`; saturation
      :math:`(x - \bar x_c)\, s + \bar x_c`, :math:`s \sim U(0, 2)`, :math:`\bar x_c` the mean over
      channels at each pixel; contrast :math:`(x - \bar x)\, c + \bar x`, :math:`c \sim U(0.5, 1.5)`,
      :math:`\bar x` the mean over the whole image;
    - ``translation``: an integer shift :math:`(t_y, t_x)` with
      :math:`|t_y| \le \lfloor r_t H + 0.5 \rfloor` (and likewise along :math:`W`), filling with zeros:
      :math:`y_{ij} = x_{i + t_y,\, j + t_x}`;
    - ``cutout``: zero a square of :math:`\lfloor r_c H + 0.5 \rfloor \times \lfloor r_c W + 0.5 \rfloor`
      pixels (clipped at the border) around a uniformly drawn centre.

    With ``p < 1`` (adaptive augmentation, see :class:`~ganblocks.training.AdaptiveAugmentProbability`)
    each transform (brightness, saturation, contrast, translation and cutout separately) applies to each
    sample with probability ``p``; the others pass through unchanged.

    Args:
        x: images ``(N, C, H, W)``, floating point.
        policy: the ops in order: a comma-separated string as in the reference (``"color,translation,cutout"``)
            or a sequence of ``"color"``, ``"translation"``, ``"cutout"``.
        p: the probability of each transform per sample (a float, or a one-element tensor such as
            ``AdaptiveAugmentProbability.p``, which avoids a host synchronisation).
        translation_ratio: :math:`r_t`, the largest shift as a fraction of the size (0.125).
        cutout_ratio: :math:`r_c`, the side of the cut square as a fraction of the size (0.5).
        generator: a ``torch.Generator`` on ``x``'s device.

    Returns:
        ``(N, C, H, W)``, in ``x``'s dtype, differentiable with respect to ``x``.

    Example:
        >>> import torch
        >>> from ganblocks.training import diff_augment
        >>> x = torch.ones(3, 1, 8, 8)
        >>> y = diff_augment(x, "cutout", generator=torch.Generator().manual_seed(0))
        >>> (y == 0).flatten(1).sum(1).tolist()  # a 4x4 square, clipped at the border
        [8, 6, 16]
        >>> diff_augment(torch.randn(16, 3, 32, 32), p=0.5).shape  # "color,translation,cutout"
        torch.Size([16, 3, 32, 32])

    Reference:
        Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS 2020
        (``DiffAugment_pytorch.py``).
    """
    x = check_float_tensor("x", x, exact_ndim=4)
    ops = _policy(policy)
    tr, cr = _ratio("translation_ratio", translation_ratio), _ratio("cutout_ratio", cutout_ratio)
    prob = _check_p(p, x)
    if x.shape[0] == 0:
        return x
    for op in ops:
        if op == "color":
            x = _color(x, prob, generator)
        elif op == "translation":
            x = _translation(x, tr, prob, generator)
        else:
            x = _cutout(x, cr, prob, generator)
    return x


class DiffAugment(nn.Module):
    r"""DiffAugment as a module; see :func:`ganblocks.training.diff_augment`.

    Args:
        policy: the ops in order (default ``("color", "translation", "cutout")``).
        translation_ratio: the largest shift as a fraction of the size (0.125).
        cutout_ratio: the side of the cut square as a fraction of the size (0.5).

    Example:
        >>> import torch
        >>> from ganblocks.training import DiffAugment
        >>> augment = DiffAugment("translation")
        >>> augment(torch.randn(4, 3, 16, 16)).shape
        torch.Size([4, 3, 16, 16])
        >>> augment
        DiffAugment(policy=('translation',), translation_ratio=0.125, cutout_ratio=0.5)
    """

    def __init__(
        self,
        policy: Union[str, Sequence[AugmentOp]] = DEFAULT_POLICY,
        *,
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
    ) -> None:
        super().__init__()
        self.policy = _policy(policy)
        self.translation_ratio = _ratio("translation_ratio", translation_ratio)
        self.cutout_ratio = _ratio("cutout_ratio", cutout_ratio)

    def forward(
        self, x: torch.Tensor, *, p: Probability = 1.0, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        return diff_augment(
            x,
            self.policy,
            p=p,
            translation_ratio=self.translation_ratio,
            cutout_ratio=self.cutout_ratio,
            generator=generator,
        )

    def extra_repr(self) -> str:
        return f"policy={self.policy}, translation_ratio={self.translation_ratio}, cutout_ratio={self.cutout_ratio}"
