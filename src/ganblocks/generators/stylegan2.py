"""StyleGAN2's generator: mapping network, synthesis network of modulated-convolution blocks, truncation.

The semantics, the constructor's options and the ``state_dict()`` keys are those of StyleGAN2-ADA's
``training/networks.py`` (``Generator``, ``SynthesisNetwork``, ``SynthesisBlock``, ``SynthesisLayer``,
``ToRGBLayer``): a StyleGAN2-ADA state dict loads into :class:`StyleGAN2Generator` as it is, and
:meth:`StyleGAN2Generator.from_stylegan2_ada_kwargs` builds the network from the init kwargs that
StyleGAN2-ADA records. Built on :class:`~ganblocks.layers.ModulatedConv2d`,
:func:`~ganblocks.functional.modulated_conv2d`, :func:`~ganblocks.functional.inject_noise`,
:func:`~ganblocks.functional.bias_act`, :func:`~ganblocks.functional.upsample2d`,
:class:`~ganblocks.layers.StyleGAN2Conv2d` and :class:`~ganblocks.generators.MappingNetwork`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Optional, Union

import torch
from torch import nn

from .._checks import check_choice, check_float_tensor, check_int, check_optional_clamp
from .._stylegan2 import (
    ARCHITECTURES,
    LOW_PRECISION,
    Architecture,
    block_channels,
    block_dtype,
    check_fp16_dtype,
    check_resolution,
    fp16_resolution,
    translate_kwargs,
)
from ..layers.equalized import EqualLinear
from ..layers.modulated import ModulatedConv2d, _check_w, modulated_conv2d
from ..layers.noise import NOISE_MODES, NoiseMode
from ..layers.resample import BLUR_FILTER, FilterLike, _setup_filter, upsample2d
from ..layers.stylegan2_conv import StyleGAN2Conv2d
from ..ops._activations import Activation, resolve_activation
from ..ops.bias_act import bias_act
from ..ops.inject_noise import inject_noise
from .mapping import MappingNetwork


class StyleGAN2SynthesisLayer(ModulatedConv2d):
    r"""A StyleGAN2 synthesis layer: modulated convolution, noise, bias, leaky ReLU, clamp.

    .. math::
        y = \operatorname{clamp}\big(g\sqrt2\,\mathrm{lrelu}_{0.2}(\operatorname{modconv}(x; W, A(w))
        + s\,n + b),\ -g c,\ g c\big)

    with :class:`~ganblocks.layers.ModulatedConv2d`'s modulated (and demodulated) convolution, one noise map
    :math:`n` per sample shared by all channels, the scalar strength :math:`s` (``noise_strength``, starting
    at 0), the bias :math:`b`, :math:`c` = ``clamp`` and :math:`g` the call's ``gain``. Noise modes:
    ``"random"`` draws :math:`n \sim \mathcal N(0, 1)`, ``"const"`` uses the buffer ``noise_const``
    (drawn once at construction), ``"none"`` adds nothing. Keys: StyleGAN2-ADA's ``SynthesisLayer``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        w_dim: size of ``w``.
        resolution: output resolution (the size of ``noise_const``).
        kernel_size: the square kernel's size.
        up: upsampling factor (1 or 2).
        use_noise: own a noise input.
        act: activation, with its default gain.
        resample_filter: FIR taps of the upsampling filter.
        clamp: clamp bound (``conv_clamp``); None: off.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - ``x``: ``(N, C_in, R/up, R/up)``; ``w``: ``(N, w_dim)``. Output: ``(N, C_out, R, R)``.

    Example:
        >>> import torch
        >>> from ganblocks.generators import StyleGAN2SynthesisLayer
        >>> layer = StyleGAN2SynthesisLayer(8, 4, 16, 8, up=2)
        >>> layer(torch.randn(2, 8, 4, 4), torch.randn(2, 16), noise_mode="const").shape
        torch.Size([2, 4, 8, 8])

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020, section 2.2.
    """

    noise_const: Optional[torch.Tensor]
    noise_strength: Optional[nn.Parameter]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        *,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        act: Activation = "lrelu",
        resample_filter: FilterLike = BLUR_FILTER,
        clamp: Optional[float] = None,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, w_dim, up=up, resample_filter=resample_filter,
            device=device, dtype=dtype,
        )  # fmt: skip
        self.resolution = check_int("resolution", resolution)
        self.use_noise = bool(use_noise)
        _, _, self.act_gain = resolve_activation(act, None, None)
        self.act: Activation = act
        self.clamp = check_optional_clamp("clamp", clamp)
        if self.use_noise:
            self.register_buffer(
                "noise_const", torch.randn((resolution, resolution), device=device, dtype=dtype)
            )
            self.noise_strength = nn.Parameter(torch.zeros((), device=device, dtype=dtype))
        else:
            self.register_buffer("noise_const", None)
            self.register_parameter("noise_strength", None)
        self.bias = nn.Parameter(torch.zeros(out_channels, device=device, dtype=dtype))

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        *,
        fused_modconv: Optional[bool] = None,
        noise_mode: NoiseMode = "random",
        gain: float = 1.0,
    ) -> torch.Tensor:
        """``noise_mode``: ``"random"``, ``"const"`` or ``"none"``; ``gain`` scales the activation gain and the
        clamp (√½ in the residual architecture)."""
        check_choice("noise_mode", noise_mode, NOISE_MODES)
        y = super().forward(x, w, fused_modconv=fused_modconv)
        g = self.act_gain * gain
        clamp = None if self.clamp is None else self.clamp * gain
        bias = self.bias.to(y.dtype)
        if self.noise_strength is None or noise_mode == "none":
            return bias_act(y, bias, act=self.act, gain=g, clamp=clamp)
        n, _, h, w_ = y.shape
        if noise_mode == "const":
            assert self.noise_const is not None
            noise = self.noise_const.to(y.dtype).expand(n, 1, h, w_)
        else:
            noise = torch.randn((n, 1, h, w_), device=y.device, dtype=y.dtype)
        strength = self.noise_strength.to(y.dtype)
        return inject_noise(y, strength, noise, bias=bias, act=self.act, gain=g, clamp=clamp)

    def extra_repr(self) -> str:
        s = (
            super().extra_repr()
            + f", resolution={self.resolution}, use_noise={self.use_noise}, act={self.act!r}"
        )
        return s if self.clamp is None else s + f", clamp={self.clamp}"


class StyleGAN2ToRGB(nn.Module):
    r"""StyleGAN2's output layer: a modulated convolution without demodulation, bias and clamp.

    .. math::
        y = \operatorname{clamp}\Big(\operatorname{modconv}\big(x;\ W, A(w)/\sqrt{C_\text{in} k^2}\big) + b,\
        -c,\ c\Big)

    :class:`~ganblocks.layers.ToRGB` is the same map with the skip upsampling inside; here the block owns the
    upsampling, so the keys are exactly StyleGAN2-ADA's ``ToRGBLayer`` (``affine``, ``weight``, ``bias``).

    Args:
        in_channels: feature channels.
        out_channels: image channels.
        w_dim: size of ``w``.
        kernel_size: the square kernel's size (1).
        clamp: clamp bound; None: off.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Example:
        >>> import torch
        >>> from ganblocks.generators import StyleGAN2ToRGB
        >>> StyleGAN2ToRGB(8, 3, 16)(torch.randn(2, 8, 4, 4), torch.randn(2, 16)).shape
        torch.Size([2, 3, 4, 4])

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020, section 4.1.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        *,
        kernel_size: int = 1,
        clamp: Optional[float] = None,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.out_channels = check_int("out_channels", out_channels)
        self.w_dim = check_int("w_dim", w_dim)
        self.kernel_size = check_int("kernel_size", kernel_size)
        self.clamp = check_optional_clamp("clamp", clamp)
        self.weight_scale = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0, device=device, dtype=dtype)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.randn(shape, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(out_channels, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor, w: torch.Tensor, *, fused_modconv: bool = True) -> torch.Tensor:
        _check_w(w, x, self.w_dim)
        styles = self.affine(w) * self.weight_scale
        y = modulated_conv2d(
            x,
            self.weight,
            styles,
            demodulate=False,
            padding=self.kernel_size // 2,
            fused_modconv=fused_modconv,
        )
        return bias_act(y, self.bias.to(y.dtype), clamp=self.clamp)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, w_dim={self.w_dim}, kernel_size={self.kernel_size}"
        return s if self.clamp is None else s + f", clamp={self.clamp}"


class StyleGAN2SynthesisBlock(nn.Module):
    r"""One resolution of StyleGAN2's synthesis network (StyleGAN2-ADA's ``SynthesisBlock``).

    The first block (``in_channels=0``) starts from a learned constant ``const`` and runs one
    :class:`StyleGAN2SynthesisLayer` (``conv1``); the others run ``conv0`` (upsampling ×2) and ``conv1``.
    Architectures:

    - ``"orig"``: :math:`x \leftarrow \text{conv1}(\text{conv0}(x))`; only the last block has ``torgb``;
    - ``"skip"``: as ``orig``, and every block adds its ``torgb`` output to the upsampled image of the block
      before: :math:`\text{img} \leftarrow \operatorname{up}_2(\text{img}) + \text{torgb}(x)`;
    - ``"resnet"``: :math:`x \leftarrow \sqrt{1/2}\,\big(\text{skip}(x) + \text{conv1}(\text{conv0}(x))\big)`
      with a 1×1 :class:`~ganblocks.layers.StyleGAN2Conv2d` ``skip`` (upsampling, no bias) and the √½ as
      StyleGAN2-ADA applies it (``gain`` of the layers, clamp bound scaled too).

    With ``use_fp16`` the block runs in ``fp16_dtype`` on CUDA (the image stays in the parameters' dtype);
    on other devices, or with ``force_fp32=True``, it runs in the parameters' dtype.

    Args:
        in_channels: channels of ``x``, 0 for the first block.
        out_channels: channels of the block's output.
        w_dim: size of ``w``.
        resolution: output resolution.
        img_channels: image channels.
        is_last: the block at the output resolution (owns a ``torgb`` in every architecture).
        architecture: ``"orig"``, ``"skip"`` or ``"resnet"``.
        resample_filter: FIR taps of every upsampling.
        conv_clamp: clamp bound of every convolution; None: off.
        use_fp16: run in reduced precision on CUDA.
        fp16_dtype: that precision: ``torch.float16`` or ``torch.bfloat16``.
        fp16_channels_last: channels_last activations when in reduced precision.
        kernel_size: kernel size of the two layers.
        use_noise: noise inputs.
        act: activation.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - ``x``: ``(N, in_channels, R/2, R/2)`` (None for the first block); ``img``: ``(N, img_channels, R/2,
          R/2)`` or None; ``ws``: ``(N, num_conv + num_torgb, w_dim)``.
        - Output: ``(x, img)`` at resolution ``R``.

    Example:
        >>> import torch
        >>> from ganblocks.generators import StyleGAN2SynthesisBlock
        >>> block = StyleGAN2SynthesisBlock(8, 4, 16, 8, 3, is_last=False)
        >>> x, img = block(torch.randn(2, 8, 4, 4), torch.randn(2, 3, 4, 4), torch.randn(2, 3, 16))
        >>> x.shape, img.shape
        (torch.Size([2, 4, 8, 8]), torch.Size([2, 3, 8, 8]))

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020, section 4.1 and
        figure 7.
    """

    resample_filter: torch.Tensor
    const: Optional[nn.Parameter]
    conv0: Optional[StyleGAN2SynthesisLayer]
    torgb: Optional[StyleGAN2ToRGB]
    skip: Optional[StyleGAN2Conv2d]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        *,
        is_last: bool,
        architecture: Architecture = "skip",
        resample_filter: FilterLike = BLUR_FILTER,
        conv_clamp: Optional[float] = None,
        use_fp16: bool = False,
        fp16_dtype: torch.dtype = torch.float16,
        fp16_channels_last: bool = False,
        kernel_size: int = 3,
        use_noise: bool = True,
        act: Activation = "lrelu",
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=0)
        self.out_channels = check_int("out_channels", out_channels)
        self.w_dim = check_int("w_dim", w_dim)
        self.resolution = check_int("resolution", resolution)
        self.img_channels = check_int("img_channels", img_channels)
        self.is_last = bool(is_last)
        self.architecture: Architecture = check_choice("architecture", architecture, ARCHITECTURES)
        self.use_fp16 = bool(use_fp16)
        self.fp16_dtype = check_fp16_dtype(fp16_dtype)
        self.channels_last = self.use_fp16 and bool(fp16_channels_last)
        f = _setup_filter("resample_filter", resample_filter, device=device, dtype=dtype)
        self.register_buffer("resample_filter", f)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        layer_kw: dict[str, Any] = dict(
            kernel_size=kernel_size, use_noise=use_noise, act=act, resample_filter=resample_filter,
            clamp=conv_clamp, **factory,
        )  # fmt: skip
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn((out_channels, resolution, resolution), **factory))
            self.conv0 = None
        else:
            self.register_parameter("const", None)
            self.conv0 = StyleGAN2SynthesisLayer(
                in_channels, out_channels, w_dim, resolution, up=2, **layer_kw
            )
            self.num_conv += 1
        self.conv1 = StyleGAN2SynthesisLayer(out_channels, out_channels, w_dim, resolution, **layer_kw)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = StyleGAN2ToRGB(out_channels, img_channels, w_dim, clamp=conv_clamp, **factory)
            self.num_torgb += 1
        else:
            self.torgb = None
        if in_channels != 0 and architecture == "resnet":
            self.skip = StyleGAN2Conv2d(
                in_channels, out_channels, 1, bias=False, up=2, resample_filter=resample_filter, **factory
            )
        else:
            self.skip = None

    def forward(
        self,
        x: Optional[torch.Tensor],
        img: Optional[torch.Tensor],
        ws: torch.Tensor,
        *,
        noise_mode: NoiseMode = "random",
        force_fp32: bool = False,
        fused_modconv: Optional[bool] = None,
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``fused_modconv`` None is StyleGAN2-ADA's choice: the grouped convolution in eval mode, unless the
        block runs in reduced precision with a batch above one."""
        ws = check_float_tensor("ws", ws, exact_ndim=3)
        count = self.num_conv + self.num_torgb
        if tuple(ws.shape[1:]) != (count, self.w_dim):
            raise ValueError(
                f"ws must have shape (N, num_conv + num_torgb, w_dim) = (N, {count}, {self.w_dim}), "
                f"got {tuple(ws.shape)}"
            )
        n = ws.shape[0]
        param_dtype = self.conv1.weight.dtype
        dtype = block_dtype(self.use_fp16, self.fp16_dtype, param_dtype, ws.device, force_fp32)
        low = dtype != param_dtype
        memory_format = torch.channels_last if self.channels_last and low else torch.contiguous_format
        fused = fused_modconv
        if fused is None:
            fused = not self.training and (dtype not in LOW_PRECISION or n == 1)
        layer_kw: dict[str, Any] = {"fused_modconv": fused, "noise_mode": noise_mode}
        w_iter = iter(ws.unbind(dim=1))

        if self.const is not None:
            x = self.const.to(dtype=dtype).unsqueeze(0).repeat(n, 1, 1, 1).to(memory_format=memory_format)
        else:
            half = self.resolution // 2
            x = check_float_tensor("x", x, exact_ndim=4)
            if tuple(x.shape) != (n, self.in_channels, half, half):
                raise ValueError(
                    f"x must have shape (N, in_channels, R/2, R/2) = ({n}, {self.in_channels}, {half}, {half}), "
                    f"got {tuple(x.shape)}"
                )
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.conv0 is None:
            x = self.conv1(x, next(w_iter), **layer_kw)
        elif self.skip is not None:
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), **layer_kw)
            x = self.conv1(x, next(w_iter), gain=math.sqrt(0.5), **layer_kw)
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), **layer_kw)
            x = self.conv1(x, next(w_iter), **layer_kw)

        if img is not None:
            half = self.resolution // 2
            expected = (n, self.img_channels, half, half)
            if tuple(img.shape) != expected:
                raise ValueError(f"img must have shape {expected}, got {tuple(img.shape)}")
            img = upsample2d(img, self.resample_filter)
        if self.torgb is not None:
            rgb = self.torgb(x, next(w_iter), fused_modconv=fused)
            rgb = rgb.to(dtype=param_dtype, memory_format=torch.contiguous_format)
            img = rgb if img is None else img + rgb
        return x, img

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, w_dim={self.w_dim}, resolution={self.resolution}, "
            f"img_channels={self.img_channels}, is_last={self.is_last}, architecture={self.architecture!r}, "
            f"use_fp16={self.use_fp16}"
        )


class StyleGAN2SynthesisNetwork(nn.Module):
    r"""StyleGAN2's synthesis network: one :class:`StyleGAN2SynthesisBlock` per resolution ``4, 8, ...,
    img_resolution`` (attributes ``b4``, ``b8``, ...), styles ``ws`` in, image out.

    Block :math:`r` has ``min(channel_base // r, channel_max)`` channels; the ``num_fp16_res`` highest
    resolutions (never below 8) run in reduced precision on CUDA. Block :math:`i` reads the styles from
    index :math:`\sum_{j<i} \text{num\_conv}_j` on, its ``torgb`` sharing its style with the next block's
    first layer; ``num_ws`` is the total number of layers plus the last ``torgb``.

    Args:
        w_dim: size of ``w``.
        img_resolution: output resolution, a power of two >= 4.
        img_channels: image channels.
        channel_base: channel budget: ``channel_base // r`` channels at resolution ``r``.
        channel_max: cap on the channels of any block.
        num_fp16_res: number of highest resolutions in reduced precision.
        **block_options: keyword options of :class:`StyleGAN2SynthesisBlock` (``architecture``,
            ``conv_clamp``, ``resample_filter``, ``fp16_dtype``, ``fp16_channels_last``, ``kernel_size``,
            ``use_noise``, ``act``, ``device``, ``dtype``).

    Shape:
        - ``ws``: ``(N, num_ws, w_dim)``. Output: ``(N, img_channels, img_resolution, img_resolution)``.

    Example:
        >>> import torch
        >>> from ganblocks.generators import StyleGAN2SynthesisNetwork
        >>> synthesis = StyleGAN2SynthesisNetwork(16, 16, 3, channel_base=128, channel_max=16)
        >>> synthesis.num_ws
        6
        >>> synthesis(torch.randn(2, 6, 16), noise_mode="const").shape
        torch.Size([2, 3, 16, 16])

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020.
    """

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        *,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        **block_options: Any,
    ) -> None:
        super().__init__()
        self.w_dim = check_int("w_dim", w_dim)
        self.img_resolution = check_resolution("img_resolution", img_resolution)
        self.img_channels = check_int("img_channels", img_channels)
        self.channel_base = check_int("channel_base", channel_base)
        self.channel_max = check_int("channel_max", channel_max)
        self.num_fp16_res = check_int("num_fp16_res", num_fp16_res, minimum=0)
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        for res in self.block_resolutions:
            if block_channels(res, channel_base, channel_max) < 1:
                raise ValueError(
                    f"channel_base // resolution must be >= 1 at every resolution, got channel_base="
                    f"{channel_base} at resolution {res}"
                )
        first_fp16 = fp16_resolution(img_resolution, num_fp16_res)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = StyleGAN2SynthesisBlock(
                block_channels(res // 2, channel_base, channel_max) if res > 4 else 0,
                block_channels(res, channel_base, channel_max),
                w_dim, res, img_channels, is_last=res == img_resolution, use_fp16=res >= first_fp16,
                **block_options,
            )  # fmt: skip
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            self.add_module(f"b{res}", block)

    def blocks(self) -> list[StyleGAN2SynthesisBlock]:
        """The blocks ``b4, b8, ...`` in order."""
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(
        self,
        ws: torch.Tensor,
        *,
        noise_mode: NoiseMode = "random",
        force_fp32: bool = False,
        fused_modconv: Optional[bool] = None,
    ) -> torch.Tensor:
        """Styles ``(N, num_ws, w_dim)`` to images; options as :meth:`StyleGAN2SynthesisBlock.forward`."""
        ws = check_float_tensor("ws", ws, exact_ndim=3)
        if tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(
                f"ws must have shape (N, num_ws, w_dim) = (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}"
            )
        blocks = self.blocks()
        ws = ws.to(blocks[0].conv1.weight.dtype)
        x: Optional[torch.Tensor] = None
        img: Optional[torch.Tensor] = None
        w_idx = 0
        for block in blocks:
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(
                x, img, block_ws, noise_mode=noise_mode, force_fp32=force_fp32, fused_modconv=fused_modconv
            )
        assert img is not None
        return img

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, img_resolution={self.img_resolution}, img_channels={self.img_channels}, "
            f"channel_base={self.channel_base}, channel_max={self.channel_max}, "
            f"num_fp16_res={self.num_fp16_res}, num_ws={self.num_ws}"
        )


# StyleGAN2-ADA's init kwargs -> ganblocks' flat keyword names.
_ADA_MAPPING_KWARGS = {
    "num_layers": "num_mapping_layers",
    "embed_features": "embed_features",
    "layer_features": "mapping_layer_features",
    "activation": "mapping_act",
    "lr_multiplier": "mapping_lr_multiplier",
    "w_avg_beta": "w_avg_beta",
}
_ADA_SYNTHESIS_KWARGS = {
    "channel_base": "channel_base",
    "channel_max": "channel_max",
    "num_fp16_res": "num_fp16_res",
    "architecture": "architecture",
    "resample_filter": "resample_filter",
    "conv_clamp": "conv_clamp",
    "fp16_channels_last": "fp16_channels_last",
    "kernel_size": "kernel_size",
    "use_noise": "use_noise",
    "activation": "act",
}


class StyleGAN2Generator(nn.Module):
    r"""StyleGAN2's generator: :class:`~ganblocks.generators.MappingNetwork` ``mapping`` (z, c → ws) and
    :class:`StyleGAN2SynthesisNetwork` ``synthesis`` (ws → image), as StyleGAN2-ADA's ``Generator``.

    .. math::
        \text{img} = \operatorname{synthesis}\big(\bar w + \psi\,(\operatorname{mapping}(z, c) - \bar w)\big)

    (truncation on the first ``truncation_cutoff`` styles). In training mode each call updates ``w_avg``
    (:math:`\bar w`) with decay ``w_avg_beta``. The ``state_dict()`` keys, shapes and buffers are
    StyleGAN2-ADA's (``mapping.fc0.weight``, ``mapping.w_avg``, ``synthesis.b4.const``,
    ``synthesis.b8.conv0.noise_const``, ...), so its state dicts load as they are; build the network from
    the init kwargs StyleGAN2-ADA records with :meth:`from_stylegan2_ada_kwargs`.

    Block :math:`r` has ``min(channel_base // r, channel_max)`` channels: ``channel_base`` is StyleGAN2-ADA's
    name and value (32768 for the paper's configs, 16384 for ``--cfg paper256``); ganblocks' other networks
    count ``base_channels`` at the output resolution, which here is ``channel_base // img_resolution``
    (``channel_base = base_channels * img_resolution``).

    Args:
        z_dim: size of ``z`` (0 for a purely conditional network).
        c_dim: size of the label ``c`` (0 for none).
        w_dim: size of ``w``.
        img_resolution: output resolution, a power of two >= 4.
        img_channels: image channels.
        architecture: ``"orig"``, ``"skip"`` (StyleGAN2's generator) or ``"resnet"``.
        channel_base: channel budget: ``channel_base // r`` channels at resolution ``r``.
        channel_max: cap on the channels.
        num_fp16_res: the number of highest resolutions that run in ``fp16_dtype`` on CUDA (StyleGAN2-ADA
            uses 4 with ``conv_clamp=256``); on other devices everything runs in the parameters' dtype.
        conv_clamp: clamp every convolution's output to ``[-conv_clamp, conv_clamp]``; None: off.
        fp16_dtype: ``torch.float16`` (StyleGAN2-ADA) or ``torch.bfloat16``.
        fp16_channels_last: channels_last activations in the reduced-precision blocks.
        resample_filter: FIR taps of every upsampling.
        kernel_size: kernel size of the synthesis layers.
        use_noise: noise inputs in the synthesis layers.
        act: activation of the synthesis layers.
        num_mapping_layers: fully connected layers of the mapping network (StyleGAN2-ADA's
            ``mapping_kwargs['num_layers']``).
        embed_features: size of the label embedding; None is ``w_dim``.
        mapping_layer_features: width of the mapping layers; None is ``w_dim``.
        mapping_act: activation of the mapping network.
        mapping_lr_multiplier: learning-rate multiplier of the mapping network.
        w_avg_beta: decay of ``w_avg``.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - ``z``: ``(N, z_dim)``; ``c``: ``(N, c_dim)`` or None.
        - Output: ``(N, img_channels, img_resolution, img_resolution)``.

    Example:
        >>> import torch
        >>> from ganblocks import StyleGAN2Generator
        >>> G = StyleGAN2Generator(32, 0, 32, 16, 3, channel_base=256, channel_max=32, num_mapping_layers=2)
        >>> G.num_ws, G(torch.randn(2, 32)).shape
        (6, torch.Size([2, 3, 16, 16]))
        >>> "synthesis.b8.conv0.noise_const" in G.state_dict()
        True

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020; Karras et al.,
        "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020 (``training/networks.py``).
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        *,
        architecture: Architecture = "skip",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: Optional[float] = None,
        fp16_dtype: torch.dtype = torch.float16,
        fp16_channels_last: bool = False,
        resample_filter: FilterLike = BLUR_FILTER,
        kernel_size: int = 3,
        use_noise: bool = True,
        act: Activation = "lrelu",
        num_mapping_layers: int = 8,
        embed_features: Optional[int] = None,
        mapping_layer_features: Optional[int] = None,
        mapping_act: Activation = "lrelu",
        mapping_lr_multiplier: float = 0.01,
        w_avg_beta: Optional[float] = 0.995,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.z_dim = check_int("z_dim", z_dim, minimum=0)
        self.c_dim = check_int("c_dim", c_dim, minimum=0)
        self.w_dim = check_int("w_dim", w_dim)
        self.img_resolution = check_resolution("img_resolution", img_resolution)
        self.img_channels = check_int("img_channels", img_channels)
        self.synthesis = StyleGAN2SynthesisNetwork(
            w_dim, img_resolution, img_channels, channel_base=channel_base, channel_max=channel_max,
            num_fp16_res=num_fp16_res, architecture=architecture, conv_clamp=conv_clamp, fp16_dtype=fp16_dtype,
            fp16_channels_last=fp16_channels_last, resample_filter=resample_filter, kernel_size=kernel_size,
            use_noise=use_noise, act=act, device=device, dtype=dtype,
        )  # fmt: skip
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim, c_dim, w_dim, self.num_ws, num_layers=num_mapping_layers, embed_features=embed_features,
            layer_features=mapping_layer_features, act=mapping_act, lr_multiplier=mapping_lr_multiplier,
            w_avg_beta=w_avg_beta, device=device, dtype=dtype,
        )  # fmt: skip

    @classmethod
    def from_stylegan2_ada_kwargs(
        cls,
        init_kwargs: Mapping[str, Any],
        *,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> StyleGAN2Generator:
        """Build the generator from the init kwargs StyleGAN2-ADA records for ``training.networks.Generator``:
        ``z_dim, c_dim, w_dim, img_resolution, img_channels`` and the dicts ``mapping_kwargs`` and
        ``synthesis_kwargs``. A key ganblocks does not know raises a ValueError naming it.

        Example:
            >>> from ganblocks import StyleGAN2Generator
            >>> kwargs = {"z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 8, "img_channels": 3,
            ...           "mapping_kwargs": {"num_layers": 2}, "synthesis_kwargs": {"channel_base": 64,
            ...           "channel_max": 16, "num_fp16_res": 4, "conv_clamp": 256}}
            >>> StyleGAN2Generator.from_stylegan2_ada_kwargs(kwargs).mapping.num_layers
            2
        """
        top = dict(translate_kwargs(
            "init_kwargs", init_kwargs,
            {k: k for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs",
                            "synthesis_kwargs")},
        ))  # fmt: skip
        missing = [k for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels") if k not in top]
        if missing:
            raise ValueError(f"init_kwargs lacks {missing}")
        options = translate_kwargs("mapping_kwargs", top.pop("mapping_kwargs", {}), _ADA_MAPPING_KWARGS)
        options.update(
            translate_kwargs("synthesis_kwargs", top.pop("synthesis_kwargs", {}), _ADA_SYNTHESIS_KWARGS)
        )
        return cls(**top, **options, device=device, dtype=dtype)

    def forward(
        self,
        z: Optional[torch.Tensor],
        c: Optional[torch.Tensor] = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: Optional[int] = None,
        update_emas: Optional[bool] = None,
        noise_mode: NoiseMode = "random",
        force_fp32: bool = False,
        fused_modconv: Optional[bool] = None,
    ) -> torch.Tensor:
        """Latents (and labels) to images.

        Args:
            z: ``(N, z_dim)``; None when ``z_dim == 0``.
            c: ``(N, c_dim)``; None (or ``(N, 0)``) when ``c_dim == 0``.
            truncation_psi: :math:`\\psi`, 1 for none.
            truncation_cutoff: truncate the first this many styles; None: all.
            update_emas: update ``w_avg``; None follows ``self.training``.
            noise_mode: ``"random"``, ``"const"`` or ``"none"``.
            force_fp32: run every block in the parameters' dtype.
            fused_modconv: grouped modulated convolution; None: StyleGAN2-ADA's choice.
        """
        ws = self.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas
        )
        img: torch.Tensor = self.synthesis(
            ws, noise_mode=noise_mode, force_fp32=force_fp32, fused_modconv=fused_modconv
        )
        return img

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}, num_ws={self.num_ws}"
        )
