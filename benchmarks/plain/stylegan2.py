"""StyleGAN / StyleGAN2 blocks as users write them in plain PyTorch: NVlabs' ``_bias_act_ref`` and
``_upfirdn2d_ref``, rosinality/stylegan2-pytorch's layers (``fused_leaky_relu`` fallback, ``EqualConv2d``,
``EqualLinear``, ``Blur``, ``ModulatedConv2d``, minibatch stddev, losses), ProGAN's pixel norm."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor, slope: float = 0.2) -> torch.Tensor:
    return F.leaky_relu(x + bias.view([1, -1] + [1] * (x.ndim - 2)), negative_slope=slope) * math.sqrt(2)


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


def adain(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """StyleGAN's ``AdaptiveInstanceNorm`` after the style projection."""
    return gamma[:, :, None, None] * F.instance_norm(x, eps=1e-5) + beta[:, :, None, None]


def noise_bias_act(x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``NoiseInjection`` (``image + weight * noise``) then ``FusedLeakyReLU``."""
    return fused_leaky_relu(x + w * noise, bias)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, num_channels: int = 1) -> torch.Tensor:
    batch, channel, height, width = x.shape
    group = min(batch, group_size)
    stddev = x.view(group, -1, num_channels, channel // num_channels, height, width)
    stddev = torch.sqrt(stddev.var(0, unbiased=False) + 1e-8)
    stddev = stddev.mean([2, 3, 4], keepdim=True).squeeze(2)
    return torch.cat([x, stddev.repeat(group, 1, height, width)], 1)


class EqualConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: int, padding: int = 0, bias: bool = True,
                 stride: int = 1) -> None:  # fmt: skip
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(cin * kernel_size**2)
        self.padding, self.stride = padding, stride
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, padding=self.padding, stride=self.stride)


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class ConvLayer(nn.Sequential):
    """``ConvLayer`` without blur: ``EqualConv2d`` without bias, then ``FusedLeakyReLU``."""

    def __init__(self, cin: int, cout: int, kernel_size: int) -> None:
        super().__init__(
            EqualConv2d(cin, cout, kernel_size, kernel_size // 2, bias=False), FusedLeakyReLU(cout)
        )


class EqualLinear(nn.Module):
    def __init__(self, cin: int, cout: int, bias_init: float = 0.0, activation: Optional[str] = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin))
        self.bias = nn.Parameter(torch.zeros(cout).fill_(bias_init))
        self.activation = activation
        self.scale = 1 / math.sqrt(cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias)
        return F.linear(x, self.weight * self.scale, bias=self.bias)


def stylegan_channels(resolution: int, base: int = 32, max_channels: int = 256) -> dict[int, int]:
    """Channels per resolution of the benchmark's StyleGAN-style discriminator."""
    return {
        4 << i: min(max_channels, base * (resolution // (4 << i))) for i in range(resolution.bit_length() - 2)
    }


class StyleDiscriminator(nn.Module):
    """Equalized-LR discriminator with minibatch stddev (no skip/residual, average-pool downsampling):
    fromRGB 1×1, per resolution two 3×3 conv + lrelu and a 2× pool down to 4×4, minibatch stddev, 3×3
    conv, linear + lrelu, linear to one logit."""

    def __init__(self, resolution: int, in_channels: int = 3) -> None:
        super().__init__()
        ch = stylegan_channels(resolution)
        self.from_rgb = ConvLayer(in_channels, ch[resolution], 1)
        blocks = []
        while resolution > 4:
            r = resolution
            blocks.append(
                nn.Sequential(ConvLayer(ch[r], ch[r], 3), ConvLayer(ch[r], ch[r // 2], 3), nn.AvgPool2d(2))
            )
            resolution //= 2
        self.blocks = nn.Sequential(*blocks)
        self.final_conv = ConvLayer(ch[4] + 1, ch[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 16, ch[4], activation="lrelu"), EqualLinear(ch[4], 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.final_conv(minibatch_stddev(self.blocks(self.from_rgb(x))))
        return self.final_linear(out.flatten(1))  # type: ignore[no-any-return]


def d_logistic_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def g_nonsaturating_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_pred).mean()


def d_r1_loss(real_pred: torch.Tensor, real_img: torch.Tensor) -> torch.Tensor:
    """``E ||grad_x D(x)||^2`` (the caller multiplies by γ/2 and the lazy interval)."""
    (grad_real,) = torch.autograd.grad(outputs=real_pred.sum(), inputs=real_img, create_graph=True)
    return grad_real.pow(2).reshape(grad_real.shape[0], -1).sum(1).mean()


class AdaptiveInstanceNorm(nn.Module):
    """StyleGAN's ``AdaptiveInstanceNorm``: equalized style projection (scale bias 1), ``gamma * IN(x) + beta``."""

    def __init__(self, in_channel: int, style_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(in_channel)
        self.style = EqualLinear(style_dim, in_channel * 2)
        with torch.no_grad():
            self.style.bias[:in_channel] = 1

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.style(style)[:, :, None, None].chunk(2, 1)
        return gamma * self.norm(x) + beta  # type: ignore[no-any-return]


def upfirdn2d_ref(x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1,
                  padding: Sequence[int] = (0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:  # fmt: skip
    """StyleGAN2-ADA's ``_upfirdn2d_ref``: zero insertion by reshape and pad, pad, a depthwise convolution
    with the flipped filter at the full upsampled size (two 1-D passes for a separable filter), then every
    ``down``-th pixel."""
    n, c, h, w = x.shape
    x = F.pad(x.reshape([n, c, h, 1, w, 1]), [0, up - 1, 0, 0, 0, up - 1]).reshape([n, c, h * up, w * up])
    x = F.pad(x, [max(p, 0) for p in padding])
    f = (f * math.pow(gain, f.ndim / 2)).to(x.dtype).flip(list(range(f.ndim)))
    f = f[None, None].repeat([c, 1] + [1] * f.ndim)
    if f.ndim == 4:
        x = F.conv2d(x, f, groups=c)
    else:
        x = F.conv2d(F.conv2d(x, f.unsqueeze(2), groups=c), f.unsqueeze(3), groups=c)
    return x[:, :, ::down, ::down]


class Blur(nn.Module):
    """rosinality's ``Blur``: ``upfirdn2d`` with the normalized 2-D kernel (× 4 after a 2× transposed conv)."""

    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        k = torch.tensor(kernel, dtype=torch.float32)
        k = k[None, :] * k[:, None]
        self.register_buffer("kernel", k / k.sum() * upsample_factor**2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d_ref(x, self.kernel, padding=(self.pad[0], self.pad[1], self.pad[0], self.pad[1]))


class ModulatedConv2d(nn.Module):
    """rosinality's ``ModulatedConv2d`` (demodulated): a grouped convolution over the batch (``fused``) or
    scaled activations around a shared convolution; ``upsample``: stride-2 transposed conv, then ``Blur``."""

    def __init__(self, cin: int, cout: int, kernel_size: int, style_dim: int, upsample: bool = False,
                 fused: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.k, self.cin, self.cout, self.upsample, self.fused = kernel_size, cin, cout, upsample, fused
        if upsample:
            p = (4 - 2) - (kernel_size - 1)
            self.blur = Blur((1, 3, 3, 1), pad=((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)
        self.scale = 1 / math.sqrt(cin * kernel_size**2)
        self.weight = nn.Parameter(torch.randn(1, cout, cin, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, cin, bias_init=1)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        n, cin, h, w = x.shape
        k, cout = self.k, self.cout
        if not self.fused:
            weight = self.scale * self.weight.squeeze(0)
            style = self.modulation(style)
            dcoefs = (
                (weight.unsqueeze(0) * style.view(n, 1, cin, 1, 1)).square().sum((2, 3, 4)) + 1e-8
            ).rsqrt()
            x = x * style.reshape(n, cin, 1, 1)
            if self.upsample:
                out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), padding=0, stride=2))
            else:
                out = F.conv2d(x, weight, padding=k // 2)
            return out * dcoefs.view(n, -1, 1, 1)  # type: ignore[no-any-return]
        weight = self.scale * self.weight * self.modulation(style).view(n, 1, cin, 1, 1)
        weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(n, cout, 1, 1, 1)
        x = x.view(1, n * cin, h, w)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(n * cin, cout, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=n)
            return self.blur(out.view(n, cout, *out.shape[2:]))  # type: ignore[no-any-return]
        out = F.conv2d(x, weight.view(n * cout, cin, k, k), padding=k // 2, groups=n)
        return out.view(n, cout, *out.shape[2:])


# fmt: off
def augment_bgc(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """StyleGAN2-ADA's ``AugmentPipe`` at ``--augpipe=bgc``, p = 1, written with torch ops: one inverse 3×3
    matrix per sample, reflect padding, 2× up with the wavelet ``f``, ``grid_sample``, 2× down, 4×4 colour."""
    n, c, h, w = x.shape
    r, g = (lambda *s: torch.rand(s, device=x.device)), (lambda *s: torch.randn(s, device=x.device))
    one, zero, eye = torch.ones(n, device=x.device), torch.zeros(n, device=x.device), torch.eye(3, device=x.device)

    def m3(a, b, t, d, e, u):  # type: ignore[no-untyped-def]  # rows [a b t], [d e u], [0 0 1]
        return torch.stack([a, b, t, d, e, u, zero, zero, one], 1).view(n, 3, 3)

    def rot(t: torch.Tensor) -> torch.Tensor:
        return m3(t.cos(), -t.sin(), zero, t.sin(), t.cos(), zero)

    s, a, t = torch.exp2(g(n) * 0.2), torch.exp2(g(n) * 0.2), torch.round((r(n, 2) * 2 - 1) * 0.125 * w)
    gi = m3(1 - 2 * torch.floor(r(n) * 2), zero, zero, zero, one, zero) @ rot(torch.floor(r(n) * 4) * math.pi / 2)
    gi = gi @ m3(one, zero, -t[:, 0], zero, one, -t[:, 1]) @ m3(1 / s, zero, zero, zero, 1 / s, zero)
    gi = gi @ rot((r(n) * 2 - 1) * math.pi) @ m3(1 / a, zero, zero, zero, a, zero) @ rot((r(n) * 2 - 1) * math.pi)
    t = g(n, 2) * 0.125 * w
    gi = gi @ m3(one, zero, -t[:, 0], zero, one, -t[:, 1])
    corners = torch.tensor([[-1, 1, 1, -1], [-1, -1, 1, 1]], device=x.device) * (w - 1) / 2  # square images
    xy = (gi[:, :2, :2] @ corners + gi[:, :2, 2:]).permute(1, 0, 2).flatten(1)
    mx0, my0, mx1, my1 = (torch.cat([-xy, xy]).amax(1) + 6 - (w - 1) / 2).clamp(0, w - 1).ceil().int().tolist()
    x = upfirdn2d_ref(F.pad(x, [mx0, mx1, my0, my1], mode="reflect"), f, up=2, padding=(6, 5, 6, 5), gain=4)
    gi = m3(one, zero, one * (mx0 - mx1) / 2, zero, one, one * (my0 - my1) / 2) @ gi
    sh, sw = (h + 6) * 2, (w + 6) * 2  # to the 2× grid, then to affine_grid's [-1, 1] coordinates
    gi = m3(2 * one, zero, -one / 2, zero, 2 * one, -one / 2) @ gi @ m3(one / 2, zero, one / 4, zero, one / 2, one / 4)
    gi = m3(2 / x.shape[3] * one, zero, zero, zero, 2 / x.shape[2] * one, zero) @ gi @ m3(sw / 2 * one, zero, zero, zero, sh / 2 * one, zero)
    grid = F.affine_grid(gi[:, :2, :], [n, c, sh, sw], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    x = upfirdn2d_ref(x[:, :, 1:-1, 1:-1], f.flip(0), down=2)
    v = torch.full((3,), 3**-0.5, device=x.device)
    vv, cross = torch.outer(v, v), torch.tensor([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], device=x.device) * 3**-0.5
    b, k, sat, th = g(n, 1, 1) * 0.2, torch.exp2(g(n, 1, 1) * 0.5), torch.exp2(g(n, 1, 1)), (r(n, 1, 1) * 2 - 1) * math.pi
    flip = eye - 2 * vv * torch.floor(r(n, 1, 1) * 2)
    hue = th.cos() * eye + th.sin() * cross + (1 - th.cos()) * vv
    lin = (vv + (eye - vv) * sat) @ hue @ flip * k
    return (lin @ x.reshape(n, c, -1) + lin.sum(2, keepdim=True) * b).reshape(n, c, h, w)
# fmt: on
def channels(resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    return {4 << i: min(channel_base // (4 << i), channel_max) for i in range(resolution.bit_length() - 2)}


class StyledConv(nn.Module):
    """rosinality's ``StyledConv``: modulated conv, ``NoiseInjection`` (fresh noise), ``FusedLeakyReLU``."""

    def __init__(self, cin: int, cout: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv, self.act = (
            ModulatedConv2d(cin, cout, 3, style_dim, upsample=upsample),
            FusedLeakyReLU(cout),
        )
        self.noise_weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        out = self.conv(x, style)
        return self.act(out + self.noise_weight * out.new_empty(out.shape[0], 1, *out.shape[2:]).normal_())


class ToRGB(nn.Module):
    """rosinality's ``ToRGB``: modulated 1×1 conv without demodulation, bias, + the upsampled skip."""

    def __init__(self, cin: int, style_dim: int) -> None:
        super().__init__()
        self.weight, self.bias = (
            nn.Parameter(torch.randn(3, cin, 1, 1)),
            nn.Parameter(torch.zeros(1, 3, 1, 1)),
        )
        self.modulation, self.scale = EqualLinear(style_dim, cin, bias_init=1), 1 / math.sqrt(cin)
        self.register_buffer("kernel", torch.outer(*[torch.tensor([1.0, 3, 3, 1])] * 2) / 64)

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: Optional[torch.Tensor]) -> torch.Tensor:
        out = F.conv2d(x * (self.scale * self.modulation(style))[:, :, None, None], self.weight) + self.bias
        return (
            out
            if skip is None
            else out + upfirdn2d_ref(skip, self.kernel, up=2, padding=(2, 1, 2, 1), gain=4)
        )


class Generator(nn.Module):
    """rosinality's ``Generator`` (skip architecture): pixel norm + ``n_mlp`` lrelu ``EqualLinear``, constant
    4×4 input, two ``StyledConv`` per resolution (one at 4×4), a ``ToRGB`` per resolution."""

    def __init__(
        self, resolution: int, style_dim: int, channel_base: int, channel_max: int, n_mlp: int
    ) -> None:
        super().__init__()
        ch = channels(resolution, channel_base, channel_max)
        self.style = nn.Sequential(
            *[EqualLinear(style_dim, style_dim, activation="lrelu") for _ in range(n_mlp)]
        )
        self.input = nn.Parameter(torch.randn(1, ch[4], 4, 4))
        self.convs = nn.ModuleList([StyledConv(ch[4], ch[4], style_dim)])
        self.to_rgbs = nn.ModuleList([ToRGB(ch[4], style_dim)])
        for r in list(ch)[1:]:
            self.convs.extend(
                [StyledConv(ch[r // 2], ch[r], style_dim, True), StyledConv(ch[r], ch[r], style_dim)]
            )
            self.to_rgbs.append(ToRGB(ch[r], style_dim))
        self.num_ws = len(self.convs) + 1

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.style(pixel_norm(z)).unsqueeze(1).repeat(1, self.num_ws, 1)  # type: ignore[no-any-return]

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        x = self.convs[0](self.input.repeat(ws.shape[0], 1, 1, 1), ws[:, 0])
        img = self.to_rgbs[0](x, ws[:, 1], None)
        for i, to_rgb in enumerate(self.to_rgbs[1:]):
            x = self.convs[2 * i + 2](self.convs[2 * i + 1](x, ws[:, 2 * i + 1]), ws[:, 2 * i + 2])
            img = to_rgb(x, ws[:, 2 * i + 3], img)
        return img

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.mapping(z))


class DownConv(nn.Sequential):
    """rosinality's downsampling ``ConvLayer``: ``Blur`` then a stride-2 ``EqualConv2d``, lrelu unless 1×1."""

    def __init__(self, cin: int, cout: int, k: int) -> None:
        blur = Blur((1, 3, 3, 1), ((k + 2) // 2, (k + 1) // 2))  # rosinality: p = (4 - 2) + (k - 1)
        act = [FusedLeakyReLU(cout)] if k == 3 else []
        super().__init__(blur, EqualConv2d(cin, cout, k, bias=False, stride=2), *act)


class ResDiscriminator(nn.Module):
    """rosinality's ``Discriminator``: fromRGB, ``ResBlock`` (3×3, blurred stride-2 3×3, blurred 1×1 skip, /√2)
    per resolution, minibatch stddev, 3×3 conv, linear + lrelu, linear."""

    def __init__(self, resolution: int, channel_base: int, channel_max: int) -> None:
        super().__init__()
        ch = channels(resolution, channel_base, channel_max)
        self.from_rgb, rs = ConvLayer(3, ch[resolution], 1), sorted(ch, reverse=True)[:-1]
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                [ConvLayer(ch[r], ch[r], 3), DownConv(ch[r], ch[r // 2], 3), DownConv(ch[r], ch[r // 2], 1)]
            )
            for r in rs
        )
        self.final_conv = ConvLayer(ch[4] + 1, ch[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 16, ch[4], activation="lrelu"), EqualLinear(ch[4], 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.from_rgb(x)
        for conv1, conv2, skip in self.blocks:
            x = (conv2(conv1(x)) + skip(x)) / math.sqrt(2)
        return self.final_linear(self.final_conv(minibatch_stddev(x)).flatten(1))  # type: ignore[no-any-return]


def g_path_regularize(
    img: torch.Tensor, ws: torch.Tensor, mean: torch.Tensor, decay: float = 0.01
) -> torch.Tensor:
    """rosinality's ``g_path_regularize``: the path length penalty (2 × the squared deviation from the mean)."""
    noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    lengths = grad.pow(2).sum(2).mean(1).sqrt()
    return 2 * (lengths - (mean + decay * (lengths.mean() - mean))).pow(2).mean()
