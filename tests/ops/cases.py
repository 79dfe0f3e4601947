"""The table of fused ops that ``test_contract.py`` runs its battery over.

An :class:`OpCase` is one configuration of one public function: how to draw its inputs, how to call it on a
backend, the independent formula it must match (from ``formulas``), the odd shapes for the Triton-vs-reference
runs and a tiny shape for gradcheck. ``OPS`` names the op packages the table covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import formulas
import torch
from helpers import TRITON_FLOAT64

from ganblocks import functional as G
from ganblocks.layers import ACTIVATION_NAMES, Activation
from ganblocks.ops import Backend

Shape = tuple[int, ...]
F64 = torch.float64


@dataclass(frozen=True)
class OpCase:
    """One configuration of one fused op.

    Attributes:
        id: test id.
        op: the op's name in ganblocks (its package and the prefix of its error messages).
        make: ``make(shape, device)`` draws the float64 inputs, ``x`` first then the parameters, then the
            ``constants`` (integer inputs that get no gradient).
        call: ``call(*inputs, backend=...)`` runs the public function.
        formula: ``formula(*inputs)``, the independent float64 result.
        shapes: odd shapes for the Triton-vs-reference runs (small: the interpreter is slow).
        grad_shape: the tiny shape for gradcheck and gradgradcheck.
        params_float32: with a low-precision ``x`` the parameters stay float32, as under autocast.
        grad_scale: loosens the low-precision gradient comparisons (a comment says why).
        low_precision_scale: tolerance scale of bfloat16 ``x`` with float32 parameters against the formula.
        float64_tol: (rtol, atol) of a float64 Triton run against the float64 reference.
        x_name: the name of ``x`` in error messages.
        constants: how many trailing inputs are not differentiated (integer maps, filters).
        compile: traced by the ``torch.compile(fullgraph=True)`` test (one case per op is enough).
        gradcheck: the backends to gradcheck on; every op has cases on both. Slow under the interpreter, so
            a case whose Triton backward has no code path of its own leaves Triton out (its gradients of
            every order still match the reference's).
        fast_gradcheck: random projections of the Jacobians on the torch backend too (large Jacobians).
    """

    id: str
    op: str
    make: Callable[[Shape, torch.device], tuple[torch.Tensor, ...]]
    call: Callable[..., torch.Tensor]
    formula: Callable[..., torch.Tensor]
    shapes: tuple[Shape, ...]
    grad_shape: Shape
    params_float32: bool = False
    grad_scale: float = 1.0
    low_precision_scale: float = 1.0
    float64_tol: tuple[float, float] = TRITON_FLOAT64
    x_name: str = "x"
    constants: int = 0
    compile: bool = False
    gradcheck: tuple[str, ...] = ("torch", "triton")
    fast_gradcheck: bool = False

    def __repr__(self) -> str:
        return self.id

    def split(
        self, inputs: tuple[torch.Tensor, ...]
    ) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """(the differentiable inputs, the constants)."""
        k = len(inputs) - self.constants
        return inputs[:k], inputs[k:]

    def cast(
        self, inputs: tuple[torch.Tensor, ...], dtype: torch.dtype, params_dtype: Optional[torch.dtype] = None
    ) -> tuple[torch.Tensor, ...]:
        """``x`` in ``dtype``; the parameters in ``params_dtype``, by default ``dtype`` too unless the case
        keeps them float32 (or float64 for float64); the constants as they are."""
        if params_dtype is None:
            params_dtype = dtype if not self.params_float32 or dtype == F64 else torch.float32
        (x, *params), constants = self.split(inputs)
        return (x.to(dtype), *(p.to(params_dtype) for p in params), *constants)

    def on(self, backend: Backend, constants: tuple[torch.Tensor, ...]) -> Callable[..., torch.Tensor]:
        """The public function on ``backend`` as a function of the differentiable inputs alone."""
        return lambda *inputs: self.call(*inputs, *constants, backend=backend)


def _randn(shape: Shape, device: torch.device, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(shape, dtype=F64, device=device) * scale + shift


def away_from_clamp(
    x: torch.Tensor, before_clamp: Callable[[torch.Tensor], torch.Tensor], clamp: Optional[float]
) -> torch.Tensor:
    """Redraw the entries of ``x`` whose output before the clamp lies within 5% of ``clamp``.

    A kernel that saves its (rounded) output for the backward cannot tell an output that rounds onto the
    clamp from a clamped one, so there a low-precision gradient is 0 where the float64 one is not. Only
    inputs near that boundary differ; the tests keep away from it.
    """
    if clamp is None:
        return x
    for _ in range(20):
        near = ((before_clamp(x).abs() - clamp).abs() < 0.05 * clamp).to(x.device)
        if not near.any():
            return x
        x = torch.where(near, torch.randn_like(x) * 2, x)
    raise AssertionError("could not draw inputs away from the clamp")


# ------------------------------------------------------------------------------------------------ bias_act


def bias_act_case(
    act: Activation, clamp: Optional[float] = None, *, shapes: tuple[Shape, ...], **flags: Any
) -> OpCase:
    def make(shape: Shape, device: torch.device) -> tuple[torch.Tensor, ...]:
        x, b = _randn(shape, device, 2.0), _randn((shape[1],), device)
        return away_from_clamp(x, lambda x: formulas.bias_act(x, b, act, dim=1), clamp), b

    def call(x: torch.Tensor, b: torch.Tensor, backend: Backend) -> torch.Tensor:
        return G.bias_act(x, b, act=act, clamp=clamp, backend=backend)

    def formula(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return formulas.bias_act(x, b, act, None, None, clamp, 1)

    tag = f"{act}-clamp" if clamp is not None else act
    return OpCase(f"bias_act[{tag}]", "bias_act", make, call, formula, shapes, (2, 3, 1, 2), **flags)


ODD = (3, 5, 7, 9)
BIAS_ACT_SHAPES = ((1, 1, 1, 1), ODD, (4, 6))
# Every activation once; the two kinds of backward (saving the output: lrelu; the input: swish) also with
# a clamp that bites, over every shape. The other activations run on the odd 4-d shape only.
BIAS_ACT = [
    bias_act_case(
        act, shapes=BIAS_ACT_SHAPES if act in ("lrelu", "swish") else (ODD,), compile=act == "lrelu"
    )
    for act in ACTIVATION_NAMES
] + [bias_act_case(act, 2.0, shapes=BIAS_ACT_SHAPES) for act in ("linear", "lrelu", "swish")]


# ---------------------------------------------------------------------------------------------- pixel_norm


def _pixel_norm_call(x: torch.Tensor, backend: Backend) -> torch.Tensor:
    return G.pixel_norm(x, backend=backend)


PIXEL_NORM = OpCase(
    "pixel_norm",
    "pixel_norm",
    lambda shape, device: (_randn(shape, device),),
    _pixel_norm_call,
    formulas.pixel_norm,
    ((1, 1, 1, 1), ODD, (4, 6)),
    (2, 3, 2, 2),
    compile=True,
)


# ------------------------------------------------------------------------------- instance_norm_act, adain


# Planar kernels are the slowest under the interpreter: a smaller odd shape than ODD.
PLANES = (2, 3, 5, 7)


def instance_norm_case(act: Activation, affine: str, shapes: tuple[Shape, ...] = ((1, 1, 1, 1), PLANES), **flags: Any
                       ) -> OpCase:  # fmt: skip
    """``affine``: ``none``; ``channel`` (scale and bias ``(C,)``); ``mixed`` (scale ``(C,)``, bias ``(N, C)``)."""

    def make(shape: Shape, device: torch.device) -> tuple[torch.Tensor, ...]:
        x = _randn(shape, device, 2.0, 1.0)
        n, c = shape[:2]
        if affine == "none":
            return (x,)
        return x, _randn((c,), device, shift=1.0), _randn((c,) if affine == "channel" else (n, c), device)

    def call(x: torch.Tensor, *p: torch.Tensor, backend: Backend) -> torch.Tensor:
        return G.instance_norm_act(x, *p, act=act, backend=backend)

    def formula(x: torch.Tensor, *p: torch.Tensor) -> torch.Tensor:
        return formulas.instance_norm_act(x, *p, act=act)

    return OpCase(
        f"instance_norm_act[{act}-{affine}]", "instance_norm_act", make, call, formula,
        shapes, (2, 2, 2, 3), params_float32=True, low_precision_scale=2.0,
        **flags,
    )  # fmt: skip


def _adain_make(shape: Shape, device: torch.device) -> tuple[torch.Tensor, ...]:
    n, c = shape[:2]
    return _randn(shape, device, 2.0, 1.0), _randn((n, c), device, shift=1.0), _randn((n, c), device)


def _adain_call(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, backend: Backend) -> torch.Tensor:
    return G.adain(x, scale, bias, backend=backend)


INSTANCE_NORM = [
    instance_norm_case("lrelu", "channel", ((1, 1, 1, 1), (2, 3, 5), PLANES)),  # and one spatial dim
    instance_norm_case("tanh", "mixed"),
    instance_norm_case("swish", "none", gradcheck=("torch",)),
    OpCase(
        "adain", "instance_norm_act", _adain_make, _adain_call, formulas.adain, ((1, 1, 1, 1), PLANES), (2, 3, 2, 2),
        params_float32=True, low_precision_scale=2.0, compile=True,
        # The float32 style gradients sum a plane of float16-rounded products that cancel: measured up to 1.75x the
        # float16 tolerance (relative to the largest entry); PyTorch's own float16 computation errs as much.
        grad_scale=2.5,
    ),
]  # fmt: skip


# -------------------------------------------------------------------------------------------- inject_noise


def inject_noise_case(
    act: Activation, per_channel: bool, clamp: Optional[float], bias: bool = True, **flags: Any
) -> OpCase:
    def make(shape: Shape, device: torch.device) -> tuple[torch.Tensor, ...]:
        n, c, h, w = shape
        x, s = _randn(shape, device), _randn((c,) if per_channel else (), device)
        noise, b = _randn((n, 1, h, w), device), _randn((c,), device) if bias else None
        x = away_from_clamp(x, lambda x: formulas.inject_noise(x, s, noise, b, act), clamp)
        return (x, s, noise) if b is None else (x, s, noise, b)

    def call(
        x: torch.Tensor, s: torch.Tensor, noise: torch.Tensor, *b: torch.Tensor, backend: Backend
    ) -> torch.Tensor:
        bias_ = b[0] if b else None
        return G.inject_noise(x, s, noise, bias=bias_, act=act, clamp=clamp, backend=backend)

    def formula(x: torch.Tensor, s: torch.Tensor, noise: torch.Tensor, *b: torch.Tensor) -> torch.Tensor:
        return formulas.inject_noise(x, s, noise, b[0] if b else None, act, clamp=clamp)

    tag = "-".join([act, "per_channel" if per_channel else "scalar", *(["clamp"] if clamp else [])])
    return OpCase(
        f"inject_noise[{tag}]", "inject_noise", make, call, formula, ((1, 1, 1, 1), ODD), (2, 3, 1, 2),
        low_precision_scale=2.0, **flags,
    )  # fmt: skip


INJECT_NOISE = [
    inject_noise_case("lrelu", True, 2.0, compile=True),
    inject_noise_case("swish", False, 2.0),
    inject_noise_case("tanh", True, None),
    inject_noise_case("linear", False, None, bias=False),  # plain x + s * noise, StyleGAN2's layer
]


# ---------------------------------------------------------------------------------------- minibatch_stddev


def used_group_size(n: int, group_size: Optional[int], adjust: bool = False) -> int:
    """``min(group_size, N)``, or with ``adjust`` the largest divisor of ``N`` not above it."""
    g = n if group_size is None else min(group_size, n)
    while adjust and n % g:
        g -= 1
    return g


def minibatch_case(group_size: int, num_channels: int, shapes: tuple[Shape, ...], grad_shape: Shape,
                   adjust: bool = False, **flags: Any) -> OpCase:  # fmt: skip
    kw: dict[str, Any] = {"group_size": group_size, "num_channels": num_channels, "adjust_group_size": adjust}

    def call(x: torch.Tensor, backend: Backend) -> torch.Tensor:
        return G.minibatch_stddev(x, **kw, backend=backend)

    def formula(x: torch.Tensor) -> torch.Tensor:
        return formulas.minibatch_stddev(x, used_group_size(x.shape[0], group_size, adjust), num_channels)

    tag = f"g{group_size}-f{num_channels}" + ("-adjust" if adjust else "")
    return OpCase(
        f"minibatch_stddev[{tag}]", "minibatch_stddev", lambda shape, device: (_randn(shape, device),), call,
        formula, shapes, grad_shape,
        **flags,
    )  # fmt: skip


MINIBATCH_STDDEV = [
    minibatch_case(4, 1, ((1, 1, 1, 1), (4, 3, 2, 5)), (4, 2, 1, 2), compile=True),
    minibatch_case(3, 2, ((6, 4, 2, 3),), (6, 2, 1, 1)),
    minibatch_case(3, 5, ((3, 5, 2, 3),), (3, 5, 1, 1), gradcheck=()),
    minibatch_case(4, 1, ((6, 2, 3, 2),), (6, 1, 1, 2), adjust=True, gradcheck=("torch",)),
]


# --------------------------------------------------------------------------------------- instance_avg_pool


def random_instance_map(
    n: int, h: int, w: int, *, ids: tuple[int, ...] = (0, 1, 2), device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Blocky instance maps like real ones, with arbitrary ids, on ``device``."""
    choice = torch.randint(len(ids), (n, 1, (h + 1) // 2, (w + 1) // 2))
    coarse = torch.tensor(ids)[choice]
    return coarse.repeat_interleave(2, 2).repeat_interleave(2, 3)[..., :h, :w].contiguous().to(device)


def _instance_avg_pool_make(shape: Shape, device: torch.device) -> tuple[torch.Tensor, ...]:
    n, _, h, w = shape
    # pix2pixHD's Cityscapes maps code label * 1000 + k
    return _randn(shape, device), random_instance_map(n, h, w, ids=(3, 1000, 1001), device=device)


def _instance_avg_pool_call(x: torch.Tensor, instance_map: torch.Tensor, backend: Backend) -> torch.Tensor:
    return G.instance_avg_pool(x, instance_map, backend=backend)


INSTANCE_AVG_POOL = OpCase(
    "instance_avg_pool", "instance_avg_pool", _instance_avg_pool_make, _instance_avg_pool_call,
    formulas.instance_avg_pool, ((1, 1, 1, 1), (3, 5, 6, 7), (2, 40, 3, 2)), (2, 2, 2, 3),
    x_name="features", constants=1, compile=True,
)  # fmt: skip


# ----------------------------------------------------------------------------------------------- upfirdn2d


def upfirdn2d_case(tag: str, taps: tuple[int, ...], up: tuple[int, int], down: tuple[int, int],
                   pad: tuple[int, int, int, int], flip: bool, gain: float, shapes: tuple[Shape, ...],
                   **flags: Any) -> OpCase:  # fmt: skip
    """``taps``: the filter's shape, drawn in [0.1, 1.1); a constant (filters never require grad)."""
    kw: dict[str, Any] = {"up": up, "down": down, "padding": pad, "flip_filter": flip, "gain": gain}

    def make(shape: Shape, device: torch.device) -> tuple[torch.Tensor, ...]:
        return _randn(shape, device), torch.rand(taps, dtype=F64, device=device) + 0.1

    def call(x: torch.Tensor, f: torch.Tensor, backend: Backend) -> torch.Tensor:
        return G.upfirdn2d(x, f, **kw, backend=backend)

    def formula(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return formulas.upfirdn2d(x, f, up, down, pad, flip, gain)

    return OpCase(
        f"upfirdn2d[{tag}]", "upfirdn2d", make, call, formula, shapes, (1, 1, 3, 4), constants=1, fast_gradcheck=True,
        **flags,
    )  # fmt: skip


# StyleGAN2's 2x upsampling and downsampling, and an odd anisotropic one with cropping and a correlation.
# The kernel is the slowest under the interpreter (a program per plane and tile): one sample, two planes.
UPFIRDN2D = [
    upfirdn2d_case(
        "up2", (4,), (2, 2), (1, 1), (2, 1, 2, 1), False, 4.0, ((1, 1, 1, 1), (1, 2, 3, 5)), compile=True
    ),
    upfirdn2d_case("down2", (4, 4), (1, 1), (2, 2), (1, 1, 1, 1), False, 1.0, ((1, 2, 4, 5),)),
    upfirdn2d_case("odd", (2, 3), (3, 1), (1, 2), (0, -1, 2, 1), True, -1.5, ((1, 2, 3, 5),)),
]

CASES: list[OpCase] = [
    *BIAS_ACT, PIXEL_NORM, *INSTANCE_NORM, *INJECT_NOISE, *MINIBATCH_STDDEV, INSTANCE_AVG_POOL, *UPFIRDN2D,
]  # fmt: skip
OPS = (
    "bias_act", "pixel_norm", "instance_norm_act", "inject_noise", "minibatch_stddev", "instance_avg_pool",
    "upfirdn2d",
)  # fmt: skip
