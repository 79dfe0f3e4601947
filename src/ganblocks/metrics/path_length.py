r"""Perceptual path length (Karras et al. 2019): how fast the image changes along a short latent step.

.. math::
    \mathrm{PPL} = \mathbb{E}\Big[\tfrac{1}{\epsilon^2}\, d\big(g(\ell(t)),\ g(\ell(t + \epsilon))\big)\Big]

with :math:`\ell` the path between two random latents (``space="z"``: spherical interpolation between
:math:`z_0, z_1 \sim N(0, I)`, then the mapping; ``space="w"``: linear interpolation between their
mapped :math:`w_0, w_1`), :math:`t \sim U[0, 1)` (``sampling="full"``) or :math:`t = 0` (``"end"``),
:math:`\epsilon = 10^{-4}`, :math:`g` the synthesis network and :math:`d` a perceptual distance (LPIPS in the
paper). The expectation is the mean of the samples between the 1st and the 99th percentile, as StyleGAN's
and StyleGAN2-ADA's ``metrics/perceptual_path_length.py`` compute it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Literal, Optional, Protocol, TypeAlias, Union, cast

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_int, check_positive, check_tensor
from ..losses.perceptual import InputRange
from ..losses.vgg import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG19_LAYERS,
    WeightsSpec,
    load_vgg19_weights,
    vgg19_features,
)

Space: TypeAlias = Literal["z", "w"]
Sampling: TypeAlias = Literal["full", "end"]
Distance: TypeAlias = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Mapping: TypeAlias = Callable[..., torch.Tensor]
Synthesis: TypeAlias = Callable[[torch.Tensor], torch.Tensor]

#: The VGG19 layers of the default distance: the last ReLU of each block, as LPIPS taps VGG16's.
LPIPS_VGG19_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")
# The images the distance sees are at most this size; larger ones are box-filtered (StyleGAN2-ADA).
_DISTANCE_RESOLUTION = 256


class _StyleGenerator(Protocol):
    """A generator with StyleGAN2-ADA's submodules: ``mapping(z, c) -> w`` and ``synthesis(w) -> images``."""

    mapping: Mapping
    synthesis: Synthesis


def slerp(a: torch.Tensor, b: torch.Tensor, t: Union[torch.Tensor, float]) -> torch.Tensor:
    r"""Spherical interpolation between the directions of ``a`` and ``b``, along the last dimension.

    .. math::
        \hat a = \frac{a}{\lVert a\rVert},\quad \hat b = \frac{b}{\lVert b\rVert},\quad
        \theta = \arccos(\hat a\cdot\hat b),\quad
        \operatorname{slerp}(a, b, t) = \hat a\cos(t\theta) + \hat c\sin(t\theta),\quad
        \hat c = \frac{\hat b - (\hat a\cdot\hat b)\,\hat a}{\lVert\hat b - (\hat a\cdot\hat b)\,\hat a\rVert}

    The result has unit norm (the magnitudes of ``a`` and ``b`` are dropped, as in StyleGAN's PPL, whose
    mapping network normalises ``z`` anyway): ``t = 0`` gives :math:`\hat a`, ``t = 1`` gives :math:`\hat b`,
    and ``t`` outside [0, 1] continues along the same great circle at angular speed :math:`\theta`. Parallel
    ``a`` and ``b`` have no plane to rotate in and give NaN.

    Args:
        a, b: ``(..., D)``.
        t: a number, or a tensor broadcastable to ``(..., 1)`` (e.g. ``(N, 1)`` for ``(N, D)`` latents).

    Example:
        >>> import torch
        >>> from ganblocks.metrics import slerp
        >>> a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
        >>> slerp(a, b, 0.5)
        tensor([[0.7071, 0.7071]])
    """
    a = check_tensor("a", a)
    b = check_tensor("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    # acos of a cosine rounded just past +-1 would be NaN.
    p = t * torch.acos(d.clamp(-1.0, 1.0))
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    out: torch.Tensor = a * torch.cos(p) + c * torch.sin(p)
    unit: torch.Tensor = out / out.norm(dim=-1, keepdim=True)
    return unit


def percentile_filtered_mean(values: torch.Tensor, *, lower: float = 1.0, upper: float = 99.0) -> float:
    """The mean of the values between the ``lower`` and ``upper`` percentiles, both bounds included.

    The bounds are sample values, not interpolated: the ``lower`` percentile rounded down (numpy's
    ``np.percentile(v, lower, method="lower")``) and the ``upper`` one rounded up (``method="higher"``), as
    StyleGAN2-ADA filters PPL samples. Computed in float64.

    Example:
        >>> import torch
        >>> from ganblocks.metrics import percentile_filtered_mean
        >>> percentile_filtered_mean(torch.tensor([1.0, 2.0, 3.0, 1000.0]), lower=0, upper=50)
        2.0
    """
    v = check_tensor("values", values)
    if v.ndim != 1 or v.numel() == 0:
        raise ValueError(f"values must be a non-empty 1-d tensor, got shape {tuple(v.shape)}")
    lo_q = check_positive("lower", lower, allow_zero=True)
    hi_q = check_positive("upper", upper, allow_zero=True)
    if not lo_q <= hi_q <= 100:
        raise ValueError(f"lower and upper must satisfy 0 <= lower <= upper <= 100, got {lower} and {upper}")
    v = v.detach().to(torch.float64)
    if not bool(torch.isfinite(v).all()):
        raise ValueError(
            f"values must be finite, got {int((~torch.isfinite(v)).sum())} NaN or infinite values"
        )
    s = torch.sort(v).values
    n = s.numel()
    # numpy's virtual index (n - 1) * q / 100, rounded down for "lower" and up for "higher".
    lo = s[math.floor((n - 1) * (lo_q / 100))]
    hi = s[math.ceil((n - 1) * (hi_q / 100))]
    return float(v[(v >= lo) & (v <= hi)].mean())


def _check_options(
    num_samples: int, batch_size: int, epsilon: float, space: str, sampling: str
) -> tuple[int, int, float, Space, Sampling]:
    return (
        check_int("num_samples", num_samples),
        check_int("batch_size", batch_size),
        check_positive("epsilon", epsilon),
        check_choice("space", space, ("z", "w")),
        check_choice("sampling", sampling, ("full", "end")),
    )


def _resolve(
    G: Optional[object], mapping: Optional[Mapping], synthesis: Optional[Synthesis], z_dim: Optional[int]
) -> tuple[Optional[Mapping], Synthesis, int]:
    if G is not None:
        if mapping is not None or synthesis is not None:
            raise ValueError("pass either G or mapping= and synthesis=, not both")
        if not (callable(getattr(G, "mapping", None)) and callable(getattr(G, "synthesis", None))):
            raise TypeError(
                f"G must have callable .mapping and .synthesis (StyleGAN2-ADA's convention), got {type(G).__name__}"
            )
        style = cast(_StyleGenerator, G)
        mapping, synthesis = style.mapping, style.synthesis
        if z_dim is None:
            z_dim = getattr(G, "z_dim", None)
    if synthesis is None:
        raise ValueError("synthesis must be given (or a G with .mapping and .synthesis)")
    if z_dim is None:
        raise ValueError("z_dim must be given when the generator has no z_dim attribute")
    return mapping, synthesis, check_int("z_dim", z_dim)


def _prepare_images(img: torch.Tensor, resolution: int, crop: bool) -> torch.Tensor:
    """StyleGAN2-ADA's crop, box downsampling to at most 256 pixels, grayscale to 3 channels."""
    if crop:
        if img.shape[2] != img.shape[3]:
            raise ValueError(f"crop=True needs square images, got {tuple(img.shape)}")
        # The central face region of FFHQ-aligned images: rows 3/8..7/8, columns 2/8..6/8.
        c = img.shape[2] // 8
        img = img[:, :, c * 3 : c * 7, c * 2 : c * 6]
    # The factor comes from the full resolution, so a crop is downsampled like the whole image.
    factor = resolution // _DISTANCE_RESOLUTION
    if factor > 1:
        img = F.avg_pool2d(img, factor)
    if img.shape[1] == 1:
        img = img.repeat(1, 3, 1, 1)
    return img


def path_length_distances(
    G: Optional[object] = None,
    *,
    mapping: Optional[Mapping] = None,
    synthesis: Optional[Synthesis] = None,
    z_dim: Optional[int] = None,
    distance: Distance,
    num_samples: int = 50_000,
    batch_size: int = 32,
    epsilon: float = 1e-4,
    space: Space = "w",
    sampling: Sampling = "end",
    crop: bool = False,
    c: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    device: Optional[Union[torch.device, str]] = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""The ``num_samples`` path-length samples :math:`d(g(\ell(t)), g(\ell(t + \epsilon))) / \epsilon^2`.

    :func:`perceptual_path_length` is :func:`percentile_filtered_mean` of these; the arguments are
    described there. Returns a float64 tensor ``(num_samples,)`` on ``device``.
    """
    num_samples, batch_size, epsilon, space, sampling = _check_options(
        num_samples, batch_size, epsilon, space, sampling
    )
    mapping, synthesis, z_dim = _resolve(G, mapping, synthesis, z_dim)
    if not callable(distance):
        raise TypeError(f"distance must be a callable (img0, img1) -> (N,), got {type(distance).__name__}")
    if c is not None:
        c = check_tensor("c", c)
        if c.ndim != 2 or c.shape[0] != num_samples:
            raise ValueError(
                f"c must have shape (num_samples, c_dim) = ({num_samples}, c_dim), got {tuple(c.shape)}"
            )
    if device is None and isinstance(G, nn.Module):
        device = next((p.device for p in G.parameters()), None)
    if device is None and generator is not None:
        device = generator.device
    target = torch.device(device) if device is not None else torch.device("cpu")
    draw_on = generator.device if generator is not None else target
    map_fn: Mapping = mapping if mapping is not None else (lambda z, *_: z)
    out: list[torch.Tensor] = []
    with torch.no_grad():
        for start in range(0, num_samples, batch_size):
            n = min(batch_size, num_samples - start)
            # StyleGAN2-ADA's order of draws: t, then both latents in one call.
            t = torch.rand(n, generator=generator, device=draw_on, dtype=dtype).to(target)
            if sampling == "end":
                t = torch.zeros_like(t)
            z0, z1 = (
                torch.randn(2 * n, z_dim, generator=generator, device=draw_on, dtype=dtype)
                .to(target)
                .chunk(2)
            )
            args: tuple[torch.Tensor, ...] = ()
            if c is not None:
                cb = c[start : start + n].to(target)
                args = (torch.cat([cb, cb]),)
            if space == "w":
                w0, w1 = map_fn(torch.cat([z0, z1]), *args).chunk(2)
                tt = t.view(-1, *([1] * (w0.ndim - 1))).to(w0.dtype)
                wt0, wt1 = w0.lerp(w1, tt), w0.lerp(w1, tt + epsilon)
            else:
                tt = t.unsqueeze(1)
                zt0, zt1 = slerp(z0, z1, tt), slerp(z0, z1, tt + epsilon)
                wt0, wt1 = map_fn(torch.cat([zt0, zt1]), *args).chunk(2)
            img = synthesis(torch.cat([wt0, wt1]))
            if not isinstance(img, torch.Tensor) or img.ndim != 4:
                got = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
                raise ValueError(f"synthesis must return images (2N, C, H, W), got {got}")
            img = _prepare_images(img, img.shape[2], crop)
            img0, img1 = img.chunk(2)
            d = distance(img0, img1)
            if not isinstance(d, torch.Tensor) or d.shape != (n,):
                got = tuple(d.shape) if isinstance(d, torch.Tensor) else type(d).__name__
                raise ValueError(f"distance must return one value per pair, shape ({n},), got {got}")
            out.append(d.to(torch.float64) / epsilon**2)
    return torch.cat(out)


def perceptual_path_length(
    G: Optional[object] = None,
    *,
    mapping: Optional[Mapping] = None,
    synthesis: Optional[Synthesis] = None,
    z_dim: Optional[int] = None,
    distance: Distance,
    num_samples: int = 50_000,
    batch_size: int = 32,
    epsilon: float = 1e-4,
    space: Space = "w",
    sampling: Sampling = "end",
    crop: bool = False,
    c: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    device: Optional[Union[torch.device, str]] = None,
    dtype: torch.dtype = torch.float32,
) -> float:
    r"""Perceptual path length of a generator (Karras et al. 2019), as StyleGAN2-ADA computes it.

    .. math::
        \mathrm{PPL} = \operatorname{mean}_{P_1 \le s_i \le P_{99}} s_i, \qquad
        s_i = \frac{1}{\epsilon^2}\, d\big(g(\ell_i(t_i)),\ g(\ell_i(t_i + \epsilon))\big)

    For each sample: :math:`t \sim U[0, 1)` (``sampling="full"``) or 0 (``"end"``), :math:`z_0, z_1 \sim
    N(0, I)`; ``space="z"``: :math:`w_{t} = \operatorname{mapping}(\operatorname{slerp}(z_0, z_1, t))`
    (:func:`slerp`); ``space="w"``: :math:`w_t = \operatorname{lerp}(\operatorname{mapping}(z_0),
    \operatorname{mapping}(z_1), t)`. Both images of a pair are synthesised in one batch ``[w_t;
    w_{t+ε}]``, then (``crop=True``) cut to StyleGAN2-ADA's central face region (rows 3/8..7/8, columns
    2/8..6/8 of a square image), box-filtered by ``H // 256`` when the images are larger than 256 pixels, and
    grayscale images repeated to 3 channels. The samples outside the 1st..99th percentiles are dropped
    (:func:`percentile_filtered_mean`).

    The generator: ``G`` with ``.mapping(z[, c])`` and ``.synthesis(w)`` (StyleGAN2-ADA's convention; ``z_dim``
    read from ``G.z_dim``), or the callables ``mapping=`` and ``synthesis=``; ``mapping=None`` without ``G``
    takes ``w = z`` (a generator without a mapping network). ``synthesis`` must be deterministic: any noise
    it adds must be the same for the two images of a pair (StyleGAN: ``noise_mode="const"``, e.g.
    ``synthesis=lambda w: G.synthesis(w, noise_mode="const")``); put the networks in eval mode. Runs under
    ``torch.no_grad()``.

    Args:
        G: a generator with ``.mapping`` and ``.synthesis``, or None.
        mapping: ``z -> w`` (``(N, z_dim) -> (N, w_dim)`` or ``(N, num_ws, w_dim)``); called as
            ``mapping(z, c)`` when labels are given, ``mapping(z)`` otherwise.
        synthesis: ``w -> images (N, C, H, W)``, in the range ``distance`` expects.
        z_dim: latent size; default ``G.z_dim``.
        distance: ``(img0, img1) -> (N,)``, e.g. LPIPS; :class:`PerceptualPathLength` supplies a default.
        num_samples: number of pairs (StyleGAN2-ADA: 50,000).
        batch_size: pairs per generator call (each call synthesises ``2 * batch_size`` images).
        epsilon: the step :math:`\epsilon`.
        space: ``"w"`` (StyleGAN2's ``ppl2_wend``) or ``"z"``.
        sampling: ``"end"`` (t = 0) or ``"full"`` (t uniform in [0, 1)).
        crop: StyleGAN2-ADA's face crop (its ``ppl_*`` metrics for FFHQ use it; ``ppl2_wend`` does not).
        c: labels ``(num_samples, c_dim)`` for a conditional generator, one row per pair, or None.
        generator: the ``torch.Generator`` of the draws (t, then ``z0, z1``), for a reproducible value;
            the draws are made on its device.
        device: where the latents go (the generator's device); default the device of ``G``'s parameters
            when ``G`` is an ``nn.Module``, else the device of ``generator``, else CPU.
        dtype: dtype of the latents.

    Returns:
        the path length, a Python float.

    Example:
        >>> import torch
        >>> from ganblocks.metrics import perceptual_path_length
        >>> A = torch.randn(3 * 4 * 4, 8, generator=torch.Generator().manual_seed(0))
        >>> synthesis = lambda w: (w @ A.T).view(-1, 3, 4, 4)
        >>> sq = lambda x, y: (x - y).square().flatten(1).sum(1)
        >>> ppl = perceptual_path_length(synthesis=synthesis, z_dim=8, distance=sq, num_samples=256,
        ...                              generator=torch.Generator().manual_seed(1))
        >>> ppl > 0
        True

    Reference:
        Karras et al., "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR 2019;
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020 (``ppl2_wend``).
    """
    return percentile_filtered_mean(
        path_length_distances(
            G,
            mapping=mapping,
            synthesis=synthesis,
            z_dim=z_dim,
            distance=distance,
            num_samples=num_samples,
            batch_size=batch_size,
            epsilon=epsilon,
            space=space,
            sampling=sampling,
            crop=crop,
            c=c,
            generator=generator,
            device=device,
            dtype=dtype,
        )
    )


class _VGGDistance(nn.Module):
    r"""LPIPS-style distance on VGG19 features without learned layer weights.

    .. math::
        d(x, y) = \sum_l \operatorname{mean}_{h,w} \sum_c \big(\hat\phi_l(x) - \hat\phi_l(y)\big)^2,
        \qquad \hat\phi_l = \frac{\phi_l}{\lVert\phi_l\rVert_{2,c} + 10^{-10}}

    :math:`\phi_l` the VGG19 activations at :data:`LPIPS_VGG19_LAYERS` of the ImageNet-normalised image,
    normalised to unit length over channels at each position (LPIPS's ``normalize_tensor``).
    """

    def __init__(
        self,
        weights: WeightsSpec,
        *,
        input_range: InputRange,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.taps = tuple(VGG19_LAYERS[name] for name in LPIPS_VGG19_LAYERS)
        self.features = vgg19_features(max(self.taps) + 1, device=device, dtype=dtype)
        load_vgg19_weights(self.features, weights)
        self.features.requires_grad_(False).eval()
        self.input_range: InputRange = check_choice("input_range", input_range, ("[-1,1]", "[0,1]"))
        lo = -1.0 if input_range == "[-1,1]" else 0.0
        scale = [1.0 / ((1.0 - lo) * s) for s in IMAGENET_STD]
        shift = [-(lo / (1.0 - lo) + m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
        for name, values in (("input_scale", scale), ("input_shift", shift)):
            self.register_buffer(
                name, torch.tensor(values, device=device, dtype=dtype).view(1, 3, 1, 1), False
            )

    input_scale: torch.Tensor
    input_shift: torch.Tensor

    def train(self, mode: bool = True) -> _VGGDistance:
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        n = img0.shape[0]
        h = torch.cat([img0, img1]).to(self.input_scale.dtype) * self.input_scale + self.input_shift
        total = h.new_zeros(n)
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.taps:
                f = h / (h.square().sum(1, keepdim=True).sqrt() + 1e-10)
                total = total + (f[:n] - f[n:]).square().sum(1).mean((1, 2))
        return total


class PerceptualPathLength(nn.Module):
    r"""Perceptual path length with a stored configuration and distance network.

    Calls :func:`perceptual_path_length` with the settings given here; ``forward`` takes the generator.
    The default distance is LPIPS's formula on this package's VGG19 trunk: at the last ReLU of each block
    (:data:`LPIPS_VGG19_LAYERS`, as LPIPS taps VGG16), features normalised to unit length over channels,
    squared differences summed over channels, averaged over positions, summed over layers — LPIPS without
    its learned per-channel weights, and on VGG19 rather than VGG16, so its values are comparable between
    runs of this module but not with published (StyleGAN) PPL numbers, which use the learned LPIPS VGG16.
    Pass ``distance=`` (any callable ``(img0, img1) -> (N,)``, e.g. an LPIPS module) to use another.

    Args:
        distance: the perceptual distance, or None for the default above.
        vgg_weights: weights of the default distance's VGG19 (a path to torchvision's ``vgg19`` file, a
            state dict, ``"imagenet"`` or None: random, with a warning); unused with ``distance=``.
        input_range: the range of the generator's images, for the default distance's ImageNet
            normalization: ``"[-1,1]"`` or ``"[0,1]"``.
        num_samples, batch_size, epsilon, space, sampling, crop: as :func:`perceptual_path_length`.
        device: device of the default distance's parameters.
        dtype: dtype of the default distance's parameters.

    Example:
        >>> import torch
        >>> from ganblocks.metrics import PerceptualPathLength
        >>> sq = lambda x, y: (x - y).square().flatten(1).sum(1)
        >>> ppl = PerceptualPathLength(distance=sq, num_samples=64, space="z")
        >>> synthesis = lambda w: torch.tanh(w).view(-1, 1, 2, 4)
        >>> value = ppl(synthesis=synthesis, z_dim=8, generator=torch.Generator().manual_seed(0))
        >>> 0 < value < 10
        True
    """

    def __init__(
        self,
        *,
        distance: Optional[Distance] = None,
        vgg_weights: WeightsSpec = None,
        input_range: InputRange = "[-1,1]",
        num_samples: int = 50_000,
        batch_size: int = 32,
        epsilon: float = 1e-4,
        space: Space = "w",
        sampling: Sampling = "end",
        crop: bool = False,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.num_samples, self.batch_size, self.epsilon, self.space, self.sampling = _check_options(
            num_samples, batch_size, epsilon, space, sampling
        )
        self.crop = bool(crop)
        if distance is not None and not callable(distance):
            raise TypeError(
                f"distance must be None or a callable (img0, img1) -> (N,), got {type(distance).__name__}"
            )
        if distance is None:
            with warnings.catch_warnings():
                # The trunk's own warning names VGGLoss's use; this one names the metric's.
                warnings.simplefilter("ignore")
                distance = _VGGDistance(vgg_weights, input_range=input_range, device=device, dtype=dtype)
            if vgg_weights is None:
                warnings.warn(
                    "PerceptualPathLength's default distance uses a randomly initialised VGG19 (vgg_weights=None): "
                    "pass vgg_weights= (a path to torchvision's vgg19-dcbb9e9d.pth) or distance=",
                    UserWarning,
                    stacklevel=2,
                )
        # A module distance is a child (moved by .to(), listed in the repr); a plain callable is stored.
        self.distance: Distance = distance

    def forward(
        self,
        G: Optional[object] = None,
        *,
        mapping: Optional[Mapping] = None,
        synthesis: Optional[Synthesis] = None,
        z_dim: Optional[int] = None,
        c: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
        device: Optional[Union[torch.device, str]] = None,
    ) -> float:
        """The path length of ``G`` (or of ``mapping``/``synthesis``); see :func:`perceptual_path_length`."""
        return perceptual_path_length(
            G,
            mapping=mapping,
            synthesis=synthesis,
            z_dim=z_dim,
            distance=self.distance,
            num_samples=self.num_samples,
            batch_size=self.batch_size,
            epsilon=self.epsilon,
            space=self.space,
            sampling=self.sampling,
            crop=self.crop,
            c=c,
            generator=generator,
            device=device,
        )

    def extra_repr(self) -> str:
        return (
            f"num_samples={self.num_samples}, epsilon={self.epsilon}, space={self.space!r}, "
            f"sampling={self.sampling!r}, crop={self.crop}"
        )
