"""pix2pixHD's generators: the global generator G1 and the local enhancer G2, on the fused ops."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_images, check_int
from ._layers import (
    GENERATOR_NORMS,
    GeneratorNorm,
    OutputConv,
    check_generator_size,
    pix2pixhd_layer,
)
from .pix2pixhd_loaders import (
    global_generator_config,
    global_generator_plans,
    load_converted,
    local_enhancer_config,
    local_enhancer_plans,
)
from .resnet_block import ResnetBlock


class EncoderDecoder(nn.Module):
    """pix2pixHD's ``GlobalGenerator`` body, shared by :class:`GlobalGenerator` and
    :class:`~ganblocks.generators.FeatureEncoder` (an encoder is the same network without residual blocks).

    ``stem``: reflection pad 3, 7×7 conv to ``base_channels``; ``down``: ``num_downsampling`` stride-2 3×3
    convs doubling the channels; ``blocks``: ``num_blocks`` :class:`ResnetBlock`; ``up``: ``num_downsampling``
    2× transposed convs halving the channels (each conv followed by norm + ReLU); ``head``: the
    :class:`~ganblocks.generators.OutputConv` (reflection pad 3, 7×7 conv, tanh), or None. Submodule names
    and the pix2pixHD loader are common to both networks.
    """

    #: pix2pixHD's class name, for messages.
    pix2pixhd_name = "GlobalGenerator"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        base_channels: int,
        num_downsampling: int,
        num_blocks: int,
        norm: GeneratorNorm,
        bias_before_norm: bool,
        output_layer: bool,
        device: Optional[Union[torch.device, str]],
        dtype: Optional[torch.dtype],
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("out_channels", out_channels)
        check_int("base_channels", base_channels)
        check_int("num_downsampling", num_downsampling, minimum=0)
        check_int("num_blocks", num_blocks, minimum=0)
        check_choice("norm", norm, GENERATOR_NORMS)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.base_channels = base_channels
        self.num_downsampling = num_downsampling
        self.num_blocks = num_blocks
        self.norm = norm
        self.bias_before_norm = bias_before_norm
        self.output_layer = output_layer

        layer = functools.partial(
            pix2pixhd_layer, norm=norm, bias_before_norm=bias_before_norm, device=device, dtype=dtype
        )

        chans = [base_channels * 2**i for i in range(num_downsampling + 1)]
        self.stem = layer(in_channels, base_channels, 7, reflect_pad=3)
        self.down = nn.ModuleList(layer(c, 2 * c, 3) for c in chans[:-1])
        self.blocks = nn.ModuleList(
            ResnetBlock(chans[-1], norm=norm, bias_before_norm=bias_before_norm, device=device, dtype=dtype)
            for _ in range(num_blocks)
        )
        self.up = nn.ModuleList(layer(c, c // 2, 3, transposed=True) for c in reversed(chans[1:]))
        self.head = (
            OutputConv(base_channels, out_channels, device=device, dtype=dtype) if output_layer else None
        )

    def check_input(self, x: torch.Tensor) -> None:
        """``x`` has ``in_channels`` channels and a size that every upsampling restores."""
        check_images("x", x, self.in_channels)
        check_generator_size(
            "x", x, factor=1 << self.num_downsampling, bottleneck_pad=self.num_blocks > 0,
            what=f"a {type(self).__name__} with num_downsampling={self.num_downsampling}",
        )  # fmt: skip

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The network on a checked ``x``."""
        y: torch.Tensor = self.stem(x)
        for module in (*self.down, *self.blocks, *self.up):
            y = module(y)
        return y if self.head is None else self.head(y)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"base_channels={self.base_channels}, num_downsampling={self.num_downsampling}, "
            f"num_blocks={self.num_blocks}"
            + ("" if self.norm == "instance" else f", norm={self.norm!r}")
            + ("" if self.output_layer else ", output_layer=False")
        )

    def load_pix2pixhd_state_dict(
        self, state_dict: Mapping[str, torch.Tensor], *, strict: bool = True
    ) -> None:
        """Load a pix2pixHD state dict of this network (keys ``model.<i>.*``, ``module.`` ignored) so that
        outputs are identical.

        With ``bias_before_norm=False`` the redundant conv biases before instance norm are dropped and
        those before batch norm are folded into its running mean.
        """
        plans = global_generator_plans(self.num_downsampling, self.num_blocks, head=self.output_layer)
        load_converted(self, state_dict, plans, what=self.pix2pixhd_name, strict=strict)


class GlobalGenerator(EncoderDecoder):
    r"""pix2pixHD's global generator G1: encoder, residual blocks, decoder.

    ==============================  =====================================================================
    stem                            reflection pad 3, 7×7 conv to :math:`c` = ``base_channels``, norm, ReLU
    ``num_downsampling`` × down     3×3 conv stride 2 (channels ×2), norm, ReLU
    ``num_blocks`` × residual       :class:`ResnetBlock` at :math:`c \cdot 2^{n}` channels
    ``num_downsampling`` × up       3×3 transposed conv stride 2, output padding 1 (channels ÷2), norm, ReLU
    head                            reflection pad 3, 7×7 conv to ``out_channels``, tanh
    ==============================  =====================================================================

    Norms are non-affine instance norm (or batch norm); norm + ReLU run as one
    :func:`~ganblocks.functional.instance_norm_act` pass and the head's bias + tanh as one
    :func:`~ganblocks.functional.bias_act` pass. Convs start as pix2pixHD's (weights
    :math:`\mathcal{N}(0, 0.02^2)`). With 37 input channels, 3 outputs and the defaults it has pix2pixHD's
    182,549,891 parameters (pix2pixHD's Cityscapes input is 35 one-hot labels and the instance boundary
    map, plus ``feat_num`` encoder features when they are used). Checkpoints load with :meth:`from_pix2pixhd`
    and give identical outputs.

    Args:
        in_channels: input channels (one-hot labels, plus the boundary map and encoder features if used).
        out_channels: output channels.
        base_channels: channels of the stem (pix2pixHD's ``ngf``).
        num_downsampling: stride-2 convs (``n_downsample_global``; pix2pixHD's option default is 4).
        num_blocks: residual blocks (pix2pixHD's ``n_blocks_global``).
        norm: ``"instance"`` (non-affine, as pix2pixHD) or ``"batch"``.
        bias_before_norm: keep the conv biases in front of the norms, as pix2pixHD does; the norm subtracts
            them again, so False computes the same function with fewer parameters.
        output_layer: end with the 7×7 conv and tanh; False returns the last upsampling layer's
            ``base_channels`` features (how :class:`LocalEnhancer` uses G1).
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: :math:`(N, C_{in}, H, W)` with :math:`H, W` multiples of :math:`2^{n}` and at least
          :math:`2^{n+1}` (``n = num_downsampling``).
        - Output: :math:`(N, C_{out}, H, W)` in :math:`[-1, 1]` (or :math:`(N, c, H, W)` features).

    Example:
        >>> import torch
        >>> from ganblocks.generators import GlobalGenerator
        >>> g = GlobalGenerator(4, 3, base_channels=8, num_downsampling=2, num_blocks=2)
        >>> g(torch.randn(1, 4, 16, 16)).shape
        torch.Size([1, 3, 16, 16])

    Reference:
        Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs", CVPR 2018.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        base_channels: int = 64,
        num_downsampling: int = 4,
        num_blocks: int = 9,
        norm: GeneratorNorm = "instance",
        bias_before_norm: bool = True,
        output_layer: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, base_channels=base_channels, num_downsampling=num_downsampling,
            num_blocks=num_blocks, norm=norm, bias_before_norm=bias_before_norm, output_layer=output_layer,
            device=device, dtype=dtype,
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.run(x)

    @classmethod
    def from_pix2pixhd(
        cls,
        state_dict: Mapping[str, torch.Tensor],
        *,
        bias_before_norm: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> GlobalGenerator:
        """Build a generator matching a pix2pixHD ``GlobalGenerator`` state dict (``netG.state_dict()``,
        e.g. ``torch.load("latest_net_G.pth", weights_only=True)``) and load it.

        Channels, ``base_channels``, ``num_downsampling``, ``num_blocks`` and the norm are read from the keys.
        """
        cfg = global_generator_config(state_dict, what=cls.pix2pixhd_name)
        g = cls(
            cfg.in_channels, cfg.out_channels, base_channels=cfg.base_channels,
            num_downsampling=cfg.num_downsampling, num_blocks=cfg.num_blocks, norm=cfg.norm,
            bias_before_norm=bias_before_norm, device=device, dtype=dtype,
        )  # fmt: skip
        g.load_pix2pixhd_state_dict(state_dict)
        return g


class LocalEnhancerBranch(nn.Module):
    """One enhancer of :class:`LocalEnhancer`: ``up(down(x) + coarser)``, optionally with the output head."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        num_blocks: int,
        *,
        out_channels: Optional[int],
        norm: GeneratorNorm,
        bias_before_norm: bool,
        device: Optional[Union[torch.device, str]],
        dtype: Optional[torch.dtype],
    ) -> None:
        super().__init__()

        layer = functools.partial(
            pix2pixhd_layer, norm=norm, bias_before_norm=bias_before_norm, device=device, dtype=dtype
        )

        self.stem = layer(in_channels, channels, 7, reflect_pad=3)
        self.down = layer(channels, 2 * channels, 3)
        self.blocks = nn.ModuleList(
            ResnetBlock(
                2 * channels, norm=norm, bias_before_norm=bias_before_norm, device=device, dtype=dtype
            )
            for _ in range(num_blocks)
        )
        self.up = layer(2 * channels, channels, 3, transposed=True)
        self.head = (
            None if out_channels is None else OutputConv(channels, out_channels, device=device, dtype=dtype)
        )

    def forward(self, x: torch.Tensor, coarser: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.down(self.stem(x)) + coarser
        for block in self.blocks:
            y = block(y)
        y = self.up(y)
        return y if self.head is None else self.head(y)


class LocalEnhancer(nn.Module):
    r"""pix2pixHD's coarse-to-fine generator G2: a global generator plus ``num_local_enhancers`` enhancers.

    The input is downsampled ``num_local_enhancers`` times by ``AvgPool2d(3, stride=2, padding=1,
    count_include_pad=False)``. The :class:`GlobalGenerator` (``base_channels · 2^{num_local_enhancers}``
    channels, without its output layer) runs on the coarsest image; enhancer :math:`k = 1 … K` then
    computes, at twice the previous resolution and with :math:`c_k = c \cdot 2^{K-k}` channels,

    .. math::
        h_k = \mathrm{up}_k\big(\mathrm{down}_k(x_{K-k}) + h_{k-1}\big)

    with :math:`\mathrm{down}_k` = reflection pad 3, 7×7 conv to :math:`c_k`, norm, ReLU, stride-2 3×3
    conv to :math:`2c_k`, norm, ReLU, and :math:`\mathrm{up}_k` = ``num_blocks_local`` :class:`ResnetBlock`
    at :math:`2c_k`, a 2× transposed conv to :math:`c_k`, norm, ReLU; the last enhancer ends with reflection
    pad 3, 7×7 conv to ``out_channels`` and tanh. With 3 input and output channels, ``base_channels=32``
    and the other defaults it has pix2pixHD's 182,701,827 parameters.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        base_channels: channels of the finest enhancer (pix2pixHD's ``ngf``; 32 for 2048×1024 Cityscapes).
        num_downsampling_global: stride-2 convs of the global generator (``n_downsample_global``).
        num_blocks_global: residual blocks of the global generator (pix2pixHD's ``n_blocks_global``).
        num_local_enhancers: number of enhancers (pix2pixHD's ``n_local_enhancers``).
        num_blocks_local: residual blocks per enhancer (pix2pixHD's ``n_blocks_local``).
        norm: ``"instance"`` or ``"batch"``.
        bias_before_norm: see :class:`GlobalGenerator`.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: :math:`(N, C_{in}, H, W)` with :math:`H, W` multiples of :math:`2^{n + K}`
          (``n = num_downsampling_global``, ``K = num_local_enhancers``) and at least twice that.
        - Output: :math:`(N, C_{out}, H, W)` in :math:`[-1, 1]`.

    Example:
        >>> import torch
        >>> from ganblocks.generators import LocalEnhancer
        >>> g = LocalEnhancer(4, 3, base_channels=4, num_downsampling_global=1, num_blocks_global=1, num_blocks_local=1)
        >>> g(torch.randn(1, 4, 16, 16)).shape
        torch.Size([1, 3, 16, 16])

    Reference:
        Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs", CVPR 2018.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        base_channels: int = 32,
        num_downsampling_global: int = 4,
        num_blocks_global: int = 9,
        num_local_enhancers: int = 1,
        num_blocks_local: int = 3,
        norm: GeneratorNorm = "instance",
        bias_before_norm: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("out_channels", out_channels)
        check_int("base_channels", base_channels)
        check_int("num_local_enhancers", num_local_enhancers)
        check_int("num_blocks_local", num_blocks_local, minimum=0)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.base_channels = base_channels
        self.num_local_enhancers = num_local_enhancers
        self.num_blocks_local = num_blocks_local
        self.norm = norm
        self.bias_before_norm = bias_before_norm
        self.global_generator = GlobalGenerator(
            in_channels, out_channels, base_channels=base_channels * 2**num_local_enhancers,
            num_downsampling=num_downsampling_global, num_blocks=num_blocks_global, norm=norm,
            bias_before_norm=bias_before_norm, output_layer=False, device=device, dtype=dtype,
        )  # fmt: skip
        self.enhancers = nn.ModuleList(
            LocalEnhancerBranch(
                in_channels,
                base_channels * 2 ** (num_local_enhancers - k),
                num_blocks_local,
                out_channels=out_channels if k == num_local_enhancers else None,
                norm=norm,
                bias_before_norm=bias_before_norm,
                device=device,
                dtype=dtype,
            )
            for k in range(1, num_local_enhancers + 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images("x", x, self.in_channels)
        g = self.global_generator
        check_generator_size(
            "x", x, factor=1 << (g.num_downsampling + self.num_local_enhancers), bottleneck_pad=True,
            what=f"a LocalEnhancer with num_downsampling_global={g.num_downsampling} and "
            f"num_local_enhancers={self.num_local_enhancers}",
        )  # fmt: skip
        pyramid = [x]
        for _ in range(self.num_local_enhancers):
            pyramid.append(F.avg_pool2d(pyramid[-1], 3, stride=2, padding=1, count_include_pad=False))
        y = g.run(pyramid[-1])  # the size was checked above
        for k, enhancer in enumerate(self.enhancers, start=1):
            y = enhancer(pyramid[self.num_local_enhancers - k], y)
        return y

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, base_channels={self.base_channels}, "
            f"num_local_enhancers={self.num_local_enhancers}, num_blocks_local={self.num_blocks_local}"
        )

    @classmethod
    def from_pix2pixhd(
        cls,
        state_dict: Mapping[str, torch.Tensor],
        *,
        bias_before_norm: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> LocalEnhancer:
        """Build a generator matching a pix2pixHD ``LocalEnhancer`` state dict and load it.

        Channels, ``base_channels``, the global generator's depth, the number of enhancers, their blocks and
        the norm are read from the keys (``model.<i>.*`` for G1, ``model<k>_1.*``/``model<k>_2.*`` for the
        enhancers).
        """
        cfg = local_enhancer_config(state_dict)
        g = cls(
            cfg.in_channels, cfg.out_channels, base_channels=cfg.base_channels,
            num_downsampling_global=cfg.num_downsampling_global, num_blocks_global=cfg.num_blocks_global,
            num_local_enhancers=cfg.num_local_enhancers, num_blocks_local=cfg.num_blocks_local, norm=cfg.norm,
            bias_before_norm=bias_before_norm, device=device, dtype=dtype,
        )  # fmt: skip
        g.load_pix2pixhd_state_dict(state_dict)
        return g

    def load_pix2pixhd_state_dict(
        self, state_dict: Mapping[str, torch.Tensor], *, strict: bool = True
    ) -> None:
        """Load a pix2pixHD ``LocalEnhancer`` state dict so that outputs are identical (see
        :meth:`GlobalGenerator.load_pix2pixhd_state_dict`)."""
        g = self.global_generator
        plans = local_enhancer_plans(
            g.num_downsampling, g.num_blocks, self.num_local_enhancers, self.num_blocks_local
        )
        load_converted(self, state_dict, plans, what="LocalEnhancer", strict=strict)
