"""MSG-GAN's discriminator: ProGAN blocks that see the image at every scale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Optional, TypeAlias, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_images, check_input_dtype, check_int, check_mbstd_batch
from ..layers import EqualLinear
from ..ops.minibatch_stddev import minibatch_stddev
from ..outputs import DiscriminatorOutput
from ._conv import make_conv

Combine: TypeAlias = Literal["simple", "lin_cat", "cat_lin"]
COMBINE_MODES: tuple[str, ...] = ("simple", "lin_cat", "cat_lin")


# ProGAN's widths: fmap_base 8192 over 2^(stage) gives 16384 // r channels at resolution r.
PROGAN_CHANNELS_TIMES_RESOLUTION = 16384


def msg_channels(halvings: int, *, base_channels: int, max_channels: int) -> int:
    """Feature channels after ``halvings`` halvings of the finest resolution: ``min(base_channels · 2^halvings,
    max_channels)``, the rule of every discriminator here (ProGAN's ``nf``)."""
    return min(base_channels << halvings, max_channels)


def _check_resolution(resolution: int) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 4:
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution!r}")
    if resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")
    return resolution


class MSGCombine(nn.Module):
    r"""MSG-GAN's combine function :math:`\phi` of an image :math:`o` and the running features :math:`a`.

    ``simple``: :math:`[o; a]`; ``lin_cat``: :math:`[r(o); a]`; ``cat_lin``: :math:`r([o; a])`, with
    :math:`r` a 1×1 convolution (linear, with bias) and :math:`[\cdot;\cdot]` channel concatenation.
    ``lin_cat`` projects the image to as many channels as the features; ``cat_lin`` maps back to the
    features' width.
    """

    def __init__(
        self,
        mode: Combine,
        image_channels: int,
        feature_channels: int,
        *,
        equalized_lr: bool,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if mode not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {COMBINE_MODES}, got {mode!r}")
        self.mode: Combine = mode
        self.project: Optional[nn.Module] = None
        if mode != "simple":
            cin = image_channels + (feature_channels if mode == "cat_lin" else 0)
            self.project = make_conv(
                cin, feature_channels, 1, equalized_lr=equalized_lr, device=device, dtype=dtype
            )
        widths = {"simple": image_channels + feature_channels, "lin_cat": 2 * feature_channels}
        self.out_channels = widths.get(mode, feature_channels)

    def forward(self, image: Optional[torch.Tensor], features: torch.Tensor) -> torch.Tensor:
        if image is None:
            raise ValueError("MSGCombine needs the image of this block's resolution, got None")
        if self.project is None:
            return torch.cat([image, features], dim=1)
        if self.mode == "lin_cat":
            return torch.cat([self.project(image), features], dim=1)
        out: torch.Tensor = self.project(torch.cat([image, features], dim=1))
        return out

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class MSGBlock(nn.Module):
    """ProGAN discriminator block: [combine] → 3×3 conv, LeakyReLU → 3×3 conv, LeakyReLU → 2× average pool."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        combine: Optional[MSGCombine],
        equalized_lr: bool,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.combine = combine
        cin = in_channels if combine is None else combine.out_channels
        self.conv0 = _conv_lrelu(
            cin, in_channels, 3, padding=1, equalized_lr=equalized_lr, device=device, dtype=dtype
        )
        self.conv1 = _conv_lrelu(
            in_channels, out_channels, 3, padding=1, equalized_lr=equalized_lr, device=device, dtype=dtype
        )

    def forward(self, x: torch.Tensor, image: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.combine is not None:
            x = self.combine(image, x)
        return F.avg_pool2d(self.conv1(self.conv0(x)), 2)


class MSGFinalBlock(nn.Module):
    """ProGAN's last block at 4×4: [combine] → minibatch stddev → 3×3 conv → 4×4 conv → linear to one logit.

    ``forward`` returns the logits ``(N, 1)`` and the hidden ``(N, C, 1, 1)`` of the 4×4 conv.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        combine: Optional[MSGCombine],
        equalized_lr: bool,
        mbstd_group_size: Optional[int],
        mbstd_num_channels: int,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.combine = combine
        self.mbstd_group_size = mbstd_group_size
        self.mbstd_num_channels = mbstd_num_channels
        cin = (in_channels if combine is None else combine.out_channels) + mbstd_num_channels
        self.conv = _conv_lrelu(
            cin, in_channels, 3, padding=1, equalized_lr=equalized_lr, device=device, dtype=dtype
        )
        self.dense = _conv_lrelu(
            in_channels, in_channels, 4, equalized_lr=equalized_lr, device=device, dtype=dtype
        )
        self.out: nn.Module = (
            EqualLinear(in_channels, 1, device=device, dtype=dtype)
            if equalized_lr
            else nn.Linear(in_channels, 1, device=device, dtype=dtype)
        )

    def forward(
        self, x: torch.Tensor, image: Optional[torch.Tensor] = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.combine is not None:
            x = self.combine(image, x)
        if self.mbstd_num_channels > 0:
            x = minibatch_stddev(x, group_size=self.mbstd_group_size, num_channels=self.mbstd_num_channels)
        hidden: torch.Tensor = self.dense(self.conv(x))
        logits: torch.Tensor = self.out(hidden.flatten(1))
        return logits, hidden

    def extra_repr(self) -> str:
        return f"mbstd_group_size={self.mbstd_group_size}, mbstd_num_channels={self.mbstd_num_channels}"


def _conv_lrelu(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    padding: int = 0,
    equalized_lr: bool,
    device: Optional[Union[torch.device, str]],
    dtype: Optional[torch.dtype],
) -> nn.Module:
    # Equalized layers carry He's √2 in the activation gain (StyleGAN2's convention, equal to ProGAN's
    # weight-side √2); plain layers use LeakyReLU without gain, as MSG-GAN's non-equalized layers.
    return make_conv(
        in_channels,
        out_channels,
        kernel_size,
        padding=padding,
        act="lrelu",
        alpha=0.2,
        gain=None if equalized_lr else 1.0,
        equalized_lr=equalized_lr,
        device=device,
        dtype=dtype,
    )


class MSGDiscriminator(nn.Module):
    r"""MSG-GAN's discriminator: ProGAN blocks that also receive the image at every intermediate scale.

    With :math:`R` = ``resolution`` it takes :math:`L = \log_2 R - 1` images of sizes
    :math:`R, R/2, \dots, 4`, **finest first** (the order of :class:`DiscriminatorOutput` and of
    :func:`~ganblocks.functional.image_pyramid`; MSG-GAN's own code orders them coarsest first). The finest
    image goes through a 1×1 from-RGB conv with LeakyReLU; block :math:`j` at resolution
    :math:`r = R/2^j` first combines the image of its resolution with the running features
    (:class:`MSGCombine`: ``simple``, ``lin_cat`` or ``cat_lin``), then applies two 3×3 convs with
    LeakyReLU(0.2) and a 2× average pool. The 4×4 block combines, appends the minibatch standard deviation
    and applies a 3×3 conv, a 4×4 conv and a linear layer to one logit. Channels at resolution :math:`r`
    are :math:`\min(\text{base\_channels} \cdot R / r, \text{max\_channels})`, doubling per halving as in
    :class:`PatchDiscriminator` (StyleGAN2-ADA's ``channel_base`` :math:`b` is ``base_channels`` =
    :math:`b / R`). Every conv runs with its bias and
    LeakyReLU fused in one :func:`~ganblocks.functional.bias_act` pass.

    Real images enter as ``image_pyramid(real, d.num_scales)``; the generator's multi-scale outputs (for
    example from :class:`~ganblocks.generators.MSGGeneratorHeads`) enter as they are, so the discriminator's gradient reaches
    every generator scale.

    Args:
        in_channels: channels of each image.
        resolution: the finest resolution, a power of two ≥ 4.
        combine: ``"simple"``, ``"lin_cat"`` or ``"cat_lin"``.
        base_channels: channels at the finest resolution, doubled per halving; None is ProGAN's
            ``16384 // resolution``.
        max_channels: cap on the channel count.
        equalized_lr: equalized learning-rate layers (:class:`ganblocks.EqualConv2d`: weights
            :math:`\mathcal{N}(0, 1)` scaled by :math:`1/\sqrt{\text{fan\_in}}`, LeakyReLU gain √2), as
            MSG-GAN and ProGAN; False gives ``nn.Conv2d`` / ``nn.Linear`` with PyTorch's init and LeakyReLU
            without gain, as MSG-GAN's non-equalized variant.
        mbstd_group_size: group size of the minibatch standard deviation (None: the whole batch).
        mbstd_num_channels: number of minibatch standard-deviation channels; 0 disables it.
        return_features: return every block's output; ``forward(..., return_features=...)`` overrides it.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: a sequence of :math:`L` tensors, entry :math:`j` of shape :math:`(N, C_{in}, R/2^j, R/2^j)`.
        - Output: :class:`DiscriminatorOutput` with one logits tensor :math:`(N, 1)` and, if asked, the
          :math:`L` block outputs (the last one :math:`(N, C, 1, 1)`).

    Example:
        >>> import torch
        >>> from ganblocks import MSGDiscriminator
        >>> from ganblocks.functional import image_pyramid
        >>> d = MSGDiscriminator(3, resolution=32, combine="cat_lin")
        >>> d.num_scales
        4
        >>> d(image_pyramid(torch.randn(4, 3, 32, 32), d.num_scales)).logits[0].shape
        torch.Size([4, 1])

    Reference:
        Karnewar & Wang, "MSG-GAN: Multi-Scale Gradients for Generative Adversarial Networks", CVPR 2020;
        Karras et al., "Progressive Growing of GANs for Improved Quality, Stability, and Variation", ICLR 2018.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        resolution: int,
        combine: Combine = "simple",
        base_channels: Optional[int] = None,
        max_channels: int = 512,
        equalized_lr: bool = True,
        mbstd_group_size: Optional[int] = 4,
        mbstd_num_channels: int = 1,
        return_features: bool = False,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        _check_resolution(resolution)
        check_int("max_channels", max_channels)
        check_int("mbstd_num_channels", mbstd_num_channels, minimum=0)
        if mbstd_group_size is not None:
            check_int("mbstd_group_size", mbstd_group_size)
        if combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {COMBINE_MODES}, got {combine!r}")
        if base_channels is None:
            base_channels = max(PROGAN_CHANNELS_TIMES_RESOLUTION // resolution, 1)
        check_int("base_channels", base_channels)
        self.base_channels = base_channels
        self.max_channels = max_channels
        self.in_channels = in_channels
        self.resolution = resolution
        self.combine = combine
        self.return_features = return_features
        self.resolutions = [resolution >> j for j in range(resolution.bit_length() - 2)]

        def nf(r: int) -> int:
            halvings = (resolution // r).bit_length() - 1
            return msg_channels(halvings, base_channels=base_channels, max_channels=max_channels)

        def combiner(j: int, r: int) -> Optional[MSGCombine]:
            if j == 0:
                return None
            return MSGCombine(
                combine, in_channels, nf(r), equalized_lr=equalized_lr, device=device, dtype=dtype
            )

        self.from_rgb = _conv_lrelu(
            in_channels, nf(resolution), 1, equalized_lr=equalized_lr, device=device, dtype=dtype
        )
        self.blocks = nn.ModuleList(
            MSGBlock(
                nf(r),
                nf(r // 2),
                combine=combiner(j, r),
                equalized_lr=equalized_lr,
                device=device,
                dtype=dtype,
            )
            for j, r in enumerate(self.resolutions[:-1])
        )
        final_combine = combiner(len(self.resolutions) - 1, 4)
        final_width = nf(4) if final_combine is None else final_combine.out_channels
        if mbstd_num_channels and final_width % mbstd_num_channels:
            raise ValueError(
                f"mbstd_num_channels ({mbstd_num_channels}) must divide the channel count entering the "
                f"minibatch standard deviation ({final_width} with combine={combine!r})"
            )
        self.final = MSGFinalBlock(
            nf(4),
            combine=final_combine,
            equalized_lr=equalized_lr,
            mbstd_group_size=mbstd_group_size,
            mbstd_num_channels=mbstd_num_channels,
            device=device,
            dtype=dtype,
        )

    @property
    def num_scales(self) -> int:
        """Number of input images: ``log2(resolution) - 1``."""
        return len(self.resolutions)

    def _check_images(self, images: Sequence[torch.Tensor]) -> None:
        if isinstance(images, torch.Tensor):
            raise TypeError(
                f"images must be a list of {self.num_scales} tensors, finest first; got a single tensor "
                f"(use ganblocks.functional.image_pyramid(x, {self.num_scales}) for real images)"
            )
        if not isinstance(images, (list, tuple)):
            raise TypeError(f"images must be a list or tuple of tensors, got {type(images).__name__}")
        expected = [(r, r) for r in self.resolutions]
        if len(images) != self.num_scales:
            raise ValueError(
                f"images must hold {self.num_scales} levels for resolution={self.resolution} (sizes "
                f"{[r for r in self.resolutions]}, finest first), got {len(images)}"
            )
        for j, t in enumerate(images):
            check_images(f"images[{j}]", t, self.in_channels)
        sizes = [(t.shape[-2], t.shape[-1]) for t in images]
        if sizes != expected:
            if sizes == expected[::-1]:
                raise ValueError(
                    f"images must be ordered finest first (sizes {expected}), got them coarsest first "
                    f"({sizes}); pass images[::-1]"
                )
            raise ValueError(f"images must have spatial sizes {expected} (finest first), got {sizes}")
        n = images[0].shape[0]
        if any(t.shape[0] != n for t in images):
            raise ValueError(f"images must all have the same batch size, got {[t.shape[0] for t in images]}")
        for j, t in enumerate(images):
            check_input_dtype(f"images[{j}]", t, self)
        if self.final.mbstd_num_channels > 0:
            check_mbstd_batch("images[0]", images[0], self.final.mbstd_group_size)

    def forward(
        self, images: Sequence[torch.Tensor], *, return_features: Optional[bool] = None
    ) -> DiscriminatorOutput:
        self._check_images(images)
        want = self.return_features if return_features is None else return_features
        features: list[torch.Tensor] = []
        x: torch.Tensor = self.from_rgb(images[0])
        for j, block in enumerate(self.blocks):
            x = block(x, images[j] if j > 0 else None)
            if want:
                features.append(x)
        logits, hidden = self.final(x, images[-1] if self.num_scales > 1 else None)
        if want:
            features.append(hidden)
        return DiscriminatorOutput([logits], [features])

    def extra_repr(self) -> str:
        s = f"in_channels={self.in_channels}, resolution={self.resolution}, combine={self.combine!r}"
        return s + (", return_features=True" if self.return_features else "")
