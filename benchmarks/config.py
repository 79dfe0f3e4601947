"""Suite settings: what every area reads to pick its sizes, and the default timing budgets.

Its own module so that the areas and the runner both import it and nothing imports the runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .harness import Budget


@dataclass(frozen=True)
class Config:
    """Suite settings every area reads to pick its sizes.

    Attributes:
        device: where the cases run.
        quick: tiny sizes and short timing (CI smoke run).
        compile: ``auto`` (everything on CUDA; ops and layers on CPU; nothing in a quick CPU run),
            ``all`` or ``none``.
        budget: default timing budget.
        case_timeout_s: wall-clock seconds per case (None: unbounded), checked between repetitions.
    """

    device: torch.device
    quick: bool
    compile: str
    budget: Budget
    case_timeout_s: Optional[float] = None

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def compile_skip_reason(self, area: str) -> Optional[str]:
        """Why the ``compile`` provider does not run in ``area``, or None when it does."""
        if self.compile == "all":
            return None
        if self.compile == "none":
            return "torch.compile disabled (--compile none)"
        if self.cuda:
            return None
        if self.quick:
            return "torch.compile skipped in --quick on CPU (compiling on CPU takes minutes)"
        if area in ("ops", "layers"):
            return None
        return "torch.compile skipped on CPU for whole networks to keep the CPU suite short (--compile all runs it)"


def default_budget(device: torch.device, quick: bool) -> Budget:
    if quick:
        return Budget(warmup=1, min_reps=3, max_reps=20, seconds=0.05)
    if device.type == "cuda":
        return Budget(warmup=3, min_reps=10, max_reps=200, seconds=0.5)
    return Budget(warmup=1, min_reps=7, max_reps=100, seconds=1.5)


def default_case_timeout(device: torch.device, quick: bool) -> float:
    if quick:
        return 120.0
    return 300.0 if device.type == "cuda" else 900.0
