"""What one benchmark is: a case (one block at one size) with providers, each giving a workload, timed per mode.

Modes (all with autograd recording, as in training):

- ``forward``: the forward pass.
- ``backward``: the backward pass alone (the forward runs untimed before each repetition).
- ``forward+backward``: both.
- ``double_backward``: forward, the gradient with respect to the inputs with ``create_graph=True``, and the
  backward of that gradient's squared norm: what R1 and WGAN-GP do through a discriminator.
- ``step``: a whole workload-defined step (losses, penalties, training steps).
- ``call``: one call, repeated ``inner`` times per repetition (dispatch overhead).

Every backward starts from the same random output gradients for every provider; parameter and input
gradients are reset to None before each repetition, as ``optimizer.zero_grad()`` does.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch

from .harness import Budget

MODES = ("forward", "backward", "forward+backward", "double_backward", "step", "call")
# ``compile`` is torch.compile of ``plain``; ``compile(ganblocks)`` of the ganblocks side (on CUDA: does
# the custom op, opaque to inductor, cost the fusion that compile finds in the plain formulation?).
COMPILED = ("compile", "compile(ganblocks)")
PROVIDERS = ("ganblocks", "reference", "plain", *COMPILED)
BASELINE = "plain"


class Skip(Exception):
    """A provider or mode that cannot run here; the message is recorded as the reason."""


@dataclass
class Workload:
    """What a provider runs.

    Attributes:
        forward: returns the output tensor(s) that the backward modes differentiate.
        inputs: differentiable inputs (``double_backward`` differentiates with respect to these).
        params: parameters (their gradients are reset before each repetition).
        step: the whole step for the ``step`` mode.
        inner: operations per ``forward`` call in the ``call`` mode (times are divided by it).
        compiled: built with ``torch.compile`` (no double backward, FLOPs not counted).
        io_bytes: least bytes a mode must move (read + write), for the achieved-bandwidth figure.
    """

    forward: Callable[[], Any]
    inputs: Sequence[torch.Tensor] = ()
    params: Sequence[torch.Tensor] = ()
    step: Optional[Callable[[], Any]] = None
    inner: int = 1
    compiled: bool = False
    io_bytes: dict[str, int] = field(default_factory=dict)

    def reset_grads(self) -> None:
        for t in (*self.inputs, *self.params):
            t.grad = None


@dataclass
class Case:
    """One block at one size, with the providers to compare.

    Attributes:
        area: ops, layers, discriminators, generators, losses, penalties, training or dispatch.
        name: the block.
        params: size, dtype, layout, ... (recorded as they are).
        modes: modes to time.
        providers: provider name -> factory building its workload (may raise :class:`Skip`); see
            :mod:`benchmarks.providers`.
        budget: timing budget overriding the suite's, for heavy cases.
        note: one line shown under the tables.
        copy_like: ``(shape, dtype)`` of the op's input: the case also times ``dst.copy_(src)`` at that size
            and dtype, the bandwidth its ``io_bytes`` figures are compared with.
    """

    area: str
    name: str
    params: dict[str, Any]
    modes: tuple[str, ...]
    providers: dict[str, Callable[[], Workload]]
    budget: Optional[Budget] = None
    note: str = ""
    copy_like: Optional[tuple[tuple[int, ...], torch.dtype]] = None

    @property
    def id(self) -> str:
        inside = ",".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        return f"{self.area}/{self.name}[{inside}]"


def matches(case_id: str, patterns: Sequence[str]) -> bool:
    """Substring match, or a glob when the pattern has ``*`` or ``?`` (``[`` is literal: case ids have it);
    any pattern may match."""
    if not patterns:
        return True
    for p in patterns:
        if "*" in p or "?" in p:
            glob = p.replace("[", "[[]")
            if fnmatch.fnmatchcase(case_id, glob) or fnmatch.fnmatchcase(case_id, f"*{glob}*"):
                return True
        elif p in case_id:
            return True
    return False


def _fmt(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "x".join(str(i) for i in v)
    return str(v)


def flatten_outputs(out: Any) -> list[torch.Tensor]:
    """The tensors of an output that a backward starts from (a DiscriminatorOutput gives its logits)."""
    if isinstance(out, torch.Tensor):
        return [out]
    logits = getattr(out, "logits", None)
    if logits is not None and isinstance(logits, list):
        return list(logits)
    tensors: list[torch.Tensor] = []
    for item in out:
        tensors.extend(flatten_outputs(item))
    return tensors


def output_grads(outs: Sequence[torch.Tensor], seed: int = 0) -> list[Optional[torch.Tensor]]:
    """Random output gradients, identical for every provider (drawn on CPU from a fixed seed)."""
    gen = torch.Generator().manual_seed(seed)
    grads: list[Optional[torch.Tensor]] = []
    for o in outs:
        if o.numel() == 1 and o.ndim == 0:
            grads.append(None)
            continue
        g = torch.randn(o.shape, generator=gen).to(device=o.device, dtype=o.dtype)
        if o.ndim == 4 and o.is_contiguous(memory_format=torch.channels_last) and not o.is_contiguous():
            g = g.contiguous(memory_format=torch.channels_last)
        grads.append(g)
    return grads


def _backward(outs: Sequence[torch.Tensor], grads: Sequence[Optional[torch.Tensor]]) -> None:
    pairs = [(o, g) for o, g in zip(outs, grads) if o.requires_grad]
    torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])


def _double_backward(wl: Workload, grads: Sequence[Optional[torch.Tensor]]) -> None:
    outs = flatten_outputs(wl.forward())
    gs = torch.autograd.grad(outs, list(wl.inputs), list(grads), create_graph=True)
    penalty = sum(g.float().square().sum() for g in gs)
    assert isinstance(penalty, torch.Tensor)
    penalty.backward()


def mode_callables(
    wl: Workload, mode: str, grads: Sequence[Optional[torch.Tensor]]
) -> tuple[Callable[[], Any], Callable[[Any], Any]]:
    """The ``(prepare, run)`` pair that times ``mode`` of ``wl``; raises :class:`Skip` if it does not apply."""

    def reset() -> None:
        wl.reset_grads()

    if mode == "forward":
        return reset, lambda _: wl.forward()
    if mode == "backward":

        def prepare_backward() -> list[torch.Tensor]:
            wl.reset_grads()
            return flatten_outputs(wl.forward())

        return prepare_backward, lambda outs: _backward(outs, grads)
    if mode == "forward+backward":
        return reset, lambda _: _backward(flatten_outputs(wl.forward()), grads)
    if mode == "double_backward":
        if wl.compiled:
            raise Skip("torch.compile cannot run a double backward (AOTAutograd raises)")
        if not wl.inputs:
            raise Skip("no differentiable inputs")
        return reset, lambda _: _double_backward(wl, grads)
    if mode == "step":
        step = wl.step
        if step is None:
            raise Skip("no step defined")
        return reset, lambda _: step()
    if mode == "call":

        def call(_: Any) -> None:
            for _i in range(wl.inner):
                wl.forward()

        return lambda: None, call
    raise ValueError(f"unknown mode {mode!r}")
