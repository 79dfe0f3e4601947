"""Host cost of the public entry points: each fused op on a 4×4×2×2 tensor, where the arithmetic costs next
to nothing, called through ``ganblocks.functional`` (``backend="auto"`` and ``"torch"``) and as the plain
formulation; once on inputs that do not require grad and once on inputs that do (``autograd=True``:
autograd records the call, as in training). The overhead is ganblocks' time per call minus plain's: argument
checks, backend choice, the custom autograd function, and any difference of formulation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from .common import Config, Factory, Row, Work
from .ops import OPS, TARGET_OPS, T, tensors

SHAPE = (4, 4, 2, 2)


def provider(cfg: Config, name: str, fn: Callable[[T], torch.Tensor], autograd: bool) -> Factory:
    def factory() -> Work:
        t = tensors(cfg, name, SHAPE, "float32")
        if not autograd:
            t = {k: v.detach() for k, v in t.items()}
        return Work(lambda: fn(t))

    return factory


def rows(cfg: Config) -> list[Row]:
    out = []
    for autograd in (False, True):
        for name in TARGET_OPS:
            _, ours, plain, _, _ = OPS[name]
            providers = {
                "ganblocks": provider(cfg, name, functools.partial(ours, be="auto"), autograd),
                "torch": provider(cfg, name, functools.partial(ours, be="torch"), autograd),
                "plain": provider(cfg, name, plain, autograd),
            }
            params = {"shape": list(SHAPE), "autograd": autograd}
            out.append(Row("dispatch", name, params, ("forward",), providers, "time per call"))
    return out
