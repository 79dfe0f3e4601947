"""StyleGAN's (v1) AdaIN synthesis blocks: ``ConstantInput``, ``AdaINSynthesisLayer``, ``AdaINSynthesisInput``,
``AdaINSynthesisBlock``.

The ``AdaIN`` prefix tells them from StyleGAN2's synthesis layers and blocks, which modulate the convolution
weights instead (:class:`~ganblocks.layers.ModulatedConv2d`). Built from the library's layers: :class:`~ganblocks.layers.EqualConv2d` (without bias), the noise, bias
and leaky ReLU of every layer in one fused :func:`~ganblocks.functional.inject_noise` pass (with the
strength and noise maps of a :class:`~ganblocks.layers.NoiseInjection`), and
:class:`~ganblocks.layers.AdaIN` driven by an affine map of ``w``. Each block consumes two ``w``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Optional, TypeAlias, Union, get_args

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_float_tensor, check_int, check_pair
from ..layers.equalized import EqualConv2d
from ..layers.noise import NoiseInjection, NoiseMode
from ..layers.norm import AdaIN
from ..layers.resample import BLUR_FILTER, Upsample2d
from ..ops._activations import Activation, resolve_activation
from ..ops.bias_act import bias_act
from ..ops.inject_noise import inject_noise

InterpolationMode: TypeAlias = Literal["nearest", "bilinear"]
INTERPOLATION_MODES: tuple[InterpolationMode, ...] = get_args(InterpolationMode)
Resolution: TypeAlias = Union[int, tuple[int, int]]
NoisePair = tuple[Optional[torch.Tensor], Optional[torch.Tensor]]


def _reject_tensor(name: str, value: object, expected: str) -> None:
    """A tensor where a Python number is expected: name its shape, not its (possibly huge) contents."""
    if isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name} must be {expected}, got a {value.dtype} tensor of shape {tuple(value.shape)}"
        )


class ConstantInput(nn.Module):
    r"""The learned constant that starts StyleGAN's synthesis network, repeated over the batch.

    The parameter ``const`` of shape ``(1, C, H, W)`` is drawn from :math:`\mathcal{N}(0, 1)` (StyleGAN2;
    StyleGAN initialized it to ones) and returned as ``(N, C, H, W)``.

    Args:
        channels: channels :math:`C`.
        size: ``H`` (square) or ``(H, W)``.
        device: device of the parameter.
        dtype: dtype of the parameter.

    Example:
        >>> import torch
        >>> from ganblocks.generators import ConstantInput
        >>> ConstantInput(8)(3).shape
        torch.Size([3, 8, 4, 4])

    Reference:
        Karras et al., "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR
        2019, section 2.
    """

    def __init__(
        self,
        channels: int,
        size: Resolution = 4,
        *,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        _reject_tensor("channels", channels, "an int")
        _reject_tensor("size", size, "an int or a pair of ints")
        self.channels = check_int("channels", channels)
        self.size = check_pair("size", size, minimum=1)
        self.const = nn.Parameter(torch.randn((1, channels, *self.size), device=device, dtype=dtype))

    def forward(self, batch_size: int) -> torch.Tensor:
        _reject_tensor("batch_size", batch_size, "an int (the number of copies, e.g. x.shape[0])")
        n = check_int("batch_size", batch_size, minimum=0)
        return self.const.expand(n, -1, -1, -1).contiguous()

    def extra_repr(self) -> str:
        return f"{self.channels}, size={self.size}"


class AdaINSynthesisLayer(nn.Module):
    r"""One layer of StyleGAN's (v1) synthesis network: [conv] → noise + bias + activation → AdaIN(w).

    .. math::
        h = W * x, \qquad
        u = \sqrt{2}\,\mathrm{lrelu}_{0.2}(h + s \cdot n + b), \qquad
        y = A_s(w) \frac{u - \mu_{hw}(u)}{\sqrt{\sigma^2_{hw}(u) + \epsilon}} + A_t(w)

    with :math:`W` an equalized 3×3 convolution without bias (same padding), :math:`n` a
    ``(N, 1, H, W)`` noise map with per-channel (StyleGAN) or scalar strength :math:`s`, and :math:`A` the
    affine map of :class:`~ganblocks.layers.AdaIN` (scale bias starting at 1). The noise, bias and
    activation run as one fused :func:`~ganblocks.functional.inject_noise` pass. ``kernel_size=None``
    drops the convolution (the first layer of the 4×4 block, applied directly to the constant).

    Args:
        in_channels: channels of ``x``.
        out_channels: channels of the output (must equal ``in_channels`` without a convolution).
        w_dim: size of ``w``.
        kernel_size: odd size of the convolution; None for no convolution.
        act: activation after the noise and bias (with its default gain).
        noise_mode: mode of the :class:`~ganblocks.layers.NoiseInjection` (``"random"``, ``"const"``,
            ``"none"``).
        per_channel_noise: one noise strength per channel (StyleGAN) instead of one scalar (StyleGAN2).
        resolution: ``H`` or ``(H, W)`` of the output, required by ``noise_mode="const"``.
        eps: added to the variance in AdaIN (StyleGAN's instance norm: 1e-8).
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - x: ``(N, in_channels, H, W)``; w: ``(N, w_dim)``; noise: ``(N, 1, H, W)`` or ``(1, 1, H, W)``.
        - Output: ``(N, out_channels, H, W)``.

    Example:
        >>> import torch
        >>> from ganblocks.generators import AdaINSynthesisLayer
        >>> layer = AdaINSynthesisLayer(4, 6, 8)
        >>> layer(torch.randn(2, 4, 5, 5), torch.randn(2, 8)).shape
        torch.Size([2, 6, 5, 5])

    Reference:
        Karras et al., "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR
        2019, sections 2 and 3.2.
    """

    conv: Optional[EqualConv2d]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        *,
        kernel_size: Optional[int] = 3,
        act: Activation = "lrelu",
        noise_mode: NoiseMode = "random",
        per_channel_noise: bool = True,
        resolution: Optional[Resolution] = None,
        eps: float = 1e-8,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.out_channels = check_int("out_channels", out_channels)
        self.w_dim = check_int("w_dim", w_dim)
        self.act: Activation = act
        if kernel_size is None:
            if in_channels != out_channels:
                raise ValueError(
                    f"out_channels must equal in_channels ({in_channels}) when kernel_size=None (no "
                    f"convolution), got {out_channels}"
                )
            self.conv = None
        else:
            k = check_int("kernel_size", kernel_size)
            if k % 2 == 0:
                raise ValueError(f"kernel_size must be odd (same padding), got {k}")
            self.conv = EqualConv2d(
                in_channels, out_channels, k, 1, k // 2, bias=False, device=device, dtype=dtype
            )
        resolve_activation(act, None, None)
        self.noise = NoiseInjection(
            out_channels,
            mode=noise_mode,
            per_channel=per_channel_noise,
            resolution=resolution,
            device=device,
            dtype=dtype,
        )
        self.bias = nn.Parameter(torch.zeros(out_channels, device=device, dtype=dtype))
        self.adain = AdaIN(out_channels, w_dim, eps=eps, device=device, dtype=dtype)

    def _noise_map(self, x: torch.Tensor, noise: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """The noise to add (None: draw it), following :class:`NoiseInjection`'s rules; ``x`` when none."""
        n, _, h, w = x.shape
        if noise is None:
            if self.noise.mode == "random":
                return None
            if self.noise.mode == "none":
                return x  # sentinel: no noise
            noise = self.noise.noise_const
            if noise is None or tuple(noise.shape[2:]) != (h, w):
                got = None if noise is None else tuple(noise.shape[2:])
                raise ValueError(
                    f"noise_mode='const' needs resolution = the output size {(h, w)} of this layer, got {got}"
                )
        check_float_tensor("noise", noise, exact_ndim=4)
        if noise.shape[0] not in (1, n) or tuple(noise.shape[1:]) != (1, h, w):
            raise ValueError(
                f"noise must have shape (N, 1, H, W) = ({n}, 1, {h}, {w}) or (1, 1, {h}, {w}), "
                f"got {tuple(noise.shape)}"
            )
        return noise.expand(n, 1, h, w).to(x.dtype)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        check_float_tensor("x", x, exact_ndim=4)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (N, in_channels, H, W) with in_channels = {self.in_channels}, "
                f"got {tuple(x.shape)}"
            )
        if self.conv is not None:
            x = self.conv(x)
        bias = self.bias.to(x.dtype)
        n = self._noise_map(x, noise)
        if n is x:
            x = bias_act(x, bias, act=self.act)
        else:
            x = inject_noise(x, self.noise.strength.to(x.dtype), n, bias=bias, act=self.act)
        y: torch.Tensor = self.adain(x, w)
        return y

    def extra_repr(self) -> str:
        k = None if self.conv is None else self.conv.kernel_size[0]
        return f"{self.in_channels}, {self.out_channels}, w_dim={self.w_dim}, kernel_size={k}, act={self.act}"


def _check_ws(ws: torch.Tensor, n: int, w_dim: int) -> torch.Tensor:
    """``ws`` as ``(N, 2, w_dim)``; a single ``(N, w_dim)`` is used for both layers."""
    check_float_tensor("ws", ws)
    if ws.ndim == 2 and tuple(ws.shape) == (n, w_dim):
        return ws.unsqueeze(1).expand(n, 2, w_dim)
    if ws.ndim != 3 or tuple(ws.shape) != (n, 2, w_dim):
        raise ValueError(
            f"ws must have shape (N, 2, w_dim) = ({n}, 2, {w_dim}) (one w per layer) or (N, w_dim), "
            f"got {tuple(ws.shape)}"
        )
    return ws


def _unpack_noise(noise: Optional[NoisePair]) -> NoisePair:
    if noise is None:
        return (None, None)
    if not isinstance(noise, (tuple, list)) or len(noise) != 2:
        raise ValueError(f"noise must be None or a pair (noise0, noise1) of tensors or None, got {noise!r}")
    return (noise[0], noise[1])


class AdaINSynthesisInput(nn.Module):
    r"""StyleGAN's (v1) first (4×4) synthesis block: constant → noise/bias/act → AdaIN(w₀) → conv →
    noise/bias/act → AdaIN(w₁).

    A :class:`ConstantInput`, an :class:`AdaINSynthesisLayer` without convolution and one with a
    3×3 convolution. Keyword options are those of :class:`AdaINSynthesisLayer`.

    Args:
        channels: channels of the constant and of the output.
        w_dim: size of ``w``.
        size: spatial size of the constant (4).

    Shape:
        - ws: ``(N, 2, w_dim)`` (or ``(N, w_dim)`` for both layers).
        - Output: ``(N, channels, H, W)``.

    Example:
        >>> import torch
        >>> from ganblocks.generators import AdaINSynthesisInput
        >>> AdaINSynthesisInput(8, 16)(torch.randn(2, 2, 16)).shape
        torch.Size([2, 8, 4, 4])

    Reference:
        Karras et al., "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR
        2019, figure 1(b).
    """

    num_ws = 2

    def __init__(
        self,
        channels: int,
        w_dim: int,
        *,
        size: Resolution = 4,
        act: Activation = "lrelu",
        noise_mode: NoiseMode = "random",
        per_channel_noise: bool = True,
        eps: float = 1e-8,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        self.const = ConstantInput(channels, size, device=device, dtype=dtype)

        def layer(kernel_size: Optional[int]) -> AdaINSynthesisLayer:
            return AdaINSynthesisLayer(channels, channels, w_dim, kernel_size=kernel_size, act=act, noise_mode=noise_mode,
                              per_channel_noise=per_channel_noise, resolution=self.const.size, eps=eps,
                              device=device, dtype=dtype)  # fmt: skip

        self.layer0 = layer(None)
        self.layer1 = layer(3)
        self.w_dim = w_dim

    def forward(self, ws: torch.Tensor, *, noise: Optional[NoisePair] = None) -> torch.Tensor:
        """``ws`` ``(N, 2, w_dim)``; ``noise`` an optional pair of noise maps for the two layers."""
        check_float_tensor("ws", ws)
        ws = _check_ws(ws, ws.shape[0], self.w_dim)
        n0, n1 = _unpack_noise(noise)
        x = self.const(ws.shape[0]).to(ws.dtype)
        x = self.layer0(x, ws[:, 0], n0)
        y: torch.Tensor = self.layer1(x, ws[:, 1], n1)
        return y


class AdaINSynthesisBlock(nn.Module):
    r"""A StyleGAN (v1) synthesis block: upsample → :class:`AdaINSynthesisLayer` (w₀) →
    :class:`AdaINSynthesisLayer` (w₁).

    .. math::
        y = L_1\big(L_0(\mathrm{up}(x), w_0), w_1\big)

    ``up=2`` doubles the resolution, ``up=1`` keeps it (:math:`\mathrm{up}` is the identity).
    ``resample_filter`` chooses how to upsample: a sequence of FIR taps (default ``[1, 3, 3, 1]``) is
    :class:`~ganblocks.layers.Upsample2d` with that filter (zero insertion and the blur, StyleGAN2's order;
    StyleGAN blurred after the convolution, which is the same map away from the border since both are linear
    and shift-invariant), as StyleGAN2-ADA's ``resample_filter``; ``"nearest"`` is ProGAN's ``upscale2d``
    and ``"bilinear"`` is ``F.interpolate`` with ``align_corners=False``. Keyword options are those of
    :class:`AdaINSynthesisLayer`. StyleGAN2's blocks modulate the convolution weights instead of normalizing
    the features (:class:`~ganblocks.layers.ModulatedConv2d`).

    Args:
        in_channels: channels of ``x``.
        out_channels: channels of the output.
        w_dim: size of ``w``.
        up: upsampling factor, 1 or 2.
        resample_filter: FIR taps of the upsampling filter, or ``"nearest"`` or ``"bilinear"``.
        resolution: output ``H`` or ``(H, W)``, required by ``noise_mode="const"``.

    Shape:
        - x: ``(N, in_channels, H, W)``; ws: ``(N, 2, w_dim)`` (or ``(N, w_dim)`` for both layers).
        - Output: ``(N, out_channels, up·H, up·W)``.

    Example:
        >>> import torch
        >>> from ganblocks.generators import AdaINSynthesisBlock
        >>> block = AdaINSynthesisBlock(8, 4, 16)
        >>> block(torch.randn(2, 8, 4, 4), torch.randn(2, 2, 16)).shape
        torch.Size([2, 4, 8, 8])

    Reference:
        Karras et al., "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR
        2019, figure 1(b); Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020
        (FIR upsampling).
    """

    num_ws = 2
    upsample: Optional[Upsample2d]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        *,
        up: int = 2,
        resample_filter: Union[Sequence[float], InterpolationMode] = BLUR_FILTER,
        kernel_size: int = 3,
        act: Activation = "lrelu",
        noise_mode: NoiseMode = "random",
        per_channel_noise: bool = True,
        resolution: Optional[Resolution] = None,
        eps: float = 1e-8,
        device: Optional[Union[torch.device, str]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if isinstance(up, bool) or not isinstance(up, int) or up not in (1, 2):
            raise ValueError(f"up must be 1 (keep the resolution) or 2 (double it), got {up!r}")
        self.up = up
        self.interpolation: Optional[InterpolationMode] = None
        self.upsample = None
        if isinstance(resample_filter, str):
            self.interpolation = check_choice(
                "resample_filter",
                resample_filter,
                INTERPOLATION_MODES,
            )
        elif isinstance(resample_filter, torch.Tensor) or not isinstance(resample_filter, Sequence):
            raise TypeError(
                f"resample_filter must be a sequence of FIR taps or one of {INTERPOLATION_MODES}, got "
                f"{type(resample_filter).__name__}"
            )
        elif up == 2:
            taps = [float(t) for t in resample_filter]
            self.upsample = Upsample2d(resample_filter=taps, device=device, dtype=dtype)

        def layer(c_in: int) -> AdaINSynthesisLayer:
            return AdaINSynthesisLayer(c_in, out_channels, w_dim, kernel_size=kernel_size, act=act,
                                       noise_mode=noise_mode, per_channel_noise=per_channel_noise,
                                       resolution=resolution, eps=eps, device=device, dtype=dtype)  # fmt: skip

        self.layer0 = layer(in_channels)
        self.layer1 = layer(out_channels)
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim

    def forward(
        self, x: torch.Tensor, ws: torch.Tensor, *, noise: Optional[NoisePair] = None
    ) -> torch.Tensor:
        """``x`` ``(N, in_channels, H, W)``, ``ws`` ``(N, 2, w_dim)``, ``noise`` an optional pair of maps."""
        check_float_tensor("x", x, exact_ndim=4)
        ws = _check_ws(ws, x.shape[0], self.w_dim)
        n0, n1 = _unpack_noise(noise)
        if self.upsample is not None:
            x = self.upsample(x)
        elif self.up == 2 and self.interpolation is not None:
            x = F.interpolate(x, scale_factor=2.0, mode=self.interpolation)
        x = self.layer0(x, ws[:, 0], n0)
        y: torch.Tensor = self.layer1(x, ws[:, 1], n1)
        return y

    def extra_repr(self) -> str:
        how = (
            "" if self.up == 1 or self.interpolation is None else f", resample_filter={self.interpolation!r}"
        )
        return f"{self.in_channels}, {self.out_channels}, w_dim={self.w_dim}, up={self.up}{how}"
