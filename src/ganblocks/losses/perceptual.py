r"""Perceptual (VGG19 feature) loss, as in pix2pixHD, with explicit input range and normalization."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal, Optional, TypeAlias, Union, cast, get_args

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import (
    check_nonnegative,
    check_rgb_pair,
)
from ._distance import Criterion, check_criterion, per_sample_mean_distance, weighted_mean_distance
from ._reduction import Reduction, check_reduction, reduce_batch
from .vgg import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TAPPABLE_LAYERS,
    VGG19_LAYERS,
    WeightsSpec,
    features_input_half,
    load_vgg19_weights,
    trunk_plan,
    vgg19_features,
)

InputRange: TypeAlias = Literal["[-1,1]", "[0,1]"]
INPUT_RANGES: tuple[str, ...] = get_args(InputRange)
PIX2PIXHD_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
PIX2PIXHD_LAYER_WEIGHTS: tuple[float, ...] = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


def _distance(
    inputs: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    coeffs: Sequence[float],
    criterion: Criterion,
) -> torch.Tensor:
    """``sum_k coeffs[k] * mean(|inputs[k] - targets[k]|^p)``, targets detached.

    float32/float64 features: one ``l1_loss``/``mse_loss`` sum per layer, which saves the two feature maps
    it compares (already kept by the trunk, or views of the batched trunk's output) and nothing else.
    float16/bfloat16 features: :func:`weighted_mean_distance`, which accumulates in float32.
    """
    if any(x.dtype not in (torch.float32, torch.float64) for x in inputs):
        return weighted_mean_distance(inputs, targets, coeffs, criterion=criterion)
    fn = F.l1_loss if criterion == "l1" else F.mse_loss
    total: Optional[torch.Tensor] = None
    for x, t, c in zip(inputs, targets, coeffs):
        term = fn(x, t.detach(), reduction="sum") * (c / max(x.numel(), 1))
        total = term if total is None else total + term
    assert total is not None
    return total


def _input_affine(input_range: str) -> tuple[list[float], list[float]]:
    """Per-channel ``a, b`` with ``a * x + b`` = ImageNet-normalised ``x`` given in ``input_range``."""
    # x01 = (x - lo) / (hi - lo); (x01 - mean) / std = x / ((hi - lo) std) - (lo / (hi - lo) + mean) / std
    lo, hi = (-1.0, 1.0) if input_range == "[-1,1]" else (0.0, 1.0)
    a = [1.0 / ((hi - lo) * s) for s in IMAGENET_STD]
    b = [-(lo / (hi - lo) + m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    return a, b


class VGGLoss(nn.Module):
    r"""Weighted distance between VGG19 features of an image and of a target image.

    .. math::
        L = \lambda \sum_l w_l \operatorname{mean}\big|\phi_l(\hat x) - \operatorname{sg}[\phi_l(\hat y)]\big|^p,
        \qquad \hat x = a \odot x + b

    :math:`\phi_l` are the VGG19 activations at the requested layers, :math:`p = 1` (``"l1"``) or 2
    (``"l2"``), :math:`\operatorname{sg}` a stop-gradient. :math:`a, b` are per-channel constants that map
    ``input_range`` to :math:`[0, 1]` and apply the ImageNet mean/std that torchvision's weights expect, in
    one elementwise pass (``normalize=False`` feeds the input unchanged, as pix2pixHD does).

    The network is frozen (``requires_grad=False``, always in eval mode) and is cut after the deepest
    requested layer. With ``batched=True`` input and target go through VGG as one ``torch.cat`` batch (fewer,
    larger kernels: better when the images are small); the backward then also runs the input-gradient
    convolutions over the target half of the batch, where their result is discarded. ``batched=False``
    runs the target separately under ``torch.no_grad()``: less backward work and memory for large images.
    The loss is the same either way.

    Layer names: ``conv{b}_{k}`` and ``relu{b}_{k}`` for blocks b = 1..5 (``relu1_1`` ... ``relu5_4``;
    torchvision ``features`` indices: ``relu1_1`` 1, ``relu2_1`` 6, ``relu3_1`` 11, ``relu4_1`` 20,
    ``relu5_1`` 29).

    Precision and layout: under ``torch.autocast`` the convolutions run in the autocast dtype and the loss
    is accumulated in float32; a module converted with ``.to(dtype)`` takes inputs of that dtype.
    channels_last inputs stay channels_last throughout. NaN in the images propagates to the loss.

    Input range: an image with values more than half the range's width outside ``input_range`` (below
    -2 or above 2 for ``"[-1,1]"``, e.g. [0, 255] images) gets a ``UserWarning`` naming ``input_range``,
    since VGG features of such inputs are meaningless and the loss silently wrong. Reading the extremes
    synchronises with the device, so on CPU every call checks and on an accelerator only the first call
    does (``check_range=False`` turns it off; set ``range_checked = False`` to check the next call again).

    Args:
        layers: the layers to compare, in any order; default pix2pixHD's ``relu1_1`` ... ``relu5_1``.
        layer_weights: one weight per layer; None means 1 each.
        criterion: ``"l1"`` or ``"l2"`` (mean squared error).
        weight: the overall factor :math:`\lambda`.
        input_range: the range of the images the caller passes: ``"[-1,1]"`` (a tanh generator) or
            ``"[0,1]"``.
        normalize: map ``input_range`` to ImageNet's normalization (what torchvision's weights were
            trained on); False feeds the raw input.
        weights: ``"imagenet"`` (torchvision's checkpoint via ``torch.hub``, hash checked; downloaded only
            if not cached), a path to a file in torchvision's ``vgg19`` state-dict format (loaded with
            ``weights_only=True``), a state dict, or None (random weights, with a warning). A wrong file
            raises a ValueError naming the missing or mis-shaped keys.
        batched: run input and target as one batch (see above).
        progress: show the download progress bar for ``weights="imagenet"``.
        check_range: warn when the images are clearly outside ``input_range`` (see above).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` over the batch. A sample's value is the
            formula above with each layer's mean taken over that sample's features (channels and
            positions), so ``"none"`` gives shape ``(N,)`` and its mean is the default.
        device: device of the VGG parameters.
        dtype: dtype of the VGG parameters.

    Shape:
        - input, target: :math:`(N, 3, H, W)`, the same shape, with :math:`N \ge 1` and :math:`H, W` at
          least ``min_input_size``: :math:`2^p` for the :math:`p` max pools before the deepest layer
          (16 for ``relu5_1``, 8 for ``relu4_1``, 1 for ``relu1_1``).
        - output: scalar, or :math:`(N,)` for ``reduction="none"``.

    Example:
        >>> import torch, warnings
        >>> from ganblocks import VGGLoss
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")  # random weights here; use weights="imagenet" or a path
        ...     loss = VGGLoss(["relu1_1"])
        >>> x = torch.rand(1, 3, 8, 8) * 2 - 1
        >>> loss(x, x).item()
        0.0

    Reference:
        Johnson et al., "Perceptual Losses for Real-Time Style Transfer and Super-Resolution", ECCV 2016;
        Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs"
        (pix2pixHD), CVPR 2018; Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale
        Image Recognition", ICLR 2015.
    """

    def __init__(
        self,
        layers: Sequence[str] = PIX2PIXHD_LAYERS,
        *,
        layer_weights: Optional[Sequence[float]] = None,
        criterion: Criterion = "l1",
        weight: float = 1.0,
        input_range: InputRange = "[-1,1]",
        normalize: bool = True,
        weights: WeightsSpec = None,
        batched: bool = True,
        progress: bool = True,
        check_range: bool = True,
        reduction: Reduction = "mean",
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if isinstance(layers, str):
            raise TypeError(
                f"layers must be a sequence of layer names, got the string {layers!r}; use [{layers!r}]"
            )
        names = list(layers)
        if not names:
            raise ValueError("layers must name at least one layer, got an empty sequence")
        for name in names:
            if name not in TAPPABLE_LAYERS:
                raise ValueError(
                    f"unknown VGG19 layer {name!r}; valid names are conv1_1 ... relu5_4: {TAPPABLE_LAYERS}"
                )
        if len(set(names)) != len(names):
            raise ValueError(f"layers must not repeat a name, got {names}")
        lw = (
            [1.0] * len(names)
            if layer_weights is None
            else [check_nonnegative(f"layer_weights[{i}]", w) for i, w in enumerate(layer_weights)]
        )
        if len(lw) != len(names):
            raise ValueError(f"layer_weights must have one weight per layer ({len(names)}), got {len(lw)}")
        check_criterion(criterion)
        normalized_range = input_range.replace(" ", "") if isinstance(input_range, str) else input_range
        if normalized_range not in INPUT_RANGES:
            raise ValueError(f"input_range must be one of {INPUT_RANGES}, got {input_range!r}")

        self.layers: tuple[str, ...] = tuple(names)
        self.layer_weights: tuple[float, ...] = tuple(lw)
        self.criterion: Criterion = criterion
        self.weight = check_nonnegative("weight", weight)
        self.input_range: InputRange = cast(InputRange, normalized_range)
        self.normalize = bool(normalize)
        self.batched = bool(batched)
        self.check_range = bool(check_range)
        self.reduction: Reduction = check_reduction(reduction)
        self.range_checked = False  # on an accelerator, whether the first call has checked
        self._indices = [VGG19_LAYERS[n] for n in names]
        self._taps = frozenset(self._indices)

        self.features = vgg19_features(max(self._indices) + 1, device=device, dtype=dtype)
        # Every 2x2 max pool before the deepest tap halves the size (rounding down): below 2**pools
        # pixels the last one would produce an empty map.
        pools = sum(isinstance(m, nn.MaxPool2d) for m in self.features)
        self.min_input_size: int = 1 << pools
        load_vgg19_weights(self.features, weights, progress=progress)
        self.features.requires_grad_(False)
        self.features.eval()
        a, b = _input_affine(self.input_range)
        # Not persistent: constants of the module's configuration, not state to checkpoint.
        for name, values in (("input_scale", a), ("input_shift", b)):
            const = torch.tensor(values, device=device, dtype=dtype).view(1, 3, 1, 1)
            self.register_buffer(name, const, persistent=False)

    input_scale: torch.Tensor
    input_shift: torch.Tensor

    @classmethod
    def pix2pixhd(
        cls,
        *,
        weights: WeightsSpec,
        batched: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> VGGLoss:
        """pix2pixHD's ``VGGLoss``: relu1_1 ... relu5_1 weighted 1/32, 1/16, 1/8, 1/4, 1, L1, raw [-1, 1] input.

        pix2pixHD feeds its [-1, 1] images to VGG19 without ImageNet normalization; this preset does the
        same. pix2pixHD multiplies this loss by ``lambda_feat = 10`` in its training step; pass the result
        through ``* 10`` (or build ``VGGLoss(..., weight=10.0)``) to match.
        """
        return cls(
            PIX2PIXHD_LAYERS,
            layer_weights=PIX2PIXHD_LAYER_WEIGHTS,
            criterion="l1",
            input_range="[-1,1]",
            normalize=False,
            weights=weights,
            batched=batched,
            device=device,
            dtype=dtype,
        )

    def train(self, mode: bool = True) -> VGGLoss:
        super().train(mode)
        self.features.eval()
        return self

    def _warn_if_out_of_range(self, input: torch.Tensor, target: torch.Tensor) -> None:
        if not self.check_range or torch.compiler.is_compiling():
            return
        on_cpu = input.device.type == "cpu"
        if self.range_checked and not on_cpu:
            return
        self.range_checked = True
        lo, hi = (-1.0, 1.0) if self.input_range == "[-1,1]" else (0.0, 1.0)
        slack = 0.5 * (hi - lo)
        for name, t in (("input", input), ("target", target)):
            t_min, t_max = (float(v) for v in torch.aminmax(t.detach()))
            if t_min < lo - slack or t_max > hi + slack:
                warnings.warn(
                    f"VGGLoss: {name} has values in [{t_min:.4g}, {t_max:.4g}], far outside "
                    f"input_range={self.input_range!r} it was configured for; rescale the images (e.g. "
                    f"[0, 255] -> x / 127.5 - 1 for '[-1,1]') or set input_range to match",
                    UserWarning,
                    stacklevel=5,  # the caller of the module: forward, _call_impl, _wrapped_call_impl between
                )
                return

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if not self.normalize:
            return x
        return torch.addcmul(self.input_shift.to(x.dtype), x, self.input_scale.to(x.dtype))

    def _extract(self, x: torch.Tensor) -> list[torch.Tensor]:
        found: dict[int, torch.Tensor] = {}
        for i, layer in enumerate(self.features):
            # A tapped conv output must survive the in-place ReLU that follows it.
            x = torch.relu(x) if (i - 1) in self._taps and isinstance(layer, nn.ReLU) else layer(x)
            if i in self._taps:
                found[i] = x
        return [found[i] for i in self._indices]

    def _extract_batched(self, input: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
        """The features of ``[input; target]`` as one batch, differentiable in the input half only.

        The trunk runs as :class:`~ganblocks.losses.vgg._InputHalfTrunk`, whose backward covers the input
        half alone; an unfrozen or modified trunk, or tracing by ``torch.compile``, runs it through autograd.
        """
        plan = None if torch.compiler.is_compiling() else trunk_plan(self.features)
        if plan is None:
            return self._extract(self._prepare(torch.cat([input, target.detach()])))
        taps = tuple(sorted(self._taps))
        with torch.no_grad():
            tgt = self._prepare(target)
        feats = dict(zip(taps, features_input_half(plan, self._prepare(input), tgt, taps)))
        return [feats[i] for i in self._indices]

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of ``input`` (e.g. generated images) against ``target`` (e.g. real images)."""
        check_rgb_pair(input, target)
        h, w = input.shape[-2], input.shape[-1]
        m = self.min_input_size
        if h < m or w < m:
            deepest = self.layers[self._indices.index(max(self._indices))]
            raise ValueError(
                f"input of spatial size {h}×{w} is too small for the layers {self.layers}: the deepest, "
                f"{deepest}, comes after {m.bit_length() - 1} 2×2 max pools, so height and width must be at "
                f"least {m}"
            )
        self._warn_if_out_of_range(input, target)
        n = input.shape[0]
        if self.batched:
            feats = self._extract_batched(input, target)
            inputs = [f[:n] for f in feats]
            targets = [f[n:] for f in feats]
        else:
            with torch.no_grad():
                targets = self._extract(self._prepare(target))
            inputs = self._extract(self._prepare(input))
        coeffs = [self.weight * w for w in self.layer_weights]
        if self.reduction == "mean":
            return _distance(inputs, targets, coeffs, self.criterion)
        per_sample = per_sample_mean_distance(inputs, targets, coeffs, criterion=self.criterion)
        return reduce_batch(per_sample, self.reduction)

    def extra_repr(self) -> str:
        return (
            f"layers={self.layers}, layer_weights={self.layer_weights}, criterion={self.criterion!r}, "
            f"weight={self.weight}, input_range={self.input_range!r}, normalize={self.normalize}, "
            f"batched={self.batched}, reduction={self.reduction!r}"
        )
