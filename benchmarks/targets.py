"""The speed targets of the foundation (#2), discriminator (#3) and loss (#4) issues, read off a results file.

Each target lists one row per measured case with its value, the requirement and a status:

- ``met``;
- ``missed``: the requirement fails, by the amount stated;
- ``within noise``: the median misses, but the p20–p80 spread of the two timings reaches the requirement
  (CPU timings on a shared machine are noisy: rerun before concluding);
- at the target level also ``not measurable on this device`` (a GPU target in a CPU run) and
  ``not measured`` (no matching case in this run, e.g. filtered out).

Speedups compare medians within one run: ``baseline median / ganblocks median``, with the noise interval
``[baseline p20 / ganblocks p80, baseline p80 / ganblocks p20]``. Also here: derived figures (the amortized
StyleGAN step with lazy R1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Callable, Optional

Record = dict[str, Any]

OP_TARGET_SHAPE = [16, 512, 64, 64]
MSD_TARGET_SHAPE = [4, 3, 512, 512]
LAZY_R1_EVERY = 16


@dataclass(frozen=True)
class Row:
    case: str
    value: float
    lo: float
    hi: float
    required: float
    higher_is_better: bool = True
    unit: str = "x"
    note: str = ""
    range_label: str = "p20–p80 range"

    @property
    def status(self) -> str:
        if self.higher_is_better:
            if self.value >= self.required:
                return "met"
            return "within noise" if self.hi >= self.required else "missed"
        if self.value <= self.required:
            return "met"
        return "within noise" if self.lo <= self.required else "missed"

    def describe(self) -> str:
        v = _fmt(self.value, self.unit)
        req = ("≥ " if self.higher_is_better else "≤ ") + _fmt(self.required, self.unit)
        text = f"{v} (need {req})"
        if self.status != "met":
            gap = (self.required - self.value) if self.higher_is_better else (self.value - self.required)
            rel = abs(gap) / self.required * 100 if self.required else float("inf")
            if self.unit == "x":
                text += f", short by {rel:.1f}%"
            else:
                text += f", short by {_fmt(abs(gap), self.unit)} ({rel:.0f}%)"
        if self.lo != self.hi:
            text += f", {self.range_label} {_fmt(self.lo, self.unit)}–{_fmt(self.hi, self.unit)}"
        return text + (f"; {self.note}" if self.note else "")

    def to_json(self) -> Record:
        return {
            "case": self.case,
            "value": round(self.value, 4),
            "range": [round(self.lo, 4), round(self.hi, 4)],
            "required": self.required,
            "higher_is_better": self.higher_is_better,
            "unit": self.unit,
            "status": self.status,
            "detail": self.describe(),
        }


def _fmt(v: float, unit: str) -> str:
    if unit == "x":
        # Three decimals where two would round a miss up to the requirement (0.996 is not 1.00).
        return f"{v:.2f}×" if abs(v - round(v, 2)) < 1e-9 or abs(v - 1.0) >= 0.005 else f"{v:.3f}×"
    if unit == "%":
        return f"{v * 100:.0f}%"
    return f"{v:.2f} {unit}"


class Index:
    """Records by (id, mode, provider)."""

    def __init__(self, results: Iterable[Record]) -> None:
        self.records = list(results)
        self.by_key = {(r["id"], r["mode"], r["provider"]): r for r in self.records}

    def get(self, rec: Record, provider: str) -> Optional[Record]:
        other = self.by_key.get((rec["id"], rec["mode"], provider))
        return other if other is not None and other.get("time_ms") else None

    def select(self, pred: Callable[[Record], bool], provider: str = "ganblocks") -> list[Record]:
        return [r for r in self.records if r["provider"] == provider and r.get("time_ms") and pred(r)]


def speedup_row(idx: Index, rec: Record, baseline: str, required: float, note: str = "") -> Optional[Row]:
    base = idx.get(rec, baseline)
    if base is None:
        return None
    ours, theirs = rec["time_ms"], base["time_ms"]
    return Row(
        case=f"{rec['id']} {rec['mode']}",
        value=theirs["median"] / ours["median"],
        lo=theirs["p20"] / ours["p80"],
        hi=theirs["p80"] / ours["p20"],
        required=required,
        note=note,
    )


def _target(
    issue: int,
    key: str,
    text: str,
    device: str,
    run_device: str,
    rows: list[Optional[Row]],
    empty_reason: str = "no matching case in this run",
) -> Record:
    kept = [r for r in rows if r is not None]
    if device != "any" and device != run_device:
        status = "not measurable on this device"
        detail = f"needs a {device.upper()} run (`python -m benchmarks --device {device}`)"
    elif not kept:
        status, detail = "not measured", empty_reason
    else:
        statuses = {r.status for r in kept}
        status = "missed" if "missed" in statuses else "within noise" if "within noise" in statuses else "met"
        met = sum(r.status == "met" for r in kept)
        detail = f"{met}/{len(kept)} rows met"
    return {
        "issue": issue,
        "key": key,
        "target": text,
        "device": device,
        "status": status,
        "detail": detail,
        "rows": [r.to_json() for r in kept] if device in ("any", run_device) else [],
    }


def _is(rec: Record, area: str, case: Optional[str] = None, **params: Any) -> bool:
    if rec["area"] != area or (case is not None and rec["case"] != case):
        return False
    return all(rec["params"].get(k) == v for k, v in params.items())


def evaluate(doc: Record) -> list[Record]:
    """Every speed target of the issues, evaluated on ``doc``'s results."""
    idx = Index(doc["results"])
    dev = doc["meta"]["device"]
    out: list[Record] = []

    # Issue 2 (foundation), GPU: fused ops at (16, 512, 64, 64) bfloat16, forward+backward.
    def op_target(r: Record) -> bool:
        return (
            _is(r, "ops", shape=OP_TARGET_SHAPE, dtype="bfloat16", layout="contiguous")
            and r["mode"] == "forward+backward"
        )

    gpu_ops = idx.select(op_target)
    out.append(
        _target(
            2,
            "ops-vs-plain-gpu",
            "Fused ops, forward+backward at (16, 512, 64, 64) bfloat16 on an H100-class GPU: ≥ 1.5× faster than "
            "the plain eager formulation",
            "cuda",
            dev,
            [speedup_row(idx, r, "plain", 1.5) for r in gpu_ops],
        )
    )
    out.append(
        _target(
            2,
            "ops-vs-compile-gpu",
            "Same ops: no slower than torch.compile of the plain formulation",
            "cuda",
            dev,
            [speedup_row(idx, r, "compile", 1.0) for r in gpu_ops],
        )
    )
    bw_rows = [
        Row(
            f"{r['id']} {r['mode']}",
            r["bandwidth_fraction_of_copy"],
            r["bandwidth_fraction_of_copy"],
            r["bandwidth_fraction_of_copy"],
            0.8,
            unit="%",
            note=f"{r['bandwidth_gbs']:.0f} GB/s vs copy {doc['meta'].get('copy_bandwidth_gbs')} GB/s",
        )
        for r in gpu_ops
        if r.get("bandwidth_fraction_of_copy") is not None
    ]
    out.append(
        _target(
            2,
            "ops-bandwidth-gpu",
            "Same ops: ≥ 80% of the measured device-to-device copy bandwidth (least-traffic byte count)",
            "cuda",
            dev,
            list(bw_rows),
        )
    )

    # Issue 2, CPU: reference path no slower than plain; backend choice < 5 µs per call.
    def cpu_op(r: Record) -> bool:
        return _is(r, "ops", group="target", dtype="float32") and r["mode"] == "forward+backward"

    out.append(
        _target(
            2,
            "ops-reference-vs-plain-cpu",
            "Fused ops on CPU: the reference path (backend='torch') no slower than the plain formulation "
            "(forward+backward)",
            "cpu",
            dev,
            [speedup_row(idx, r, "plain", 1.0) for r in idx.select(cpu_op, provider="reference")],
        )
    )
    dispatch_rows: list[Optional[Row]] = []
    for rec in idx.select(lambda r: r["area"] == "dispatch", provider="public(torch)"):
        direct = idx.get(rec, "reference-direct")
        if direct is None:
            continue
        for prov in ("public(torch)", "public(auto)"):
            pub = idx.get(rec, prov)
            if pub is None:
                continue
            # Noise on a shared machine only adds time: the 20th percentiles compare the clean repetitions.
            diffs = [(pub["time_ms"][k] - direct["time_ms"][k]) * 1e3 for k in ("p20", "min", "median")]
            dispatch_rows.append(
                Row(
                    f"{rec['case']} {prov}",
                    diffs[0],
                    min(diffs),
                    max(diffs),
                    5.0,
                    higher_is_better=False,
                    unit="µs",
                    note="difference of the 20th percentiles of the two timings",
                    range_label="range over the differences of minima, p20s and medians",
                )
            )
    out.append(
        _target(
            2,
            "dispatch-overhead",
            "Backend choice and argument checks add < 5 µs per call (public function vs its reference, CPU tensor)",
            "any",
            dev,
            dispatch_rows,
        )
    )

    # Issue 3: MultiScaleDiscriminator forward+backward (3 scales, batch 4, 512x512).
    def msd(r: Record, dtype: str, layout: str) -> bool:
        return (
            _is(r, "discriminators", "multiscale", shape=MSD_TARGET_SHAPE, dtype=dtype, layout=layout)
            and r["mode"] == "forward+backward"
        )

    cpu_msd = idx.select(lambda r: msd(r, "float32", "contiguous"))
    note = ""
    if not cpu_msd and dev == "cpu":
        cpu_msd = idx.select(
            lambda r: (
                _is(r, "discriminators", "multiscale", dtype="float32") and r["mode"] == "forward+backward"
            )
        )
        note = "measured at a smaller size than the target's 4×3×512×512"
    out.append(
        _target(
            3,
            "multiscale-cpu",
            "MultiScaleDiscriminator forward+backward (3 scales, batch 4, 512×512) on CPU: no slower than "
            "pix2pixHD's formulation",
            "cpu",
            dev,
            [speedup_row(idx, r, "plain", 1.0, note) for r in cpu_msd],
        )
    )
    gpu_msd = idx.select(lambda r: msd(r, "bfloat16", "channels_last"))
    out.append(
        _target(
            3,
            "multiscale-gpu",
            "Same on an H100-class GPU, channels_last + bfloat16: ≥ 1.2× faster than pix2pixHD's formulation",
            "cuda",
            dev,
            [speedup_row(idx, r, "plain", 1.2) for r in gpu_msd],
        )
    )
    mem_rows: list[Optional[Row]] = []
    for r in gpu_msd:
        base = idx.get(r, "plain")
        if base and r.get("peak_memory_bytes") and base.get("peak_memory_bytes"):
            ratio = r["peak_memory_bytes"] / base["peak_memory_bytes"]
            mem_rows.append(
                Row(
                    f"{r['id']} {r['mode']}",
                    ratio,
                    ratio,
                    ratio,
                    1.0,
                    higher_is_better=False,
                    note=f"{r['peak_memory_bytes'] / 2**20:.0f} MiB vs {base['peak_memory_bytes'] / 2**20:.0f} MiB",
                )
            )
    out.append(
        _target(
            3,
            "multiscale-gpu-memory",
            "Same GPU case: no more peak memory than pix2pixHD's formulation (ratio ganblocks / plain)",
            "cuda",
            dev,
            mem_rows,
        )
    )

    # Issue 4: R1 step and VGGLoss.
    def r1(r: Record, dtype: Optional[str] = None) -> bool:
        return (
            r["area"] == "penalties"
            and r["case"].startswith("r1/")
            and (dtype is None or r["params"]["dtype"] == dtype)
        )

    out.append(
        _target(
            4,
            "r1-gpu",
            "R1 step (forward, gradient, double backward) through a ganblocks discriminator on an H100-class GPU: "
            "≥ 1.3× faster than the plain eager formulation of the same architecture",
            "cuda",
            dev,
            [speedup_row(idx, r, "plain", 1.3) for r in idx.select(r1)],
        )
    )

    def vgg(r: Record) -> bool:
        return (
            _is(r, "losses", "vgg", dtype="bfloat16", layout="channels_last")
            and r["mode"] == "forward+backward"
        )

    out.append(
        _target(
            4,
            "vgg-gpu",
            "VGGLoss forward+backward on an H100-class GPU (bfloat16, channels_last): ≥ 1.2× faster than "
            "pix2pixHD's formulation (each batched setting listed)",
            "cuda",
            dev,
            [speedup_row(idx, r, "plain", 1.2) for r in idx.select(vgg)],
        )
    )
    cpu_rows = [speedup_row(idx, r, "plain", 1.0) for r in idx.select(lambda r: r1(r, "float32"))]
    cpu_rows += [
        speedup_row(idx, r, "plain", 1.0)
        for r in idx.select(
            lambda r: _is(r, "losses", "vgg", dtype="float32") and r["mode"] == "forward+backward"
        )
    ]
    out.append(
        _target(
            4,
            "r1-vgg-cpu",
            "On CPU: the R1 step and VGGLoss forward+backward no slower than those formulations",
            "cpu",
            dev,
            cpu_rows,
        )
    )
    return out


def derived(doc: Record) -> list[Record]:
    """Figures computed from several records: the amortized StyleGAN iteration with lazy R1."""
    idx = Index(doc["results"])
    out: list[Record] = []
    for main in idx.records:
        if main["area"] != "training" or main["case"] != "stylegan" or not main.get("time_ms"):
            continue
        r1_id = main["id"].replace("training/stylegan[", "training/stylegan_r1[")
        r1 = idx.by_key.get((r1_id, main["mode"], main["provider"]))
        if not r1 or not r1.get("time_ms"):
            continue
        out.append(
            {
                "id": main["id"].replace("training/stylegan[", "training/stylegan+lazy_r1["),
                "provider": main["provider"],
                "formula": f"stylegan + stylegan_r1 / {LAZY_R1_EVERY}",
                "time_ms": round(main["time_ms"]["median"] + r1["time_ms"]["median"] / LAZY_R1_EVERY, 6),
            }
        )
    base = {d["id"]: d["time_ms"] for d in out if d["provider"] == "plain"}
    for d in out:
        d["speedup_vs_plain"] = round(base[d["id"]] / d["time_ms"], 4) if d["id"] in base else None
    return out
