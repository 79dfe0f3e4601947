"""The helper every area shares: rows and providers, the modes, timing, memory, and the results files.

A :class:`Row` is one block at one size with its providers; each provider's factory builds a :class:`Work`
(``run()`` is the forward, or a whole step) on the device. Timing: ``torch.utils.benchmark`` on CPU
(``blocked_autorange``: median and IQR of its blocks), ``triton.testing.do_bench`` on CUDA (L2 flushed between
repetitions; quartiles of the repetitions). Memory: the bytes autograd saves for backward
(``saved_tensors_hooks``, every device, eager providers) and the peak of ``max_memory_allocated`` above what
was allocated before (CUDA only: CPU has no cheap allocator peak).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import platform
import subprocess
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils import benchmark as tb

import ganblocks
from ganblocks.ops import use_backend

RESULTS = Path(__file__).resolve().parent / "results"
PROVIDERS = ("ganblocks", "torch", "plain", "compile", "copy", "kornia")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
# The VGG losses run with random weights: their speed does not depend on the weights.
warnings.filterwarnings("ignore", "VGG19 is randomly initialised")
Variant = tuple[str, str]  # (dtype, memory layout)
FP32: Variant = ("float32", "contiguous")


class Skip(Exception):
    """A provider or mode that does not apply here; the message is recorded."""


@dataclasses.dataclass
class Work:
    """What a provider runs: ``run()`` returns what a backward starts from (or does a whole step); double
    backward differentiates by ``inputs``; gradients of ``inputs`` and ``params`` are reset before each
    repetition, as ``zero_grad()`` does."""

    run: Callable[[], Any]
    inputs: Sequence[torch.Tensor] = ()
    params: Sequence[torch.Tensor] = ()
    compiled: bool = False


Factory = Callable[[], Work]


@dataclasses.dataclass
class Row:
    area: str
    name: str
    params: dict[str, Any]
    modes: tuple[str, ...]
    providers: dict[str, Factory]
    note: str = ""

    @property
    def id(self) -> str:
        fmt = {k: "x".join(map(str, v)) if isinstance(v, list) else v for k, v in self.params.items()}
        return f"{self.name}[{','.join(f'{k}={v}' for k, v in fmt.items())}]"


@dataclasses.dataclass(frozen=True)
class Config:
    device: torch.device
    quick: bool = False
    min_run_time: float = 0.5  # CPU: seconds per timing (blocked_autorange)
    compile: str = "blocks"  # torch.compile on CUDA: "none", "blocks" (ops and layers) or "all"

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def compiles(self, area: str) -> bool:
        """torch.compile runs on CUDA only (on CPU each compile takes minutes); whole networks, which take
        about a minute each, with ``compile="all"``."""
        return self.cuda and (
            self.compile == "all" or (self.compile == "blocks" and area in ("ops", "layers"))
        )

    def size(self, quick: Any, cpu: Any, cuda: Any) -> Any:
        """One of three sizes: the quick smoke run's, the CPU suite's, the CUDA suite's."""
        return quick if self.quick else cuda if self.cuda else cpu

    def variants(self) -> list[Variant]:
        """Networks run in float32 everywhere, and on CUDA also under bfloat16 autocast, channels_last."""
        return [FP32, ("bfloat16", "channels_last")] if self.cuda and not self.quick else [FP32]

    def tensor(self, shape: Sequence[int], v: Variant = FP32, grad: bool = False) -> torch.Tensor:
        t = torch.randn(tuple(shape)).to(self.device, DTYPES[v[0]])
        if v[1] == "channels_last" and t.ndim == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t.requires_grad_(grad)

    def amp(self, dtype: str) -> Any:
        """Mixed precision as users run it: float32 parameters, autocast to ``dtype``."""
        return (
            contextlib.nullcontext()
            if dtype == "float32"
            else torch.autocast(self.device.type, DTYPES[dtype])
        )


def skipped(reason: str) -> Factory:
    def factory() -> Work:
        raise Skip(reason)

    return factory


def backend(name: str | None) -> Any:
    """``use_backend(name)`` for the ganblocks providers; nothing for the plain ones (None)."""
    return contextlib.nullcontext() if name is None else use_backend(name)  # type: ignore[arg-type]


def build(cfg: Config, make: Callable[[], nn.Module], layout: str) -> nn.Module:
    torch.manual_seed(0)
    m = make().to(cfg.device)
    return m.to(memory_format=torch.channels_last) if layout == "channels_last" else m


def module_factory(cfg: Config, make: Callable[[], nn.Module], call: Callable[[Any, list[torch.Tensor]], Any],
                   inputs: Callable[[], list[torch.Tensor]], v: Variant, be: str | None, compiled: bool = False) -> Factory:  # fmt: skip
    """A module provider: seeded build, moved to the device and layout, ``call(module, inputs)`` under the
    backend ``be`` and autocast, through torch.compile if asked."""

    def factory() -> Work:
        m = build(cfg, make, v[1])
        torch.manual_seed(1)  # the same inputs for every provider
        fn, ins = torch.compile(m) if compiled else m, inputs()

        def run() -> Any:
            with backend(be), cfg.amp(v[0]):
                return call(fn, ins)

        return Work(
            run, [t for t in ins if t.requires_grad], [p for p in m.parameters() if p.requires_grad], compiled
        )

    return factory


def module_providers(cfg: Config, area: str, ours: Callable[[], nn.Module], plain: Callable[[], nn.Module], call: Callable[..., Any],
                     call_plain: Callable[..., Any], inputs: Callable[[], list[torch.Tensor]], v: Variant = FP32) -> dict[str, Factory]:  # fmt: skip
    """ganblocks (auto); the torch reference path on CUDA only (on CPU auto is that path); the plain
    formulation; torch.compile of it where :meth:`Config.compiles`."""
    cuda_only = skipped("CUDA only")
    return {
        "ganblocks": module_factory(cfg, ours, call, inputs, v, "auto"),
        "torch": module_factory(cfg, ours, call, inputs, v, "torch") if cfg.cuda else cuda_only,
        "plain": module_factory(cfg, plain, call_plain, inputs, v, None),
        "compile": module_factory(cfg, plain, call_plain, inputs, v, None, True)
        if cfg.compiles(area)
        else skipped("torch.compile: CUDA only, of whole networks with --compile all"),
    }


def outputs(out: Any) -> list[torch.Tensor]:
    """The tensors a backward starts from (a DiscriminatorOutput gives its logits) that require grad."""
    if isinstance(out, torch.Tensor):
        return [out] if out.requires_grad else []
    if isinstance(out, ganblocks.DiscriminatorOutput):
        return outputs(list(out.logits))
    return [t for item in out for t in outputs(item)]


def mode_fn(work: Work, mode: str) -> Callable[[], Any]:
    """The callable that times ``mode`` of ``work``; raises :class:`Skip` where it does not apply."""
    if mode in ("forward", "step"):
        return work.run
    leaves = [*work.inputs, *work.params]
    outs = outputs(work.run())
    if not outs:
        raise Skip("no gradient")
    gen = torch.Generator().manual_seed(0)  # the same output gradients for every provider
    gs = [torch.randn(o.shape, generator=gen).to(o.device, o.dtype) for o in outs]

    def timed() -> None:
        for t in leaves:
            t.grad = None
        if mode == "backward":
            torch.autograd.backward(outs, gs, retain_graph=True)
        elif mode == "fwd+bwd":
            torch.autograd.backward(outputs(work.run()), gs)
        else:  # double backward: the R1 / WGAN-GP pattern
            g = torch.autograd.grad(outputs(work.run()), list(work.inputs), gs, create_graph=True)
            sum(t.float().square().sum() for t in g).backward()  # type: ignore[union-attr]

    if mode == "double_backward" and (work.compiled or not work.inputs):
        raise Skip(
            "torch.compile cannot run a double backward" if work.compiled else "no differentiable input"
        )
    return timed


def time_ms(fn: Callable[[], Any], cfg: Config) -> dict[str, float]:
    """Median and interquartile range in milliseconds. One untimed call first (warm-up, compilation), one
    timed to size the repetitions: on CUDA at least 10, on CPU until the IQR is within 10% of the median
    (at least 4 blocks), for at most 4× the minimum run time or 6 calls (2 in a quick run)."""
    fn()
    sync = torch.cuda.synchronize if cfg.cuda else lambda: None
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    single = time.perf_counter() - t0
    if cfg.cuda:
        import triton.testing

        ms = single * 1e3
        q = triton.testing.do_bench(fn, warmup=max(25, 2 * ms), rep=max(20 if cfg.quick else 100, 10 * ms), quantiles=[0.25, 0.5, 0.75])  # fmt: skip
        return {"median_ms": q[1], "iqr_ms": q[2] - q[0]}
    timer = tb.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    longest = max(4 * cfg.min_run_time, (2 if cfg.quick else 6) * single)
    m = timer.adaptive_autorange(threshold=0.1, min_run_time=cfg.min_run_time, max_run_time=longest)
    return {"median_ms": m.median * 1e3, "iqr_ms": m.iqr * 1e3, "reps": len(m.times) * m.number_per_run}


def saved_bytes(work: Work) -> int:
    """Bytes autograd keeps for backward in one forward, beyond the inputs and parameters themselves."""
    own = {t.untyped_storage().data_ptr() for t in (*work.inputs, *work.params)}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if (s := t.untyped_storage()).data_ptr() not in own:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        work.run()
    return sum(seen.values())


def peak_bytes(fn: Callable[[], Any], cfg: Config) -> int | None:
    if not cfg.cuda:
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def measure(row: Row, cfg: Config) -> list[dict[str, Any]]:
    """Every provider and mode of ``row``: one record each, with the time or why it did not run."""
    out = []
    for prov, factory in row.providers.items():
        base = {"area": row.area, "row": row.id, "name": row.name, "params": row.params, "provider": prov}
        try:
            work = factory()
            saved = None if work.compiled or row.modes == ("step",) else saved_bytes(work)
        except Exception as e:  # one provider failing leaves the others their turn
            key = "skip" if isinstance(e, Skip) else "error"
            out += [{**base, "mode": m, key: f"{type(e).__name__}: {e}"[:300]} for m in row.modes]
            continue
        for mode in row.modes:
            rec = {**base, "mode": mode}
            try:
                fn = mode_fn(work, mode)
                rec |= time_ms(fn, cfg) | {"peak_bytes": peak_bytes(fn, cfg)}
                rec["saved_bytes"] = saved if mode != "double_backward" else None
            except Skip as e:
                rec["skip"] = str(e)
            except Exception as e:
                rec["error"] = f"{type(e).__name__}: {e}"[:300]
            out.append({k: v for k, v in rec.items() if v is not None})
        del work
    return out


def environment(device: torch.device) -> dict[str, Any]:
    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], capture_output=True, text=True, cwd=RESULTS.parent, check=False)
        return run.stdout.strip()

    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "--short", "HEAD")
        + ("-dirty" if git("status", "--porcelain", "src") else ""),
        "ganblocks": ganblocks.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "device": device.type,
    }
    if device.type == "cuda":
        import triton

        meta |= {
            "gpu": torch.cuda.get_device_name(device),
            "cuda": torch.version.cuda,
            "triton": triton.__version__,
        }
    return meta


def find(recs: list[dict[str, Any]], rec: dict[str, Any], provider: str) -> dict[str, Any] | None:
    """``provider``'s timed record of ``rec``'s row and mode."""
    same = (
        r for r in recs if r["row"] == rec["row"] and r["mode"] == rec["mode"] and r["provider"] == provider
    )
    return next((r for r in same if "median_ms" in r), None)


def speedup(recs: list[dict[str, Any]], rec: dict[str, Any], against: str = "plain") -> float | None:
    """``against``'s median over ``rec``'s: > 1 means ``rec`` is faster."""
    b = find(recs, rec, against)
    return b["median_ms"] / rec["median_ms"] if b and "median_ms" in rec else None


def headline(recs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per area: the geometric mean of ganblocks' speedup over plain in fwd+bwd (a step where that is the
    mode; the call where only the forward runs), with the lowest and highest."""
    out = {}
    for area in dict.fromkeys(r["area"] for r in recs):
        mode = {"training": "step", "penalties": "step", "dispatch": "forward", "metrics": "forward"}.get(
            area, "fwd+bwd"
        )
        mine = [r for r in recs if r["area"] == area and r["provider"] == "ganblocks" and r["mode"] == mode]
        xs = [s for r in mine if (s := speedup(recs, r)) is not None]
        if xs:
            mean = float(torch.tensor(xs).log().mean().exp())
            out[area] = {"mode": mode, "geomean": round(mean, 3), "min": round(min(xs), 3), "max": round(max(xs), 3), "rows": len(xs)}  # fmt: skip
    return out


def _bytes(b: int | None) -> str:
    return "" if b is None else f"{b / 2**20:.1f}M" if b >= 2**20 else f"{b / 2**10:.0f}K"


def markdown(doc: dict[str, Any]) -> str:
    """The targets, the headline per area, then one table per area: every provider's median ± IQR, the
    speedup over plain, and the saved and peak memory of ganblocks / plain."""
    meta, recs = doc["meta"], doc["results"]
    lines = [f"# ganblocks benchmarks: {meta['device']}, {meta['date'][:10]}", ""]
    lines += [", ".join(f"{k} {v}" for k, v in meta.items() if k not in ("date", "device")), ""]
    lines += ["Times in ms, median ± interquartile range; × plain = plain's median / ganblocks' (> 1: faster);",
              "memory (ganblocks/plain): saved for backward, and peak allocated (CUDA).", ""]  # fmt: skip
    lines += [f"- {t['status']}: {t['what']} ({t['detail']})" for t in doc.get("targets", [])]
    for area, h in doc.get("headline", {}).items():
        lines.append(f"- {area} ({h['mode']}): ganblocks {h['geomean']:.2f}× plain, geometric mean of {h['rows']} rows ({h['min']:.2f}–{h['max']:.2f}×)")  # fmt: skip
    provs = [p for p in PROVIDERS if any(r["provider"] == p and "median_ms" in r for r in recs)]
    for area in dict.fromkeys(r["area"] for r in recs):
        lines += ["", f"## {area}", "", f"| row | mode | {' | '.join(provs)} | × plain | saved | peak |"]
        lines.append("|---|---|" + "---:|" * (len(provs) + 3))
        for row, mode in dict.fromkeys((r["row"], r["mode"]) for r in recs if r["area"] == area):
            by = {r["provider"]: r for r in recs if r["row"] == row and r["mode"] == mode}
            cells = [f"{r['median_ms']:.3g} ± {r['iqr_ms']:.2g}" if "median_ms" in r else "error" if "error" in r else "–"
                     for r in (by.get(p, {}) for p in provs)]  # fmt: skip
            g, p = by.get("ganblocks", {}), by.get("plain", {})
            s = speedup(recs, g) if g else None
            cells.append(f"{s:.2f}" if s else "")
            cells += [f"{_bytes(g.get(k))}/{_bytes(p.get(k))}" if k in g or k in p else "" for k in ("saved_bytes", "peak_bytes")]  # fmt: skip
            lines.append(f"| {row} | {mode} | {' | '.join(cells)} |")
    lines += ["", "## Notes", ""] + [f"- {k}: {v}" for k, v in doc.get("notes", {}).items()]
    errors = [f"- {r['row']} {r['provider']} {r['mode']}: {r['error']}" for r in recs if "error" in r]
    return "\n".join(lines + (["", "## Errors", "", *errors] if errors else [])) + "\n"
