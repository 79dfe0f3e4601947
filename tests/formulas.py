"""The independent formulas every test compares against, in float64, sharing no code with ganblocks.

Each is the published definition written out element by element (or plane by plane, group by group)
with Python's ``math``, slow and obviously right. They return float64 tensors on the input's device.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from ganblocks.layers import Activation

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
# StyleGAN2-ADA's defaults: the slope of lrelu and scale of elu, and √2 for the ReLU-like activations.
DEFAULT_ALPHA = {"lrelu": 0.2, "elu": 1.0}
DEFAULT_GAIN = {"relu": 2**0.5, "lrelu": 2**0.5, "swish": 2**0.5}
ALIASES: dict[str, Activation] = {"leaky_relu": "lrelu"}  # torch's name


def scalar_act(act: Activation, v: float, alpha: Optional[float] = None) -> float:
    """One activation of one number."""
    act = ALIASES.get(act, act)
    a = DEFAULT_ALPHA.get(act, 0.0) if alpha is None else alpha
    if act == "linear":
        return v
    if act == "relu":
        return max(v, 0.0)
    if act == "lrelu":
        return v if v > 0 else a * v
    if act == "tanh":
        return math.tanh(v)
    if act == "sigmoid":
        return 1 / (1 + math.exp(-v))
    if act == "elu":
        return v if v > 0 else a * (math.exp(v) - 1)
    if act == "selu":
        return SELU_SCALE * (v if v > 0 else SELU_ALPHA * (math.exp(v) - 1))
    if act == "softplus":
        return v if v > 20 else math.log1p(math.exp(v))
    if act == "swish":
        return v / (1 + math.exp(-v))
    raise AssertionError(f"no formula for {act!r}")


def _gain(act: Activation, gain: Optional[float]) -> float:
    return DEFAULT_GAIN.get(ALIASES.get(act, act), 1.0) if gain is None else gain


def _clamp(v: float, clamp: Optional[float]) -> float:
    return v if clamp is None else min(max(v, -clamp), clamp)


def _values(t: torch.Tensor) -> list[float]:
    return [float(v) for v in t.detach().double().cpu().flatten().tolist()]


def act(
    x: torch.Tensor,
    act: Activation,
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
    clamp: Optional[float] = None,
) -> torch.Tensor:
    """``clamp(gain * act(x))`` element by element, with StyleGAN2-ADA's default slopes and gains."""
    g = _gain(act, gain)
    out = [_clamp(g * scalar_act(act, v, alpha), clamp) for v in _values(x)]
    return torch.tensor(out, dtype=torch.float64, device=x.device).reshape(x.shape)


def bias_act(
    x: torch.Tensor,
    b: Optional[torch.Tensor] = None,
    act_name: Activation = "linear",
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
    clamp: Optional[float] = None,
    dim: int = 1,
) -> torch.Tensor:
    """StyleGAN2-ADA's bias_act: ``clamp(gain * act(x + b))`` with ``b`` along ``dim``."""
    xs = x.detach().double()
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        xs = xs + b.detach().double().to(x.device).reshape(shape)
    return act(xs, act_name, alpha, gain, clamp)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8, dim: int = 1) -> torch.Tensor:
    """ProGAN's pixel norm, one feature vector at a time."""
    moved = x.detach().double().cpu().movedim(dim, -1)
    rows = moved.reshape(-1, moved.shape[-1]).tolist()
    out = [[v / math.sqrt(sum(u * u for u in row) / len(row) + eps) for v in row] for row in rows]
    return torch.tensor(out, dtype=torch.float64).reshape(moved.shape).movedim(-1, dim).to(x.device)


def _param(p: Optional[torch.Tensor], n: int, c: int, default: float) -> float:
    if p is None:
        return default
    return float(p[c] if p.ndim == 1 else p[n, c])


def instance_norm_act(
    x: torch.Tensor,
    scale: Optional[torch.Tensor] = None,
    bias: Optional[torch.Tensor] = None,
    *,
    eps: float = 1e-5,
    act: Activation = "linear",
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
) -> torch.Tensor:
    """Instance norm (biased variance per plane) + per-channel or per-sample affine + activation + gain."""
    n_, c_ = x.shape[:2]
    g = _gain(act, gain)
    planes = x.detach().double().cpu().reshape(n_, c_, -1).tolist()
    scale = None if scale is None else scale.detach().double().cpu()
    bias = None if bias is None else bias.detach().double().cpu()
    out = []
    for i in range(n_):
        for j in range(c_):
            plane = planes[i][j]
            mu = sum(plane) / len(plane)
            var = sum((v - mu) ** 2 for v in plane) / len(plane)
            s, b = _param(scale, i, j, 1.0), _param(bias, i, j, 0.0)
            out.append([g * scalar_act(act, s * (v - mu) / math.sqrt(var + eps) + b, alpha) for v in plane])
    return torch.tensor(out, dtype=torch.float64).reshape(x.shape).to(x.device)


def adain(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, *, eps: float = 1e-5) -> torch.Tensor:
    """AdaIN: each plane normalized, then scaled and shifted by its sample's style."""
    return instance_norm_act(x, scale, bias, eps=eps)


def equal_linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], *, lr: float,
                 gain: float = 1.0) -> torch.Tensor:  # fmt: skip
    """Equalized learning rate: ``x @ (weight * gain * lr / sqrt(fan_in)).T + bias * lr``."""
    xd, w = x.detach().double(), weight.detach().double()
    y = xd @ (w * (gain * lr / math.sqrt(w.shape[1]))).T
    return y if bias is None else y + bias.detach().double() * lr


def adain_module(x: torch.Tensor, w: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, *, lr: float,
                 eps: float) -> torch.Tensor:  # fmt: skip
    """The AdaIN layer: an equalized linear map of the style vector ``w`` to (scale, shift), then AdaIN."""
    style = equal_linear(w, weight, bias, lr=lr)
    c = x.shape[1]
    return adain(x, style[:, :c], style[:, c:], eps=eps)


def inject_noise(
    x: torch.Tensor,
    strength: torch.Tensor,
    noise: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    act: Activation = "linear",
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
    clamp: Optional[float] = None,
) -> torch.Tensor:
    """StyleGAN's noise injection + bias_act: ``clamp(gain * act(x + s * noise + b))``, noise ``(N, 1, H, W)``."""
    n_, c_, h_, w_ = x.shape
    xd, nd = x.detach().double().cpu(), noise.detach().double().cpu().expand(n_, 1, h_, w_)
    sv = _values(strength)
    bv = [0.0] * c_ if bias is None else _values(bias)
    g = _gain(act, gain)
    out = torch.empty(x.shape, dtype=torch.float64)
    for n in range(n_):
        for c in range(c_):
            for h in range(h_):
                for w in range(w_):
                    z = float(xd[n, c, h, w]) + sv[c if len(sv) > 1 else 0] * float(nd[n, 0, h, w]) + bv[c]
                    out[n, c, h, w] = _clamp(g * scalar_act(act, z, alpha), clamp)
    return out.to(x.device)


def instance_avg_pool(features: torch.Tensor, instance_map: torch.Tensor) -> torch.Tensor:
    """pix2pixHD's ``Encoder.forward`` loop: for each sample and each id, the mean over its pixels."""
    x = features.detach().double().cpu()
    ids = instance_map.cpu()
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        for i in ids[b].unique().tolist():
            mask = ids[b, 0] == i
            for c in range(x.shape[1]):
                out[b, c][mask] = x[b, c][mask].mean()
    return out.to(features.device)


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: tuple[int, int] = (1, 1),
    down: tuple[int, int] = (1, 1),
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """StyleGAN2-ADA's upfirdn2d as explicit sums, written from the definition (not from the implementation).

    The upsampled frame holds ``x[i // up]`` at multiples of ``up``; padding shifts it by ``p0``; output
    pixel ``o`` reads frame positions ``o * down + k``; a convolution pairs tap ``k`` with ``f[K - 1 - k]``.
    A 1-D filter means the outer product ``f f^T`` (the gain is applied once overall). ``up``, ``down``
    are ``(x, y)`` and ``pad`` is ``(px0, px1, py0, py1)``, as in StyleGAN2-ADA.
    """
    device = x.device
    x = x.detach().double().cpu()
    f = f.detach().double().cpu()
    f2 = torch.outer(f, f) if f.ndim == 1 else f
    fh, fw = f2.shape
    n, c, h, w = x.shape
    (ux, uy), (dx, dy) = up, down
    px0, px1, py0, py1 = pad
    out_h = (h * uy + py0 + py1 - fh) // dy + 1
    out_w = (w * ux + px0 + px1 - fw) // dx + 1
    y = torch.zeros(n, c, out_h, out_w, dtype=torch.float64)
    for oy in range(out_h):
        for ox in range(out_w):
            for ky in range(fh):
                for kx in range(fw):
                    sy, sx = oy * dy + ky - py0, ox * dx + kx - px0  # position in the upsampled frame
                    if sy < 0 or sx < 0 or sy % uy or sx % ux or sy // uy >= h or sx // ux >= w:
                        continue
                    tap = f2[ky, kx] if flip_filter else f2[fh - 1 - ky, fw - 1 - kx]
                    y[:, :, oy, ox] += tap * x[:, :, sy // uy, sx // ux]
    return (gain * y).to(device)


def resample2d(
    x: torch.Tensor, f2d: torch.Tensor, *, up: int = 1, down: int = 1, pad: tuple[int, int], gain: float = 1.0
) -> torch.Tensor:
    """Zero insertion, zero padding ``(p0, p1)`` on both axes, a true 2-D convolution with ``gain * f2d``,
    every ``down``-th pixel: what upsample2d / filter2d / downsample2d do, written with ``F.conv2d``."""
    x, f2d = x.detach().double(), f2d.detach().double().to(x.device)
    n, c, h, w = x.shape
    z = x.new_zeros(n, c, h * up, w * up)
    z[:, :, ::up, ::up] = x
    z = F.pad(z, [pad[0], pad[1], pad[0], pad[1]])
    y = F.conv2d(z, (gain * f2d).flip(0, 1).expand(c, 1, *f2d.shape), groups=c)  # conv2d correlates
    return y[:, :, ::down, ::down]


def separable_filter(taps: list[float]) -> torch.Tensor:
    """StyleGAN2's normalized 2-D FIR filter: ``outer(taps, taps) / sum(taps) ** 2``."""
    t = torch.tensor(taps, dtype=torch.float64)
    return torch.outer(t, t) / t.sum() ** 2


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    demodulate: bool,
    taps: list[float],
    up: int = 1,
    down: int = 1,
    padding: int = 0,
) -> torch.Tensor:
    """StyleGAN2's modulated convolution, one sample at a time: modulate, demodulate, then convolve.

    up=2: the full-plane true convolution of the zero-inserted input with the weight (StyleGAN2-ADA
    passes flip_weight=False there) and with the FIR filter ``taps`` (gain 4), cropped from
    (K - 1) + (k - 1) - (p + (K + 1) // 2) on; down=2: FIR with padding p + (K - 1) // 2, p + (K - 2) // 2,
    then a strided correlation.
    """
    x, weight, styles = x.detach().double(), weight.detach().double(), styles.detach().double()
    f2d, big_k = separable_filter(taps), len(taps)
    out = []
    for n in range(x.shape[0]):
        w = weight * styles[n].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        xn = x[n : n + 1]
        if up == 2:
            h, wd, k = xn.shape[2], xn.shape[3], w.shape[-1]
            z = xn.new_zeros(1, xn.shape[1], 2 * h, 2 * wd)
            z[:, :, ::2, ::2] = xn
            full = F.conv2d(F.pad(z, [k - 1] * 4), w.flip(2, 3))  # full true convolution with w
            full = resample2d(full, f2d, pad=(big_k - 1, big_k - 1), gain=4.0)  # ... and with the filter
            off = (big_k - 1) + (k - 1) - (padding + (big_k + 1) // 2)
            out.append(full[:, :, off : off + 2 * h, off : off + 2 * wd])
        elif down == 2:
            blurred = resample2d(xn, f2d, pad=(padding + (big_k - 1) // 2, padding + (big_k - 2) // 2))
            out.append(F.conv2d(blurred, w, stride=2))
        else:
            out.append(F.conv2d(xn, w, padding=padding))
    return torch.cat(out)


def minibatch_stddev(x: torch.Tensor, group_size: int, num_channels: int) -> torch.Tensor:
    """The definition with explicit loops: sample i is in group slot i % M, members i, i + M, i + 2M, ...

    ``group_size`` is the group size actually used (already ``min(group_size, N)`` or adjusted).
    """
    n_, c_, h_, w_ = x.shape
    g_, f_ = group_size, num_channels
    m_, cf = n_ // g_, c_ // f_
    xd = x.detach().double().cpu()
    out = torch.empty(n_, c_ + f_, h_, w_, dtype=torch.float64)
    out[:, :c_] = xd
    for m in range(m_):
        members = [g * m_ + m for g in range(g_)]
        for f in range(f_):
            total = 0.0
            for c in range(f * cf, (f + 1) * cf):
                for h in range(h_):
                    for w in range(w_):
                        vals = [float(xd[i, c, h, w]) for i in members]
                        mean = sum(vals) / g_
                        var = sum((v - mean) ** 2 for v in vals) / g_
                        total += math.sqrt(var + 1e-8)
            for i in members:
                out[i, c_ + f] = total / (cf * h_ * w_)
    return out.to(x.device)


def minibatch_stddev_stylegan2_ada(
    x: torch.Tensor, group_size: Optional[int], num_channels: int = 1
) -> torch.Tensor:
    """Transcription of ``MinibatchStdLayer.forward`` from StyleGAN2-ADA (training/networks.py).

    Differentiable, in the dtype of ``x``: the second, independent check of the strided groups.
    """
    N, C, H, W = x.shape
    G = min(group_size, N) if group_size is not None else N
    F = num_channels
    c = C // F
    y = x.reshape(G, -1, F, c, H, W)  # [GnFcHW] Split minibatch N into n groups of size G.
    y = y - y.mean(dim=0)  # [GnFcHW] Subtract mean over group.
    y = y.square().mean(dim=0)  # [nFcHW]  Calc variance over group.
    y = (y + 1e-8).sqrt()  # [nFcHW]  Calc stddev over group.
    y = y.mean(dim=[2, 3, 4])  # [nF]     Take average over channels and pixels.
    y = y.reshape(-1, F, 1, 1)  # [nF11]   Add missing dimensions.
    y = y.repeat(G, 1, H, W)  # [NFHW]   Replicate over group and pixels.
    return torch.cat([x, y], dim=1)  # [NCHW]   Append to input as new channels.
