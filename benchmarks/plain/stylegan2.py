"""StyleGAN / StyleGAN2 building blocks as users write them in plain PyTorch.

Follows the reference paths of NVlabs' ``bias_act`` (``_bias_act_ref``) and ``upfirdn2d``
(``_upfirdn2d_ref``, with ``setup_filter``), and the widely used rosinality/stylegan2-pytorch port
(``fused_leaky_relu`` CPU fallback, ``EqualConv2d``, ``EqualLinear``, ``NoiseInjection``, ``Blur``,
``ModulatedConv2d``, the discriminator's minibatch standard deviation), and ProGAN's pixel norm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn


def fused_leaky_relu(
    x: torch.Tensor, bias: torch.Tensor, negative_slope: float = 0.2, scale: float = math.sqrt(2)
) -> torch.Tensor:
    """``leaky_relu(x + bias) * sqrt(2)``: stylegan2-pytorch's fallback, StyleGAN2's ``bias_act`` reference."""
    shape = [1, -1] + [1] * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), negative_slope=negative_slope) * scale


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    """ProGAN / StyleGAN's ``PixelNorm``."""
    return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


def adain(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """StyleGAN's ``AdaptiveInstanceNorm`` after the style projection: ``gamma * InstanceNorm(x) + beta``."""
    return gamma[:, :, None, None] * F.instance_norm(x, eps=1e-5) + beta[:, :, None, None]


def noise_bias_act(
    x: torch.Tensor, weight: torch.Tensor, noise: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """StyleGAN2's synthesis tail: ``NoiseInjection`` (``image + weight * noise``) then ``FusedLeakyReLU``."""
    return fused_leaky_relu(x + weight * noise, bias)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, num_channels: int = 1) -> torch.Tensor:
    """stylegan2-pytorch's discriminator minibatch standard deviation (strided groups, as StyleGAN2)."""
    batch, channel, height, width = x.shape
    group = min(batch, group_size)
    stddev = x.view(group, -1, num_channels, channel // num_channels, height, width)
    stddev = torch.sqrt(stddev.var(0, unbiased=False) + 1e-8)
    stddev = stddev.mean([2, 3, 4], keepdim=True).squeeze(2)
    stddev = stddev.repeat(group, 1, height, width)
    return torch.cat([x, stddev], 1)


class EqualConv2d(nn.Module):
    """stylegan2-pytorch's ``EqualConv2d``: weight ``N(0, 1)`` scaled by ``1/sqrt(fan_in)`` at run time."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class ConvLayer(nn.Sequential):
    """stylegan2-pytorch's ``ConvLayer`` (no blur): ``EqualConv2d`` without bias, then ``FusedLeakyReLU``."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, activate: bool = True) -> None:
        layers: list[nn.Module] = [
            EqualConv2d(in_channel, out_channel, kernel_size, padding=kernel_size // 2, bias=not activate)
        ]
        if activate:
            layers.append(FusedLeakyReLU(out_channel))
        super().__init__(*layers)


class EqualLinear(nn.Module):
    """stylegan2-pytorch's ``EqualLinear`` with optional fused leaky ReLU."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init))
        self.activation = activation
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            return fused_leaky_relu(out, self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul)


def stylegan_channels(resolution: int, base: int = 32, max_channels: int = 256) -> dict[int, int]:
    """Channels per resolution for the benchmark's StyleGAN-style discriminator (halving up the resolutions)."""
    out: dict[int, int] = {}
    res = 4
    while res <= resolution:
        out[res] = min(max_channels, base * (resolution // res))
        res *= 2
    return out


class StyleDiscriminator(nn.Module):
    """Equalized-LR discriminator with minibatch stddev, as StyleGAN (no skip/residual, average-pool downsample).

    fromRGB 1×1 → per resolution two 3×3 conv + lrelu and a 2× average pool down to 4×4 → minibatch stddev →
    3×3 conv → flatten → linear + lrelu → linear to one logit.
    """

    def __init__(
        self, resolution: int, in_channels: int = 3, channels: Optional[dict[int, int]] = None
    ) -> None:
        super().__init__()
        ch = channels or stylegan_channels(resolution)
        self.from_rgb = ConvLayer(in_channels, ch[resolution], 1)
        blocks: list[nn.Module] = []
        res = resolution
        while res > 4:
            blocks.append(
                nn.Sequential(
                    ConvLayer(ch[res], ch[res], 3), ConvLayer(ch[res], ch[res // 2], 3), nn.AvgPool2d(2)
                )
            )
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        self.final_conv = ConvLayer(ch[4] + 1, ch[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 4 * 4, ch[4], activation="fused_lrelu"), EqualLinear(ch[4], 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.from_rgb(x))
        out = self.final_conv(minibatch_stddev(out))
        logits: torch.Tensor = self.final_linear(out.flatten(1))
        return logits


def d_logistic_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """stylegan2-pytorch's non-saturating discriminator loss."""
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def g_nonsaturating_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_pred).mean()


def d_r1_loss(real_pred: torch.Tensor, real_img: torch.Tensor) -> torch.Tensor:
    """stylegan2-pytorch's R1: ``E ||grad_x D(x)||^2`` (the caller multiplies by γ/2 and the lazy interval)."""
    (grad_real,) = torch.autograd.grad(outputs=real_pred.sum(), inputs=real_img, create_graph=True)
    return grad_real.pow(2).reshape(grad_real.shape[0], -1).sum(1).mean()


class AdaptiveInstanceNorm(nn.Module):
    """StyleGAN's ``AdaptiveInstanceNorm`` (style-based-gan-pytorch): equalized style projection, scale bias 1."""

    def __init__(self, in_channel: int, style_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(in_channel)
        self.style = EqualLinear(style_dim, in_channel * 2)
        with torch.no_grad():
            self.style.bias[:in_channel] = 1
            self.style.bias[in_channel:] = 0

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        s = self.style(style).unsqueeze(2).unsqueeze(3)
        gamma, beta = s.chunk(2, 1)
        y: torch.Tensor = gamma * self.norm(x) + beta
        return y


def _pair(name: str, v: Union[int, Sequence[int]]) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {v!r}")
    return int(v[0]), int(v[1])


def _padding(p: Union[int, Sequence[int]]) -> tuple[int, int, int, int]:
    if isinstance(p, int):
        return p, p, p, p
    if len(p) == 2:
        return p[0], p[0], p[1], p[1]
    if len(p) != 4:
        raise ValueError(f"padding must be an int, a pair or a 4-tuple, got {p!r}")
    return p[0], p[1], p[2], p[3]


def setup_filter(
    f: Sequence[float], normalize: bool = True, flip_filter: bool = False, gain: float = 1.0,
    separable: Optional[bool] = None,
) -> torch.Tensor:  # fmt: skip
    """StyleGAN2-ADA's ``upfirdn2d.setup_filter``: taps to a 1-D (separable) or 2-D float32 filter."""
    t = torch.as_tensor(f, dtype=torch.float32)
    if t.ndim == 0:
        t = t[None]
    if separable is None:
        separable = t.ndim == 1 and t.numel() >= 8
    if t.ndim == 1 and not separable:
        t = t.ger(t)
    if normalize:
        t = t / t.sum()
    if flip_filter:
        t = t.flip(list(range(t.ndim)))
    return t * math.pow(gain, t.ndim / 2)


def upfirdn2d_ref(
    x: torch.Tensor,
    f: Optional[torch.Tensor],
    up: Union[int, Sequence[int]] = 1,
    down: Union[int, Sequence[int]] = 1,
    padding: Union[int, Sequence[int]] = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """StyleGAN2-ADA's ``_upfirdn2d_ref``: zero insertion by reshape and pad, pad or crop, a depthwise
    convolution with the flipped filter at the full upsampled size (two 1-D passes for a separable filter),
    then every ``down``-th pixel."""
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    batch_size, num_channels, in_height, in_width = x.shape
    upx, upy = _pair("up", up)
    downx, downy = _pair("down", down)
    padx0, padx1, pady0, pady1 = _padding(padding)

    # Upsample by inserting zeros.
    x = x.reshape([batch_size, num_channels, in_height, 1, in_width, 1])
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape([batch_size, num_channels, in_height * upy, in_width * upx])

    # Pad or crop.
    x = F.pad(x, [max(padx0, 0), max(padx1, 0), max(pady0, 0), max(pady1, 0)])
    x = x[:, :, max(-pady0, 0) : x.shape[2] - max(-pady1, 0), max(-padx0, 0) : x.shape[3] - max(-padx1, 0)]

    # Setup filter.
    f = f * math.pow(gain, f.ndim / 2)
    f = f.to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))

    # Convolve with the filter.
    f = f[None, None].repeat([num_channels, 1] + [1] * f.ndim)
    if f.ndim == 4:
        x = F.conv2d(x, f, groups=num_channels)
    else:
        x = F.conv2d(x, f.unsqueeze(2), groups=num_channels)
        x = F.conv2d(x, f.unsqueeze(3), groups=num_channels)

    # Downsample by throwing away pixels.
    return x[:, :, ::downy, ::downx]


def make_kernel(k: Sequence[float]) -> torch.Tensor:
    """rosinality's ``make_kernel``: the normalized outer product of the taps."""
    t = torch.tensor(k, dtype=torch.float32)
    if t.ndim == 1:
        t = t[None, :] * t[:, None]
    return t / t.sum()


class Blur(nn.Module):
    """rosinality's ``Blur``: ``upfirdn2d`` with a normalized 2-D kernel (times ``factor²`` after a
    transposed convolution), padded by ``pad = (pad0, pad1)`` along both axes."""

    kernel: torch.Tensor

    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * (upsample_factor**2)
        self.register_buffer("kernel", k)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d_ref(x, self.kernel, padding=(self.pad[0], self.pad[1], self.pad[0], self.pad[1]))


class ModulatedConv2d(nn.Module):
    """rosinality's ``ModulatedConv2d``: style modulation (``EqualLinear``, bias 1), demodulation, a grouped
    convolution over the batch (``fused=True``) or scaling of the activations around a shared convolution
    (``fused=False``); ``upsample`` is a stride-2 transposed convolution followed by ``Blur``."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        downsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.upsample = upsample
        self.downsample = downsample
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        fan_in = in_channel * kernel_size**2
        self.scale = 1 / math.sqrt(fan_in)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.demodulate = demodulate
        self.fused = fused

    def forward(self, input: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        batch, in_channel, height, width = input.shape
        if not self.fused:
            weight = self.scale * self.weight.squeeze(0)
            style = self.modulation(style)
            if self.demodulate:
                w = weight.unsqueeze(0) * style.view(batch, 1, in_channel, 1, 1)
                dcoefs = (w.square().sum((2, 3, 4)) + 1e-8).rsqrt()
            input = input * style.reshape(batch, in_channel, 1, 1)
            if self.upsample:
                weight = weight.transpose(0, 1)
                out = F.conv_transpose2d(input, weight, padding=0, stride=2)
                out = self.blur(out)
            elif self.downsample:
                input = self.blur(input)
                out = F.conv2d(input, weight, padding=0, stride=2)
            else:
                out = F.conv2d(input, weight, padding=self.padding)
            if self.demodulate:
                out = out * dcoefs.view(batch, -1, 1, 1)
            return out

        style = self.modulation(style).view(batch, 1, in_channel, 1, 1)
        weight = self.scale * self.weight * style
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)
        weight = weight.view(batch * self.out_channel, in_channel, self.kernel_size, self.kernel_size)
        if self.upsample:
            input = input.view(1, batch * in_channel, height, width)
            weight = weight.view(batch, self.out_channel, in_channel, self.kernel_size, self.kernel_size)
            weight = weight.transpose(1, 2).reshape(
                batch * in_channel, self.out_channel, self.kernel_size, self.kernel_size
            )
            out = F.conv_transpose2d(input, weight, padding=0, stride=2, groups=batch)
            _, _, height, width = out.shape
            blurred: torch.Tensor = self.blur(out.view(batch, self.out_channel, height, width))
            return blurred
        if self.downsample:
            input = self.blur(input)
            _, _, height, width = input.shape
            input = input.view(1, batch * in_channel, height, width)
            out = F.conv2d(input, weight, padding=0, stride=2, groups=batch)
            _, _, height, width = out.shape
            return out.view(batch, self.out_channel, height, width)
        input = input.view(1, batch * in_channel, height, width)
        out = F.conv2d(input, weight, padding=self.padding, groups=batch)
        _, _, height, width = out.shape
        return out.view(batch, self.out_channel, height, width)
