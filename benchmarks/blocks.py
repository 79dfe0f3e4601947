"""Workloads for ``nn.Module`` blocks: build, move, set the layout, pick the backend, autocast, compile."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional

import torch
from torch import nn

from .case import Skip, Workload

if TYPE_CHECKING:
    from .runner import Config

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# torch.compile recompiles once per shape/dtype; the suite visits many, more than dynamo's default limit.
try:
    import torch._dynamo.config as _dynamo_config

    for _name in (
        "cache_size_limit",
        "recompile_limit",
        "accumulated_cache_size_limit",
        "accumulated_recompile_limit",
    ):
        if hasattr(_dynamo_config, _name):
            setattr(_dynamo_config, _name, max(256, getattr(_dynamo_config, _name)))
except ImportError:  # pragma: no cover - torch without dynamo
    pass


@contextlib.contextmanager
def backend_context(backend: Optional[str]) -> Iterator[None]:
    """``ganblocks.ops.use_backend(backend)``, or nothing for plain PyTorch providers."""
    if backend is None:
        yield
        return
    from ganblocks.ops import use_backend

    with use_backend(backend):  # type: ignore[arg-type]
        yield


def autocast_context(cfg: Config, dtype: str) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision the way users run modules: float32 parameters, ``torch.autocast`` to ``dtype``."""
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=cfg.device.type, dtype=DTYPES[dtype])


def prepare_module(cfg: Config, module: nn.Module, layout: str) -> nn.Module:
    module = module.to(cfg.device)
    if layout == "channels_last":
        module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return module


def make_tensor(
    cfg: Config,
    shape: Sequence[int],
    gen: torch.Generator,
    *,
    layout: str = "contiguous",
    requires_grad: bool = False,
) -> torch.Tensor:
    t = torch.randn(tuple(shape), generator=gen).to(cfg.device)
    if layout == "channels_last" and t.ndim == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    return t.requires_grad_(requires_grad)


def module_provider(
    cfg: Config,
    build: Callable[[], nn.Module],
    inputs: Callable[[torch.Generator], list[torch.Tensor]],
    call: Callable[[Any, list[torch.Tensor]], Any],
    *,
    backend: Optional[str] = None,
    dtype: str = "float32",
    layout: str = "contiguous",
    compiled: bool = False,
    step: Optional[Callable[[Any, list[torch.Tensor], Callable[[], Any]], Any]] = None,
) -> Callable[[], Workload]:
    """A provider factory: a module built by ``build`` called as ``call(module, inputs)``.

    Args:
        cfg: suite configuration.
        build: makes the module (seeded by the runner, so every provider starts from the same draw).
        inputs: makes the input tensors from a generator (those that require grad are differentiable).
        call: runs the module on the inputs and returns the outputs to differentiate.
        backend: ganblocks backend (``"auto"`` / ``"torch"``), None for plain PyTorch.
        dtype: autocast dtype, or ``float32`` for none.
        layout: ``contiguous`` or ``channels_last`` (module and inputs).
        compiled: wrap the module in ``torch.compile``.
        step: ``step(module, inputs, amp)`` for the ``step`` mode (a whole loss/penalty step with its
            backward) under the same backend; ``amp()`` opens the autocast context, for the forward parts.
    """

    def factory() -> Workload:
        module = prepare_module(cfg, build(), layout)
        # Frozen parameters too: they are excluded from the saved-activation count like the others.
        params = list(module.parameters())
        target: Any = torch.compile(module) if compiled else module
        ins = inputs(torch.Generator().manual_seed(1))
        ins = [
            t.contiguous(memory_format=torch.channels_last)
            if layout == "channels_last" and t.ndim == 4
            else t
            for t in ins
        ]

        def forward() -> Any:
            with backend_context(backend), autocast_context(cfg, dtype):
                return call(target, ins)

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
            compiled=compiled,
        )

    return factory


def skip_if(reason: Optional[str]) -> None:
    if reason:
        raise Skip(reason)
