"""pix2pixHD's feature encoder: an encoder-decoder whose output is averaged over each instance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional, Union

import torch

from ..ops._backend import Backend
from ..ops.instance_avg_pool import check_instance_map, instance_avg_pool
from ._layers import GeneratorNorm
from .pix2pixhd import EncoderDecoder
from .pix2pixhd_loaders import global_generator_config


class FeatureEncoder(EncoderDecoder):
    r"""pix2pixHD's feature encoder E: per-instance low-dimensional features for multimodal synthesis.

    The network is a :class:`~ganblocks.generators.GlobalGenerator` without residual blocks (reflection
    pad 3, 7×7 conv, norm, ReLU; ``num_downsampling`` stride-2 convs; as many 2× transposed convs;
    reflection pad 3, 7×7 conv to ``out_channels``, tanh). Its output :math:`f` is then averaged over every
    instance of the instance map with :func:`~ganblocks.functional.instance_avg_pool`:

    .. math::
        E(x, \mathrm{inst})_{n,c,p} = \frac{1}{|S_{n,p}|} \sum_{q \in S_{n,p}} f(x)_{n,c,q}

    so each object gets one feature vector. pix2pixHD trains E jointly with the generator (E's output is
    concatenated to the generator input) and, for inference, clusters the per-instance features of each
    class (:func:`~ganblocks.functional.encoder_feature_clusters`). With 3 input and output channels and
    ``base_channels=16`` it has pix2pixHD's 788,803 parameters.

    Args:
        in_channels: image channels.
        out_channels: feature channels (pix2pixHD's ``feat_num``, 3).
        base_channels: channels of the stem (``nef``).
        num_downsampling: stride-2 convs (``n_downsample_E``).
        norm: ``"instance"`` or ``"batch"``.
        bias_before_norm: see :class:`~ganblocks.generators.GlobalGenerator`.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: image :math:`(N, C_{in}, H, W)` with :math:`H, W` multiples of :math:`2^{n}`, at least 4,
          and instance map :math:`(N, 1, H, W)` of integer ids.
        - Output: :math:`(N, C_{out}, H, W)`, constant on every instance.

    Example:
        >>> import torch
        >>> from ganblocks.generators import FeatureEncoder
        >>> e = FeatureEncoder(3, 3, base_channels=4, num_downsampling=2)
        >>> inst = torch.zeros(1, 1, 8, 8, dtype=torch.long)
        >>> inst[..., 4:] = 1
        >>> f = e(torch.randn(1, 3, 8, 8), inst)
        >>> f[0, :, :, :4].unique().numel(), f[0, :, :, 4:].unique().numel()
        (3, 3)

    Reference:
        Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs", CVPR 2018.
    """

    pix2pixhd_name = "Encoder"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        base_channels: int = 16,
        num_downsampling: int = 4,
        norm: GeneratorNorm = "instance",
        bias_before_norm: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, base_channels=base_channels, num_downsampling=num_downsampling,
            num_blocks=0, norm=norm, bias_before_norm=bias_before_norm, output_layer=True,
            device=device, dtype=dtype,
        )  # fmt: skip

    def forward(
        self, x: torch.Tensor, instance_map: torch.Tensor, *, backend: Optional[Backend] = None
    ) -> torch.Tensor:
        """Encode ``x`` and average the features over each instance of ``instance_map``."""
        self.check_input(x)
        check_instance_map("instance_map", instance_map, x)
        return instance_avg_pool(self.run(x), instance_map, backend=backend)

    @classmethod
    def from_pix2pixhd(
        cls,
        state_dict: Mapping[str, torch.Tensor],
        *,
        bias_before_norm: bool = True,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> FeatureEncoder:
        """Build an encoder matching a pix2pixHD ``Encoder`` state dict (``latest_net_E.pth``) and load it."""
        cfg = global_generator_config(state_dict, what=cls.pix2pixhd_name)
        if cfg.num_blocks:
            raise ValueError(
                f"state_dict holds {cfg.num_blocks} residual blocks: it is a GlobalGenerator, not an Encoder; "
                "use GlobalGenerator.from_pix2pixhd"
            )
        e = cls(
            cfg.in_channels, cfg.out_channels, base_channels=cfg.base_channels,
            num_downsampling=cfg.num_downsampling, norm=cfg.norm,
            bias_before_norm=bias_before_norm, device=device, dtype=dtype,
        )  # fmt: skip
        e.load_pix2pixhd_state_dict(state_dict)
        return e
