"""The README's code runs as pasted: a new user's first copy-paste must not stop with a NameError."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_block(section: str) -> str:
    text = README.read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", body, re.S)
    assert match is not None, f"no python block under '## {section}'"
    return match[1]


def test_two_lines_in_your_loop_runs_as_pasted() -> None:
    scope: dict[str, object] = {}
    exec(compile(_python_block("Two lines in your loop"), str(README), "exec"), scope)
    d_loss, g_loss = scope["d_loss"], scope["g_loss"]
    assert isinstance(d_loss, torch.Tensor) and isinstance(g_loss, torch.Tensor)
    assert d_loss.ndim == 0 and g_loss.ndim == 0
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    # both steps reached the parameters they train: D's first conv and the generator stand-in
    assert scope["G"].weight.grad is not None  # type: ignore[attr-defined]
    assert all(p.grad is not None for p in scope["disc"].parameters())  # type: ignore[attr-defined]
