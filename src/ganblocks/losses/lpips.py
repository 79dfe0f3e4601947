r"""LPIPS (Zhang et al. 2018): distances between unit-normalised VGG16 or AlexNet features, weighted by learned heads.

No torchvision at run time: the trunks below have torchvision's ``vgg16().features`` and
``alexnet().features`` modules at the same indices, so torchvision's state dicts load into them unchanged, and
the linear heads take the lpips package's own weight files (keys ``lin{l}.model.1.weight``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Optional, TypeAlias, Union, cast, get_args

import torch
from torch import nn

from .._checks import (
    check_choice,
    check_input_dtype,
    check_ndim,
    check_positive,
    check_rgb_pair,
    check_tensor,
)
from ._reduction import Reduction, check_reduction, reduce_batch
from .perceptual import INPUT_RANGES, InputRange
from .vgg import check_features_state_dict, read_weights_file

LPIPSNet: TypeAlias = Literal["alex", "vgg"]
LPIPS_NETS: tuple[LPIPSNet, ...] = get_args(LPIPSNet)
LPIPSWeights: TypeAlias = Union[str, os.PathLike[str], Mapping[str, torch.Tensor], None]

# The lpips package's ScalingLayer: its v0.1 input transform (x - shift) / scale for images in [-1, 1].
LPIPS_SHIFT: tuple[float, float, float] = (-0.030, -0.088, -0.188)
LPIPS_SCALE: tuple[float, float, float] = (0.458, 0.448, 0.450)
# lpips's normalize_tensor: f / (||f||_2 over channels + eps).
LPIPS_EPS = 1e-10

# One trunk module: ("conv", in, out, kernel, stride, padding), ("relu",) or ("pool", kernel, stride).
_Spec: TypeAlias = tuple[Any, ...]


def _vgg16_spec() -> tuple[_Spec, ...]:
    """torchvision's ``vgg16().features`` (configuration "D") up to relu5_3, index 29."""
    spec: list[_Spec] = []
    cin = 3
    for block, (cout, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))):
        if block:
            spec.append(("pool", 2, 2))
        for _ in range(convs):
            spec += [("conv", cin, cout, 3, 1, 1), ("relu",)]
            cin = cout
    return tuple(spec)


_ALEX_SPEC: tuple[_Spec, ...] = (
    ("conv", 3, 64, 11, 4, 2),
    ("relu",),
    ("pool", 3, 2),
    ("conv", 64, 192, 5, 1, 2),
    ("relu",),
    ("pool", 3, 2),
    ("conv", 192, 384, 3, 1, 1),
    ("relu",),
    ("conv", 384, 256, 3, 1, 1),
    ("relu",),
    ("conv", 256, 256, 3, 1, 1),
    ("relu",),
)
_SPECS: dict[str, tuple[_Spec, ...]] = {"vgg": _vgg16_spec(), "alex": _ALEX_SPEC}
#: The ``features`` indices LPIPS taps: VGG16 relu1_2, relu2_2, relu3_3, relu4_3, relu5_3; AlexNet relu1 ... relu5.
LPIPS_TAPS: dict[str, tuple[int, ...]] = {"vgg": (3, 8, 15, 22, 29), "alex": (1, 4, 7, 9, 11)}
TRUNK_URLS: dict[str, str] = {
    "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
}
HEAD_URL = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/{net}.pth"


def lpips_trunk(
    net: LPIPSNet,
    *,
    device: Optional[Union[torch.device, str]] = None,
    dtype: Optional[torch.dtype] = None,
) -> nn.Sequential:
    """The modules of torchvision's ``vgg16().features`` (0–29) or ``alexnet().features`` (0–11), random weights.

    Example:
        >>> from ganblocks.losses import lpips_trunk
        >>> trunk = lpips_trunk("alex")
        >>> trunk[3], len(trunk)
        (Conv2d(64, 192, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2)), 12)
    """
    check_choice("net", net, LPIPS_NETS)
    modules: list[nn.Module] = []
    for step in _SPECS[net]:
        if step[0] == "conv":
            _, cin, cout, k, s, p = step
            conv = nn.Conv2d(cin, cout, k, stride=s, padding=p, device=device, dtype=dtype)
            if net == "vgg":  # torchvision's VGG init; AlexNet keeps Conv2d's default, as torchvision's
                nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
                assert conv.bias is not None
                nn.init.zeros_(conv.bias)
            modules.append(conv)
        elif step[0] == "relu":
            # In place, as torchvision: a conv's backward does not need its output.
            modules.append(nn.ReLU(inplace=True))
        else:
            modules.append(nn.MaxPool2d(kernel_size=step[1], stride=step[2]))
    return nn.Sequential(*modules)


def _trunk_shapes(net: str) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for i, step in enumerate(_SPECS[net]):
        if step[0] == "conv":
            _, cin, cout, k, _, _ = step
            shapes[f"features.{i}.weight"] = (cout, cin, k, k)
            shapes[f"features.{i}.bias"] = (cout,)
    return shapes


def _channels(net: str) -> list[int]:
    return [_SPECS[net][i - 1][2] for i in LPIPS_TAPS[net]]


def _min_input_size(net: str) -> int:
    """The smallest height/width for which every module of the trunk produces a non-empty map."""

    def fits(size: int) -> bool:
        for step in _SPECS[net]:
            if step[0] == "conv":
                size = (size + 2 * step[5] - step[3]) // step[4] + 1
            elif step[0] == "pool":
                size = (size - step[1]) // step[2] + 1
            if size < 1:
                return False
        return True

    size = 1
    while not fits(size):
        size += 1
    return size


def _read(weights: LPIPSWeights, *, name: str, what: str, missing: str) -> tuple[str, object]:
    """(a description of the source, its content) of a path or a state dict given as ``name``."""
    if isinstance(weights, Mapping):
        return "the given state dict", weights
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        return repr(path), read_weights_file(path, missing=missing.format(path=path), what=what)
    raise TypeError(f"{name} must be a path, a state dict or None, got {type(weights).__name__}")


def load_lpips_trunk(trunk: nn.Sequential, net: LPIPSNet, weights: LPIPSWeights) -> None:
    """Fill ``trunk`` (from :func:`lpips_trunk`) from torchvision's ``vgg16``/``alexnet`` state dict or its file.

    ``features.{i}.weight``/``.bias`` entries beyond index 29 (VGG16) or 11 (AlexNet) and ``classifier.*``
    are ignored. None keeps the random initialisation, with a warning.
    """
    if weights is None:
        warnings.warn(
            f"LPIPS trunk is randomly initialised (trunk_weights=None), so LPIPS is not a perceptual distance; "
            f"pass a path to torchvision's {os.path.basename(TRUNK_URLS[net])} ({TRUNK_URLS[net]})",
            UserWarning,
            stacklevel=3,
        )
        return
    name = "VGG16" if net == "vgg" else "AlexNet"
    source, raw = _read(
        weights,
        name="trunk_weights",
        what=f"LPIPS trunk_weights file ({name})",
        missing=(
            f"LPIPS trunk_weights file not found: {{path!r}}. It is torchvision's {name} ImageNet state dict: "
            f"download {TRUNK_URLS[net]} (or save torchvision.models.{'vgg16' if net == 'vgg' else 'alexnet'}"
            f"(weights='IMAGENET1K_V1').state_dict()) and pass its path."
        ),
    )
    expected = _trunk_shapes(net)
    if isinstance(raw, Mapping):
        # Deeper layers of the full network (VGG16's pool5, indices 30 and up) are not part of LPIPS.
        raw = {k: v for k, v in raw.items() if not _beyond(str(k), len(trunk))}
    hint = (
        f"expected torchvision's {'vgg16' if net == 'vgg' else 'alexnet'} state dict (keys features.{{i}}.weight/"
        f"bias, e.g. from {os.path.basename(TRUNK_URLS[net])})"
    )
    state = check_features_state_dict(raw, expected, net=name, source=source, hint=hint)
    trunk.load_state_dict({k[len("features.") :]: v for k, v in state.items()}, strict=True)


def _beyond(key: str, length: int) -> bool:
    parts = key.split(".")
    return len(parts) == 3 and parts[0] == "features" and parts[1].isdigit() and int(parts[1]) >= length


def load_lpips_heads(heads: nn.ModuleList, net: LPIPSNet, weights: LPIPSWeights) -> None:
    """Fill the five 1×1 heads from the lpips package's weight file (``lin{l}.model.1.weight``, ``(1, C, 1, 1)``).

    Other keys (an lpips ``LPIPS`` state dict's ``net.*``, ``lins.*``, ``scaling_layer.*``) are ignored.
    None keeps the random initialisation, with a warning.
    """
    url = HEAD_URL.format(net=net)
    if weights is None:
        warnings.warn(
            f"LPIPS heads are randomly initialised (head_weights=None); pass the lpips package's "
            f"lpips/weights/v0.1/{net}.pth ({url})",
            UserWarning,
            stacklevel=3,
        )
        return
    source, raw = _read(
        weights,
        name="head_weights",
        what="LPIPS head_weights file",
        missing=(
            f"LPIPS head_weights file not found: {{path!r}}. It is the lpips package's lpips/weights/v0.1/{net}.pth: "
            f"with lpips installed, os.path.join(os.path.dirname(lpips.__file__), 'weights', 'v0.1', '{net}.pth'); "
            f"or download {url}."
        ),
    )
    hint = f"expected the lpips package's v0.1 {net}.pth (keys lin0.model.1.weight ... lin4.model.1.weight)"
    if not isinstance(raw, Mapping):
        raise ValueError(f"LPIPS head weights from {source}: {hint}, got a {type(raw).__name__}")
    problems = []
    found: list[torch.Tensor] = []
    for i, c in enumerate(_channels(net)):
        key, shape = f"lin{i}.model.1.weight", (1, c, 1, 1)
        value = raw.get(key)
        if value is None:
            problems.append(f"missing key {key}")
        elif not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            problems.append(f"{key}: expected {shape}, got {got}")
        else:
            found.append(value)
    if problems:
        raise ValueError(
            f"LPIPS head weights from {source} do not match net={net!r}: {'; '.join(problems)}; {hint}"
        )
    with torch.no_grad():
        for head, value in zip(heads, found):
            cast(nn.Conv2d, head).weight.copy_(value)


def _unit_normalize(f: torch.Tensor, eps: float) -> torch.Tensor:
    return f / (f.square().sum(dim=1, keepdim=True).sqrt() + eps)


def lpips_from_features(
    input_features: Sequence[torch.Tensor],
    target_features: Sequence[torch.Tensor],
    head_weights: Optional[Sequence[torch.Tensor]],
    *,
    eps: float = LPIPS_EPS,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""The LPIPS distance from two lists of feature maps: the formula of :class:`LPIPS` after the trunk.

    .. math::
        d(x, y) = \sum_l \frac{1}{H_l W_l} \sum_{h, w} \sum_c w_{lc}
        \big(\hat f^l_{chw}(x) - \hat f^l_{chw}(y)\big)^2, \qquad
        \hat f^l = \frac{f^l}{\lVert f^l \rVert_{2,\,c} + \epsilon}

    with the norm over channels at each position. ``head_weights=None`` sums the channels unweighted
    (lpips's ``lpips=False`` baseline). float16/bfloat16 features are computed in float32.

    Args:
        input_features: per layer ``l``, a ``(N, C_l, H_l, W_l)`` map.
        target_features: the same shapes.
        head_weights: per layer a ``(C_l,)`` (or lpips's ``(1, C_l, 1, 1)``) weight, or None.
        eps: added to the channel norm (lpips's ``normalize_tensor``: 1e-10).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``) over the batch.

    Example:
        >>> import torch
        >>> from ganblocks.functional import lpips_from_features
        >>> f = [torch.ones(2, 4, 3, 3)]
        >>> lpips_from_features(f, [-f[0]], None, reduction="none")  # unit vectors 2 apart: 4 per position
        tensor([4., 4.])
    """
    reduction = check_reduction(reduction)
    check_positive("eps", eps, allow_zero=True)
    a, b = list(input_features), list(target_features)
    if not a or len(a) != len(b):
        raise ValueError(
            f"input_features and target_features must be non-empty lists of the same length, got {len(a)} and {len(b)}"
        )
    ws = None if head_weights is None else list(head_weights)
    if ws is not None and len(ws) != len(a):
        raise ValueError(f"head_weights must have one weight per layer ({len(a)}), got {len(ws)}")
    total: Optional[torch.Tensor] = None
    for i, (fa, fb) in enumerate(zip(a, b)):
        check_tensor(f"input_features[{i}]", fa)
        check_tensor(f"target_features[{i}]", fb)
        check_ndim(f"input_features[{i}]", fa, exact=4)
        if fa.shape != fb.shape:
            raise ValueError(
                f"input_features[{i}] and target_features[{i}] must have the same shape, got "
                f"{tuple(fa.shape)} and {tuple(fb.shape)}"
            )
        if ws is not None and ws[i].numel() != fa.shape[1]:
            raise ValueError(
                f"head_weights[{i}] must have {fa.shape[1]} elements (the channels of layer {i}), "
                f"got shape {tuple(ws[i].shape)}"
            )
        if fa.dtype in (torch.float16, torch.bfloat16):
            fa, fb = fa.float(), fb.float()
        # Under autocast the head's contraction would otherwise drop back to the low-precision dtype.
        with torch.autocast(fa.device.type, enabled=False):
            d = (_unit_normalize(fa, eps) - _unit_normalize(fb, eps)).square()
            if ws is None:
                per_position = d.sum(dim=1)
            else:
                per_position = torch.einsum("nchw,c->nhw", d, ws[i].reshape(-1).to(d.dtype))
            term = per_position.mean(dim=(1, 2))
        total = term if total is None else total + term
    assert total is not None
    return reduce_batch(total, reduction)


class LPIPS(nn.Module):
    r"""Learned Perceptual Image Patch Similarity: the lpips package's ``LPIPS(net=...)``, version 0.1.

    .. math::
        d(x, y) = \sum_{l=1}^{5} \frac{1}{H_l W_l} \sum_{h, w} \sum_c w_{lc}
        \big(\hat f^l_{chw}(\tilde x) - \hat f^l_{chw}(\tilde y)\big)^2, \qquad
        \hat f^l = \frac{f^l}{\lVert f^l \rVert_{2,\,c} + 10^{-10}}, \qquad
        \tilde x = \frac{x - \mathrm{shift}}{\mathrm{scale}}

    :math:`f^l` are the trunk's activations (VGG16 relu1_2, relu2_2, relu3_3, relu4_3, relu5_3; AlexNet's five
    ReLUs), unit-normalised over channels at each position; :math:`w_l \ge 0` the learned linear heads (1×1
    convolutions to one channel); ``shift = (-0.030, -0.088, -0.188)``, ``scale = (0.458, 0.448, 0.450)``
    lpips's scaling layer for images in [-1, 1] (``input_range="[0,1]"`` maps :math:`x \mapsto 2x - 1` first,
    lpips's ``normalize=True``). The per-layer part is :func:`~ganblocks.functional.lpips_from_features`.

    The network is frozen (``requires_grad=False``); gradients reach both images, so it serves as a loss.
    Input and target run through the trunk as one batch.

    As the distance of perceptual path length: ``LPIPS(..., reduction="none")`` is a callable
    ``(img0, img1) -> (N,)``, what :mod:`ganblocks.metrics`' path length takes as its distance (StyleGAN's PPL
    uses ``net="vgg"``).

    Weights (nothing is downloaded; both files are read with ``torch.load(weights_only=True)``):

    - ``trunk_weights``: torchvision's ImageNet state dict of ``vgg16`` (``vgg16-397923af.pth``) or
      ``alexnet`` (``alexnet-owt-7be5be79.pth``), the files lpips's torchvision trunk loads; a path or the
      state dict. Only ``features.*`` up to the last tapped layer is used.
    - ``head_weights``: the lpips package ships them inside itself, ``lpips/weights/v0.1/{vgg,alex}.pth``:
      ``os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", "vgg.pth")`` with lpips installed,
      or the same path in github.com/richzhang/PerceptualSimilarity. Keys ``lin{l}.model.1.weight``. The
      v0.0 files (made without the scaling layer) load but do not give v0.0's distances.
    - None for either: random weights, with a warning. A missing file raises FileNotFoundError saying where
      to get it; a file of the wrong network a ValueError naming the keys.

    Args:
        net: ``"alex"`` (lpips's default, the best forward metric in the paper) or ``"vgg"`` (closer to
            a perceptual loss for optimisation, as lpips's README advises).
        trunk_weights: see above.
        head_weights: see above.
        input_range: ``"[-1,1]"`` (lpips's convention) or ``"[0,1]"``.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (shape ``(N,)``) over the batch.
        device: device of the parameters.
        dtype: dtype of the parameters; inputs must match it (or run under ``torch.autocast``).

    Shape:
        - input, target: :math:`(N, 3, H, W)`, the same shape, :math:`H, W` at least ``min_input_size``
          (16 for VGG16, 31 for AlexNet).
        - output: scalar, or :math:`(N,)` for ``reduction="none"``.

    Example:
        >>> import torch, warnings
        >>> from ganblocks.losses import LPIPS
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")  # random weights here; pass the two files
        ...     dist = LPIPS("alex", trunk_weights=None, head_weights=None, reduction="none")
        >>> x = torch.rand(2, 3, 64, 64) * 2 - 1
        >>> dist(x, x)
        tensor([0., 0.])

    Reference:
        Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018.
    """

    def __init__(
        self,
        net: LPIPSNet,
        *,
        trunk_weights: LPIPSWeights,
        head_weights: LPIPSWeights,
        input_range: InputRange = "[-1,1]",
        reduction: Reduction = "mean",
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.net: LPIPSNet = check_choice("net", net, LPIPS_NETS)
        normalized_range = input_range.replace(" ", "") if isinstance(input_range, str) else input_range
        if normalized_range not in INPUT_RANGES:
            raise ValueError(f"input_range must be one of {INPUT_RANGES}, got {input_range!r}")
        self.input_range: InputRange = cast(InputRange, normalized_range)
        self.reduction: Reduction = check_reduction(reduction)
        self.min_input_size: int = _min_input_size(net)
        self.taps: tuple[int, ...] = LPIPS_TAPS[net]
        self.features = lpips_trunk(net, device=device, dtype=dtype)
        self.heads = nn.ModuleList(
            nn.Conv2d(c, 1, 1, bias=False, device=device, dtype=dtype) for c in _channels(net)
        )
        load_lpips_trunk(self.features, net, trunk_weights)
        load_lpips_heads(self.heads, net, head_weights)
        self.requires_grad_(False)
        self.eval()
        for name, values in (("shift", LPIPS_SHIFT), ("scale", LPIPS_SCALE)):
            const = torch.tensor(values, device=device, dtype=dtype).view(1, 3, 1, 1)
            self.register_buffer(name, const, persistent=False)

    shift: torch.Tensor
    scale: torch.Tensor

    def _scale_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_range == "[0,1]":
            x = 2 * x - 1
        return (x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)

    def features_of(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five tapped trunk activations of images ``x`` in ``input_range`` (before normalisation)."""
        h = self._scale_input(x)
        found = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.taps:
                found.append(h)
        return found

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The distance between ``input`` and ``target``, reduced over the batch by ``reduction``."""
        check_rgb_pair(input, target)
        check_input_dtype("input", input, self)
        h, w = input.shape[-2:]
        if min(h, w) < self.min_input_size:
            raise ValueError(
                f"input of spatial size {h}×{w} is too small for LPIPS(net={self.net!r}): height and width must "
                f"be at least {self.min_input_size}"
            )
        n = input.shape[0]
        feats = self.features_of(torch.cat([input, target]))
        weights = [cast(nn.Conv2d, head).weight for head in self.heads]
        return lpips_from_features(
            [f[:n] for f in feats], [f[n:] for f in feats], weights, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return f"net={self.net!r}, input_range={self.input_range!r}, reduction={self.reduction!r}"
