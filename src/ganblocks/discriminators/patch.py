"""PatchGAN discriminator with pix2pixHD's exact geometry, on the fused ops."""

from __future__ import annotations

from typing import Literal, Optional, TypeAlias, Union

import torch
from torch import nn

from .._checks import check_images, check_input_dtype, check_int, check_mbstd_batch
from ..ops._activations import Activation
from ..ops.bias_act import bias_act
from ..ops.instance_norm_act import instance_norm_act
from ..ops.minibatch_stddev import minibatch_stddev as mbstd_op
from ..outputs import DiscriminatorOutput
from ._conv import make_conv

PatchNorm: TypeAlias = Literal["instance", "instance_affine", "batch", "none"]
PATCH_NORMS: tuple[str, ...] = ("instance", "instance_affine", "batch", "none")

KERNEL_SIZE = 4
# pix2pixHD: padw = ceil((kw - 1) / 2) = 2 (pix2pix uses 1); it makes every conv map size s to s // 2 + 1.
PADDING = 2
LRELU_ALPHA = 0.2
# pix2pixHD's weights_init: conv weights N(0, 0.02²), batch-norm weights N(1, 0.02²), batch-norm bias 0.
INIT_STD = 0.02


def patch_logits_size(size: int, num_layers: int) -> int:
    """Spatial size of a PatchGAN's logits for an input of ``size``: ``s → s // 2 + 1`` per strided conv, ``+1`` twice."""
    for _ in range(max(num_layers, 1)):
        size = size // 2 + 1
    return size + 2


class PatchLayer(nn.Module):
    """One PatchGAN layer: 4×4 conv, optional norm, optional LeakyReLU(0.2), on the fused ops.

    Without a norm the conv runs without bias and :func:`bias_act` adds bias and activation in one pass;
    with instance norm :func:`instance_norm_act` normalizes and activates in one pass; batch norm is
    ``nn.BatchNorm2d`` followed by :func:`bias_act`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stride: int,
        norm: PatchNorm,
        act: bool,
        conv_bias: bool = True,
        spectral_norm: bool = False,
        equalized_lr: bool = False,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.norm_kind: PatchNorm = norm
        self.act = act
        fused_act = act and norm == "none"
        self.conv = make_conv(
            in_channels,
            out_channels,
            KERNEL_SIZE,
            stride=stride,
            padding=PADDING,
            bias=conv_bias or norm == "none",
            act="lrelu" if fused_act else "linear",
            alpha=LRELU_ALPHA if fused_act else None,
            gain=1.0,
            equalized_lr=equalized_lr,
            spectral_norm=spectral_norm,
            init_std=INIT_STD,
            device=device,
            dtype=dtype,
        )
        self.norm: Optional[nn.Module] = None
        if norm in ("instance", "instance_affine"):
            # Holds the affine parameters (if any) under pix2pix's key names; instance_norm_act does the work.
            self.norm = nn.InstanceNorm2d(
                out_channels, affine=norm == "instance_affine", device=device, dtype=dtype
            )
        elif norm == "batch":
            bn = nn.BatchNorm2d(out_channels, device=device, dtype=dtype)
            nn.init.normal_(bn.weight, 1.0, INIT_STD)
            nn.init.zeros_(bn.bias)
            self.norm = bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.conv(x)
        norm = self.norm
        if norm is None:
            return y
        act: Activation = "lrelu" if self.act else "linear"
        if isinstance(norm, nn.InstanceNorm2d):
            return instance_norm_act(
                y, norm.weight, norm.bias, eps=norm.eps, act=act, alpha=LRELU_ALPHA, gain=1.0
            )
        y = norm(y)
        return bias_act(y, act=act, alpha=LRELU_ALPHA, gain=1.0) if self.act else y

    def extra_repr(self) -> str:
        return f"norm={self.norm_kind!r}, act={'lrelu(0.2)' if self.act else 'linear'}"


class PatchDiscriminator(nn.Module):
    r"""PatchGAN discriminator with pix2pixHD's geometry: one logit per overlapping image patch.

    Layers, all with 4×4 kernels and padding 2 (pix2pixHD's ``NLayerDiscriminator``):

    ========  ======  ==================================  ======================
    layer     stride  channels                            after the conv
    ========  ======  ==================================  ======================
    0         2       ``base_channels``                   LeakyReLU(0.2)
    1 … n−1   2       ×2 per layer, ≤ ``max_channels``    norm, LeakyReLU(0.2)
    n         1       ×2, ≤ ``max_channels``              norm, LeakyReLU(0.2)
    n+1       1       1                                   (logits)
    ========  ======  ==================================  ======================

    with :math:`n` = ``num_layers``. Every conv maps a size :math:`s` to :math:`\lfloor s/2 \rfloor + 1`
    (stride 2) or :math:`s + 1` (stride 1): a 256×256 input gives 35×35 logits for ``num_layers=3``.
    The hot path runs on the fused ops: :func:`~ganblocks.functional.bias_act` adds the first conv's bias
    and LeakyReLU in one pass, :func:`~ganblocks.functional.instance_norm_act` normalizes and activates the
    middle convs' outputs in one pass, and the last conv keeps its bias.

    Plain convs start as pix2pixHD's (weights :math:`\mathcal{N}(0, 0.02^2)`, batch-norm scales
    :math:`\mathcal{N}(1, 0.02^2)`); equalized ones as :class:`ganblocks.EqualConv2d`.

    For a conditional discriminator (pix2pix), concatenate the condition to the image along the channels
    and count its channels in ``in_channels``: ``D(torch.cat([label_map, image], 1))``.

    Args:
        in_channels: channels of the input.
        num_layers: number of stride-2 convolutions (pix2pixHD's ``n_layers_D``).
        base_channels: channels of the first conv (``ndf``).
        max_channels: cap on the channel count.
        norm: ``"instance"`` (non-affine, as pix2pixHD), ``"instance_affine"``, ``"batch"`` or ``"none"``.
        bias_before_norm: give the convs followed by a norm a bias, as pix2pixHD does. The norm subtracts it
            again, so ``False`` computes the same function with fewer parameters (896 per PatchGAN at the
            defaults) and one elementwise pass less per layer; ``True`` keeps pix2pixHD's parameter count
            and state-dict layout. Unused with ``norm="none"``.
        spectral_norm: spectrally normalize every conv (``torch.nn.utils.parametrizations``).
        equalized_lr: use equalized learning-rate convs (:class:`ganblocks.EqualConv2d`).
        mbstd_group_size: group size of the minibatch standard deviation (None: the whole batch).
        mbstd_num_channels: number of :func:`~ganblocks.functional.minibatch_stddev` channels appended
            before the last conv; 0 (pix2pixHD's) appends none, as in :class:`MSGDiscriminator` and
            StyleGAN2-ADA.
        return_features: return the output of every layer but the last (pix2pixHD's ``getIntermFeat``);
            ``forward(..., return_features=...)`` overrides it per call.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: :math:`(N, C_{in}, H, W)` with :math:`H, W \ge 2^{n}` (``min_input_size``).
        - Output: a :class:`DiscriminatorOutput` with one logits tensor :math:`(N, 1, H', W')` and, if asked,
          ``num_layers + 1`` feature maps.

    Example:
        >>> import torch
        >>> from ganblocks import PatchDiscriminator
        >>> d = PatchDiscriminator(3)
        >>> sum(p.numel() for p in d.parameters())
        2764737
        >>> d(torch.randn(1, 3, 256, 256)).logits[0].shape
        torch.Size([1, 1, 35, 35])

    Reference:
        Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017;
        Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs", CVPR 2018.
    """

    def __init__(
        self,
        in_channels: int,
        *,
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
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("num_layers", num_layers)
        check_int("base_channels", base_channels)
        check_int("max_channels", max_channels)
        check_int("mbstd_num_channels", mbstd_num_channels, minimum=0)
        if mbstd_group_size is not None:
            check_int("mbstd_group_size", mbstd_group_size)
        if norm not in PATCH_NORMS:
            raise ValueError(f"norm must be one of {PATCH_NORMS}, got {norm!r}")
        if equalized_lr and spectral_norm:
            raise ValueError(
                "equalized_lr and spectral_norm cannot both be True: choose one weight parametrization"
            )
        self.in_channels = in_channels
        self.num_layers = num_layers
        self.norm = norm
        self.mbstd_group_size = mbstd_group_size
        self.mbstd_num_channels = mbstd_num_channels
        self.return_features = return_features

        def layer(
            cin: int, cout: int, *, stride: int, norm: PatchNorm, act: bool, conv_bias: bool = True
        ) -> PatchLayer:
            return PatchLayer(
                cin,
                cout,
                stride=stride,
                norm=norm,
                act=act,
                conv_bias=conv_bias,
                spectral_norm=spectral_norm,
                equalized_lr=equalized_lr,
                device=device,
                dtype=dtype,
            )

        layers = [layer(in_channels, base_channels, stride=2, norm="none", act=True)]
        nf = base_channels
        for i in range(1, num_layers + 1):
            nf_prev, nf = nf, min(nf * 2, max_channels)
            stride = 2 if i < num_layers else 1
            layers.append(layer(nf_prev, nf, stride=stride, norm=norm, act=True, conv_bias=bias_before_norm))
        if mbstd_num_channels and nf % mbstd_num_channels:
            raise ValueError(
                f"mbstd_num_channels ({mbstd_num_channels}) must divide the channel count entering the "
                f"minibatch standard deviation ({nf})"
            )
        last_in = nf + mbstd_num_channels
        layers.append(layer(last_in, 1, stride=1, norm="none", act=False))
        self.layers = nn.ModuleList(layers)

    @property
    def min_input_size(self) -> int:
        """Smallest height and width accepted: the total stride ``2 ** num_layers``.

        A smaller input would leave the last strided conv less than one input pixel per output position, so
        the discriminator would mostly see zero padding.
        """
        return 1 << self.num_layers

    def logits_size(self, height: int, width: int) -> tuple[int, int]:
        """Spatial size ``(H', W')`` of the logits for an input of ``height × width``."""
        return patch_logits_size(height, self.num_layers), patch_logits_size(width, self.num_layers)

    def forward(self, x: torch.Tensor, *, return_features: Optional[bool] = None) -> DiscriminatorOutput:
        check_images("x", x, self.in_channels)
        check_input_dtype("x", x, self)
        if self.mbstd_num_channels:
            check_mbstd_batch("x", x, self.mbstd_group_size)
        h, w = x.shape[-2], x.shape[-1]
        m = self.min_input_size
        if h < m or w < m:
            raise ValueError(
                f"x of spatial size {h}×{w} is too small for a PatchDiscriminator with num_layers={self.num_layers}: "
                f"the minimum is {m}×{m}"
            )
        want = self.return_features if return_features is None else return_features
        features: list[torch.Tensor] = []
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            if i == n - 1 and self.mbstd_num_channels:
                x = mbstd_op(x, group_size=self.mbstd_group_size, num_channels=self.mbstd_num_channels)
            x = layer(x)
            if want and i < n - 1:
                features.append(x)
        return DiscriminatorOutput([x], [features])

    def extra_repr(self) -> str:
        s = f"in_channels={self.in_channels}, num_layers={self.num_layers}, norm={self.norm!r}"
        if self.mbstd_num_channels:
            s += f", mbstd_group_size={self.mbstd_group_size}, mbstd_num_channels={self.mbstd_num_channels}"
        return s + (", return_features=True" if self.return_features else "")
