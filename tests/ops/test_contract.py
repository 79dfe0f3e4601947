"""The contract every fused op keeps, checked over the table of ops in ``cases.py``.

For each case: the float64 result matches its independent formula on both backends; channels_last is
preserved; bfloat16 activations with float32 parameters keep their dtype; Triton matches the reference for
the output, the gradient and the gradient of the gradient over odd shapes, every dtype and every layout;
a non-dense input and an expanded incoming gradient work; gradcheck and gradgradcheck pass on both
backends. For each registered custom op: ``torch.library.opcheck``. For each op: a
``torch.compile(fullgraph=True)`` forward and the errors of an impossible Triton choice. For each layer:
the module computes what its function computes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import torch
from helpers import (
    TOLERANCES,
    TRITON_DEVICE,
    TRITON_MARKS,
    all_orders,
    assert_close,
    assert_close_to_largest,
    device_for,
    grad_of,
    requires_triton,
)
from ops.cases import CASES, OPS, OpCase
from torch import nn

import ganblocks.ops.bias_act.custom_op
import ganblocks.ops.inject_noise.custom_op
import ganblocks.ops.instance_avg_pool.custom_op
import ganblocks.ops.instance_norm_act.custom_op
import ganblocks.ops.minibatch_stddev.custom_op
import ganblocks.ops.pixel_norm.custom_op
import ganblocks.ops.upfirdn2d.custom_op  # noqa: F401  (importing a custom_op module registers its ops)
from ganblocks import functional as G
from ganblocks.layers import AdaIN, BiasAct, FusedLeakyReLU, MinibatchStdDev, NoiseInjection, PixelNorm
from ganblocks.ops import Backend, use_backend
from ganblocks.ops._activations import ACTIVATIONS

F64 = torch.float64
DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
LAYOUTS = ("contiguous", "channels_last", "strided")
FIRST_OF_EACH_OP = [next(c for c in CASES if c.op == op) for op in OPS]


def _layouts(shape: tuple[int, ...]) -> Iterator[str]:
    """The layouts that apply to ``shape``: channels_last needs 4 dims; one element has but one layout."""
    if torch.Size(shape).numel() == 1:
        return iter(["contiguous"])
    return (layout for layout in LAYOUTS if layout != "channels_last" or len(shape) == 4)


def with_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """``x`` with the same values in ``layout``; ``strided`` is a non-dense view that steps over a buffer
    twice as long along dim 2 (the channel dim of a 2-d ``x``), so H and W do not merge."""
    if layout == "contiguous":
        return x.contiguous()
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    dim = min(2, x.ndim - 1)
    shape = list(x.shape)
    shape[dim] *= 2
    index: list[Any] = [slice(None)] * x.ndim
    index[dim] = slice(None, None, 2)
    return x.new_zeros(shape)[tuple(index)].copy_(x)


def _largest(case: OpCase) -> tuple[int, ...]:
    return max(case.shapes, key=lambda s: torch.Size(s).numel())


def _interpreted(backend: Backend) -> bool:
    """Triton kernels run under the (slow) interpreter: gradcheck checks random projections (fast mode)."""
    return backend == "triton" and TRITON_DEVICE == "cpu"


# ------------------------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_matches_formula(case: OpCase, backend: Backend) -> None:
    inputs = case.make(_largest(case), device_for(backend))
    y = case.call(*inputs, backend=backend)
    assert y.dtype == F64
    rtol, atol = case.float64_tol if backend == "triton" else TOLERANCES[F64]
    torch.testing.assert_close(y, case.formula(*inputs), rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_low_precision_activations_keep_dtype(case: OpCase, backend: Backend) -> None:
    """bfloat16 activations with float32 parameters, as under autocast: the output is bfloat16."""
    inputs = case.cast(case.make(_largest(case), device_for(backend)), torch.bfloat16, torch.float32)
    y = case.call(*inputs, backend=backend)
    assert y.dtype == torch.bfloat16
    assert_close(y, case.formula(*inputs), scale=case.low_precision_scale)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_channels_last_preserved(case: OpCase, backend: Backend) -> None:
    x, *params = case.cast(case.make(_largest(case), device_for(backend)), torch.float32)
    y = case.call(with_layout(x, "channels_last"), *params, backend=backend)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, case.formula(x, *params), torch.float32)


# ---------------------------------------------------------------------------------- Triton vs reference


def _triton_params() -> list[Any]:
    return [
        pytest.param(case, shape, layout, dtype, id="-".join([case.id, "x".join(map(str, shape)), layout, str(dtype)[6:]]))
        for case in CASES
        for shape in case.shapes
        for layout in _layouts(shape)
        for dtype in DTYPES
    ]  # fmt: skip


@pytest.mark.parametrize(("case", "shape", "layout", "dtype"), _triton_params())
@pytest.mark.triton
@requires_triton
def test_triton_matches_reference(
    case: OpCase, shape: tuple[int, ...], layout: str, dtype: torch.dtype
) -> None:
    inputs, constants = case.split(case.cast(case.make(shape, torch.device(TRITON_DEVICE)), dtype))
    inputs = (with_layout(inputs[0], layout), *inputs[1:])
    # The reference runs in float64 on the same (rounded) inputs.
    ref = all_orders(case.on("torch", constants), [t.double() for t in inputs])
    out = all_orders(case.on("triton", constants), inputs)
    if layout != "strided":
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        assert out[0].is_contiguous(memory_format=fmt), f"{layout} not preserved: strides {out[0].stride()}"
    n = len(inputs)
    for i, o in enumerate(out):
        assert o.dtype == (inputs[0] if i == 0 else inputs[(i - 1) % n]).dtype
    if dtype == F64:
        for o, r in zip(out, ref):
            torch.testing.assert_close(o, r, rtol=case.float64_tol[0], atol=case.float64_tol[1])
        return
    assert_close(out[0], ref[0], dtype)  # the output is rounded once to dtype
    # Each order of gradient rounds its incoming gradient once more, hence the scales of the orders; the
    # gradients reduce, so their errors are measured relative to each tensor's largest magnitude.
    for i, (o, r) in enumerate(zip(out[1:], ref[1:])):
        assert_close_to_largest(o, r, dtype, scale=(4.0 if i < n else 8.0) * case.grad_scale)


@pytest.mark.parametrize("case", CASES, ids=repr)
@pytest.mark.triton
@requires_triton
def test_triton_non_dense_input_and_expanded_gradient(case: OpCase) -> None:
    """A strided view in, and ``y.sum()``'s expanded (stride 0) incoming gradient back."""
    inputs, constants = case.split(case.make(_largest(case), torch.device(TRITON_DEVICE)))

    def run(backend: Backend) -> list[torch.Tensor]:
        leaves = [
            with_layout(inputs[0], "strided").requires_grad_(),
            *(p.clone().requires_grad_() for p in inputs[1:]),
        ]
        y = case.on(backend, constants)(*leaves)
        y.sum().backward()
        return [y.detach(), *(grad_of(t) for t in leaves)]

    for o, r in zip(run("triton"), run("torch")):
        torch.testing.assert_close(o, r, rtol=case.float64_tol[0], atol=case.float64_tol[1])


# ------------------------------------------------------------------------------------------- autograd

# Every case in the contiguous layout, on the backends it names. In channels_last, one case per kind of
# kernel layout handling (elementwise, channel reduction, plane reduction, group reduction) on Triton; the
# reference is layout-agnostic PyTorch, checked in channels_last once (pixel_norm).
CHANNELS_LAST_GRADCHECK = {"bias_act[lrelu]": ("triton",), "pixel_norm": ("torch", "triton"), "adain": ("triton",),
                           "minibatch_stddev[g4-f1]": ("triton",)}  # fmt: skip
GRADCHECK = [
    pytest.param(case, layout, backend, id=f"{backend}-{layout}-{case.id}", marks=TRITON_MARKS if backend == "triton" else ())
    for layout in ("contiguous", "channels_last")
    for case in CASES
    for backend in (case.gradcheck if layout == "contiguous" else CHANNELS_LAST_GRADCHECK.get(case.id, ()))
]  # fmt: skip


@pytest.mark.parametrize(("case", "layout", "backend"), GRADCHECK, indirect=["backend"])
def test_gradcheck_and_gradgradcheck(case: OpCase, layout: str, backend: Backend) -> None:
    (x, *params), constants = case.split(case.make(case.grad_shape, device_for(backend)))
    inputs = tuple(t.requires_grad_() for t in (with_layout(x, layout), *params))
    fn, fast = case.on(backend, constants), _interpreted(backend) or case.fast_gradcheck
    assert torch.autograd.gradcheck(fn, inputs, fast_mode=fast)
    assert torch.autograd.gradgradcheck(fn, inputs, fast_mode=fast)


# Samples for ``torch.library.opcheck``: every op registered by the packages of the table (the test below
# checks that none is missing), small float32 and float64 inputs.


def _act(name: str) -> tuple[int, float, float]:
    spec = ACTIVATIONS[name]
    return spec.code, spec.default_alpha, spec.default_gain


def _opcheck_samples() -> dict[str, list[tuple[Any, ...]]]:
    """Arguments for each ``torch.ops.ganblocks`` op: float32 and float64, inputs that require grad."""

    def t(*shape: int, dtype: torch.dtype = torch.float32, grad: bool = True) -> torch.Tensor:
        return torch.randn(shape, dtype=dtype).requires_grad_(grad)

    lrelu, swish, tanh = _act("lrelu"), _act("swish"), _act("tanh")
    y = torch.randn(2, 3, 4)  # an output of lrelu: ref_is_input=False
    y4 = torch.randn(2, 3, 2, 2)
    x4, s, b = t(2, 3, 2, 3, dtype=F64), t(3, dtype=F64), t(2, 3, dtype=F64)
    mean = x4.detach().mean(dim=(2, 3))
    rstd = torch.rsqrt(x4.detach().var(dim=(2, 3), correction=0) + 1e-5)
    return {
        "bias_act": [(t(2, 3, 4), t(3), *lrelu, None, 1), (t(3, 2, dtype=F64), None, *swish, 1.5, 0)],
        "bias_act_grad": [
            (t(2, 3, 4), y, t(3), *lrelu, 2.0, 1, False),
            (t(3, 2, dtype=F64), t(3, 2, dtype=F64), t(2, dtype=F64), *swish, None, 1, True),
            (t(2, 3, 4), None, t(3), *_act("linear"), None, 1, False),  # unclamped linear reads no ref
        ],
        "pixel_norm": [(t(2, 3, 2, 2), 1e-8, 1)],
        "pixel_norm_grad": [(t(3, 4, dtype=F64), t(3, 4, dtype=F64), 1e-3, 0)],
        "instance_norm_act": [(t(2, 3, 2, 2), t(3), t(2, 3), 1e-5, *lrelu), (x4, None, None, 1e-5, *tanh)],
        "instance_norm_act_grad": [(t(2, 3, 2, 3, dtype=F64), x4, s, b, mean, rstd, 1e-5, *tanh)],
        "inject_noise": [
            (t(2, 3, 2, 2), t(3), t(2, 1, 2, 2), t(3), *lrelu, 1.0),
            (t(2, 3, 2, 2, dtype=F64), t(dtype=F64), t(2, 1, 2, 2, dtype=F64), None, *swish, None),
        ],
        "inject_noise_grad": [
            (t(2, 3, 2, 2), y4, t(3), t(2, 1, 2, 2), None, *lrelu, None, False),
            (t(2, 3, 2, 2, dtype=F64), t(2, 3, 2, 2, dtype=F64), t(dtype=F64), t(2, 1, 2, 2, dtype=F64), s, *swish, 1.0,
             True),
            (t(2, 3, 2, 2), None, t(3), t(2, 1, 2, 2), t(3), *_act("linear"), None, False),
        ],
        "minibatch_stddev": [(t(4, 2, 2, 2), 2, 1)],
        "minibatch_stddev_grad": [(t(6, 6, 1, 2, dtype=F64), t(6, 4, 1, 2, dtype=F64), 3, 2)],
        "instance_avg_pool": [(t(2, 3, 2, 3), torch.tensor([[[[0, 0, 1], [2, 1, 1]]], [[[0, 0, 0], [0, 0, 9]]]]))],
        "upfirdn2d": [
            (t(2, 3, 4, 5, dtype=F64), torch.rand(4, dtype=F64), 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0),
            (t(1, 2, 5, 4, dtype=F64), torch.rand(3, 2, dtype=F64), 1, 1, 2, 1, 1, 0, -1, 2, True, 0.5),
        ],
    }  # fmt: skip


CUSTOM_OP_NAMES = (
    "bias_act", "bias_act_grad", "pixel_norm", "pixel_norm_grad", "instance_norm_act", "instance_norm_act_grad",
    "inject_noise", "inject_noise_grad", "minibatch_stddev", "minibatch_stddev_grad", "instance_avg_pool",
    "upfirdn2d",
)  # fmt: skip


def opcheck_params() -> list[Any]:
    torch.manual_seed(0)
    samples = _opcheck_samples()
    assert tuple(samples) == CUSTOM_OP_NAMES
    return [
        pytest.param(name, args, id=f"{name}-{i}")
        for name, group in samples.items()
        for i, args in enumerate(group)
    ]


@pytest.mark.parametrize(("name", "args"), opcheck_params())
@pytest.mark.triton
@requires_triton
def test_opcheck(name: str, args: tuple[Any, ...]) -> None:
    """Schema, fake kernel, autograd registration and AOT dispatch of each registered custom op."""
    torch.library.opcheck(getattr(torch.ops.ganblocks, name).default, args)


def test_every_registered_op_of_the_table_is_opchecked() -> None:
    from torch._library.custom_ops import OPDEFS

    registered = {
        name.removeprefix("ganblocks::")
        for name, opdef in OPDEFS.items()
        if name.startswith("ganblocks::") and opdef._init_fn.__module__.split(".")[2] in OPS
    }
    assert registered == set(CUSTOM_OP_NAMES)


# ---------------------------------------------------------------------------------------- torch.compile

_TORCH = tuple(int(v) for v in torch.__version__.split(".")[:2])


@pytest.mark.parametrize("case", [c for c in CASES if c.compile], ids=repr)
def test_compile_fullgraph_forward(case: OpCase, backend: Backend) -> None:
    """One graph (``fullgraph=True`` raises on a break); on Triton it calls the registered op."""
    if case.op == "instance_avg_pool" and backend == "torch" and _TORCH < (2, 6):
        # torch.unique: a dynamic-shape op that dynamo of torch 2.4 and 2.5 does not capture by default
        pytest.skip("the PyTorch path breaks the graph on torch < 2.6")
    inputs = case.cast(case.make(_largest(case), device_for(backend)), torch.float32)
    graphs: list[torch.fx.GraphModule] = []

    def record(gm: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> Any:
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    compiled = torch.compile(lambda *t: case.call(*t, backend=backend) * 2, fullgraph=True, backend=record)
    assert_close(compiled(*inputs), 2 * case.formula(*inputs), torch.float32)
    assert len(graphs) == 1
    targets = {str(node.target) for node in graphs[0].graph.nodes if node.op == "call_function"}
    assert any(f"ganblocks.{case.op}" in t for t in targets) == (backend == "triton"), targets


# ----------------------------------------------------------------------------------- backend choice


@pytest.mark.parametrize("case", FIRST_OF_EACH_OP, ids=lambda c: c.op)
@pytest.mark.triton
@requires_triton
def test_triton_rejects_unsupported_dtype(case: OpCase) -> None:
    inputs = case.cast(
        case.make(_largest(case), torch.device(TRITON_DEVICE)), torch.float8_e4m3fn, torch.float32
    )
    message = (
        f"{case.op}: the Triton backend (chosen by backend='triton') supports {case.x_name} of dtype "
        "float16, bfloat16, float32, float64, got torch.float8_e4m3fn"
    )
    with pytest.raises(TypeError, match=re.escape(message)):
        case.call(*inputs, backend="triton")


@pytest.mark.parametrize("case", FIRST_OF_EACH_OP, ids=lambda c: c.op)
def test_explicit_triton_that_cannot_run(case: OpCase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    inputs = case.make(_largest(case), torch.device("cpu"))
    prefix = re.escape(f"{case.op}: the Triton backend (chosen by use_backend('triton')) cannot run: ")
    reason = r"(Triton kernels need CUDA tensors .*got a tensor on cpu|the triton package is not installed)"
    with use_backend("triton"), pytest.raises(RuntimeError, match=prefix + reason):
        case.call(*inputs, backend=None)


# ------------------------------------------------------------------------------------ module = function


@dataclass(frozen=True)
class ModuleCase:
    """A layer, its inputs, and the same computation written with its public function."""

    id: str
    build: Callable[[torch.device], nn.Module]
    inputs: Callable[[torch.device], tuple[torch.Tensor, ...]]
    function: Callable[..., torch.Tensor]  # function(module, *inputs)

    def __repr__(self) -> str:
        return self.id


def _randomized(module: nn.Module) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
    return module


def _adain_function(m: AdaIN, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    scale, shift = m.affine(w).chunk(2, dim=1)
    return G.adain(x, scale, shift)


def _randn(*shape: int) -> Callable[[torch.device], torch.Tensor]:
    return lambda d: torch.randn(shape, device=d)


MODULES = [
    ModuleCase(
        "BiasAct", lambda d: _randomized(BiasAct(3, act="swish", clamp=0.5, lr_multiplier=2.0, device=d)),
        lambda d: (_randn(2, 3, 4)(d),), lambda m, x: G.bias_act(x, m.bias * 2.0, act="swish", clamp=0.5),
    ),
    ModuleCase(
        "FusedLeakyReLU", lambda d: _randomized(FusedLeakyReLU(3, device=d)), lambda d: (_randn(2, 3, 4, 4)(d),),
        lambda m, x: G.bias_act(x, m.bias, act="lrelu"),
    ),
    ModuleCase(
        "PixelNorm", lambda d: PixelNorm(eps=0.5, dim=-1), lambda d: (_randn(2, 4, 3, 3)(d),),
        lambda m, x: G.pixel_norm(x, eps=0.5, dim=-1),
    ),
    ModuleCase("AdaIN", lambda d: AdaIN(3, 4, device=d), lambda d: (_randn(2, 3, 4, 4)(d), _randn(2, 4)(d)), _adain_function),
    ModuleCase(
        "NoiseInjection", lambda d: _randomized(NoiseInjection(3, per_channel=True, device=d)),
        lambda d: (_randn(2, 3, 4, 4)(d), _randn(2, 1, 4, 4)(d)), lambda m, x, noise: G.inject_noise(x, m.strength, noise),
    ),
    ModuleCase(
        "MinibatchStdDev", lambda d: MinibatchStdDev(group_size=4, adjust_group_size=True), lambda d: (_randn(6, 2, 2, 2)(d),),
        lambda m, x: G.minibatch_stddev(x, group_size=4, adjust_group_size=True),
    ),
]  # fmt: skip


@pytest.mark.parametrize("mcase", MODULES, ids=repr)
def test_module_equals_function(mcase: ModuleCase, backend: Backend, device: torch.device) -> None:
    """The same output and the same gradients, bit for bit, on each backend."""
    module = mcase.build(device)
    inputs = [t.requires_grad_() for t in mcase.inputs(device)]
    with use_backend(backend):
        y = module(*inputs)
        expected = mcase.function(module, *inputs)
    assert torch.equal(y, expected)
    weight = torch.randn_like(y)
    for g, e in zip(
        torch.autograd.grad((y * weight).sum(), inputs),
        torch.autograd.grad((expected * weight).sum(), inputs),
    ):
        assert torch.equal(g, e)
