"""CPU cost of the public entry points: argument checks plus backend choice, per call.

On a tiny CPU tensor (where the arithmetic costs next to nothing) each op is called three ways, once on
inputs that do not require grad and once on inputs that do (``autograd=True``: autograd records every call,
as in training, which is where custom autograd functions and custom ops cost host time):
``public(torch)`` (the ``ganblocks.functional`` function with ``backend="torch"``), ``public(auto)``
(``backend="auto"``) and ``reference-direct``: the arithmetic of the pure-PyTorch reference path, written
out here torch call for torch call, with no checks and no backend choice. The overhead of the public API is
the difference of the medians; the targets are under 5 µs without autograd and at most 10 µs with it.

``reference-direct`` copies the reference's sequence of torch calls (not a shorter plain formulation),
so that the difference is the public API's own cost; it is checked against ``backend="torch"`` in
``tests/benchmarks``. The benchmarks import no private ganblocks code.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .case import Case, Workload
from .config import Config
from .harness import Budget
from .ops import OPS, Tensors
from .providers import Factory

SHAPE = (4, 4, 2, 2)
SQRT2 = math.sqrt(2)


def _bias_lrelu(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # bias_act(x, b, act="lrelu"): bias along dim 1, leaky_relu(0.2), gain sqrt(2), no clamp.
    x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    return F.leaky_relu(x, 0.2) * SQRT2


def _bias_act(t: Tensors) -> torch.Tensor:
    return _bias_lrelu(t["x"], t["b"])


def _pixel_norm(t: Tensors) -> torch.Tensor:
    x = t["x"]
    acc = x.to(torch.float32)
    return (acc * torch.rsqrt(acc.square().mean(dim=1, keepdim=True) + 1e-8)).to(x.dtype)


def _normalized(x: torch.Tensor) -> torch.Tensor:
    acc = x.to(torch.float32)
    var, mean = torch.var_mean(acc, dim=(2, 3), keepdim=True, correction=0)
    return (acc - mean) * torch.rsqrt(var + 1e-5)


def _instance_norm_act(t: Tensors) -> torch.Tensor:
    # instance_norm_act(x, act="lrelu", gain=1.0): no affine, leaky_relu(0.2), gain 1 (no multiply).
    x = t["x"]
    return F.leaky_relu(_normalized(x), 0.2).to(x.dtype)


def _adain(t: Tensors) -> torch.Tensor:
    # adain: per-sample (N, C) scale and bias, linear activation, gain 1.
    x = t["x"]
    n, c = t["scale"].shape
    y = _normalized(x) * t["scale"].reshape(n, c, 1, 1) + t["bias"].reshape(n, c, 1, 1)
    return y.to(x.dtype)


def _inject_noise(t: Tensors) -> torch.Tensor:
    # inject_noise(x, strength, noise, bias=bias, act="lrelu"): scalar strength, then bias_act.
    x = t["x"]
    s = t["strength"].to(x.dtype)
    return _bias_lrelu(x + s * t["noise"].to(x.dtype), t["bias"])


def _minibatch_stddev(t: Tensors) -> torch.Tensor:
    # minibatch_stddev(x): group 4 (strided groups), 1 channel, stats in float32.
    x = t["x"]
    n, c, h, w = x.shape
    g, f = 4, 1
    y = x.to(torch.float32).reshape(g, n // g, f, c // f, h, w)
    y = y - y.mean(dim=0)
    y = y.square().mean(dim=0)
    y = (y + 1e-8).sqrt()
    stats = y.mean(dim=(2, 3, 4))
    feat = stats.to(x.dtype).repeat(g, 1).reshape(n, f, 1, 1).expand(n, f, h, w)
    return torch.cat([x, feat], dim=1)


DIRECT: dict[str, Callable[[Tensors], torch.Tensor]] = {
    "bias_act": _bias_act,
    "pixel_norm": _pixel_norm,
    "instance_norm_act": _instance_norm_act,
    "adain": _adain,
    "inject_noise": _inject_noise,
    "minibatch_stddev": _minibatch_stddev,
}
OP_NAMES = tuple(DIRECT)


def tensors(op: str, *, requires_grad: bool = False) -> Tensors:
    """The op's inputs at :data:`SHAPE`, on CPU; with ``requires_grad`` every floating one requires grad."""
    t = OPS[op].make(SHAPE, torch.Generator().manual_seed(0))
    if requires_grad:
        t = {k: v.requires_grad_() if v.is_floating_point() else v for k, v in t.items()}
    return t


def dispatch_case(cfg: Config, op: str, *, autograd: bool = False) -> Case:
    inner = 50 if cfg.quick else 400

    def provider(call: Callable[..., torch.Tensor], *args: str) -> Factory:
        def factory() -> Workload:
            t = tensors(op, requires_grad=autograd)
            call(t, *args)
            return Workload(forward=lambda: call(t, *args), inner=inner)

        return factory

    return Case(
        area="dispatch",
        name=op,
        params={
            "shape": list(SHAPE),
            "dtype": "float32",
            "tensor_device": "cpu",
            "autograd": autograd,
            "calls_per_rep": inner,
        },
        modes=("call",),
        providers={
            "public(torch)": provider(OPS[op].ganblocks, "torch"),
            "public(auto)": provider(OPS[op].ganblocks, "auto"),
            "reference-direct": provider(DIRECT[op]),
        },
        budget=Budget(warmup=1, min_reps=10, max_reps=300, seconds=2.0),
        note="time per call; overhead = public - reference-direct (20th percentiles)",
    )


def cases(cfg: Config) -> list[Case]:
    return [dispatch_case(cfg, op, autograd=autograd) for autograd in (False, True) for op in OP_NAMES]
