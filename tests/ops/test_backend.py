"""Backend choice: per call, context manager, environment variable, and the errors of an impossible choice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest
import torch
from helpers import requires_triton

from ganblocks.ops import Backend, _backend, get_backend, use_backend
from ganblocks.ops._backend import use_triton


def test_default_is_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GANBLOCKS_BACKEND", raising=False)
    assert get_backend() == "auto"


def test_precedence_call_over_context_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANBLOCKS_BACKEND", "triton")
    assert get_backend() == "triton"
    with use_backend("torch"):
        assert get_backend() == "torch"
        with use_backend("auto"):
            assert get_backend() == "auto"
        assert get_backend() == "torch"
        x = torch.zeros(2)
        assert use_triton(None, x, op="t") is False
    assert get_backend() == "triton"


def test_context_restored_after_exception() -> None:
    with pytest.raises(RuntimeError, match="boom"), use_backend("torch"):
        raise RuntimeError("boom")
    assert _backend._context.get() == ()


def test_auto_uses_reference_on_cpu() -> None:
    assert use_triton("auto", torch.zeros(3), op="t") is False


def test_bad_backend_names() -> None:
    with pytest.raises(ValueError, match=r"backend must be one of \('auto', 'triton', 'torch'\), got 'cuda'"):
        with use_backend("cuda"):  # type: ignore[arg-type]
            pass
    with pytest.raises(ValueError, match=r"backend must be one of .*got 'fast'"):
        use_triton("fast", torch.zeros(1), op="t")  # type: ignore[arg-type]


def test_bad_env_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANBLOCKS_BACKEND", "gpu")
    with pytest.raises(
        ValueError, match=r"environment variable GANBLOCKS_BACKEND must be one of .*got 'gpu'"
    ):
        get_backend()


def test_explicit_triton_on_cpu_without_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(
        RuntimeError,
        match=r"pixel_norm: the Triton backend \(chosen by backend='triton'\) cannot run: .*got a tensor on cpu",
    ):
        use_triton("triton", torch.zeros(1), op="pixel_norm")


def test_env_var_failure_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setenv("GANBLOCKS_BACKEND", "triton")
    with pytest.raises(RuntimeError, match=r"chosen by the environment variable GANBLOCKS_BACKEND='triton'"):
        use_triton(None, torch.zeros(1), op="pixel_norm")
    with use_backend("triton"), pytest.raises(RuntimeError, match=r"chosen by use_backend\('triton'\)"):
        use_triton(None, torch.zeros(1), op="pixel_norm")


def test_use_backend_is_per_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """One thread's ``use_backend`` block neither changes another thread's backend nor pops its entry."""
    monkeypatch.delenv("GANBLOCKS_BACKEND", raising=False)
    inside = threading.Event()
    release = threading.Event()
    seen: dict[str, object] = {}

    def worker() -> None:
        with use_backend("torch"):
            seen["worker_inside"] = get_backend()
            inside.set()
            release.wait(timeout=30)
        seen["worker_after"] = get_backend()

    with use_backend("triton"):
        t = threading.Thread(target=worker)
        t.start()
        assert inside.wait(timeout=30)
        seen["main_while_worker_inside"] = get_backend()
        release.set()
        t.join(timeout=30)
        seen["main_after_worker_exit"] = get_backend()
    assert seen == {
        "worker_inside": "torch",
        "main_while_worker_inside": "triton",
        "worker_after": "auto",
        "main_after_worker_exit": "triton",
    }


def test_use_backend_under_many_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Interleaved enters and exits in 8 threads: each thread always reads its own innermost choice."""
    monkeypatch.delenv("GANBLOCKS_BACKEND", raising=False)
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        mine: Backend = ("torch", "triton", "auto")[i % 3]
        barrier.wait(timeout=30)
        for _ in range(200):
            with use_backend(mine):
                if get_backend() != mine:
                    errors.append(f"thread {i} read {get_backend()} inside use_backend({mine!r})")
            if get_backend() != "auto":
                errors.append(f"thread {i} read {get_backend()} outside any block")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []


def test_explicit_triton_without_triton_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_backend, "_triton_importable", False)
    with pytest.raises(RuntimeError, match="the triton package is not installed"):
        use_triton("triton", torch.zeros(1), op="bias_act")
    assert use_triton("auto", torch.zeros(1), op="bias_act") is False


@pytest.mark.triton
@requires_triton
def test_env_var_selects_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANBLOCKS_BACKEND", "triton")
    x = torch.zeros(1)
    assert use_triton(None, x, op="t") is (x.device.type == "cpu" or torch.cuda.is_available())


def test_import_and_use_with_triton_blocked() -> None:
    """ganblocks imports and computes when ``import triton`` fails, as on a machine without it."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["triton"] = None  # makes `import triton` raise ImportError
        import torch, ganblocks
        from ganblocks.functional import bias_act, pixel_norm
        y = bias_act(torch.tensor([-1.0, 1.0]), act="relu", dim=0, backend="auto")
        assert torch.allclose(y, torch.tensor([0.0, 2 ** 0.5])), y
        try:
            pixel_norm(torch.ones(1, 2), backend="triton")
        except RuntimeError as e:
            assert "triton package is not installed" in str(e), e
        else:
            raise AssertionError("expected an error")
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_compiled_function_follows_use_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.compile(fullgraph=True) traces the backend choice without a graph break, and traces again
    when the ``use_backend`` block around the call or the environment variable changes."""
    monkeypatch.delenv("GANBLOCKS_BACKEND", raising=False)
    assert get_backend() == "auto"  # an eager read: what torch 2.4's traces see of the environment

    def f(x: torch.Tensor) -> torch.Tensor:
        return x + {"auto": 1.0, "torch": 2.0, "triton": 3.0}[get_backend()]

    torch._dynamo.reset()
    compiled = torch.compile(f, fullgraph=True, backend="eager")
    x = torch.zeros(2)
    assert compiled(x).tolist() == [1.0, 1.0]
    with use_backend("torch"):
        assert compiled(x).tolist() == [2.0, 2.0]
        with use_backend("triton"):
            assert compiled(x).tolist() == [3.0, 3.0]
        assert compiled(x).tolist() == [2.0, 2.0]
    assert compiled(x).tolist() == [1.0, 1.0]
    # the environment variable, read when the function is traced
    monkeypatch.setenv("GANBLOCKS_BACKEND", "triton")
    assert get_backend() == "triton"
    torch._dynamo.reset()
    assert compiled(x).tolist() == [3.0, 3.0]
