"""Compile every Triton kernel of ganblocks for real NVIDIA GPUs, ahead of time, on a machine without one.

    python scripts/compile_kernels.py --arch 80 90      # sm_80 (A100) and sm_90 (H100)
    python scripts/compile_kernels.py --full            # every specialization (slow on a small machine)
    python scripts/compile_kernels.py --list            # print the specializations, compile nothing

The tests run the kernels under ``TRITON_INTERPRET=1``, which never calls Triton's compiler, so a kernel
that does not compile for a GPU would pass them. This script runs the whole compiler on CPU:
``triton.compile(ASTSource(fn, signature, constexprs, attrs), target=GPUTarget("cuda", arch, 32))``
lowers each kernel through TTIR, TTGIR, LLVM IR and PTX to a cubin with the ``ptxas`` that ships inside
the triton wheel (``triton/backends/nvidia/bin``), the path a first launch on that GPU takes. Any failure
is listed with its error and the script exits 1. ``TRITON_INTERPRET`` is removed from the environment
first: under it ``triton.jit`` builds interpreter functions and the launchers pick interpreter block sizes.

Which specializations: the ones the launchers really launch. Each row of ``ROWS`` calls one launcher of
``ganblocks.ops.<op>.kernels`` on small CPU tensors while its kernels are swapped for recorders, so the
constexprs (``ACT``, ``HAS_BIAS``, ``ACC``, ``BLOCK``...), ``num_warps`` and the runtime arguments come
from the launcher code itself (``elementwise_block``, ``tile_budget``, ``tiles``, the ops' launch
configs, with their GPU values). Runtime arguments are then specialized as Triton's launcher does:
a tensor becomes a typed pointer (16-byte alignment hinted), an int equal to 1 a constexpr (a unit
stride: the vectorized path), other ints ``i32``/``i64`` (divisibility by 16 hinted), a float ``fp32``,
and an annotated argument (``alpha: tl.float64``) its annotation.

Nothing is silently skipped: the script asserts that the rows cover every op package with a ``kernels``
module, that the kernels recorded for each module are exactly the ``@triton.jit`` functions it defines
that no other of its jit functions calls (its launchable kernels), that every jit function in
``ganblocks.ops._triton`` is reached from a compiled kernel, and that the ACT codes and dtypes swept are
``ACTIVATIONS`` and ``TRITON_DTYPES``.

Default plan (``--full`` compiles the whole cross product, about 2,500 specializations per arch: over 10
minutes on 2 CI cores). A row's launcher inputs are ``act`` (the ACT code), ``dtype``, ``flags`` (inputs
that set boolean constexprs: bias, clamp, affine, ...), ``act_flags`` (flags that choose which activation
code runs: bias_act's REF_IS_INPUT) and ``shapes`` (layouts and sizes: unit strides, BLOCK tiles, SINGLE,
num_warps, filter taps). For every ``act_flags`` value, the default compiles:

(a) every ACT code, for float32 and float64 inputs (the two accumulation dtypes ``ACC``), flags and shapes
    at their first value (the first flag combination valid for that ACT);
(b) every combination of ``flags``, for float32 and float64 inputs, first shape;
(c) every combination of ``shapes``, for float32 and float64 inputs, first flags;
(d) float16 and bfloat16 inputs, first flags and first shape;

(b), (c) and (d) at one ACT: the highest code valid there (swish; lrelu where only linear, relu and lrelu
are possible). Why this covers what can fail: every kernel converts its loads to ``ACC`` and computes in
it, so the activation branches (``if ACT == k``) and the flag-selected code only ever see float32 or
float64 values: (a), (b) and (c) compile all of them in both, and float64 is where lowering differs
(PTX has float32-only ``ex2``/``lg2``/``rsqrt`` fast paths). The storage dtype only changes the load and
store conversions (and the vector width of unit-stride accesses): (d) compiles them for float16 and
bfloat16; the first shapes of the rows are the common contiguous layouts.
Specializations that two rows or rules produce alike are compiled once.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import contextlib
import importlib
import importlib.util
import inspect
import io
import itertools
import multiprocessing
import os
import pkgutil
import sys
import tempfile
import time
import traceback
import types
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

FLOAT_TYPES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32", torch.float64: "fp64"}
# Triton's names for the element types of the tensors the launchers pass (index tensors included).
POINTER_TYPES = {**FLOAT_TYPES, torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8",
                 torch.uint8: "u8", torch.bool: "i1"}  # fmt: skip
# (a) compiles every ACT code for these input dtypes: their accumulation dtypes are float32 and float64.
ACT_DTYPES = (torch.float32, torch.float64)

Case = dict[str, Any]


# --------------------------------------------------------------------------------------------------------
# The table: one row per launcher, with the launcher inputs that are swept.
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One launcher of ``ganblocks.ops.<op>.kernels`` and the inputs it is called with.

    ``call(launcher, case)`` calls the launcher on CPU tensors built from ``case``, which holds ``dtype``,
    ``act`` (when ``takes_act``) and one value of every axis of ``act_flags``, ``flags`` and ``shapes``
    (the first value of each axis is its default). ``valid(case)`` rules out inputs the op never passes.
    """

    op: str
    launcher: str
    call: Callable[[Callable[..., Any], Case], None]
    takes_act: bool = True
    act_flags: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    flags: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    shapes: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    valid: Callable[[Case], bool] = lambda case: True


def _image(case: Case, n: int = 2, c: int = 32, h: int = 8, w: int = 8) -> torch.Tensor:
    x = torch.zeros(n, c, h, w, dtype=case["dtype"])
    return x.contiguous(memory_format=torch.channels_last) if case.get("layout") == "channels_last" else x


def _bias_act_input(case: Case) -> torch.Tensor:
    # A conv activation (N, C, H, W) with dim=1, or a dense layer's (N, C): the channel stride is 1 there,
    # as in a channels_last conv activation.
    return _image(case) if case["layout"] == "nchw" else torch.zeros(8, 512, dtype=case["dtype"])


def _bias(case: Case, x: torch.Tensor) -> torch.Tensor | None:
    return torch.zeros(x.shape[1], dtype=x.dtype) if case["bias"] else None


def _call_bias_act_forward(launch: Callable[..., Any], case: Case) -> None:
    x = _bias_act_input(case)
    launch(x, _bias(case, x), case["act"], 0.2, 1.5, 256.0 if case["clamp"] else None, 1)


def _call_bias_act_backward(launch: Callable[..., Any], case: Case) -> None:
    ref = _bias_act_input(case)
    b = _bias(case, ref)
    clamp = 256.0 if case["clamp"] else None
    launch(torch.zeros_like(ref), ref, b, case["act"], 0.2, 1.5, clamp, 1, case["ref_is_input"])


def _inject_noise_inputs(case: Case) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    x = _image(case)
    n, c, h, w = x.shape
    strength = torch.zeros((c,) if case["strength"] == "per_channel" else (), dtype=x.dtype)
    return x, strength, torch.zeros(n, 1, h, w, dtype=x.dtype), _bias(case, x)


def _call_inject_noise_forward(launch: Callable[..., Any], case: Case) -> None:
    x, strength, noise, b = _inject_noise_inputs(case)
    launch(x, strength, noise, b, case["act"], 0.2, 1.5, 256.0 if case["clamp"] else None)


def _call_inject_noise_backward(launch: Callable[..., Any], case: Case) -> None:
    # Contiguous (2, 32, 8, 8) loops over channel blocks; channels_last holds all channels in a tile
    # (SINGLE_C). The bias is read only with the input (ref_is_input), as the glue passes it.
    x, strength, noise, b = _inject_noise_inputs(case)
    clamp = 256.0 if case["clamp"] else None
    launch(torch.zeros_like(x), x, strength, noise, b, case["act"], 0.2, 1.5, clamp, case["ref_is_input"])


# (channels, h, w). 8x8: one tile per plane (SINGLE). 128x128 with 16 channels: few large planes, which
# the launcher splits over several programs each. 128x128 with 512 channels: enough planes (1024 >= 4 per
# SM) for one program per plane with several tiles.
_PLANE = {"8x8": (16, 8, 8), "128x128": (16, 128, 128), "128x128/512c": (512, 128, 128)}


def _instance_norm_inputs(case: Case) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    c, h, w = _PLANE[case["plane"]]
    x = _image(case, n=2, c=c, h=h, w=w)
    scale = torch.zeros(c, dtype=x.dtype) if case["scale"] else None
    bias = torch.zeros(c, dtype=x.dtype) if case["bias"] else None
    return x, scale, bias


def _call_instance_norm_act_forward(launch: Callable[..., Any], case: Case) -> None:
    x, scale, bias = _instance_norm_inputs(case)
    launch(x, scale, bias, 1e-5, case["act"], 0.2, 1.5)


def _call_instance_norm_act_backward(launch: Callable[..., Any], case: Case) -> None:
    x, scale, bias = _instance_norm_inputs(case)
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    stats = torch.zeros(x.shape[0], x.shape[1], dtype=acc)
    launch(torch.zeros_like(x), x, scale, bias, stats, stats.clone(), case["act"], 0.2, 1.5)


def _pixel_norm_input(case: Case) -> torch.Tensor:
    kind, channels = case["tensor"]
    if kind == "latent":  # a mapping network's (N, C) latent: channels contiguous
        return torch.zeros(8, channels, dtype=case["dtype"])
    return _image({**case, "layout": kind}, c=channels)


# (kind, C): with a stride-1 pixel axis a tile holds 64 channels, so C=256 loops (SINGLE=False); with
# contiguous channels it holds up to tile_budget channels, so C=8192 loops.
_PIXEL_NORM_TENSORS = (("contiguous", 32), ("contiguous", 256), ("channels_last", 32), ("latent", 512),
                       ("latent", 8192))  # fmt: skip


def _call_pixel_norm_forward(launch: Callable[..., Any], case: Case) -> None:
    launch(_pixel_norm_input(case), 1e-8, 1)


def _call_pixel_norm_backward(launch: Callable[..., Any], case: Case) -> None:
    x = _pixel_norm_input(case)
    launch(torch.zeros_like(x), x, 1e-8, 1)


def _call_minibatch_stddev_forward(launch: Callable[..., Any], case: Case) -> None:
    launch(_image(case, n=8), 4, 1)


def _call_minibatch_stddev_backward(launch: Callable[..., Any], case: Case) -> None:
    x = _image(case, n=8)
    n, c, h, w = x.shape
    dout = torch.zeros(n, c + 1, h, w, dtype=x.dtype)
    if case["layout"] == "channels_last":
        dout = dout.contiguous(memory_format=torch.channels_last)
    launch(dout, x, group_size=4, num_channels=1)


def _call_instance_avg_pool_forward(launch: Callable[..., Any], case: Case) -> None:
    x = _image(case, c=case["channels"])
    instance_map = torch.zeros(x.shape[0], 1, x.shape[2], x.shape[3], dtype=torch.int64)
    launch(x, instance_map)


# (up, down, padding) of upsample2d, downsample2d and filter2d (a blur) with a 4-tap filter: StyleGAN's.
_RESAMPLE = {"up2": (2, 1, (2, 1)), "down2": (1, 2, (1, 1)), "blur": (1, 1, (2, 1))}


def _call_upfirdn2d_forward(launch: Callable[..., Any], case: Case) -> None:
    x = _image(case, h=16, w=16)
    up, down, (p0, p1) = _RESAMPLE[case["resample"]]
    # A 1-d filter runs as two separable passes (FW=4, then FH=4); a 2-d one as a single 4x4 pass.
    f = torch.ones((4,) if case["filter"] == "separable" else (4, 4), dtype=torch.float32)
    launch(x, f, up, up, down, down, p0, p1, p0, p1, False, 1.0)


def _grad_from_output_codes() -> frozenset[int]:
    from ganblocks.ops._activations import ACTIVATIONS

    return frozenset(spec.code for spec in ACTIVATIONS.values() if spec.grad_from_output)


def _bias_act_backward_valid(case: Case) -> bool:
    # The backward gets the output instead of the input only for activations whose derivative is a
    # function of the output (linear, relu, lrelu with a positive gain) and no clamp; it ignores the bias.
    return case["ref_is_input"] or (case["act"] in _grad_from_output_codes() and not case["clamp"])


ONOFF = (True, False)
LAYOUTS = ("contiguous", "channels_last")

ROWS: tuple[Row, ...] = (
    Row("bias_act", "bias_act_forward", _call_bias_act_forward,
        flags={"bias": ONOFF, "clamp": ONOFF}, shapes={"layout": ("nchw", "dense")}),
    Row("bias_act", "bias_act_backward", _call_bias_act_backward,
        act_flags={"ref_is_input": ONOFF}, flags={"bias": ONOFF, "clamp": ONOFF},
        shapes={"layout": ("nchw", "dense")}, valid=_bias_act_backward_valid),
    Row("inject_noise", "inject_noise_forward", _call_inject_noise_forward,
        flags={"bias": ONOFF, "clamp": ONOFF},
        shapes={"layout": LAYOUTS, "strength": ("scalar", "per_channel")}),
    Row("inject_noise", "inject_noise_backward", _call_inject_noise_backward,
        act_flags={"ref_is_input": ONOFF}, flags={"bias": ONOFF, "clamp": ONOFF},
        shapes={"layout": LAYOUTS, "strength": ("scalar", "per_channel")}, valid=_bias_act_backward_valid),
    Row("instance_avg_pool", "instance_avg_pool_forward", _call_instance_avg_pool_forward, takes_act=False,
        shapes={"layout": LAYOUTS, "channels": (64, 16)}),  # BLOCK_C: 32, or all channels when fewer
    Row("upfirdn2d", "upfirdn2d_forward", _call_upfirdn2d_forward, takes_act=False,
        shapes={"resample": tuple(_RESAMPLE), "filter": ("separable", "2d"), "layout": LAYOUTS}),
    Row("instance_norm_act", "instance_norm_act_forward", _call_instance_norm_act_forward,
        flags={"scale": ONOFF, "bias": ONOFF}, shapes={"plane": ("128x128", "8x8", "128x128/512c"), "layout": LAYOUTS}),
    Row("instance_norm_act", "instance_norm_act_backward", _call_instance_norm_act_backward,
        flags={"scale": ONOFF, "bias": ONOFF}, shapes={"plane": ("128x128", "8x8", "128x128/512c"), "layout": LAYOUTS}),
    Row("pixel_norm", "pixel_norm_forward", _call_pixel_norm_forward, takes_act=False,
        shapes={"tensor": _PIXEL_NORM_TENSORS}),
    Row("pixel_norm", "pixel_norm_backward", _call_pixel_norm_backward, takes_act=False,
        shapes={"tensor": _PIXEL_NORM_TENSORS}),
    Row("minibatch_stddev", "minibatch_stddev_forward", _call_minibatch_stddev_forward, takes_act=False,
        shapes={"layout": LAYOUTS}),
    Row("minibatch_stddev", "minibatch_stddev_backward", _call_minibatch_stddev_backward, takes_act=False,
        shapes={"layout": LAYOUTS}),
)  # fmt: skip


# --------------------------------------------------------------------------------------------------------
# Cases: which launcher inputs each row is called with.
# --------------------------------------------------------------------------------------------------------


def _product(axes: dict[str, tuple[Any, ...]]) -> Iterator[Case]:
    for values in itertools.product(*axes.values()):
        yield dict(zip(axes, values))


def _first(axes: dict[str, tuple[Any, ...]]) -> Case:
    return {name: values[0] for name, values in axes.items()}


def cases(row: Row, act_codes: Sequence[int], dtypes: Sequence[torch.dtype], full: bool) -> list[Case]:
    """The launcher inputs of ``row``: the cross product with ``full``, else the plan of the docstring."""
    acts = tuple(act_codes) if row.takes_act else (None,)
    if full:
        axes = {"act": acts, "dtype": tuple(dtypes), **row.act_flags, **row.flags, **row.shapes}
        return [c for c in _product(axes) if row.valid(c)]

    def valid_acts(case: Case) -> list[Any]:
        return [a for a in acts if row.valid({**case, "act": a})]

    flag_cases, shape_cases = list(_product(row.flags)), list(_product(row.shapes))
    out: list[Case] = []
    for dtype, act_case in itertools.product(dtypes, _product(row.act_flags)):
        base = {"dtype": dtype, **act_case}
        # The defaults: the first flag combination (and first shape) that some ACT is valid with.
        flags0 = next((f for f in flag_cases if valid_acts({**base, **f, **shape_cases[0]})), None)
        if flags0 is None:
            continue
        if dtype in ACT_DTYPES:
            # (a) every ACT, each with the first flag combination valid for it.
            for act in acts:
                out += [
                    {**base, **f, **shape_cases[0], "act": act}
                    for f in flag_cases
                    if row.valid({**base, **f, **shape_cases[0], "act": act})
                ][:1]
            # (b) every flag combination, (c) every shape combination.
            others = [{**f, **shape_cases[0]} for f in flag_cases]
            others += [{**flags0, **s} for s in shape_cases]
        else:
            others = [{**flags0, **shape_cases[0]}]  # (d)
        for other in others:
            # At one ACT: the highest valid.
            out += [{**base, **other, "act": a} for a in valid_acts({**base, **other})[-1:]]
    return out


# --------------------------------------------------------------------------------------------------------
# Recording launches and turning them into compile specs, as Triton's launcher would.
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One specialization of one kernel: what ``triton.compile`` needs, all picklable."""

    module: str
    kernel: str
    signature: tuple[tuple[str, str], ...]
    constexprs: tuple[tuple[str, Any], ...]
    aligned: tuple[str, ...]  # arguments hinted divisible by 16
    options: tuple[tuple[str, Any], ...]

    def describe(self) -> str:
        const = ", ".join(f"{k}={v}" for k, v in self.constexprs)
        opts = ", ".join(f"{k}={v}" for k, v in self.options)
        sig = ", ".join(f"{k}: {t}{':16' if k in self.aligned else ''}" for k, t in self.signature)
        return f"{self.kernel}[{const}; {opts}]({sig})"


def _int_type(value: int) -> str:
    if -(2**31) <= value < 2**31:
        return "i32"
    return "i64" if -(2**63) <= value < 2**63 else "u64"


def specialize(kernel: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Spec:
    """The compile spec of ``kernel[grid](*args, **kwargs)``, specialized like ``triton.runtime.jit``."""
    names = list(kernel.arg_names)
    options = {k: v for k, v in kwargs.items() if k not in names}
    bound = inspect.signature(kernel.fn).bind(*args, **{k: v for k, v in kwargs.items() if k in names})
    bound.apply_defaults()
    signature: list[tuple[str, str]] = []
    constexprs: list[tuple[str, Any]] = []
    aligned: list[str] = []
    for param in kernel.params:
        value = bound.arguments[param.name]
        if param.is_constexpr or value is None:
            constexprs.append((param.name, value))
            signature.append((param.name, "constexpr"))
            continue
        annotation = param.annotation_type  # e.g. "fp64" for ``alpha: tl.float64``
        if annotation and (annotation == "u1" or annotation[:2] in ("fp", "bf")):
            ty, divisible = annotation, False  # annotated floats and bools are not specialized
        elif isinstance(value, torch.Tensor):
            ty, divisible = "*" + POINTER_TYPES[value.dtype], value.data_ptr() % 16 == 0
        elif isinstance(value, bool):
            ty, divisible = "u1", False
        elif isinstance(value, int):
            if value == 1 and not param.do_not_specialize and not annotation:
                constexprs.append((param.name, 1))
                signature.append((param.name, "constexpr"))
                continue
            ty, divisible = annotation or _int_type(value), value % 16 == 0
        elif isinstance(value, float):
            ty, divisible = "fp32", False
        else:
            raise TypeError(f"{kernel.fn.__name__}: cannot specialize {param.name}={value!r}")
        signature.append((param.name, ty))
        if divisible and not param.do_not_specialize and not param.do_not_specialize_on_alignment:
            aligned.append(param.name)
    return Spec(
        kernel.fn.__module__, kernel.fn.__name__, tuple(signature), tuple(constexprs), tuple(aligned),
        tuple(sorted(options.items())),
    )  # fmt: skip


class _Recorder:
    """Stands in for a kernel in its module while a launcher runs: ``kernel[grid](...)`` is recorded."""

    def __init__(self, kernel: Any, sink: list[Spec]) -> None:
        self.kernel, self.sink = kernel, sink

    def __getitem__(self, grid: Any) -> Callable[..., None]:
        def launch(*args: Any, **kwargs: Any) -> None:
            self.sink.append(specialize(self.kernel, args, kwargs))

        return launch


def _is_jit(obj: Any) -> bool:
    from triton.runtime.jit import JITFunction

    return isinstance(obj, JITFunction)


def _callees(fn: Any) -> set[Any]:
    """The jit functions that the jit function ``fn`` calls by name (``f(...)`` or ``module.f(...)``)."""
    found = set()
    scope = fn.fn.__globals__
    for node in ast.walk(ast.parse(fn.src)):
        obj = None
        if isinstance(node, ast.Name):
            obj = scope.get(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            obj = getattr(scope.get(node.value.id), node.attr, None)
        if _is_jit(obj) and obj is not fn:
            found.add(obj)
    return found


def _reachable(roots: set[Any]) -> set[Any]:
    seen, todo = set(), list(roots)
    while todo:
        fn = todo.pop()
        if fn not in seen:
            seen.add(fn)
            todo += _callees(fn)
    return seen


def _defined_jit(module: types.ModuleType) -> set[Any]:
    return {v for v in vars(module).values() if _is_jit(v) and v.fn.__module__ == module.__name__}


def launchable_kernels(module: types.ModuleType) -> set[Any]:
    """The jit functions defined in ``module`` that none of its jit functions calls: its kernels."""
    defined = _defined_jit(module)
    called = set().union(*(_callees(fn) for fn in defined)) if defined else set()
    return defined - called


def record(
    act_codes: Sequence[int], dtypes: Sequence[torch.dtype], full: bool
) -> tuple[list[Spec], dict[str, set[Any]]]:
    """Run every row's launcher on its cases; the distinct specs, and the kernels launched per module."""
    specs: list[Spec] = []
    launched: dict[str, set[Any]] = {}
    for row in ROWS:
        module = importlib.import_module(f"ganblocks.ops.{row.op}.kernels")
        kernels = launchable_kernels(module)
        names = {name: obj for name, obj in vars(module).items() if _is_jit(obj) and obj in kernels}
        sink: list[Spec] = []
        try:
            for name, kernel in names.items():
                setattr(module, name, _Recorder(kernel, sink))
            launcher = getattr(module, row.launcher)
            for case in cases(row, act_codes, dtypes, full):
                before = len(sink)
                try:
                    row.call(launcher, case)
                except Exception as e:  # the launcher changed: its row in ROWS needs updating
                    raise SystemExit(
                        f"compile_kernels.py: {row.op}.{row.launcher} failed on {case}: {e!r}"
                    ) from e
                if len(sink) == before:
                    raise AssertionError(f"{row.op}.{row.launcher} launched no kernel for {case}")
        finally:
            for name, kernel in names.items():
                setattr(module, name, kernel)
        by_name = {k.fn.__name__: k for k in kernels}
        launched.setdefault(module.__name__, set()).update(by_name[s.kernel] for s in sink)
        specs += sink
    return list(dict.fromkeys(specs)), launched


def check_coverage(launched: dict[str, set[Any]]) -> None:
    """Fail unless the table reaches every kernel and every shared device function."""
    import ganblocks.ops as ops_pkg

    problems = []
    ops = {
        m.name
        for m in pkgutil.iter_modules(ops_pkg.__path__)
        if m.ispkg and importlib.util.find_spec(f"ganblocks.ops.{m.name}.kernels") is not None
    }
    if ops != {row.op for row in ROWS}:
        problems.append(
            f"ops with a kernels module {sorted(ops)} != ops in ROWS {sorted({r.op for r in ROWS})}"
        )
    for op in sorted(ops):
        module = importlib.import_module(f"ganblocks.ops.{op}.kernels")
        kernels = launchable_kernels(module)
        missed = kernels - launched.get(module.__name__, set())
        if missed:
            problems.append(
                f"{module.__name__}: kernels never launched by ROWS: {sorted(k.fn.__name__ for k in missed)}"
            )
    compiled = _reachable(set().union(*launched.values()))
    import ganblocks.ops._triton as shared_pkg

    for m in pkgutil.iter_modules(shared_pkg.__path__):
        module = importlib.import_module(f"ganblocks.ops._triton.{m.name}")
        unreached = _defined_jit(module) - compiled
        if unreached:
            problems.append(f"{module.__name__}: jit functions no compiled kernel calls: "
                            f"{sorted(f.fn.__name__ for f in unreached)}")  # fmt: skip
    if problems:
        raise SystemExit("compile_kernels.py: the table misses kernels:\n  " + "\n  ".join(problems))


# --------------------------------------------------------------------------------------------------------
# Compiling.
# --------------------------------------------------------------------------------------------------------


def compile_spec(spec: Spec, arch: int) -> str | None:
    """Compile ``spec`` to a cubin for ``sm_<arch>``: None, or the error."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kernel = getattr(importlib.import_module(spec.module), spec.kernel)
    src = ASTSource(
        fn=kernel,
        signature=dict(spec.signature),
        constexprs=dict(spec.constexprs),
        attrs={(kernel.arg_names.index(n),): [["tt.divisibility", 16]] for n in spec.aligned},
    )
    # ptxas failures print the whole PTX to stdout; the error kept below has ptxas's log.
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=dict(spec.options))
        if not compiled.asm.get("cubin"):
            raise RuntimeError("triton.compile produced no cubin")
    except Exception as e:
        return "".join(traceback.format_exception_only(type(e), e)).strip()
    return None


def _init_worker() -> None:
    # Triton 3.9 warns once per process that its fp-fusion default will change; the runtime launches
    # with the same default, so the kernels are compiled as they would be on a GPU.
    warnings.filterwarnings("ignore", message=".*TRITON_DEFAULT_FP_FUSION.*")


def check_ptxas(archs: Sequence[int]) -> None:
    from triton.backends.nvidia.compiler import get_ptxas

    for arch in archs:
        tool = get_ptxas(arch)
        if tool is None or not tool.path or not os.access(tool.path, os.X_OK):
            raise SystemExit(f"compile_kernels.py: no runnable ptxas for sm_{arch} (got {tool!r})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, nargs="+", default=[80, 90], help="compute capabilities")
    parser.add_argument("--full", action="store_true", help="compile the whole cross product")
    parser.add_argument("--list", action="store_true", help="print the specializations, compile nothing")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="compile processes")
    args = parser.parse_args(argv)

    os.environ.pop("TRITON_INTERPRET", None)  # before any ganblocks kernels module is imported
    _init_worker()
    from ganblocks.ops._activations import ACTIVATIONS
    from ganblocks.ops._backend import TRITON_DTYPES

    act_codes = sorted({spec.code for spec in ACTIVATIONS.values()})  # aliases share a code
    assert act_codes == list(range(len(act_codes))), act_codes  # kernels branch on ACT == 0, 1, ...
    dtypes = [d for d in FLOAT_TYPES if d in TRITON_DTYPES]
    assert set(dtypes) == set(TRITON_DTYPES), f"no Triton type known for {set(TRITON_DTYPES) - set(dtypes)}"

    specs, launched = record(act_codes, dtypes, args.full)
    check_coverage(launched)
    n_kernels = len({(s.module, s.kernel) for s in specs})
    if args.list:
        for spec in specs:
            print(spec.describe())
        print(f"{len(specs)} specializations of {n_kernels} kernels")
        return 0
    check_ptxas(args.arch)

    failures: list[str] = []
    total_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ganblocks-triton-cache-") as cache:
        # A fresh cache: every specialization goes through the compiler, none is served from an old run.
        os.environ["TRITON_CACHE_DIR"] = cache
        context = multiprocessing.get_context("spawn")  # the parent has run torch ops; do not fork it
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=max(1, args.jobs), mp_context=context, initializer=_init_worker
        ) as pool:
            for arch in args.arch:
                start = time.perf_counter()
                results = pool.map(compile_spec, specs, itertools.repeat(arch), chunksize=4)
                arch_failures = 0
                for spec, error in zip(specs, results):
                    if error is not None:
                        arch_failures += 1
                        failures.append(
                            f"sm_{arch} {spec.module}.{spec.describe()}\n    " + error.replace("\n", "\n    ")
                        )
                print(f"sm_{arch}: {len(specs)} specializations of {n_kernels} kernels, {arch_failures} failed, "
                      f"{time.perf_counter() - start:.1f} s", flush=True)  # fmt: skip
    elapsed = time.perf_counter() - total_start
    cpu = sum(os.times()[:4])  # this process and its finished children (the compile workers, ptxas)
    print(f"compiled {len(specs)} kernels x {len(args.arch)} archs ({', '.join(f'sm_{a}' for a in args.arch)}) "
          f"in {elapsed:.1f} s ({cpu:.0f} CPU-s, {args.jobs} jobs)")  # fmt: skip
    if failures:
        print(f"\n{len(failures)} compile failures:", file=sys.stderr)
        for failure in failures:
            print("FAILED " + failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
