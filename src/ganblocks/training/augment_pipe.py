r"""StyleGAN2-ADA's augmentation pipeline (Karras et al. 2020): geometric, colour, filter and corruption
transformations, each applied per sample with probability ``multiplier * p``."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Optional, TypeAlias, Union, get_args

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_float_tensor, check_nonnegative, check_probability
from .._precision import upcast
from ..layers.resample import downsample2d, setup_filter, upsample2d
from ..ops._backend import use_triton

AugmentPipePreset: TypeAlias = Literal[
    "blit", "geom", "color", "filter", "noise", "cutout", "bg", "bgc", "bgcf", "bgcfn", "bgcfnc"
]
Probability: TypeAlias = Union[float, torch.Tensor]

BLIT = ("xflip", "rotate90", "xint")
GEOM = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
TRANSFORMS: tuple[str, ...] = (*BLIT, *GEOM, *COLOR, "imgfilter", "noise", "cutout")
# StyleGAN2-ADA's train.py --augpipe specs: the transformations each preset enables (multiplier 1).
PRESETS: dict[str, tuple[str, ...]] = {
    "blit": BLIT,
    "geom": GEOM,
    "color": COLOR,
    "filter": ("imgfilter",),
    "noise": ("noise",),
    "cutout": ("cutout",),
    "bg": (*BLIT, *GEOM),
    "bgc": (*BLIT, *GEOM, *COLOR),
    "bgcf": (*BLIT, *GEOM, *COLOR, "imgfilter"),
    "bgcfn": (*BLIT, *GEOM, *COLOR, "imgfilter", "noise"),
    "bgcfnc": (*BLIT, *GEOM, *COLOR, "imgfilter", "noise", "cutout"),
}

# Daubechies' least-asymmetric low-pass decomposition filters (PyWavelets' "sym6" and "sym2"), the
# orthogonal wavelets StyleGAN2-ADA resamples with (sym6) and builds its filter bank from (sym2).
SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
)  # fmt: skip
SYM2 = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)
# The expected power of the four filter-bank bands for a 1/f spectrum, kept by the band gains.
BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)
LUMA = 1 / math.sqrt(3)  # the luma axis (1, 1, 1) / sqrt(3) of the colour transformations


def filter_bank() -> torch.Tensor:
    """The ``(4, 43)`` filter bank of StyleGAN2-ADA's ``imgfilter``: four octave bands summing to an impulse.

    From the sym2 low-pass :math:`H(z)` and high-pass :math:`H(-z)`: band 0 starts as an impulse, and at
    each of three octaves every band is stretched by 2 (a zero between taps) and low-passed by
    :math:`H(z)H(z^{-1})/2`, and band ``i`` gets :math:`H(-z)H(-z^{-1})/2` added at its centre.
    """
    lo = torch.tensor(SYM2, dtype=torch.float64)
    hi = lo * torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)

    def full_conv(rows: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
        k = taps.numel()
        return F.conv1d(rows.unsqueeze(1), taps.flip(0).view(1, 1, k), padding=k - 1).squeeze(1)

    lo2 = full_conv(lo.view(1, -1), lo.flip(0)).squeeze(0) / 2
    hi2 = full_conv(hi.view(1, -1), hi.flip(0)).squeeze(0) / 2
    bank = torch.zeros(4, 1, dtype=torch.float64)
    bank[0, 0] = 1.0
    for i in range(1, 4):
        stretched = torch.zeros(4, 2 * bank.shape[1] - 1, dtype=torch.float64)
        stretched[:, ::2] = bank
        bank = full_conv(stretched, lo2)
        start = (bank.shape[1] - hi2.numel()) // 2
        bank[i, start : start + hi2.numel()] += hi2
    return bank.float()


@dataclass(frozen=True)
class AugmentParams:
    """The drawn parameters of one :class:`AugmentPipe` call, per sample; identity values where not applied.

    The geometric ones compose the inverse transformation :math:`G^{-1}` (output pixel to input pixel) as
    StyleGAN2-ADA does, in this order: x-flip ``diag(1 - 2 xflip, 1)``, a rotation by
    :math:`\\tfrac{\\pi}{2}` ``rotate90``, a translation by ``-xint``, ``diag(1/scale, 1/scale)``, a
    rotation by ``rotate_pre``, ``diag(1/aniso, aniso)``, a rotation by ``rotate_post``, a translation by
    ``-xfrac`` (rotations :math:`\\begin{pmatrix}\\cos\\theta & -\\sin\\theta\\\\ \\sin\\theta &
    \\cos\\theta\\end{pmatrix}` in pixel coordinates centred on the image). Pin them with
    ``dataclasses.replace(pipe.sample_params(x), rotate_pre=...)`` and pass ``params=`` to the pipe.

    Attributes:
        xflip: ``(N,)``, 1 to mirror horizontally, else 0.
        rotate90: ``(N,)``, quarter turns 0 to 3.
        xint: ``(N, 2)``, integer translation ``(x, y)`` in pixels.
        scale: ``(N,)``, isotropic scale.
        rotate_pre: ``(N,)``, rotation before the anisotropic scaling, radians.
        aniso: ``(N,)``, anisotropic scale (``aniso`` along x, ``1/aniso`` along y).
        rotate_post: ``(N,)``, rotation after the anisotropic scaling, radians.
        xfrac: ``(N, 2)``, fractional translation ``(x, y)`` in pixels.
        brightness: ``(N,)``, added to every channel.
        contrast: ``(N,)``, multiplies every channel.
        lumaflip: ``(N,)``, 1 to reflect the colours through the plane orthogonal to the luma axis.
        hue: ``(N,)``, rotation about the luma axis, radians.
        saturation: ``(N,)``, scale of the colour orthogonal to the luma axis.
        imgfilter: ``(N, 4)``, the gain of each filter band before the power normalisation.
        noise: ``(N, C, H, W)`` additive noise, or None where the pipe adds none.
        cutout_size: ``(N,)``, side of the cut rectangle relative to the image (0: none).
        cutout_center: ``(N, 2)``, its centre ``(x, y)`` relative to the image.
    """

    xflip: torch.Tensor
    rotate90: torch.Tensor
    xint: torch.Tensor
    scale: torch.Tensor
    rotate_pre: torch.Tensor
    aniso: torch.Tensor
    rotate_post: torch.Tensor
    xfrac: torch.Tensor
    brightness: torch.Tensor
    contrast: torch.Tensor
    lumaflip: torch.Tensor
    hue: torch.Tensor
    saturation: torch.Tensor
    imgfilter: torch.Tensor
    noise: Optional[torch.Tensor]
    cutout_size: torch.Tensor
    cutout_center: torch.Tensor


class _GridSample(torch.autograd.Function):
    """Bilinear ``grid_sample`` (zero padding, ``align_corners=False``) differentiable in the input to every order.

    The output is linear in the input, so its input gradient is torch's own backward kernel applied to the
    output gradient, and the gradient of that is this sampling again: each order alternates between the
    two. The grid is a constant (no gradient). torch's own ``grid_sample`` has no double backward on older
    versions (``derivative for aten::grid_sampler_2d_backward is not implemented`` on 2.4.1; 2.13 and 2.15
    have one), and R1 on augmented reals needs it.
    """

    @staticmethod
    def forward(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Optional[torch.Tensor], None]:
        x, grid = ctx.saved_tensors
        return _GridSampleBackward.apply(grad, x, grid), None  # type: ignore[no-untyped-call]


class _GridSampleBackward(torch.autograd.Function):
    """The input gradient of :class:`_GridSample`; ``x`` only gives the shape."""

    @staticmethod
    def forward(grad: torch.Tensor, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        # interpolation 0 = bilinear, padding 0 = zeros, align_corners False; no grid gradient.
        gx, _ = torch.ops.aten.grid_sampler_2d_backward(grad, x, grid, 0, 0, False, [True, False])
        return gx  # type: ignore[no-any-return]

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.save_for_backward(inputs[2])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Optional[torch.Tensor], None, None]:
        (grid,) = ctx.saved_tensors
        return _GridSample.apply(grad, grid), None, None  # type: ignore[no-untyped-call]


def _grid_sample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    # A grid that needs a gradient (learned augmentation parameters) takes torch's own op, which has one.
    if torch.is_grad_enabled() and x.requires_grad and not grid.requires_grad:
        return _GridSample.apply(x, grid)  # type: ignore[no-any-return, no-untyped-call]
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _axis_matrix(
    size: int, resample: Callable[[torch.Tensor], torch.Tensor], like: torch.Tensor
) -> torch.Tensor:
    """The ``(out, size)`` matrix of a resampling along W, read off its response to each unit impulse."""
    impulses = torch.eye(size, dtype=like.dtype, device=like.device).view(size, 1, 1, size)
    return resample(impulses).view(size, -1).t()


def _separable_matmul(x: torch.Tensor, resample: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``resample`` (an upfirdn2d along W with the same settings along H) applied along both axes as products.

    Equal to the separable upfirdn2d up to summation order. On CPU the depthwise convolutions of upfirdn2d's
    reference run the 12-tap sym6 filter at a small fraction of the matrix products' speed: the dense
    ``(2W, W)`` products were 4-10x faster forward and backward from 32 to 128 px images although they multiply
    every zero of the band.
    """
    h, w = x.shape[-2:]
    along_w = _axis_matrix(w, resample, x)
    along_h = along_w if h == w else _axis_matrix(h, resample, x)
    return torch.matmul(along_h, torch.matmul(x, along_w.t()))


def _affine(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor, e: torch.Tensor,
            f: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """``(N, 3, 3)`` matrices with rows ``[a b c], [d e f], [0 0 1]`` from ``(N,)`` entries."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, c, d, e, f, zero, zero, one], dim=-1).view(-1, 3, 3)


def _rotation(theta: torch.Tensor) -> torch.Tensor:
    cos, sin, zero = theta.cos(), theta.sin(), torch.zeros_like(theta)
    return _affine(cos, -sin, zero, sin, cos, zero)


def _scaling(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(sx)
    return _affine(sx, zero, zero, zero, sy, zero)


def _translation(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    zero, one = torch.zeros_like(tx), torch.ones_like(tx)
    return _affine(one, zero, tx, zero, one, ty)


def _const(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device)


def geometric_matrix(params: AugmentParams) -> torch.Tensor:
    """``(N, 3, 3)``: the inverse transformation :math:`G^{-1}` (output pixel to input pixel, centred)."""
    g = _scaling(1 - 2 * params.xflip, torch.ones_like(params.xflip))
    g = g @ _rotation(math.pi / 2 * params.rotate90)
    g = g @ _translation(-params.xint[:, 0], -params.xint[:, 1])
    g = g @ _scaling(1 / params.scale, 1 / params.scale)
    g = g @ _rotation(params.rotate_pre)
    g = g @ _scaling(1 / params.aniso, params.aniso)
    g = g @ _rotation(params.rotate_post)
    return g @ _translation(-params.xfrac[:, 0], -params.xfrac[:, 1])


def color_matrix(params: AugmentParams) -> torch.Tensor:
    """``(N, 4, 4)``: the homogeneous colour transformation :math:`C` (``C @ [r, g, b, 1]``)."""
    b, c, s = params.brightness, params.contrast, params.saturation
    n, like = b.shape[0], b
    eye = torch.eye(4, dtype=like.dtype, device=like.device).expand(n, 4, 4)
    v = _const([LUMA, LUMA, LUMA, 0.0], like)
    vv = torch.outer(v, v)
    zero, one = torch.zeros_like(b), torch.ones_like(b)
    m = torch.stack([one, zero, zero, b, zero, one, zero, b, zero, zero, one, b, zero, zero, zero, one], -1)
    m = m.view(n, 4, 4)  # brightness: translate by b along every channel
    m = torch.diag_embed(torch.stack([c, c, c, one], -1)) @ m
    m = (eye - 2 * vv * params.lumaflip.view(n, 1, 1)) @ m  # Householder reflection
    # Rotation about the unit axis v (Rodrigues' formula): cos I + sin [v]x + (1 - cos) v v^T on xyz.
    theta = params.hue.view(n, 1, 1)
    cross = _const([0, -LUMA, LUMA, 0, LUMA, 0, -LUMA, 0, -LUMA, LUMA, 0, 0, 0, 0, 0, 0], like).view(4, 4)
    eye3 = torch.diag(_const([1.0, 1.0, 1.0, 0.0], like))
    rot = (
        theta.cos() * eye3
        + theta.sin() * cross
        + (1 - theta.cos()) * vv
        + torch.diag(_const([0, 0, 0, 1.0], like))
    )
    m = rot @ m
    return (vv + (eye - vv) * s.view(n, 1, 1)) @ m


class AugmentPipe(nn.Module):
    r"""StyleGAN2-ADA's augmentation pipeline: 15 transformations, each with probability ``multiplier * p``.

    Every transformation is drawn independently per sample and applied with probability
    :math:`\text{multiplier} \cdot p`, in StyleGAN2-ADA's order and parameterisation:

    - **pixel blitting**: ``xflip`` (mirror with probability ½), ``rotate90`` (0-3 quarter turns), ``xint``
      (an integer translation, uniform in :math:`\pm` ``xint_max`` of the size);
    - **general geometric**: ``scale`` (:math:`2^{\mathcal N(0, \sigma^2)}`, ``scale_std``), ``rotate``
      (uniform in :math:`\pm\pi` ``rotate_max``, before and after the anisotropic scaling, each with
      probability :math:`1 - \sqrt{1 - p_r}` so that one or both happen with :math:`p_r`), ``aniso``
      (:math:`2^{\mathcal N(0, \sigma^2)}` along x, its inverse along y, ``aniso_std``), ``xfrac`` (a
      translation :math:`\mathcal N(0, \sigma^2)` of the size, ``xfrac_std``). All geometric ones compose
      into one :math:`3 \times 3` matrix per sample, applied once: the image is reflect-padded, upsampled
      2× with the sym6 wavelet (:func:`~ganblocks.functional.upfirdn2d`), resampled bilinearly and
      downsampled 2× with the same filter. sym6 is not symmetric, so (as in StyleGAN2-ADA) the
      transformations pivot on a point 0.05 px off the image centre, and a flip or a quarter turn also
      shifts the image by ~0.1 px; translations are exact;
    - **colour**: ``brightness`` (add :math:`\mathcal N(0, 0.2^2)`), ``contrast`` (multiply by
      :math:`2^{\mathcal N(0, 0.5^2)}`), ``lumaflip`` (reflect through the plane orthogonal to the luma
      axis :math:`(1,1,1)/\sqrt3` with probability ½), ``hue`` (rotate about it by up to :math:`\pm\pi`
      ``hue_max``), ``saturation`` (scale the chroma by :math:`2^{\mathcal N(0, 1)}`): one :math:`4 \times 4`
      matrix per sample; RGB (3 channels) or L (1 channel, which skips hue and saturation and applies the
      mean of the RGB rows);
    - ``imgfilter``: amplify four octave bands by :math:`2^{\mathcal N(0, 1)}` each (band probability times
      ``imgfilter_bands[i]``), normalised to keep a 1/f spectrum's power;
    - ``noise``: add Gaussian noise of standard deviation :math:`|\mathcal N(0, 0.1^2)|`; ``cutout``: zero a
      rectangle of ``cutout_size`` of the image around a uniform centre.

    The constructor's keywords are StyleGAN2-ADA's ``AugmentPipe`` keywords, so ``AugmentPipe(**kwargs)``
    takes its ``augment_kwargs`` (from ``train.py`` or a training pickle) as they are; every multiplier is 0
    by default, and :meth:`preset` enables StyleGAN2-ADA's ``--augpipe`` sets. The random numbers are drawn
    in StyleGAN2-ADA's order, shapes and dtype (float32), so with the same generator state the result
    equals StyleGAN2-ADA's to rounding. A sample whose drawn parameters are all the identity for a stage
    passes that stage unchanged, so ``p = 0`` returns the images exactly (StyleGAN2-ADA still resamples them).

    Differentiable with respect to the images to every order (R1 on augmented reals). float16/bfloat16
    images (and any input under autocast) are augmented in float32 and returned in their dtype;
    channels_last is kept. Eager mode pads only as far as the batch's transformations need (one host
    synchronisation, as StyleGAN2-ADA); under ``torch.compile`` it pads by the largest margin, which
    gives the same result with static shapes.

    Args:
        xflip, rotate90, xint, scale, rotate, aniso, xfrac, brightness, contrast, lumaflip, hue, saturation,
            imgfilter, noise, cutout: probability multipliers (``>= 0``; 0 disables the transformation).
        xint_max: range of the integer translation, relative to the size (0.125).
        scale_std, aniso_std: log2 standard deviations of the scalings (0.2).
        rotate_max: range of the rotation, 1 = a full circle (1).
        xfrac_std: standard deviation of the fractional translation, relative to the size (0.125).
        brightness_std: standard deviation of the brightness (0.2).
        contrast_std, saturation_std: log2 standard deviations (0.5, 1).
        hue_max: range of the hue rotation, 1 = a full circle (1).
        imgfilter_bands: four multipliers, one per band (``[1, 1, 1, 1]``).
        imgfilter_std: log2 standard deviation of the band gains (1).
        noise_std: standard deviation of the noise's standard deviation (0.1).
        cutout_size: side of the cutout rectangle, relative to the size (0.5).
        p: the starting value of the ``p`` buffer, the overall probability (1, as StyleGAN2-ADA's).

    Shape:
        ``(N, C, H, W) -> (N, C, H, W)``; the colour transformations need ``C`` of 1 or 3, ``imgfilter``
        needs ``H, W >= 22``.

    Example:
        >>> import torch
        >>> from ganblocks.training import AdaptiveAugmentProbability, AugmentPipe
        >>> augment = AugmentPipe.preset("bgc")  # StyleGAN2-ADA's default --augpipe
        >>> ada = AdaptiveAugmentProbability(target=0.6)
        >>> reals = torch.rand(4, 3, 32, 32) * 2 - 1
        >>> augment(reals, p=ada.p).equal(reals)  # p starts at 0: the identity
        True
        >>> augment(reals, p=0.5).shape
        torch.Size([4, 3, 32, 32])
        >>> augment.enabled[:4]
        ('xflip', 'rotate90', 'xint', 'scale')

    Reference:
        Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020
        (appendix B; ``training/augment.py`` of stylegan2-ada-pytorch).
    """

    p: torch.Tensor
    Hz_geom: torch.Tensor
    Hz_fbank: torch.Tensor
    xflip: float
    rotate90: float
    xint: float
    xint_max: float
    scale: float
    rotate: float
    aniso: float
    xfrac: float
    scale_std: float
    rotate_max: float
    aniso_std: float
    xfrac_std: float
    brightness: float
    contrast: float
    lumaflip: float
    hue: float
    saturation: float
    brightness_std: float
    contrast_std: float
    hue_max: float
    saturation_std: float
    imgfilter: float
    imgfilter_std: float
    noise: float
    cutout: float
    noise_std: float
    cutout_size: float
    imgfilter_bands: list[float]

    def __init__(
        self,
        *,
        xflip: float = 0,
        rotate90: float = 0,
        xint: float = 0,
        xint_max: float = 0.125,
        scale: float = 0,
        rotate: float = 0,
        aniso: float = 0,
        xfrac: float = 0,
        scale_std: float = 0.2,
        rotate_max: float = 1,
        aniso_std: float = 0.2,
        xfrac_std: float = 0.125,
        brightness: float = 0,
        contrast: float = 0,
        lumaflip: float = 0,
        hue: float = 0,
        saturation: float = 0,
        brightness_std: float = 0.2,
        contrast_std: float = 0.5,
        hue_max: float = 1,
        saturation_std: float = 1,
        imgfilter: float = 0,
        imgfilter_bands: Sequence[float] = (1, 1, 1, 1),
        imgfilter_std: float = 1,
        noise: float = 0,
        cutout: float = 0,
        noise_std: float = 0.1,
        cutout_size: float = 0.5,
        p: float = 1.0,
    ) -> None:
        super().__init__()
        given = dict(locals())
        for name in (*TRANSFORMS, "xint_max", "scale_std", "rotate_max", "aniso_std", "xfrac_std",
                     "brightness_std", "contrast_std", "hue_max", "saturation_std", "imgfilter_std",
                     "noise_std", "cutout_size"):  # fmt: skip
            setattr(self, name, check_nonnegative(name, given[name]))
        bands = list(imgfilter_bands) if isinstance(imgfilter_bands, Sequence) else imgfilter_bands
        if not isinstance(bands, list) or len(bands) != 4:
            raise ValueError(f"imgfilter_bands must be a sequence of 4 multipliers, got {imgfilter_bands!r}")
        self.imgfilter_bands = [check_nonnegative("imgfilter_bands entry", b) for b in bands]
        self.register_buffer("p", torch.tensor(check_probability("p", p), dtype=torch.float32))
        # StyleGAN2-ADA's buffer names, so that its augment_pipe state dict loads.
        self.register_buffer("Hz_geom", setup_filter(SYM6))
        self.register_buffer("Hz_fbank", filter_bank())

    @classmethod
    def preset(cls, name: AugmentPipePreset, **kwargs: Any) -> AugmentPipe:
        """The pipe of StyleGAN2-ADA's ``--augpipe=name``: its transformations at multiplier 1.

        ``'blit'`` (xflip, rotate90, xint), ``'geom'`` (scale, rotate, aniso, xfrac), ``'color'``
        (brightness, contrast, lumaflip, hue, saturation), ``'filter'``, ``'noise'``, ``'cutout'``, and the
        cumulative ``'bg'``, ``'bgc'`` (StyleGAN2-ADA's default), ``'bgcf'``, ``'bgcfn'``, ``'bgcfnc'``.
        ``kwargs`` (strengths, other multipliers, ``p``) go to the constructor.
        """
        enabled = PRESETS[check_choice("name", name, get_args(AugmentPipePreset))]
        return cls(**{**dict.fromkeys(enabled, 1.0), **kwargs})

    @property
    def enabled(self) -> tuple[str, ...]:
        """The transformations with a multiplier above 0, in the pipe's order."""
        return tuple(name for name in TRANSFORMS if getattr(self, name) > 0)

    def _probability(
        self, p: Optional[Probability], device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        if p is None:
            t = self.p
        elif isinstance(p, torch.Tensor):
            if p.numel() != 1 or not p.is_floating_point():
                raise ValueError(f"p must be a float or a one-element floating tensor, got {p!r:.80}")
            if p.device.type == "cpu":  # checked where it costs no device synchronisation
                check_probability("p", float(p))
            t = p.reshape(())
        else:
            t = torch.tensor(check_probability("p", p), dtype=torch.float32)
        return t.to(device=device, dtype=dtype)

    def _check(self, images: object) -> torch.Tensor:
        x = check_float_tensor("images", images, exact_ndim=4)
        if any(getattr(self, n) > 0 for n in COLOR) and x.shape[1] not in (1, 3):
            raise ValueError(
                "images must have 1 (L) or 3 (RGB) channels for the colour transformations "
                f"({', '.join(n for n in COLOR if getattr(self, n) > 0)}), got shape {tuple(x.shape)}"
            )
        if self.imgfilter > 0 and min(x.shape[2], x.shape[3]) <= self.Hz_fbank.shape[1] // 2:
            raise ValueError(
                f"images must be at least {self.Hz_fbank.shape[1] // 2 + 1} pixels high and wide for imgfilter "
                f"(reflect padding of its {self.Hz_fbank.shape[1]}-tap filter), got shape {tuple(x.shape)}"
            )
        return x

    def sample_params(
        self,
        images: torch.Tensor,
        *,
        p: Optional[Probability] = None,
        generator: Optional[torch.Generator] = None,
    ) -> AugmentParams:
        """Draw the parameters of every transformation for ``images`` (StyleGAN2-ADA's draws, in its order).

        Args:
            images: ``(N, C, H, W)``; only its shape, device and dtype are used.
            p: the overall probability (a float or a one-element tensor such as
                ``AdaptiveAugmentProbability.p``); None uses the ``p`` buffer.
            generator: a ``torch.Generator`` on the images' device (None: the global generator).

        Returns:
            :class:`AugmentParams`, in float64 for float64 images, else float32.
        """
        x = self._check(images)
        n, c, h, w = x.shape
        device = x.device
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        prob = self._probability(p, device, dtype)

        # float32 draws whatever the dtype, so one seed gives the same augmentation in every dtype.
        def rand(*shape: int) -> torch.Tensor:
            return torch.rand(shape, device=device, generator=generator).to(dtype)

        def randn(*shape: int) -> torch.Tensor:
            return torch.randn(shape, device=device, generator=generator).to(dtype)

        def gated(
            value: torch.Tensor, multiplier: Union[float, torch.Tensor], identity: float
        ) -> torch.Tensor:
            chosen = rand(n, *([1] * (value.ndim - 1))) < multiplier
            return torch.where(chosen, value, torch.full_like(value, identity))

        zeros, ones = torch.zeros(n, dtype=dtype, device=device), torch.ones(n, dtype=dtype, device=device)
        xflip = gated(torch.floor(rand(n) * 2), self.xflip * prob, 0) if self.xflip > 0 else zeros
        rotate90 = gated(torch.floor(rand(n) * 4), self.rotate90 * prob, 0) if self.rotate90 > 0 else zeros
        xint = torch.zeros(n, 2, dtype=dtype, device=device)
        if self.xint > 0:
            t = gated((rand(n, 2) * 2 - 1) * self.xint_max, self.xint * prob, 0)
            xint = torch.stack([torch.round(t[:, 0] * w), torch.round(t[:, 1] * h)], 1)
        scale = gated(torch.exp2(randn(n) * self.scale_std), self.scale * prob, 1) if self.scale > 0 else ones
        # Rotation before and after the anisotropic scaling, each with p_rot: one or both with rotate * p.
        p_rot = 1 - torch.sqrt((1 - self.rotate * prob).clamp(0, 1))
        rotate_pre = rotate_post = zeros
        if self.rotate > 0:
            rotate_pre = gated((rand(n) * 2 - 1) * math.pi * self.rotate_max, p_rot, 0)
        aniso = gated(torch.exp2(randn(n) * self.aniso_std), self.aniso * prob, 1) if self.aniso > 0 else ones
        if self.rotate > 0:
            rotate_post = gated((rand(n) * 2 - 1) * math.pi * self.rotate_max, p_rot, 0)
        xfrac = torch.zeros(n, 2, dtype=dtype, device=device)
        if self.xfrac > 0:
            xfrac = gated(randn(n, 2) * self.xfrac_std, self.xfrac * prob, 0) * _const([w, h], xfrac)

        b = gated(randn(n) * self.brightness_std, self.brightness * prob, 0) if self.brightness > 0 else zeros
        con = (
            gated(torch.exp2(randn(n) * self.contrast_std), self.contrast * prob, 1)
            if self.contrast > 0
            else ones
        )
        lumaflip = gated(torch.floor(rand(n) * 2), self.lumaflip * prob, 0) if self.lumaflip > 0 else zeros
        hue = zeros
        if self.hue > 0 and c > 1:
            hue = gated((rand(n) * 2 - 1) * math.pi * self.hue_max, self.hue * prob, 0)
        saturation = ones
        if self.saturation > 0 and c > 1:
            saturation = gated(torch.exp2(randn(n) * self.saturation_std), self.saturation * prob, 1)

        bands = [ones] * 4
        if self.imgfilter > 0:
            for i, band in enumerate(self.imgfilter_bands):
                bands[i] = gated(torch.exp2(randn(n) * self.imgfilter_std), self.imgfilter * prob * band, 1)
        noise = None
        if self.noise > 0:
            sigma = gated(randn(n, 1, 1, 1).abs() * self.noise_std, self.noise * prob, 0)
            noise = randn(n, c, h, w) * sigma
        size, center = zeros, torch.zeros(n, 2, dtype=dtype, device=device)
        if self.cutout > 0:
            size = gated(torch.full_like(zeros, self.cutout_size), self.cutout * prob, 0)
            center = rand(n, 2)
        return AugmentParams(
            xflip=xflip, rotate90=rotate90, xint=xint, scale=scale, rotate_pre=rotate_pre, aniso=aniso,
            rotate_post=rotate_post, xfrac=xfrac, brightness=b, contrast=con, lumaflip=lumaflip, hue=hue,
            saturation=saturation, imgfilter=torch.stack(bands, 1), noise=noise, cutout_size=size,
            cutout_center=center,
        )  # fmt: skip

    def forward(
        self,
        images: torch.Tensor,
        *,
        p: Optional[Probability] = None,
        generator: Optional[torch.Generator] = None,
        params: Optional[AugmentParams] = None,
    ) -> torch.Tensor:
        """Augment ``images``.

        Args:
            images: ``(N, C, H, W)``, floating point.
            p: the overall probability for this call (a float, or a one-element tensor such as
                ``AdaptiveAugmentProbability.p``, which avoids a host synchronisation: a tensor on an
                accelerator is not range-checked); None uses the ``p`` buffer.
            generator: a ``torch.Generator`` on the images' device (None: the global generator).
            params: parameters from :meth:`sample_params` (possibly edited) instead of drawing; ``p`` and
                ``generator`` are then unused, and the parameters of transformations the pipe does not
                enable are not read.

        Returns:
            ``(N, C, H, W)`` in the dtype and memory format of ``images``.
        """
        x = self._check(images)
        if x.shape[0] == 0:
            return x
        if params is None:
            params = self.sample_params(x, p=p, generator=generator)
        elif params.xflip.shape != (x.shape[0],):
            raise ValueError(
                f"params must be drawn for a batch of {x.shape[0]} (images of shape {tuple(x.shape)}), "
                f"got params.xflip of shape {tuple(params.xflip.shape)}"
            )
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        autocast = x.device.type in ("cpu", "cuda")
        with torch.autocast(x.device.type, enabled=False) if autocast else contextlib.nullcontext():
            y = upcast(x)
            if any(getattr(self, name) > 0 for name in (*BLIT, *GEOM)):
                y = self._geometric(y, params)
            if any(getattr(self, name) > 0 for name in COLOR):
                y = self._color(y, params)
            if self.imgfilter > 0:
                y = self._imgfilter(y, params)
            if self.noise > 0 and params.noise is not None:
                y = y + params.noise.to(y.dtype)
            if self.cutout > 0:
                y = self._cutout(y, params)
        y = y.to(x.dtype)
        return y.contiguous(memory_format=torch.channels_last) if channels_last else y.contiguous()

    def _geometric(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        n, c, h, w = x.shape
        g = geometric_matrix(params).to(x.dtype)
        identity = (g == torch.eye(3, dtype=g.dtype, device=g.device)).flatten(1).all(1)
        pad = self.Hz_geom.shape[0] // 4  # the filter's reach, in input pixels, on each side
        cx, cy = (w - 1) / 2, (h - 1) / 2
        if torch.compiler.is_compiling():
            # Static shapes: the largest margin reflect padding allows; the pixels read are the same.
            mx0 = mx1 = w - 1
            my0 = my1 = h - 1
        else:
            corners = _const([-cx, -cy, 1, cx, -cy, 1, cx, cy, 1, -cx, cy, 1], g).view(4, 3).t()
            xy = (g @ corners)[:, :2, :].permute(1, 0, 2).flatten(1)  # (x, y) of the corners in the input
            margin = torch.cat([-xy, xy]).amax(dim=1) + _const([pad * 2 - cx, pad * 2 - cy] * 2, g)
            margin = torch.minimum(margin.clamp(min=0), _const([w - 1, h - 1] * 2, g))
            # One read-back for the margin and for "no sample moves" (always so at ADA's start, p = 0), which
            # skips the resampling and its cost in R1's double backward.
            *bounds, none_moves = torch.cat([margin.ceil(), identity.all().to(g.dtype).view(1)]).tolist()
            if none_moves:
                return x
            mx0, my0, mx1, my1 = (int(v) for v in bounds)
        y = F.pad(x, [mx0, mx1, my0, my1], mode="reflect")
        one = torch.ones(n, dtype=g.dtype, device=g.device)
        g = _translation(one * (mx0 - mx1) / 2, one * (my0 - my1) / 2) @ g
        y = self._resample(y, up=True, pad=pad)
        # To the 2x grid (pixel centres at 2i + 0.5 - 0.5), then to affine_grid's [-1, 1] coordinates.
        g = _scaling(one * 2, one * 2) @ g @ _scaling(one / 2, one / 2)
        g = _translation(-one / 2, -one / 2) @ g @ _translation(one / 2, one / 2)
        out_h, out_w = (h + pad * 2) * 2, (w + pad * 2) * 2
        g = (
            _scaling(one * 2 / y.shape[3], one * 2 / y.shape[2])
            @ g
            @ _scaling(one * out_w / 2, one * out_h / 2)
        )
        grid = F.affine_grid(g[:, :2, :], [n, c, out_h, out_w], align_corners=False)
        y = _grid_sample(y, grid)
        y = self._resample(y, up=False, pad=pad)
        return torch.where(identity.view(n, 1, 1, 1), x, y)

    def _resample(self, x: torch.Tensor, *, up: bool, pad: int) -> torch.Tensor:
        """The 2x sym6 upsampling of the padded image, or the 2x downsampling that crops the padding."""
        if x.device.type != "cpu" or use_triton(None, x, op="upfirdn2d"):
            if up:
                return upsample2d(x, self.Hz_geom, up=2)
            return downsample2d(x, self.Hz_geom, down=2, padding=-pad * 2, flip_filter=True)
        taps = self.Hz_geom.view(1, -1)
        if up:
            return _separable_matmul(x, lambda t: upsample2d(t, taps, up=(2, 1)))
        return _separable_matmul(
            x,
            lambda t: downsample2d(
                t, taps, down=(2, 1), padding=(-pad * 2, -pad * 2, 0, 0), flip_filter=True
            ),
        )

    def _color(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        n, c, h, w = x.shape
        m = color_matrix(params).to(x.dtype)
        identity = (
            (params.brightness == 0) & (params.contrast == 1) & (params.lumaflip == 0) & (params.hue == 0)
            & (params.saturation == 1)
        )  # fmt: skip
        flat = x.reshape(n, c, h * w)
        if c == 3:
            y = m[:, :3, :3] @ flat + m[:, :3, 3:]
        else:  # L: the mean of the RGB rows acting on (l, l, l)
            row = m[:, :3, :].mean(dim=1, keepdim=True)
            y = flat * row[:, :, :3].sum(dim=2, keepdim=True) + row[:, :, 3:]
        return torch.where(identity.view(n, 1, 1, 1), x, y.reshape(n, c, h, w))

    def _imgfilter(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        n, c, h, w = x.shape
        gains = params.imgfilter.to(x.dtype)
        power = _const(BAND_POWER, gains)
        total = torch.ones_like(gains)
        for i in range(4):
            # One band amplified, then all four rescaled to keep the expected power, as StyleGAN2-ADA.
            t = torch.where(torch.arange(4, device=x.device) == i, gains[:, i : i + 1], 1.0)
            total = total * (t / (power * t.square()).sum(dim=-1, keepdim=True).sqrt())
        taps = (total @ self.Hz_fbank.to(x.dtype)).repeat_interleave(c, dim=0)  # (N*C, 43)
        k = taps.shape[1]
        y = F.pad(x.reshape(1, n * c, h, w), [k // 2] * 4, mode="reflect")
        y = F.conv2d(y, taps.view(n * c, 1, 1, k), groups=n * c)
        y = F.conv2d(y, taps.view(n * c, 1, k, 1), groups=n * c).reshape(n, c, h, w)
        identity = (params.imgfilter == 1).all(dim=1)
        return torch.where(identity.view(n, 1, 1, 1), x, y)

    def _cutout(self, x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        n, _, h, w = x.shape
        size = params.cutout_size.to(x.dtype).view(n, 1, 1, 1) / 2
        center = params.cutout_center.to(x.dtype)
        cols = (torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) / w
        rows = (torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) / h
        outside_x = (cols.view(1, 1, 1, w) - center[:, 0].view(n, 1, 1, 1)).abs() >= size
        outside_y = (rows.view(1, 1, h, 1) - center[:, 1].view(n, 1, 1, 1)).abs() >= size
        return x * (outside_x | outside_y).to(x.dtype)

    def extra_repr(self) -> str:
        enabled = ", ".join(f"{name}={getattr(self, name):g}" for name in self.enabled)
        return f"{enabled or 'identity'}, p={float(self.p):g}"
