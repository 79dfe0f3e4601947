"""StyleGAN2-ADA's ``Conv2dLayer``: an equalized convolution with FIR up/down resampling, bias, activation and clamp.

Its parameter and buffer names (``weight``, ``bias``, ``resample_filter``) are StyleGAN2-ADA's, so the
StyleGAN2 generator and discriminator built on it load StyleGAN2-ADA's state dicts as they are.
:class:`~ganblocks.layers.EqualConv2d` is the same layer without resampling and without the filter buffer.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import nn

from .._checks import check_finite, check_images, check_int, check_optional_clamp
from ..ops._activations import Activation, resolve_activation
from ..ops.bias_act import bias_act
from .modulated import _conv2d_resample
from .resample import BLUR_FILTER, FilterLike, _setup_filter


class StyleGAN2Conv2d(nn.Module):
    r"""Equalized-LR convolution with FIR resampling, then bias, activation, gain and clamp (StyleGAN2-ADA's
    ``Conv2dLayer``).

    .. math::
        y = \operatorname{clamp}\Big(g\,g_a\,\phi\big(\operatorname{conv}_{\uparrow u \downarrow d}
        (x;\ W/\sqrt{C_\text{in} k^2}) + b\big),\ -g c,\ g c\Big)

    :math:`W` is stored as :math:`\mathcal N(0, 1)`, :math:`g_a` is the activation's default gain (√2 for
    ``lrelu``), :math:`g` the ``gain`` of the call (StyleGAN2-ADA's residual blocks pass √½) and :math:`c`
    = ``clamp``. ``up=2`` is a transposed convolution followed by the FIR filter, ``down=2`` the filter
    followed by a strided convolution (:func:`~ganblocks.functional.modulated_conv2d`'s resampling, without
    modulation); the padding is ``kernel_size // 2``.

    Args:
        in_channels: input channels :math:`C_\text{in}`.
        out_channels: output channels.
        kernel_size: the square kernel's size :math:`k`.
        bias: learn an additive bias (starts at 0).
        act: activation (see :func:`ganblocks.functional.bias_act`).
        up: upsampling factor.
        down: downsampling factor (not together with ``up``).
        resample_filter: FIR taps, through :func:`~ganblocks.functional.setup_filter` (stored as the buffer
            ``resample_filter`` even without resampling, as StyleGAN2-ADA does).
        clamp: clamp the output to ``[-clamp, clamp]`` (times the call's ``gain``); None: off.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: ``(N, C_in, H, W)``.
        - Output: ``(N, C_out, H·up/down, W·up/down)``.

    Example:
        >>> import torch
        >>> from ganblocks.layers import StyleGAN2Conv2d
        >>> conv = StyleGAN2Conv2d(4, 8, 3, act="lrelu", down=2)
        >>> conv(torch.randn(2, 4, 8, 8)).shape
        torch.Size([2, 8, 4, 4])

    Reference:
        Karras et al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020
        (``training/networks.py``).
    """

    bias: Optional[nn.Parameter]
    resample_filter: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        act: Activation = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: FilterLike = BLUR_FILTER,
        clamp: Optional[float] = None,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.out_channels = check_int("out_channels", out_channels)
        self.kernel_size = check_int("kernel_size", kernel_size)
        self.up, self.down = check_int("up", up), check_int("down", down)
        if up > 1 and down > 1:
            raise ValueError(f"up and down cannot both be above 1, got up={up}, down={down}")
        _, _, self.act_gain = resolve_activation(act, None, None)
        self.act: Activation = act
        self.clamp = check_optional_clamp("clamp", clamp)
        self.padding = kernel_size // 2
        self.weight_scale = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        f = _setup_filter("resample_filter", resample_filter, device=device, dtype=dtype)
        self.register_buffer("resample_filter", f)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.randn(shape, device=device, dtype=dtype))
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor, *, gain: float = 1.0) -> torch.Tensor:
        """``gain`` multiplies the activation gain and the clamp bound (StyleGAN2-ADA's ``gain``)."""
        check_images("x", x, self.in_channels)
        g = check_finite("gain", gain)
        # Scaled before the cast, as StyleGAN2-ADA, so a float16 pass sees the rounded scaled weight.
        w = (self.weight * self.weight_scale).to(x.dtype)
        y = _conv2d_resample(
            x, w, self.resample_filter, up=self.up, down=self.down, padding=(self.padding, self.padding),
            groups=1, flip_weight=self.up == 1, backend=None,
        )  # fmt: skip
        b = None if self.bias is None else self.bias.to(y.dtype)
        clamp = None if self.clamp is None else self.clamp * g
        return bias_act(y, b, act=self.act, gain=self.act_gain * g, clamp=clamp)

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"bias={self.bias is not None}, act={self.act!r}, up={self.up}, down={self.down}"
        )
        return s if self.clamp is None else s + f", clamp={self.clamp}"
