"""Fused ops against the formulations users write today.

Providers: ``ganblocks`` (``backend="auto"``: Triton on CUDA, the reference on CPU), ``reference``
(``backend="torch"``), ``plain`` (StyleGAN2 / pix2pixHD formulation, :mod:`benchmarks.plain.stylegan2`,
:mod:`benchmarks.plain.pix2pixhd`), ``compile`` (``torch.compile`` of ``plain``) and ``compile(ganblocks)``
(``torch.compile`` of the public call). Each case also times a copy of its input (same size and dtype): the
bandwidth reference.

:data:`OPS` are the foundation's ops (issue #2's targets read them, group ``target``);
:data:`GENERATOR_OPS` are the generator side's (group ``generator``, sized apart, outside those targets):
``upfirdn2d`` with ``up=2`` and ``down=2`` and the [1, 3, 3, 1] filter (separable 1-D and its 4×4 outer
product) against StyleGAN2-ADA's ``_upfirdn2d_ref``, and ``instance_avg_pool`` against the Python loop of
pix2pixHD's ``Encoder.forward``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F

import ganblocks.functional as gf

from .case import Case, Workload
from .config import Config
from .plain import pix2pixhd
from .plain import stylegan2 as sg2
from .providers import Factory, provider_set, to_layout

Tensors = dict[str, torch.Tensor]
Backend = Literal["auto", "triton", "torch"]
BACKENDS: tuple[Backend, ...] = ("auto", "triton", "torch")

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
    ``params`` are recorded in the case id (``up=2``, ...); ``keep_dtype`` names inputs kept in their own
    dtype (a float32 filter; integer inputs are never cast); ``out_scale`` is the output's size over the
    input's (for the least-traffic bytes), ``linear`` says the backward reads no saved tensor and
    ``map_bytes`` are the bytes per pixel of an ``(N, 1, H, W)`` map both passes read (an instance map);
    ``compile_skip`` is why the compiled providers never apply.
    """

    name: str
    make: Callable[[tuple[int, ...], torch.Generator], Tensors]
    ganblocks: Callable[[Tensors, Backend], torch.Tensor]
    plain: Callable[..., torch.Tensor]
    plain_source: str
    double_backward: bool
    out_channels_extra: int = 0
    params: tuple[tuple[str, Any], ...] = ()
    keep_dtype: frozenset[str] = frozenset()
    out_scale: float = 1.0
    linear: bool = False
    map_bytes: int = 0
    compile_skip: str = ""

    @property
    def key(self) -> str:
        """Unique among the specs: the name and the parameters."""
        return self.name + "".join(f",{k}={v}" for k, v in self.params)


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


def _instance_map(shape: tuple[int, ...], gen: torch.Generator, num_ids: int) -> torch.Tensor:
    """``(N, 1, H, W)`` int64 instance ids: per sample, the Voronoi cells of ``num_ids`` distinct random
    pixels, each cell an id drawn from a pool of ``2 * num_ids`` coded as pix2pixHD's Cityscapes maps
    (``label * 1000 + k``), so the batch shares some ids and not others."""
    n, _, h, w = shape
    k = min(num_ids, h * w)
    pool = torch.tensor([1000 * (24 + j % 10) + j // 10 for j in range(2 * k)])
    ys = torch.arange(h).reshape(h, 1, 1)
    xs = torch.arange(w).reshape(1, w, 1)
    maps = []
    for _ in range(n):
        pos = torch.randperm(h * w, generator=gen)[:k]
        ids = pool[torch.randperm(2 * k, generator=gen)[:k]]
        dist = (ys - pos // w).square() + (xs - pos % w).square()  # (h, w, k)
        maps.append(ids[dist.argmin(dim=2)])
    return torch.stack(maps).unsqueeze(1)


def _upfirdn2d_spec(scaling: str, separable: bool) -> OpSpec:
    """``upfirdn2d`` as ``upsample2d`` (up=2) or ``downsample2d`` (down=2) call it with the [1, 3, 3, 1]
    filter: padding (2, 1) and gain 4 up, padding (1, 1) down; the filter 1-D (separable) or 4×4."""
    if scaling == "up":
        kw: dict[str, Any] = {"up": 2, "padding": (2, 1, 2, 1), "gain": 4.0}
        out_scale = 4.0
    else:
        kw = {"down": 2, "padding": (1, 1, 1, 1)}
        out_scale = 0.25

    def make(s: tuple[int, ...], g: torch.Generator) -> Tensors:
        return {"x": _randn(s, g), "f": gf.setup_filter([1, 3, 3, 1], separable=separable)}

    return OpSpec(
        "upfirdn2d",
        make,
        lambda t, be: gf.upfirdn2d(t["x"], t["f"], **kw, backend=be),
        lambda x, f: sg2.upfirdn2d_ref(x, f, **kw),
        "StyleGAN2-ADA _upfirdn2d_ref (zero insertion, F.pad, depthwise conv2d with the flipped filter at the "
        "full upsampled size, [::down] subsampling)",
        True,
        params=((scaling, 2), ("filter", "1-3-3-1"), ("separable", separable)),
        keep_dtype=frozenset({"f"}),
        out_scale=out_scale,
        linear=True,
    )


def _instance_avg_pool_spec(num_ids: int) -> OpSpec:
    return OpSpec(
        "instance_avg_pool",
        lambda s, g: {"x": _randn(s, g), "inst": _instance_map(s, g, num_ids)},
        lambda t, be: gf.instance_avg_pool(t["x"], t["inst"], backend=be),
        lambda x, inst: pix2pixhd.instance_avg_pool_loop(x, inst),
        "pix2pixHD Encoder.forward: Python loop over instance ids x samples x channels (nonzero, gather, "
        "mean, scatter into a clone)",
        False,
        params=(("instances", num_ids),),
        linear=True,
        map_bytes=8,
        compile_skip="the plain loop syncs with the host per instance id (torch.unique, nonzero): nothing "
        "for torch.compile to fuse",
    )


GENERATOR_OPS: dict[str, OpSpec] = {
    spec.key: spec
    for spec in (
        _upfirdn2d_spec("up", True),
        _upfirdn2d_spec("down", True),
        _upfirdn2d_spec("up", False),
        _upfirdn2d_spec("down", False),
        _instance_avg_pool_spec(24),
    )
}

# The quick run's pool: fewer ids (the plain loop's cost grows with ids x samples x channels).
QUICK_POOL = _instance_avg_pool_spec(6)

DIFFERENTIABLE = {"x", "b", "scale", "bias", "strength"}


def _io_bytes(spec: OpSpec, shape: tuple[int, ...], dtype: torch.dtype) -> dict[str, int]:
    """Least traffic: forward reads x (and a map) and writes y; backward reads dy and one saved tensor (none
    for a linear op; the map for one that has it), writes dx."""
    es = torch.empty((), dtype=dtype).element_size()
    n = 1
    for d in shape:
        n *= d
    out = int(n // shape[1] * (shape[1] + spec.out_channels_extra) * spec.out_scale)
    side = n // shape[1] * spec.map_bytes
    fwd = (n + out) * es + side
    bwd = (out + n + (0 if spec.linear else n)) * es + side
    return {"forward": fwd, "backward": bwd, "forward+backward": fwd + bwd}


_compiled: dict[str, Callable[..., torch.Tensor]] = {}


def _compiled_plain(spec: OpSpec) -> Callable[..., torch.Tensor]:
    if spec.key not in _compiled:
        _compiled[spec.key] = torch.compile(spec.plain, dynamic=False)
    return _compiled[spec.key]


def as_backend(name: str) -> Backend:
    """A provider's backend name (``"auto"``, ``"triton"``, ``"torch"``) as the public API's type."""
    for b in BACKENDS:
        if b == name:
            return b
    raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")


def _compiled_public(spec: OpSpec, backend: str) -> Callable[[Tensors], torch.Tensor]:
    key = f"{spec.key}:ganblocks:{backend}"
    if key not in _compiled:
        be = as_backend(backend)

        def call(t: Tensors) -> torch.Tensor:
            return spec.ganblocks(t, be)

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
            k: to_layout(
                v.to(device=cfg.device, dtype=dtype if _cast(spec, k, v) else v.dtype), layout
            ).requires_grad_(k in DIFFERENTIABLE)
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
            be = as_backend(backend)
            return lambda: workload(lambda t: spec.ganblocks(t, be))
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
    params.update(spec.params)
    return Case(
        area="ops",
        name=spec.name,
        params=params,
        modes=modes,
        providers=provider_set(public, plain, compile_skip=spec.compile_skip or compile_reason),
        note=f"plain = {spec.plain_source}",
        copy_like=(shape, dtype),
    )


def _cast(spec: OpSpec, key: str, value: torch.Tensor) -> bool:
    """Whether an input takes the case's dtype: floating inputs not listed in ``keep_dtype``."""
    return value.is_floating_point() and key not in spec.keep_dtype


def generator_op_cases(cfg: Config) -> list[Case]:
    """The generator side's ops (:data:`GENERATOR_OPS`), group ``generator``.

    ``upfirdn2d`` times every mode with double backward (R1 through a StyleGAN2 discriminator's FIR
    downsampling, path length through the generator's upsampling); ``instance_avg_pool`` has no penalty
    above it. CPU: ``torch.compile`` at the separable filter only.
    """
    out: list[Case] = []
    f32, bf16 = torch.float32, torch.bfloat16

    def modes_for(spec: OpSpec) -> tuple[str, ...]:
        return DB_MODES if spec.double_backward else FWD_MODES

    for spec in GENERATOR_OPS.values():
        is_pool = spec.name == "instance_avg_pool"
        separable = bool(dict(spec.params).get("separable", False))
        if cfg.quick:
            if is_pool:
                out.append(op_case(cfg, QUICK_POOL, (2, 3, 16, 16), f32, modes=FWD_MODES, group="generator"))
            elif separable:
                out.append(op_case(cfg, spec, (4, 8, 16, 16), f32, modes=modes_for(spec), group="generator"))
            continue
        if cfg.cuda:
            # pix2pixHD's encoder features: 3 channels at 512×1024 (Cityscapes); FIR resampling at a
            # StyleGAN2 synthesis size.
            shape = (4, 3, 512, 1024) if is_pool else (16, 256, 64, 64)
            for dt in (bf16, f32):
                out.append(op_case(cfg, spec, shape, dt, modes=modes_for(spec), group="generator"))
            continue
        shape = (2, 3, 256, 256) if is_pool else (4, 64, 64, 64)
        reason = "" if separable else "torch.compile on CPU measured with the separable filter only"
        out.append(
            op_case(cfg, spec, shape, f32, modes=modes_for(spec), compile_reason=reason, group="generator")
        )
    return out


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
    return out + generator_op_cases(cfg)
