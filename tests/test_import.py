"""``import ganblocks`` is light: nothing of dynamo, inductor or Triton until a kernel runs or a compile happens.

Each check runs in a fresh interpreter, since this test session has long imported all of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from helpers import HAS_TRITON

HEAVY = ("torch._dynamo", "torch._inductor", "triton")


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "GANBLOCKS_BACKEND")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env=environ,
    )


def test_import_loads_no_dynamo_inductor_or_triton() -> None:
    out = _run(
        f"""
        import sys
        import ganblocks
        heavy = sorted(m for m in sys.modules if m.startswith({HEAVY!r}))
        assert not heavy, heavy[:10]
        print("ok")
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_cpu_forward_and_backward_load_no_dynamo() -> None:
    """A training step on the PyTorch path never needs the compiler stack."""
    out = _run(
        f"""
        import sys, torch
        from ganblocks import AdversarialLoss, MultiScaleDiscriminator
        D = MultiScaleDiscriminator(3, num_scales=2, num_layers=2, base_channels=4)
        loss = AdversarialLoss("hinge").d_loss(D(torch.randn(2, 3, 16, 16)), D(torch.randn(2, 3, 16, 16)))
        loss.backward()
        heavy = sorted(m for m in sys.modules if m.startswith({HEAVY!r}))
        assert not heavy, heavy[:10]
        print("ok")
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.triton
@pytest.mark.skipif(not HAS_TRITON, reason="needs triton")
def test_triton_interpret_set_after_import_ganblocks() -> None:
    """TRITON_INTERPRET=1 set after ``import ganblocks`` (Triton not yet imported) runs the kernels on CPU."""
    out = _run(
        """
        import os, torch, ganblocks
        os.environ["TRITON_INTERPRET"] = "1"
        from ganblocks.functional import bias_act
        x, b = torch.tensor([[-1.0, 2.0], [3.0, -4.0]]), torch.tensor([0.5, 1.0])
        y = bias_act(x, b, act="relu", backend="triton")
        assert torch.equal(y, torch.relu(x + b) * 2 ** 0.5), y
        print("ok")
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.triton
@pytest.mark.skipif(not HAS_TRITON, reason="needs triton")
def test_triton_interpret_set_after_import_triton_says_so() -> None:
    """Set after Triton was imported it cannot take effect: the error says to set it before."""
    out = _run(
        """
        import os, torch, triton, ganblocks
        os.environ["TRITON_INTERPRET"] = "1"
        from ganblocks.functional import bias_act
        try:
            bias_act(torch.ones(2, 3), torch.ones(3), act="relu", backend="triton")
        except RuntimeError as e:
            print(e)
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "bias_act: TRITON_INTERPRET=1 was set after Triton was imported (by `import triton` or by "
        "torch.compile); set it before that, e.g. in the shell or before `import torch`"
    )
