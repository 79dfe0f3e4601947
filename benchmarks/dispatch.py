"""CPU cost of the public entry points: argument checks plus backend choice, per call.

On a tiny CPU tensor (where the arithmetic costs next to nothing) each op is called three ways:
``public(torch)`` (the public function with ``backend="torch"``), ``public(auto)`` (``backend="auto"``) and
``reference-direct`` (the pure-PyTorch reference function the public one ends in, called directly). The
overhead of the public API is the difference of the medians; the foundation issue wants it under 5 µs.
This is the one place the benchmarks call private code: the reference functions are the zero point.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import torch

from .case import Case, Skip, Workload
from .harness import Budget

if TYPE_CHECKING:
    from .runner import Config

SHAPE = (4, 4, 2, 2)


def _refs() -> dict[str, tuple[Callable[..., Any], Callable[..., Any]]]:
    """op -> (public call, direct reference call) on the tensors of :func:`_tensors`."""
    try:
        import ganblocks.functional as gf
        from ganblocks.ops._ref.bias_act import bias_act_reference
        from ganblocks.ops._ref.inject_noise import inject_noise_reference
        from ganblocks.ops._ref.instance_norm_act import instance_norm_act_reference
        from ganblocks.ops._ref.minibatch_stddev import minibatch_stddev_reference
        from ganblocks.ops._ref.pixel_norm import pixel_norm_reference
        from ganblocks.ops.activations import ACTIVATIONS
    except ImportError as exc:
        raise Skip(f"reference functions not importable: {exc}") from exc
    lrelu, linear = ACTIVATIONS["lrelu"], ACTIVATIONS["linear"]
    sqrt2 = math.sqrt(2)
    return {
        "bias_act": (
            lambda t, be: gf.bias_act(t["x"], t["b"], act="lrelu", backend=be),
            lambda t: bias_act_reference(
                t["x"], t["b"], spec=lrelu, alpha=0.2, gain=sqrt2, clamp=None, dim=1
            ),
        ),
        "pixel_norm": (
            lambda t, be: gf.pixel_norm(t["x"], backend=be),
            lambda t: pixel_norm_reference(t["x"], eps=1e-8, dim=1),
        ),
        "instance_norm_act": (
            lambda t, be: gf.instance_norm_act(t["x"], act="lrelu", gain=1.0, backend=be),
            lambda t: instance_norm_act_reference(
                t["x"], None, None, eps=1e-5, spec=lrelu, alpha=0.2, gain=1.0
            ),
        ),
        "adain": (
            lambda t, be: gf.adain(t["x"], t["scale"], t["bias"], backend=be),
            lambda t: instance_norm_act_reference(
                t["x"], t["scale"], t["bias"], eps=1e-5, spec=linear, alpha=0.0, gain=1.0
            ),
        ),
        "inject_noise": (
            lambda t, be: gf.inject_noise(
                t["x"], t["strength"], t["noise"], bias=t["b"], act="lrelu", backend=be
            ),
            lambda t: inject_noise_reference(
                t["x"], t["strength"], t["noise"], t["b"], spec=lrelu, alpha=0.2, gain=sqrt2, clamp=None
            ),
        ),
        "minibatch_stddev": (
            lambda t, be: gf.minibatch_stddev(t["x"], backend=be),
            lambda t: minibatch_stddev_reference(t["x"], group_size=4, num_channels=1),
        ),
    }


OP_NAMES = ("bias_act", "pixel_norm", "instance_norm_act", "adain", "inject_noise", "minibatch_stddev")


def _tensors() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    n, c, h, w = SHAPE
    return {
        "x": torch.randn(SHAPE, generator=gen),
        "b": torch.randn(c, generator=gen),
        "scale": torch.randn(n, c, generator=gen),
        "bias": torch.randn(n, c, generator=gen),
        "strength": torch.randn((), generator=gen),
        "noise": torch.randn(n, 1, h, w, generator=gen),
    }


def dispatch_case(cfg: Config, op: str) -> Case:
    inner = 50 if cfg.quick else 400

    def public(backend: str) -> Callable[[], Workload]:
        def factory() -> Workload:
            call = _refs()[op][0]
            t = _tensors()
            call(t, backend)
            return Workload(forward=lambda: call(t, backend), inner=inner)

        return factory

    def direct() -> Workload:
        call = _refs()[op][1]
        t = _tensors()
        call(t)
        return Workload(forward=lambda: call(t), inner=inner)

    return Case(
        area="dispatch",
        name=op,
        params={"shape": list(SHAPE), "dtype": "float32", "tensor_device": "cpu", "calls_per_rep": inner},
        modes=("call",),
        providers={
            "public(torch)": public("torch"),
            "public(auto)": public("auto"),
            "reference-direct": direct,
        },
        budget=Budget(warmup=1, min_reps=10, max_reps=300, seconds=2.0),
        note="time per call; overhead = public - reference-direct (20th percentiles)",
    )


def cases(cfg: Config) -> list[Case]:
    return [dispatch_case(cfg, op) for op in OP_NAMES]
