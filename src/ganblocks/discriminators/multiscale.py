"""pix2pixHD's multi-scale discriminator, and a loader for its checkpoints."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_images, check_input_dtype, check_int
from ..outputs import DiscriminatorOutput
from .patch import PatchDiscriminator, PatchNorm


def downsample(x: torch.Tensor) -> torch.Tensor:
    """pix2pixHD's downsampling between scales: ``AvgPool2d(3, stride=2, padding=1, count_include_pad=False)``.

    Maps a size :math:`s` to :math:`\\lceil s/2 \\rceil`.
    """
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


def _ceil_halve(size: int, times: int) -> int:
    return -(-size // (1 << times))


class MultiScaleDiscriminator(nn.Module):
    r"""pix2pixHD's multi-scale discriminator: separate PatchGANs on the image at several scales.

    Scale :math:`k` (:math:`k = 0` is the input itself) sees the input downsampled :math:`k` times by
    :func:`downsample` (3×3 average pooling, stride 2, padding not counted), so a size :math:`s` becomes
    :math:`\lceil s / 2^k \rceil`. Each scale has its own :class:`PatchDiscriminator` (or the module
    returned by ``backbone``). Outputs are finest first. With the defaults and 3 input channels it has
    pix2pixHD's 8,294,211 parameters and a 256×256 input gives 35×35, 19×19 and 11×11 logits.
    Trained pix2pixHD checkpoints load with :meth:`from_pix2pixhd` or :meth:`load_pix2pixhd_state_dict`
    and give identical outputs. Sigmoid outputs (pix2pixHD's ``use_sigmoid``) belong to the loss here.

    Args:
        in_channels: channels of the input (image plus condition for a conditional discriminator).
        num_scales: number of scales (pix2pixHD's ``num_D``).
        num_layers: stride-2 convs per PatchGAN (``n_layers_D``).
        base_channels: channels of each PatchGAN's first conv (``ndf``).
        max_channels: cap on the channel count.
        norm: ``"instance"`` (non-affine, as pix2pixHD), ``"instance_affine"``, ``"batch"`` or ``"none"``.
        bias_before_norm: see :class:`PatchDiscriminator`; True keeps pix2pixHD's parameters.
        spectral_norm: spectrally normalize every conv.
        equalized_lr: use equalized learning-rate convs.
        mbstd_group_size: group size of the minibatch standard deviation (None: the whole batch).
        mbstd_num_channels: minibatch standard-deviation channels before each PatchGAN's last conv; 0
            (pix2pixHD's) for none.
        return_features: return every scale's intermediate activations (pix2pixHD's ``getIntermFeat``), as
            feature matching needs; ``forward(..., return_features=...)`` overrides it per call.
        backbone: ``backbone(scale) -> nn.Module`` builds the discriminator of scale ``scale`` (0 is the
            finest) instead of a PatchGAN; the PatchGAN options above are then unused. The module maps an
            image to a logits tensor or to a one-scale :class:`DiscriminatorOutput`; an attribute
            ``min_input_size`` (int), if present, is checked at every scale.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`, any size with at least ``min_input_size`` pixels per side.
        - Output: :class:`DiscriminatorOutput` with ``num_scales`` logits tensors, finest first.

    Example:
        >>> import torch
        >>> from ganblocks import MultiScaleDiscriminator
        >>> d = MultiScaleDiscriminator(3)
        >>> sum(p.numel() for p in d.parameters())
        8294211
        >>> [tuple(t.shape[-2:]) for t in d(torch.randn(1, 3, 256, 256)).logits]
        [(35, 35), (19, 19), (11, 11)]

    Reference:
        Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs", CVPR 2018.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        num_scales: int = 3,
        num_layers: int = 3,
        base_channels: int = 64,
        max_channels: int = 512,
        norm: PatchNorm = "instance",
        bias_before_norm: bool = True,
        spectral_norm: bool = False,
        equalized_lr: bool = False,
        mbstd_group_size: Optional[int] = 4,
        mbstd_num_channels: int = 0,
        return_features: bool = False,
        backbone: Optional[Callable[[int], nn.Module]] = None,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("num_scales", num_scales)
        self.in_channels = in_channels
        self.num_scales = num_scales
        self.return_features = return_features
        self.custom_backbone = backbone is not None
        # What the pix2pixHD loader needs to know; meaningless with a custom backbone.
        self.num_layers = num_layers
        self.norm = norm
        self.bias_before_norm = bias_before_norm
        self._plain_convs = not (spectral_norm or equalized_lr or mbstd_num_channels)
        scales: list[nn.Module] = []
        for k in range(num_scales):
            if backbone is not None:
                d = backbone(k)
                if not isinstance(d, nn.Module):
                    raise TypeError(f"backbone({k}) must return an nn.Module, got {type(d).__name__}")
            else:
                d = PatchDiscriminator(
                    in_channels,
                    num_layers=num_layers,
                    base_channels=base_channels,
                    max_channels=max_channels,
                    norm=norm,
                    bias_before_norm=bias_before_norm,
                    spectral_norm=spectral_norm,
                    equalized_lr=equalized_lr,
                    mbstd_group_size=mbstd_group_size,
                    mbstd_num_channels=mbstd_num_channels,
                    device=device,
                    dtype=dtype,
                )
            scales.append(d)
        self.scales = nn.ModuleList(scales)

    def _scale_minimum(self, k: int) -> int:
        m = getattr(self.scales[k], "min_input_size", 1)
        return int(m) if isinstance(m, int) else 1

    @property
    def min_input_size(self) -> int:
        """Smallest height and width such that every scale gets at least its discriminator's minimum."""
        return max(((self._scale_minimum(k) - 1) << k) + 1 for k in range(self.num_scales))

    def _check_size(self, h: int, w: int) -> None:
        for k in range(self.num_scales):
            m = self._scale_minimum(k)
            hk, wk = _ceil_halve(h, k), _ceil_halve(w, k)
            if hk < m or wk < m:
                lo = self.min_input_size
                raise ValueError(
                    f"x of spatial size {h}×{w} is too small for num_scales={self.num_scales}: scale {k} sees "
                    f"{hk}×{wk}, below its discriminator's minimum {m}×{m}; the minimum input is {lo}×{lo}"
                )

    def forward(self, x: torch.Tensor, *, return_features: Optional[bool] = None) -> DiscriminatorOutput:
        check_images("x", x, self.in_channels)
        check_input_dtype("x", x, self)
        self._check_size(x.shape[-2], x.shape[-1])
        want = self.return_features if return_features is None else return_features
        logits: list[torch.Tensor] = []
        features: list[list[torch.Tensor]] = []
        for k, d in enumerate(self.scales):
            if k > 0:
                x = downsample(x)
            out = d(x, return_features=want) if isinstance(d, PatchDiscriminator) else d(x)
            if isinstance(out, torch.Tensor):
                logits.append(out)
                features.append([])
            elif isinstance(out, DiscriminatorOutput) and len(out.logits) == 1:
                logits.append(out.logits[0])
                features.append(list(out.features[0]) if want else [])
            else:
                raise TypeError(
                    f"the discriminator of scale {k} must return a tensor or a one-scale DiscriminatorOutput, "
                    f"got {type(out).__name__}"
                )
        return DiscriminatorOutput(logits, features)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, num_scales={self.num_scales}" + (
            ", return_features=True" if self.return_features else ""
        )

    @classmethod
    def from_pix2pixhd(
        cls,
        state_dict: Mapping[str, torch.Tensor],
        *,
        bias_before_norm: bool = True,
        return_features: bool = False,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> MultiScaleDiscriminator:
        """Build a discriminator matching a pix2pixHD ``MultiscaleDiscriminator`` state dict and load it.

        ``num_scales``, ``num_layers``, ``in_channels``, ``base_channels`` and the norm (batch norm when the
        state dict holds running statistics, else instance norm) are read from the state dict.

        Args:
            state_dict: pix2pixHD's ``netD.state_dict()`` (e.g. ``torch.load("latest_net_D.pth",
                weights_only=True)``), with either key layout.
            bias_before_norm: see :class:`PatchDiscriminator`.
            return_features: see :class:`MultiScaleDiscriminator`.
            device: device of the parameters.
            dtype: dtype of the parameters.
        """
        layout = _parse_pix2pixhd_keys(state_dict)
        if not layout:
            raise ValueError(
                "state_dict holds no pix2pixHD discriminator keys (scale{i}_layer{j}.* or layer{i}.*); "
                f"got keys such as {list(state_dict)[:4]}"
            )
        num_scales = 1 + max(p for p, _, _, _ in layout.values())
        num_layers = max(j for _, j, _, _ in layout.values()) - 1
        first = [
            k for k, (p, j, part, param) in layout.items() if j == 0 and part == "conv" and param == "weight"
        ]
        if not first or num_layers < 1:
            raise ValueError(
                "state_dict does not hold a complete pix2pixHD discriminator (no first conv weight)"
            )
        w = state_dict[first[0]]
        norm: PatchNorm = (
            "batch" if any(param == "running_mean" for *_, param in layout.values()) else "instance"
        )
        d = cls(
            w.shape[1],
            num_scales=num_scales,
            num_layers=num_layers,
            base_channels=w.shape[0],
            norm=norm,
            bias_before_norm=bias_before_norm,
            return_features=return_features,
            device=device,
            dtype=dtype,
        )
        d.load_pix2pixhd_state_dict(state_dict)
        return d

    def load_pix2pixhd_state_dict(
        self, state_dict: Mapping[str, torch.Tensor], *, strict: bool = True
    ) -> None:
        """Load a pix2pixHD ``MultiscaleDiscriminator`` state dict so that outputs are identical.

        Both of pix2pixHD's key layouts are read: ``scale{i}_layer{j}.{m}.*`` (``getIntermFeat=True``) and
        ``layer{i}.{m}.*`` (one ``nn.Sequential`` per scale). pix2pixHD's scale ``i`` runs at downsampling
        level ``num_D - 1 - i``, so it becomes this module's scale ``num_scales - 1 - i``. A leading
        ``module.`` (``DataParallel``) is ignored. With ``bias_before_norm=False`` the redundant conv biases
        before instance norm are dropped and those before batch norm are folded into its running mean.

        Args:
            state_dict: pix2pixHD's discriminator state dict.
            strict: every key of both sides must be matched.
        """
        if self.custom_backbone or not self._plain_convs or self.norm == "instance_affine":
            raise ValueError(
                "load_pix2pixhd_state_dict needs the pix2pixHD architecture: the default PatchGAN backbone "
                "with norm='instance', 'batch' or 'none' and no spectral_norm, equalized_lr or mbstd_num_channels"
            )
        converted = convert_pix2pixhd_state_dict(
            state_dict, num_scales=self.num_scales, norm=self.norm, bias_before_norm=self.bias_before_norm
        )
        own = self.state_dict()
        for key in own:
            if key.endswith("num_batches_tracked") and key not in converted:
                # Checkpoints from PyTorch < 0.4.1 predate this buffer.
                converted[key] = torch.zeros_like(own[key])
        missing = sorted(set(own) - set(converted))
        unexpected = sorted(set(converted) - set(own))
        if strict and (missing or unexpected):
            raise ValueError(
                f"state_dict does not match this MultiScaleDiscriminator (num_scales={self.num_scales}, "
                f"num_layers={self.num_layers}, norm={self.norm!r}): missing {missing[:6]}, unexpected "
                f"{unexpected[:6]} (after mapping pix2pixHD keys to this module's)"
            )
        for key, value in sorted(converted.items()):
            if key in own and own[key].shape != value.shape:
                raise ValueError(
                    f"state_dict entry for {key} has shape {tuple(value.shape)}, this module expects "
                    f"{tuple(own[key].shape)}: check in_channels, base_channels and max_channels"
                )
        self.load_state_dict({k: v for k, v in converted.items() if k in own}, strict=strict)


_INTERM = re.compile(r"^scale(\d+)_layer(\d+)\.(\d+)\.(\w+)$")
_FLAT = re.compile(r"^layer(\d+)\.(\d+)\.(\w+)$")


def _flat_position(index: int) -> Optional[tuple[int, str]]:
    """Layer and part of entry ``index`` of pix2pixHD's flat ``nn.Sequential``.

    Layer 0 is ``[conv, lrelu]``, every later layer ``[conv, norm, lrelu]``, the last ``[conv]``.
    """
    if index == 0:
        return 0, "conv"
    if index < 2:
        return None
    j, r = divmod(index - 2, 3)
    return (j + 1, ("conv", "norm", "")[r]) if r < 2 else None


def _parse_pix2pixhd_keys(state_dict: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, int, str, str]]:
    """pix2pixHD key → (pix2pixHD scale, layer, "conv" | "norm", parameter name); raises on strangers."""
    out: dict[str, tuple[int, int, str, str]] = {}
    for key in state_dict:
        k = key[len("module.") :] if key.startswith("module.") else key
        m = _INTERM.match(k)
        pos: Optional[tuple[int, str]]
        if m is not None:
            p, j, idx, param = int(m[1]), int(m[2]), int(m[3]), m[4]
            pos = (j, ("conv", "norm")[idx]) if idx < 2 else None
        else:
            m = _FLAT.match(k)
            if m is None:
                raise ValueError(f"state_dict key {key!r} is not a pix2pixHD MultiscaleDiscriminator key")
            p, param = int(m[1]), m[3]
            pos = _flat_position(int(m[2]))
        if pos is None:
            raise ValueError(f"state_dict key {key!r} names a pix2pixHD layer without parameters")
        out[key] = (p, pos[0], pos[1], param)
    return out


def convert_pix2pixhd_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    *,
    num_scales: int,
    norm: PatchNorm = "instance",
    bias_before_norm: bool = True,
) -> dict[str, torch.Tensor]:
    """Map a pix2pixHD ``MultiscaleDiscriminator`` state dict to :class:`MultiScaleDiscriminator` keys.

    Args:
        state_dict: pix2pixHD's discriminator state dict (either key layout).
        num_scales: ``num_D`` of the checkpoint.
        norm: the target's norm.
        bias_before_norm: whether the target keeps the conv biases in front of norms.

    Returns:
        A state dict for ``MultiScaleDiscriminator(..., num_scales=num_scales, norm=norm,
        bias_before_norm=bias_before_norm)``.
    """
    layout = _parse_pix2pixhd_keys(state_dict)
    found = 1 + max((p for p, *_ in layout.values()), default=-1)
    if found > num_scales:
        raise ValueError(
            f"state_dict holds {found} pix2pixHD scales, the target has num_scales={num_scales}; "
            f"build MultiScaleDiscriminator(..., num_scales={found})"
        )
    out: dict[str, torch.Tensor] = {}
    last: dict[int, int] = {}
    for key, (p, j, part, param) in layout.items():
        scale = num_scales - 1 - p
        out[f"scales.{scale}.layers.{j}.{part}.{param}"] = state_dict[key]
        last[scale] = max(last.get(scale, 0), j)
    if bias_before_norm or norm == "none":
        return out
    # A conv bias followed by a norm only shifts what the norm subtracts again: drop it, or for batch
    # norm move it into the running mean, which then subtracts the same amount in eval mode.
    for scale, n in last.items():
        for j in range(1, n):
            prefix = f"scales.{scale}.layers.{j}"
            bias = out.pop(f"{prefix}.conv.bias", None)
            mean_key = f"{prefix}.norm.running_mean"
            if bias is not None and mean_key in out:
                out[mean_key] = out[mean_key] - bias
    return out
