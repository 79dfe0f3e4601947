"""StyleGAN2's discriminator: residual (or skip / plain) blocks halving the resolution, minibatch stddev, and
label conditioning by projection onto a mapped label.

The semantics, the constructor's options and the ``state_dict()`` keys are those of StyleGAN2-ADA's
``training/networks.py`` (``Discriminator``, ``DiscriminatorBlock``, ``DiscriminatorEpilogue``): its state
dicts load as they are, and :meth:`StyleGAN2Discriminator.from_stylegan2_ada_kwargs` builds the network from
the init kwargs StyleGAN2-ADA records. Built on :class:`~ganblocks.layers.StyleGAN2Conv2d`,
:class:`~ganblocks.layers.EqualLinear`, :class:`~ganblocks.layers.MinibatchStdDev`,
:func:`~ganblocks.functional.downsample2d` and :class:`~ganblocks.generators.MappingNetwork`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Optional, Union

import torch
from torch import nn

from .._checks import check_choice, check_float_tensor, check_images, check_int, check_optional_clamp
from .._stylegan2 import (
    ARCHITECTURES,
    Architecture,
    block_channels,
    block_dtype,
    check_fp16_dtype,
    check_resolution,
    fp16_resolution,
    translate_kwargs,
)
from ..generators.mapping import MappingNetwork
from ..layers.equalized import EqualLinear
from ..layers.minibatch_std import MinibatchStdDev
from ..layers.resample import BLUR_FILTER, FilterLike, _setup_filter, downsample2d
from ..layers.stylegan2_conv import StyleGAN2Conv2d
from ..ops._activations import Activation


class StyleGAN2DiscriminatorBlock(nn.Module):
    r"""One resolution of StyleGAN2's discriminator (StyleGAN2-ADA's ``DiscriminatorBlock``).

    ``conv0`` (3×3) then ``conv1`` (3×3, downsampling ×2 with the FIR filter), leaky ReLU after each.
    Architectures:

    - ``"orig"``: :math:`x \leftarrow \text{conv1}(\text{conv0}(x))`; only the first block reads the image
      (``fromrgb``, 1×1);
    - ``"skip"``: every block adds ``fromrgb(img)`` to ``x`` and passes on the downsampled image;
    - ``"resnet"``: :math:`x \leftarrow \sqrt{1/2}\,\big(\text{skip}(x) + \text{conv1}(\text{conv0}(x))\big)`
      with a 1×1 downsampling ``skip`` without bias (StyleGAN2's discriminator).

    With ``use_fp16`` the block runs in ``fp16_dtype`` on CUDA, else in the parameters' dtype.

    Args:
        in_channels: channels of ``x``: 0 for the first block, else ``tmp_channels``.
        tmp_channels: channels inside the block.
        out_channels: channels of the output.
        resolution: input resolution.
        img_channels: image channels.
        architecture: ``"orig"``, ``"skip"`` or ``"resnet"``.
        act: activation.
        resample_filter: FIR taps of every downsampling.
        conv_clamp: clamp bound of the convolutions; None: off.
        use_fp16: reduced precision on CUDA.
        fp16_dtype: ``torch.float16`` or ``torch.bfloat16``.
        fp16_channels_last: channels_last activations in reduced precision.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - ``x``: ``(N, in_channels, R, R)`` or None; ``img``: ``(N, img_channels, R, R)`` or None.
        - Output: ``(x, img)`` at ``R/2`` (``img`` is None unless ``architecture="skip"``).

    Example:
        >>> import torch
        >>> from ganblocks.discriminators import StyleGAN2DiscriminatorBlock
        >>> block = StyleGAN2DiscriminatorBlock(0, 8, 16, 16, 3)
        >>> x, img = block(None, torch.randn(2, 3, 16, 16))
        >>> x.shape, img
        (torch.Size([2, 16, 8, 8]), None)

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020, figure 7.
    """

    resample_filter: torch.Tensor
    fromrgb: Optional[StyleGAN2Conv2d]
    skip: Optional[StyleGAN2Conv2d]

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        *,
        architecture: Architecture = "resnet",
        act: Activation = "lrelu",
        resample_filter: FilterLike = BLUR_FILTER,
        conv_clamp: Optional[float] = None,
        use_fp16: bool = False,
        fp16_dtype: torch.dtype = torch.float16,
        fp16_channels_last: bool = False,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=0)
        self.tmp_channels = check_int("tmp_channels", tmp_channels)
        if in_channels not in (0, tmp_channels):
            raise ValueError(f"in_channels must be 0 or tmp_channels ({tmp_channels}), got {in_channels}")
        self.out_channels = check_int("out_channels", out_channels)
        self.resolution = check_int("resolution", resolution, minimum=2)
        self.img_channels = check_int("img_channels", img_channels)
        self.architecture: Architecture = check_choice("architecture", architecture, ARCHITECTURES)
        self.use_fp16 = bool(use_fp16)
        self.fp16_dtype = check_fp16_dtype(fp16_dtype)
        self.channels_last = self.use_fp16 and bool(fp16_channels_last)
        check_optional_clamp("conv_clamp", conv_clamp)
        f = _setup_filter("resample_filter", resample_filter, device=device, dtype=dtype)
        self.register_buffer("resample_filter", f)
        kw: dict[str, Any] = {"act": act, "clamp": conv_clamp, "device": device, "dtype": dtype}
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = StyleGAN2Conv2d(img_channels, tmp_channels, 1, **kw)
        else:
            self.fromrgb = None
        self.conv0 = StyleGAN2Conv2d(tmp_channels, tmp_channels, 3, **kw)
        self.conv1 = StyleGAN2Conv2d(
            tmp_channels, out_channels, 3, down=2, resample_filter=resample_filter, **kw
        )
        if architecture == "resnet":
            self.skip = StyleGAN2Conv2d(
                tmp_channels, out_channels, 1, bias=False, down=2, resample_filter=resample_filter,
                device=device, dtype=dtype,
            )  # fmt: skip
        else:
            self.skip = None

    def layers(self) -> list[StyleGAN2Conv2d]:
        """The layers in StyleGAN2-ADA's order (``fromrgb``, ``conv0``, ``conv1``, ``skip``), as Freeze-D counts
        them."""
        return [m for m in (self.fromrgb, self.conv0, self.conv1, self.skip) if m is not None]

    def forward(
        self, x: Optional[torch.Tensor], img: Optional[torch.Tensor], *, force_fp32: bool = False
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        param_dtype = self.conv0.weight.dtype
        ref = x if x is not None else img
        if ref is None:
            raise ValueError("x and img cannot both be None")
        dtype = block_dtype(self.use_fp16, self.fp16_dtype, param_dtype, ref.device, force_fp32)
        low = dtype != param_dtype
        memory_format = torch.channels_last if self.channels_last and low else torch.contiguous_format
        r = self.resolution
        if x is not None:
            x = check_float_tensor("x", x, exact_ndim=4)
            if tuple(x.shape[1:]) != (self.in_channels, r, r):
                raise ValueError(
                    f"x must have shape (N, in_channels, R, R) = (N, {self.in_channels}, {r}, {r}), "
                    f"got {tuple(x.shape)}"
                )
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.fromrgb is not None:
            img = check_images("img", img, self.img_channels)
            if tuple(img.shape[2:]) != (r, r) or (x is not None and img.shape[0] != x.shape[0]):
                raise ValueError(
                    f"img must have shape (N, img_channels, R, R) = (N, {self.img_channels}, {r}, {r}), "
                    f"got {tuple(img.shape)}"
                )
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if x is None:
            raise ValueError("x must be given to a block that does not read the image (in_channels > 0)")
        if self.skip is not None:
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = y + self.conv1(x, gain=math.sqrt(0.5))
        else:
            x = self.conv1(self.conv0(x))
        return x, img

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.tmp_channels}, {self.out_channels}, resolution={self.resolution}, "
            f"img_channels={self.img_channels}, architecture={self.architecture!r}, use_fp16={self.use_fp16}"
        )


class StyleGAN2DiscriminatorEpilogue(nn.Module):
    r"""The 4×4 head of StyleGAN2's discriminator (StyleGAN2-ADA's ``DiscriminatorEpilogue``).

    .. math::
        h = \operatorname{fc}\big(\operatorname{flatten}(\operatorname{conv}(\operatorname{mbstd}(x)))\big),
        \qquad
        y = \begin{cases} \operatorname{out}(h) & \text{cmap\_dim} = 0 \\
        \frac{1}{\sqrt{\text{cmap\_dim}}} \sum_j \operatorname{out}(h)_j\,\text{cmap}_j & \text{else} \end{cases}

    ``mbstd`` appends ``mbstd_num_channels`` minibatch-stddev maps over groups of ``mbstd_group_size``
    (:func:`~ganblocks.functional.minibatch_stddev`), ``conv`` is 3×3 with leaky ReLU, ``fc`` a leaky-ReLU
    :class:`~ganblocks.layers.EqualLinear` to ``in_channels`` and ``out`` a linear one to 1 (or to
    ``cmap_dim`` for the projection onto the mapped label ``cmap``). With ``architecture="skip"`` the image
    comes in through ``fromrgb`` first. Always in the parameters' dtype.

    Args:
        in_channels: channels of ``x``.
        cmap_dim: size of the mapped label, 0 for an unconditional head.
        resolution: resolution of ``x`` (4).
        img_channels: image channels.
        architecture: ``"orig"``, ``"skip"`` or ``"resnet"``.
        mbstd_group_size: samples per stddev group (None: the whole batch); the batch must be a multiple.
        mbstd_num_channels: number of stddev maps, 0 to disable.
        act: activation.
        conv_clamp: clamp bound of ``conv``; None: off.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - ``x``: ``(N, in_channels, R, R)``; ``cmap``: ``(N, cmap_dim)`` or None. Output: ``(N, 1)``.

    Example:
        >>> import torch
        >>> from ganblocks.discriminators import StyleGAN2DiscriminatorEpilogue
        >>> head = StyleGAN2DiscriminatorEpilogue(8, 0, 4, 3)
        >>> head(torch.randn(4, 8, 4, 4)).shape
        torch.Size([4, 1])

    Reference:
        Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020 (projection
        conditioning, ``training/networks.py``); Miyato & Koyama, "cGANs with Projection Discriminator", ICLR
        2018.
    """

    fromrgb: Optional[StyleGAN2Conv2d]
    mbstd: Optional[MinibatchStdDev]

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        *,
        architecture: Architecture = "resnet",
        mbstd_group_size: Optional[int] = 4,
        mbstd_num_channels: int = 1,
        act: Activation = "lrelu",
        conv_clamp: Optional[float] = None,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.cmap_dim = check_int("cmap_dim", cmap_dim, minimum=0)
        self.resolution = check_int("resolution", resolution)
        self.img_channels = check_int("img_channels", img_channels)
        self.architecture: Architecture = check_choice("architecture", architecture, ARCHITECTURES)
        self.mbstd_num_channels = check_int("mbstd_num_channels", mbstd_num_channels, minimum=0)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        if architecture == "skip":
            self.fromrgb = StyleGAN2Conv2d(img_channels, in_channels, 1, act=act, **factory)
        else:
            self.fromrgb = None
        if mbstd_num_channels > 0:
            self.mbstd = MinibatchStdDev(group_size=mbstd_group_size, num_channels=mbstd_num_channels)
        else:
            self.mbstd = None
        self.conv = StyleGAN2Conv2d(in_channels + mbstd_num_channels, in_channels, 3, act=act, clamp=conv_clamp,
                                    **factory)  # fmt: skip
        self.fc = EqualLinear(in_channels * resolution**2, in_channels, act=act, **factory)
        self.out = EqualLinear(in_channels, 1 if cmap_dim == 0 else cmap_dim, **factory)

    def forward(
        self, x: torch.Tensor, img: Optional[torch.Tensor] = None, cmap: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        r = self.resolution
        x = check_float_tensor("x", x, exact_ndim=4)
        if tuple(x.shape[1:]) != (self.in_channels, r, r):
            raise ValueError(
                f"x must have shape (N, in_channels, R, R) = (N, {self.in_channels}, {r}, {r}), got {tuple(x.shape)}"
            )
        dtype = self.conv.weight.dtype
        x = x.to(dtype=dtype, memory_format=torch.contiguous_format)
        if self.fromrgb is not None:
            img = check_images("img", img, self.img_channels)
            x = x + self.fromrgb(img.to(dtype=dtype, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.out(self.fc(x.flatten(1)))
        if self.cmap_dim == 0:
            return x
        cmap = check_float_tensor("cmap", cmap, exact_ndim=2)
        if tuple(cmap.shape) != (x.shape[0], self.cmap_dim):
            raise ValueError(f"cmap must have shape (N, cmap_dim) = ({x.shape[0]}, {self.cmap_dim}), "
                             f"got {tuple(cmap.shape)}")  # fmt: skip
        return (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, cmap_dim={self.cmap_dim}, resolution={self.resolution}, "
            f"img_channels={self.img_channels}, architecture={self.architecture!r}"
        )


_ADA_BLOCK_KWARGS = {
    "activation": "act",
    "resample_filter": "resample_filter",
    "fp16_channels_last": "fp16_channels_last",
    "freeze_layers": "freeze_layers",
}
_ADA_MAPPING_KWARGS = {
    "num_layers": "num_mapping_layers",
    "embed_features": "embed_features",
    "layer_features": "mapping_layer_features",
    "activation": "mapping_act",
    "lr_multiplier": "mapping_lr_multiplier",
}
_ADA_EPILOGUE_KWARGS = {
    "mbstd_group_size": "mbstd_group_size",
    "mbstd_num_channels": "mbstd_num_channels",
    "activation": "act",
}
_ADA_TOP = (
    "c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max", "num_fp16_res",
    "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs",
)  # fmt: skip


class StyleGAN2Discriminator(nn.Module):
    r"""StyleGAN2's discriminator, as StyleGAN2-ADA's ``Discriminator``: blocks ``b{R}`` from
    ``img_resolution`` down to 8 (:class:`StyleGAN2DiscriminatorBlock`), then the 4×4 head ``b4``
    (:class:`StyleGAN2DiscriminatorEpilogue`) with minibatch stddev; logits ``(N, 1)``.

    With ``c_dim > 0`` a :class:`~ganblocks.generators.MappingNetwork` ``mapping`` (no latent, no ``w_avg``)
    maps the label to ``cmap`` of size ``cmap_dim`` (default: the channels at 4×4) and the logit is the
    projection :math:`\langle \operatorname{out}(h), \text{cmap} \rangle / \sqrt{\text{cmap\_dim}}`.
    Block :math:`r` has ``min(channel_base // r, channel_max)`` channels (``channel_base = base_channels *
    img_resolution`` in the terms of ganblocks' other networks); the ``num_fp16_res`` highest resolutions
    (never below 8) run in ``fp16_dtype`` on CUDA. ``freeze_layers`` (Freeze-D) turns off the gradient of
    the first that many convolution layers, counted as StyleGAN2-ADA counts them. The ``state_dict()`` keys
    are StyleGAN2-ADA's (``b256.fromrgb.weight``, ``b8.conv1.resample_filter``, ``b4.fc.weight``,
    ``b4.out.weight``, ``mapping.embed.weight``, ...).

    Args:
        c_dim: size of the label (0 for none).
        img_resolution: input resolution, a power of two >= 4.
        img_channels: image channels.
        architecture: ``"orig"``, ``"skip"`` or ``"resnet"`` (StyleGAN2's discriminator).
        channel_base: channel budget: ``channel_base // r`` channels at resolution ``r``.
        channel_max: cap on the channels.
        num_fp16_res: the number of highest resolutions in reduced precision on CUDA.
        conv_clamp: clamp bound of the convolutions; None: off.
        cmap_dim: size of the mapped label; None: the channels at 4×4.
        mbstd_group_size: samples per stddev group (None: the whole batch).
        mbstd_num_channels: stddev maps, 0 to disable.
        act: activation of the blocks and the head.
        resample_filter: FIR taps of every downsampling.
        fp16_dtype: ``torch.float16`` or ``torch.bfloat16``.
        fp16_channels_last: channels_last activations in reduced precision.
        freeze_layers: number of leading convolution layers without gradient.
        num_mapping_layers: layers of the label mapping network.
        embed_features: size of the label embedding; None: ``cmap_dim``.
        mapping_layer_features: width of the mapping layers; None: ``cmap_dim``.
        mapping_act: activation of the mapping network.
        mapping_lr_multiplier: learning-rate multiplier of the mapping network.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - ``img``: ``(N, img_channels, img_resolution, img_resolution)``; ``c``: ``(N, c_dim)`` or None.
        - Output: ``(N, 1)`` logits.

    Example:
        >>> import torch
        >>> from ganblocks import StyleGAN2Discriminator
        >>> D = StyleGAN2Discriminator(0, 16, 3, channel_base=256, channel_max=32)
        >>> D(torch.randn(4, 3, 16, 16)).shape
        torch.Size([4, 1])
        >>> sorted(k for k in D.state_dict() if k.startswith("b16."))[:3]
        ['b16.conv0.bias', 'b16.conv0.resample_filter', 'b16.conv0.weight']

    Reference:
        Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020; Karras et al.,
        "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020 (``training/networks.py``).
    """

    mapping: Optional[MappingNetwork]

    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        *,
        architecture: Architecture = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: Optional[float] = None,
        cmap_dim: Optional[int] = None,
        mbstd_group_size: Optional[int] = 4,
        mbstd_num_channels: int = 1,
        act: Activation = "lrelu",
        resample_filter: FilterLike = BLUR_FILTER,
        fp16_dtype: torch.dtype = torch.float16,
        fp16_channels_last: bool = False,
        freeze_layers: int = 0,
        num_mapping_layers: int = 8,
        embed_features: Optional[int] = None,
        mapping_layer_features: Optional[int] = None,
        mapping_act: Activation = "lrelu",
        mapping_lr_multiplier: float = 0.01,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.c_dim = check_int("c_dim", c_dim, minimum=0)
        self.img_resolution = check_resolution("img_resolution", img_resolution)
        if img_resolution < 8:
            raise ValueError(
                f"img_resolution must be at least 8 (one block before the 4x4 head), got {img_resolution}"
            )
        self.img_channels = check_int("img_channels", img_channels)
        self.channel_base = check_int("channel_base", channel_base)
        self.channel_max = check_int("channel_max", channel_max)
        self.num_fp16_res = check_int("num_fp16_res", num_fp16_res, minimum=0)
        self.freeze_layers = check_int("freeze_layers", freeze_layers, minimum=0)
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        channels = {r: block_channels(r, channel_base, channel_max) for r in [*self.block_resolutions, 4]}
        if min(channels.values()) < 1:
            raise ValueError(
                f"channel_base // resolution must be >= 1 at every resolution, got channel_base={channel_base} "
                f"and img_resolution={img_resolution}"
            )
        if cmap_dim is None:
            cmap_dim = channels[4]
        self.cmap_dim = 0 if c_dim == 0 else check_int("cmap_dim", cmap_dim)
        first_fp16 = fp16_resolution(img_resolution, num_fp16_res)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        common: dict[str, Any] = {"architecture": architecture, "conv_clamp": conv_clamp, **factory}
        for res in self.block_resolutions:
            block = StyleGAN2DiscriminatorBlock(
                channels[res] if res < img_resolution else 0, channels[res], channels[res // 2], res,
                img_channels, act=act, resample_filter=resample_filter, use_fp16=res >= first_fp16,
                fp16_dtype=fp16_dtype, fp16_channels_last=fp16_channels_last, **common,
            )  # fmt: skip
            self.add_module(f"b{res}", block)
        if c_dim > 0:
            self.mapping = MappingNetwork(
                0, c_dim, self.cmap_dim, None, num_layers=num_mapping_layers, embed_features=embed_features,
                layer_features=mapping_layer_features, act=mapping_act, lr_multiplier=mapping_lr_multiplier,
                w_avg_beta=None, **factory,
            )  # fmt: skip
        else:
            self.mapping = None
        self.b4 = StyleGAN2DiscriminatorEpilogue(
            channels[4], self.cmap_dim, 4, img_channels, mbstd_group_size=mbstd_group_size,
            mbstd_num_channels=mbstd_num_channels, act=act, **common,
        )  # fmt: skip
        frozen = [layer for block in self.blocks() for layer in block.layers()][:freeze_layers]
        for layer in frozen:
            layer.requires_grad_(False)

    @classmethod
    def from_stylegan2_ada_kwargs(
        cls,
        init_kwargs: Mapping[str, Any],
        *,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> StyleGAN2Discriminator:
        """Build the discriminator from the init kwargs StyleGAN2-ADA records for
        ``training.networks.Discriminator`` (``c_dim, img_resolution, img_channels, architecture, channel_base,
        channel_max, num_fp16_res, conv_clamp, cmap_dim`` and the dicts ``block_kwargs``, ``mapping_kwargs``,
        ``epilogue_kwargs``). A key ganblocks does not know raises a ValueError naming it, and so does an
        activation that differs between the blocks and the head.

        Example:
            >>> from ganblocks import StyleGAN2Discriminator
            >>> kwargs = {"c_dim": 0, "img_resolution": 8, "img_channels": 3, "channel_base": 64,
            ...           "channel_max": 16, "block_kwargs": {}, "mapping_kwargs": {},
            ...           "epilogue_kwargs": {"mbstd_group_size": 2}}
            >>> StyleGAN2Discriminator.from_stylegan2_ada_kwargs(kwargs).b4.mbstd.group_size
            2
        """
        top = translate_kwargs("init_kwargs", init_kwargs, {k: k for k in _ADA_TOP})
        missing = [k for k in ("c_dim", "img_resolution", "img_channels") if k not in top]
        if missing:
            raise ValueError(f"init_kwargs lacks {missing}")
        block = translate_kwargs("block_kwargs", top.pop("block_kwargs", {}), _ADA_BLOCK_KWARGS)
        mapping = translate_kwargs("mapping_kwargs", top.pop("mapping_kwargs", {}), _ADA_MAPPING_KWARGS)
        epilogue = translate_kwargs("epilogue_kwargs", top.pop("epilogue_kwargs", {}), _ADA_EPILOGUE_KWARGS)
        if block.get("act", "lrelu") != epilogue.get("act", "lrelu"):
            raise ValueError(
                "block_kwargs['activation'] and epilogue_kwargs['activation'] must be equal in ganblocks, got "
                f"{block.get('act', 'lrelu')!r} and {epilogue.get('act', 'lrelu')!r}"
            )
        return cls(**top, **{**block, **epilogue}, **mapping, device=device, dtype=dtype)

    def blocks(self) -> list[StyleGAN2DiscriminatorBlock]:
        """The blocks ``b{img_resolution}, ..., b8`` in order (the head ``b4`` excluded)."""
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(
        self, img: torch.Tensor, c: Optional[torch.Tensor] = None, *, force_fp32: bool = False
    ) -> torch.Tensor:
        """Logits ``(N, 1)`` of images (and labels); ``force_fp32`` runs every block in the parameters'
        dtype."""
        img = check_images("img", img, self.img_channels)
        r = self.img_resolution
        if tuple(img.shape[2:]) != (r, r):
            raise ValueError(
                f"img must have shape (N, {self.img_channels}, {r}, {r}), got {tuple(img.shape)}"
            )
        x: Optional[torch.Tensor] = None
        image: Optional[torch.Tensor] = img
        for block in self.blocks():
            x, image = block(x, image, force_fp32=force_fp32)
        cmap = None
        if self.mapping is not None:
            cmap = self.mapping(None, c)
        elif c is not None and (c.ndim != 2 or c.shape[1] != 0):
            raise ValueError(f"c must be None or of shape (N, 0) since c_dim = 0, got {tuple(c.shape)}")
        assert x is not None
        logits: torch.Tensor = self.b4(x, image, cmap)
        return logits

    def extra_repr(self) -> str:
        return (
            f"c_dim={self.c_dim}, img_resolution={self.img_resolution}, img_channels={self.img_channels}, "
            f"channel_base={self.channel_base}, channel_max={self.channel_max}, num_fp16_res={self.num_fp16_res}, "
            f"cmap_dim={self.cmap_dim}"
        )
