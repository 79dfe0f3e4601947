"""Fused ops against the formulations users write today.

Providers: ``ganblocks`` (``backend="auto"``: Triton on CUDA, the reference on CPU), ``reference``
(``backend="torch"``), ``plain`` (StyleGAN2 / pix2pixHD formulation, :mod:`benchmarks.plain.stylegan2`),
``compile`` (``torch.compile`` of ``plain``) and ``compile(ganblocks)`` (``torch.compile`` of the public
call). Each case also times a copy of its input (same size and dtype): the bandwidth reference.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

import ganblocks.functional as gf

from .case import Case, Workload
from .config import Config
from .plain import stylegan2 as sg2
from .providers import Factory, provider_set, to_layout

Tensors = dict[str, torch.Tensor]

FWD_MODES = ("forward", "backward", "forward+backward")
DB_MODES = (*FWD_MODES, "double_backward")


def _randn(shape: tuple[int, ...], gen: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(shape, generator=gen) * scale


def _plain_instance_norm_lrelu(x: torch.Tensor) -> torch.Tensor:
    # pix2pixHD: InstanceNorm2d(affine=False) followed by LeakyReLU(0.2, inplace=True)
    return F.leaky_relu(F.instance_norm(x, eps=1e-5), 0.2, inplace=True)


@dataclass(frozen=True)
class OpSpec:
    """One fused op: how to make its inputs, call it through the public API, and write it plainly.

    ``ganblocks(tensors, backend)`` calls the ``ganblocks.functional`` function with ``backend=``.
    """

    name: str
    make: Callable[[tuple[int, ...], torch.Generator], Tensors]
    ganblocks: Callable[[Tensors, str], torch.Tensor]
    plain: Callable[..., torch.Tensor]
    plain_source: str
    double_backward: bool
    out_channels_extra: int = 0


def _x_only(s: tuple[int, ...], g: torch.Generator) -> Tensors:
    return {"x": _randn(s, g)}


OPS: dict[str, OpSpec] = {
    "bias_act": OpSpec(
        "bias_act",
        lambda s, g: {"x": _randn(s, g), "b": _randn((s[1],), g, 0.1)},
        lambda t, be: gf.bias_act(t["x"], t["b"], act="lrelu", backend=be),
        lambda x, b: sg2.fused_leaky_relu(x, b),
        "StyleGAN2 bias_act reference: leaky_relu(x + b, 0.2) * sqrt(2)",
        True,
    ),
    "pixel_norm": OpSpec(
        "pixel_norm",
        _x_only,
        lambda t, be: gf.pixel_norm(t["x"], backend=be),
        lambda x: sg2.pixel_norm(x),
        "ProGAN PixelNorm: x * rsqrt(mean(x**2, 1) + 1e-8)",
        False,
    ),
    "instance_norm_act": OpSpec(
        "instance_norm_act",
        _x_only,
        lambda t, be: gf.instance_norm_act(t["x"], act="lrelu", gain=1.0, backend=be),
        lambda x: _plain_instance_norm_lrelu(x),
        "pix2pixHD InstanceNorm2d(affine=False) + LeakyReLU(0.2, inplace=True)",
        True,
    ),
    "adain": OpSpec(
        "adain",
        lambda s, g: {"x": _randn(s, g), "scale": 1 + _randn(s[:2], g, 0.1), "bias": _randn(s[:2], g, 0.1)},
        lambda t, be: gf.adain(t["x"], t["scale"], t["bias"], backend=be),
        lambda x, scale, bias: sg2.adain(x, scale, bias),
        "StyleGAN AdaIN: gamma * InstanceNorm2d(x) + beta",
        False,
    ),
    "inject_noise": OpSpec(
        "inject_noise",
        lambda s, g: {
            "x": _randn(s, g),
            "strength": _randn((), g, 0.1),
            "noise": _randn((s[0], 1, *s[2:]), g),
            "bias": _randn((s[1],), g, 0.1),
        },
        lambda t, be: gf.inject_noise(
            t["x"], t["strength"], t["noise"], bias=t["bias"], act="lrelu", backend=be
        ),
        lambda x, strength, noise, bias: sg2.noise_bias_act(x, strength, noise, bias),
        "StyleGAN2 NoiseInjection + FusedLeakyReLU: leaky_relu(x + w * noise + b, 0.2) * sqrt(2)",
        False,
    ),
    "minibatch_stddev": OpSpec(
        "minibatch_stddev",
        _x_only,
        lambda t, be: gf.minibatch_stddev(t["x"], backend=be),
        lambda x: sg2.minibatch_stddev(x),
        "StyleGAN2 (stylegan2-pytorch) minibatch stddev, group 4, 1 channel",
        True,
        out_channels_extra=1,
    ),
}

DIFFERENTIABLE = {"x", "b", "scale", "bias", "strength"}


def _io_bytes(spec: OpSpec, shape: tuple[int, ...], dtype: torch.dtype) -> dict[str, int]:
    """Least traffic: forward reads x and writes y; backward reads dy and one saved tensor, writes dx."""
    es = torch.empty((), dtype=dtype).element_size()
    n = 1
    for d in shape:
        n *= d
    out = n // shape[1] * (shape[1] + spec.out_channels_extra)
    fwd = (n + out) * es
    bwd = (out + n + n) * es
    return {"forward": fwd, "backward": bwd, "forward+backward": fwd + bwd}


_compiled: dict[str, Callable[..., torch.Tensor]] = {}


def _compiled_plain(spec: OpSpec) -> Callable[..., torch.Tensor]:
    if spec.name not in _compiled:
        _compiled[spec.name] = torch.compile(spec.plain, dynamic=False)
    return _compiled[spec.name]


def _compiled_public(spec: OpSpec, backend: str) -> Callable[[Tensors], torch.Tensor]:
    key = f"{spec.name}:ganblocks:{backend}"
    if key not in _compiled:

        def call(t: Tensors) -> torch.Tensor:
            return spec.ganblocks(t, backend)

        _compiled[key] = torch.compile(call, dynamic=False)
    return _compiled[key]


def op_case(
    cfg: Config,
    spec: OpSpec,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    *,
    layout: str = "contiguous",
    modes: tuple[str, ...] = FWD_MODES,
    compile_reason: str = "",
    group: str = "",
) -> Case:
    """A case timing ``spec`` at ``shape`` / ``dtype`` / ``layout`` on every provider."""
    io = _io_bytes(spec, shape, dtype)

    def workload(forward: Callable[[Tensors], Any], compiled: bool = False) -> Workload:
        made = spec.make(shape, torch.Generator().manual_seed(0))
        t = {
            k: to_layout(v.to(device=cfg.device, dtype=dtype), layout).requires_grad_(k in DIFFERENTIABLE)
            for k, v in made.items()
        }
        return Workload(
            forward=functools.partial(forward, t),
            inputs=[v for v in t.values() if v.requires_grad],
            compiled=compiled,
            io_bytes=io,
        )

    def public(backend: str, compiled: bool) -> Factory:
        if not compiled:
            return lambda: workload(lambda t: spec.ganblocks(t, backend))
        return lambda: workload(_compiled_public(spec, backend), compiled=True)

    def plain(compiled: bool) -> Factory:
        def factory() -> Workload:
            fn = _compiled_plain(spec) if compiled else spec.plain
            return workload(lambda t: fn(**t), compiled)

        return factory

    params: dict[str, Any] = {
        "shape": list(shape),
        "dtype": str(dtype).replace("torch.", ""),
        "layout": layout,
    }
    if group:
        params["group"] = group
    return Case(
        area="ops",
        name=spec.name,
        params=params,
        modes=modes,
        providers=provider_set(public, plain, compile_skip=compile_reason),
        note=f"plain = {spec.plain_source}",
        copy_like=(shape, dtype),
    )


def cases(cfg: Config) -> list[Case]:
    out: list[Case] = []
    f32, bf16, f16 = torch.float32, torch.bfloat16, torch.float16

    def modes_for(spec: OpSpec) -> tuple[str, ...]:
        return DB_MODES if spec.double_backward else FWD_MODES

    for spec in OPS.values():
        if cfg.quick:
            out.append(op_case(cfg, spec, (4, 8, 16, 16), f32, modes=modes_for(spec), group="target"))
            continue
        if cfg.cuda:
            # The target shape in every dtype and both layouts; compile only here.
            target = (16, 512, 64, 64)
            for dt in (bf16, f16, f32):
                out.append(op_case(cfg, spec, target, dt, modes=modes_for(spec), group="target"))
            out.append(
                op_case(cfg, spec, target, bf16, layout="channels_last", modes=FWD_MODES, group="target")
            )
            sweep_reason = "torch.compile measured at the target shape only"
            sweeps = [("resolution", (4, 64, r, r)) for r in (64, 128, 256, 512, 1024)]
            sweeps += [("batch", (n, 256, 64, 64)) for n in (4, 16, 64)]
            sweeps += [("channels", (8, c, 128, 128)) for c in (32, 128, 512)]
            for group, shape in sweeps:
                out.append(
                    op_case(
                        cfg,
                        spec,
                        shape,
                        bf16,
                        modes=("forward", "forward+backward"),
                        compile_reason=sweep_reason,
                        group=group,
                    )
                )
            continue
        # CPU suite: small sizes (2 shared cores); compile at the float32 target only.
        out.append(op_case(cfg, spec, (4, 64, 64, 64), f32, modes=modes_for(spec), group="target"))
        cpu_reason = "torch.compile on CPU measured at the float32 target only"
        out.append(
            op_case(
                cfg,
                spec,
                (4, 64, 64, 64),
                bf16,
                modes=("forward+backward",),
                compile_reason=cpu_reason,
                group="dtype",
            )
        )
        for shape in ((8, 128, 32, 32), (4, 32, 128, 128)):
            out.append(
                op_case(
                    cfg,
                    spec,
                    shape,
                    f32,
                    modes=("forward+backward",),
                    compile_reason=cpu_reason,
                    group="resolution",
                )
            )
    return out
