"""Fused ops (``ganblocks.functional``) against the formulations users write today.

Providers: ``ganblocks`` (``backend="auto"``: Triton on CUDA, the torch path on CPU), ``torch``
(``backend="torch"``, CUDA only), ``plain`` (:mod:`benchmarks.plain`), ``compile`` (``torch.compile`` of
plain, CUDA only) and, on CUDA, ``copy`` (``copy_`` of the op's input: the bandwidth reference of the
forward target). Ops that run under a penalty (inside a discriminator) also time double backward.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

import ganblocks.functional as gf

from .common import DTYPES, Config, Factory, Row, Work, skipped
from .plain import pix2pixhd
from .plain import stylegan2 as sg2

T = dict[str, torch.Tensor]
DIFFERENTIABLE = {"x", "b", "scale", "bias", "strength"}
UP = {"up": 2, "padding": (2, 1, 2, 1), "gain": 4.0}
DOWN = {"down": 2, "padding": (1, 1, 1, 1)}


def _instance_map(shape: tuple[int, ...], num_ids: int) -> torch.Tensor:
    """``(N, 1, H, W)`` int64 ids: horizontal bands, ``num_ids`` per sample, from a pool the batch shares."""
    n, _, h, _ = shape
    bands = torch.arange(h) * num_ids // h
    ids = torch.stack([torch.randperm(2 * num_ids)[:num_ids] for _ in range(n)]) + 24000
    return ids[:, bands].reshape(n, 1, h, 1).expand(n, 1, h, shape[3]).contiguous()


class Op(NamedTuple):
    extra: Callable[[tuple[int, ...]], T]  # inputs beside x, from x's shape
    ours: Callable[[T, str], torch.Tensor]  # the public call under a backend
    plain: Callable[[T], torch.Tensor]
    double_backward: bool  # runs under a penalty
    source: str


def _x(s: tuple[int, ...]) -> T:
    return {}


def _filter(s: tuple[int, ...]) -> T:
    return {"f": gf.setup_filter([1, 3, 3, 1])}


# fmt: off
OPS = {
    "bias_act": Op(lambda s: {"b": torch.randn(s[1]) * 0.1},
                   lambda t, be: gf.bias_act(t["x"], t["b"], act="lrelu", backend=be),
                   lambda t: sg2.fused_leaky_relu(t["x"], t["b"]), True,
                   "StyleGAN2's bias_act reference: leaky_relu(x + b, 0.2) * sqrt(2)"),
    "pixel_norm": Op(_x, lambda t, be: gf.pixel_norm(t["x"], backend=be), lambda t: sg2.pixel_norm(t["x"]), False,
                     "ProGAN's PixelNorm"),
    "instance_norm_act": Op(_x, lambda t, be: gf.instance_norm_act(t["x"], act="lrelu", gain=1.0, backend=be),
                            lambda t: F.leaky_relu(F.instance_norm(t["x"], eps=1e-5), 0.2, inplace=True), True,
                            "pix2pixHD's InstanceNorm2d + LeakyReLU(0.2, inplace=True)"),
    "adain": Op(lambda s: {"scale": 1 + torch.randn(s[:2]) * 0.1, "bias": torch.randn(s[:2]) * 0.1},
                lambda t, be: gf.adain(t["x"], t["scale"], t["bias"], backend=be),
                lambda t: sg2.adain(t["x"], t["scale"], t["bias"]), False, "StyleGAN's AdaIN: gamma * IN(x) + beta"),
    "inject_noise": Op(lambda s: {"strength": torch.randn(()) * 0.1, "noise": torch.randn(s[0], 1, *s[2:]),
                                  "bias": torch.randn(s[1]) * 0.1},
                       lambda t, be: gf.inject_noise(t["x"], t["strength"], t["noise"], bias=t["bias"], act="lrelu", backend=be),
                       lambda t: sg2.noise_bias_act(t["x"], t["strength"], t["noise"], t["bias"]), False,
                       "StyleGAN2's NoiseInjection + FusedLeakyReLU"),
    "minibatch_stddev": Op(_x, lambda t, be: gf.minibatch_stddev(t["x"], backend=be),
                           lambda t: sg2.minibatch_stddev(t["x"]), True, "stylegan2-pytorch's minibatch stddev"),
    "upfirdn2d_up": Op(_filter, lambda t, be: gf.upfirdn2d(t["x"], t["f"], **UP, backend=be),  # type: ignore[arg-type]
                       lambda t: sg2.upfirdn2d_ref(t["x"], t["f"], **UP), True,  # type: ignore[arg-type]
                       "StyleGAN2-ADA's _upfirdn2d_ref, up=2 with upsample2d's padding and gain, [1,3,3,1]"),
    "upfirdn2d_down": Op(_filter, lambda t, be: gf.upfirdn2d(t["x"], t["f"], **DOWN, backend=be),  # type: ignore[arg-type]
                         lambda t: sg2.upfirdn2d_ref(t["x"], t["f"], **DOWN), True,  # type: ignore[arg-type]
                         "StyleGAN2-ADA's _upfirdn2d_ref, down=2, [1,3,3,1]"),
    "instance_avg_pool": Op(lambda s: {"inst": _instance_map(s, 6 if s[2] <= 8 else 24)},
                            lambda t, be: gf.instance_avg_pool(t["x"], t["inst"], backend=be),
                            lambda t: pix2pixhd.instance_avg_pool_loop(t["x"], t["inst"]), False,
                            "pix2pixHD's Encoder.forward loop over instance ids x samples x channels"),
}
# fmt: on
TARGET_OPS = tuple(list(OPS)[:6])  # issue #2's fused-op targets


def tensors(cfg: Config, name: str, shape: tuple[int, ...], dtype: str) -> T:
    """The op's inputs, seeded: floating ones (but the float32 filter) in ``dtype``, differentiable ones
    requiring grad."""
    torch.manual_seed(0)
    out = {}
    for k, v in {"x": torch.randn(shape), **OPS[name][0](shape)}.items():
        v = v.to(DTYPES[dtype]) if v.is_floating_point() and k != "f" else v
        out[k] = v.to(cfg.device).requires_grad_(k in DIFFERENTIABLE)
    return out


def _work(cfg: Config, name: str, shape: tuple[int, ...], dtype: str, fn: Callable[[T], Any], compiled: bool = False) -> Factory:  # fmt: skip
    def factory() -> Work:
        t = tensors(cfg, name, shape, dtype)
        f = torch.compile(fn, dynamic=False) if compiled else fn
        return Work(lambda: f(t), [v for v in t.values() if v.requires_grad], compiled=compiled)

    return factory


def _copy(cfg: Config, shape: tuple[int, ...], dtype: str) -> Factory:
    def factory() -> Work:
        src, dst = cfg.tensor(shape, (dtype, "contiguous")), cfg.tensor(shape, (dtype, "contiguous"))
        return Work(lambda: dst.copy_(src))

    return factory


def op_row(cfg: Config, name: str, shape: tuple[int, ...], dtype: str = "float32") -> Row:
    _, ours, plain, db, source = OPS[name]
    modes = ("forward", "backward", "fwd+bwd") + (("double_backward",) if db else ())
    no = skipped("CUDA only (on CPU auto is the torch path); torch.compile at the targets' dtype, bfloat16")
    providers = {
        "ganblocks": _work(cfg, name, shape, dtype, functools.partial(ours, be="auto")),
        "torch": _work(cfg, name, shape, dtype, functools.partial(ours, be="torch")) if cfg.cuda else no,
        "plain": _work(cfg, name, shape, dtype, plain),
        "compile": _work(cfg, name, shape, dtype, plain, compiled=True)
        if cfg.compiles("ops") and dtype == "bfloat16"
        else no,
    }
    if name == "instance_avg_pool":
        providers["compile"] = skipped("the plain loop syncs with the host per instance id")
    if cfg.cuda:
        providers["copy"] = _copy(cfg, shape, dtype)
    return Row("ops", name, {"shape": list(shape), "dtype": dtype}, modes, providers, f"plain = {source}")


def rows(cfg: Config) -> list[Row]:
    shape = cfg.size((2, 8, 8, 8), (4, 64, 64, 64), (16, 512, 64, 64))
    dtypes = cfg.size(["float32"], ["float32"], ["bfloat16", "float32"])
    pool = cfg.size((2, 3, 8, 8), (2, 3, 256, 256), (4, 3, 512, 1024))  # pix2pixHD's 3 encoder features
    return [
        op_row(cfg, name, pool if name == "instance_avg_pool" else shape, dtype)
        for dtype in dtypes
        for name in OPS
    ]
