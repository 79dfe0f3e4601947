"""Providers, written once: how every area builds the workloads it compares.

- ``ganblocks``: the public API (a module from ``ganblocks``, a function from ``ganblocks.functional``) under
  ``ganblocks.ops.use_backend("auto")``: Triton kernels on CUDA, the PyTorch reference on CPU.
- ``reference``: the same public call under ``use_backend("torch")``.
- ``plain``: the formulation users write today (:mod:`benchmarks.plain`).
- ``compile``: ``torch.compile`` of ``plain``.
- ``compile(ganblocks)``: ``torch.compile`` of the ganblocks side (``backend="auto"``).

:func:`provider_set` assembles the five from two factories (the public side for a backend, compiled or not;
the plain side compiled or not); :func:`module_case` does it for modules, the rest of the areas, and
:func:`module_provider` builds one module workload: build, move, set the layout, pick the backend,
autocast, compile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Callable, Optional

import torch
import torch._dynamo.config as dynamo_config
from torch import nn

from ganblocks.ops import use_backend

from .case import Case, Skip, Workload
from .config import Config
from .harness import Budget
from .plain import msggan

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SAME_AS_GANBLOCKS_ON_CPU = (
    "on CPU ganblocks (auto) runs the reference path: same numbers as the ganblocks column"
)
NO_DOUBLE_BACKWARD = "torch.compile cannot run a double backward (AOTAutograd raises)"

Factory = Callable[[], Workload]
Inputs = Callable[[torch.Generator], list[torch.Tensor]]
Call = Callable[[Any, list[torch.Tensor]], Any]
Step = Callable[[Any, list[torch.Tensor], Callable[[], Any]], Any]

# torch.compile recompiles once per shape/dtype; the suite visits many, more than dynamo's default limit
# (named differently across torch versions).
for _name in (
    "cache_size_limit",
    "recompile_limit",
    "accumulated_cache_size_limit",
    "accumulated_recompile_limit",
):
    if hasattr(dynamo_config, _name):
        setattr(dynamo_config, _name, max(256, getattr(dynamo_config, _name)))


def skipped(reason: str) -> Factory:
    """A provider that does not run here; ``reason`` is recorded."""

    def factory() -> Workload:
        raise Skip(reason)

    return factory


def provider_set(
    public: Callable[[str, bool], Factory],
    plain: Callable[[bool], Factory],
    *,
    reference_skip: str = "",
    compile_skip: str = "",
) -> dict[str, Factory]:
    """The five providers of a case.

    Args:
        public: ``public(backend, compiled)`` times the public API under ``backend`` (``"auto"`` or
            ``"torch"``), through ``torch.compile`` when ``compiled``.
        plain: ``plain(compiled)`` times the plain formulation, through ``torch.compile`` when ``compiled``.
        reference_skip: why the ``reference`` provider does not run here ("" when it does).
        compile_skip: why the two compiled providers do not run here ("" when they do).
    """
    return {
        "ganblocks": public("auto", False),
        "reference": skipped(reference_skip) if reference_skip else public("torch", False),
        "plain": plain(False),
        "compile": skipped(compile_skip) if compile_skip else plain(True),
        "compile(ganblocks)": skipped(compile_skip) if compile_skip else public("auto", True),
    }


def network_reference_skip(cfg: Config, otherwise: str = "") -> str:
    """Whole networks skip ``reference`` on CPU, where ganblocks (auto) runs that very path."""
    return otherwise if cfg.cuda else SAME_AS_GANBLOCKS_ON_CPU


def backend_context(backend: Optional[str]) -> contextlib.AbstractContextManager[Any]:
    """``ganblocks.ops.use_backend(backend)``, or nothing for plain PyTorch providers."""
    if backend is None:
        return contextlib.nullcontext()
    return use_backend(backend)  # type: ignore[arg-type]


def autocast_context(cfg: Config, dtype: str) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision the way users run modules: float32 parameters, ``torch.autocast`` to ``dtype``."""
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=cfg.device.type, dtype=DTYPES[dtype])


def to_layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "channels_last" and t.ndim == 4:
        return t.contiguous(memory_format=torch.channels_last)
    return t


def make_tensor(
    cfg: Config,
    shape: Sequence[int],
    gen: torch.Generator,
    *,
    layout: str = "contiguous",
    requires_grad: bool = False,
) -> torch.Tensor:
    t = torch.randn(tuple(shape), generator=gen).to(cfg.device)
    return to_layout(t, layout).requires_grad_(requires_grad)


def image_inputs(cfg: Config, shape: Sequence[int], layout: str, *, requires_grad: bool = True) -> Inputs:
    """One image batch (a discriminator's input, or the real images of a penalty)."""
    return lambda g: [make_tensor(cfg, shape, g, layout=layout, requires_grad=requires_grad)]


def real_fake_inputs(cfg: Config, shape: Sequence[int], layout: str) -> Inputs:
    """Real images, then a leaf that requires grad standing in for the generator's output."""
    return lambda g: [
        make_tensor(cfg, shape, g, layout=layout),
        make_tensor(cfg, shape, g, layout=layout, requires_grad=True),
    ]


def msg_pyramid(cfg: Config, shape: Sequence[int], layout: str) -> Inputs:
    """The generator's multi-scale output stand-in: every level requires grad."""

    def make(g: torch.Generator) -> list[torch.Tensor]:
        levels = msggan.image_pyramid(torch.randn(tuple(shape), generator=g), shape[2].bit_length() - 2)
        return [to_layout(t.to(cfg.device), layout).requires_grad_(True) for t in levels]

    return make


def _whole_step_only(m: Any, ins: list[torch.Tensor]) -> Any:
    raise Skip("timed as a whole step")


def module_provider(
    cfg: Config,
    build: Callable[[], nn.Module],
    inputs: Inputs,
    call: Optional[Call] = None,
    *,
    backend: Optional[str] = None,
    dtype: str = "float32",
    layout: str = "contiguous",
    compiler: Optional[Callable[[Any], Any]] = None,
    step: Optional[Step] = None,
) -> Factory:
    """A provider factory: a module built by ``build`` called as ``call(module, inputs)``.

    Args:
        cfg: suite configuration.
        build: makes the module (seeded by the runner, so every provider starts from the same draw).
        inputs: makes the input tensors from a generator (those that require grad are differentiable).
        call: runs the module on the inputs and returns the outputs to differentiate (None: only ``step``).
        backend: ganblocks backend (``"auto"`` / ``"torch"``), None for plain PyTorch.
        dtype: autocast dtype, or ``float32`` for none.
        layout: ``contiguous`` or ``channels_last`` (module and inputs).
        compiler: compiles the prepared module (``torch.compile``); None runs it eagerly.
        step: ``step(module, inputs, amp)`` for the ``step`` mode (a whole loss/penalty step with its
            backward) under the same backend; ``amp()`` opens the autocast context, for the forward parts.
    """
    run = call or _whole_step_only

    def factory() -> Workload:
        module = build().to(cfg.device)
        if layout == "channels_last":
            module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # Frozen parameters too: they are excluded from the saved-activation count like the others.
        params = list(module.parameters())
        target: Any = module if compiler is None else compiler(module)
        ins = [to_layout(t, layout) for t in inputs(torch.Generator().manual_seed(1))]

        def forward() -> Any:
            with backend_context(backend), autocast_context(cfg, dtype):
                return run(target, ins)

        run_step = None
        if step is not None:
            step_fn = step

            def run_step() -> Any:
                with backend_context(backend):
                    return step_fn(target, ins, lambda: autocast_context(cfg, dtype))

        return Workload(
            forward=forward,
            inputs=[t for t in ins if t.requires_grad],
            params=params,
            step=run_step,
            compiled=compiler is not None,
        )

    return factory


def module_case(
    cfg: Config,
    area: str,
    name: str,
    params: dict[str, Any],
    modes: tuple[str, ...],
    *,
    ours: Callable[[], nn.Module],
    plain: Callable[[], nn.Module],
    inputs: Inputs,
    call: Optional[Call] = None,
    call_plain: Optional[Call] = None,
    step: Optional[Step] = None,
    step_plain: Optional[Step] = None,
    reference_skip: str = "",
    compile_skip: str = "",
    compiler: Callable[[Any], Any] = torch.compile,
    budget: Optional[Budget] = None,
    note: str = "",
) -> Case:
    """A case timing the ganblocks module built by ``ours`` against the plain one built by ``plain``.

    The autocast dtype and the layout are the ``dtype`` and ``layout`` of ``params`` (``float32`` and
    ``contiguous`` when absent). ``call_plain`` and ``step_plain`` default to ``call`` and ``step``; the
    other arguments are those of :func:`module_provider` and :func:`provider_set`.
    """
    dtype, layout = params.get("dtype", "float32"), params.get("layout", "contiguous")

    def public(backend: str, compiled: bool) -> Factory:
        return module_provider(
            cfg,
            ours,
            inputs,
            call,
            backend=backend,
            dtype=dtype,
            layout=layout,
            compiler=compiler if compiled else None,
            step=step,
        )

    def plain_side(compiled: bool) -> Factory:
        return module_provider(
            cfg,
            plain,
            inputs,
            call_plain or call,
            dtype=dtype,
            layout=layout,
            compiler=compiler if compiled else None,
            step=step_plain or step,
        )

    return Case(
        area,
        name,
        params,
        modes,
        provider_set(public, plain_side, reference_skip=reference_skip, compile_skip=compile_skip),
        budget=budget,
        note=note,
    )
