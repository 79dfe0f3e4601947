"""What a target is made of: rows (one measured case against a requirement), the index of records, statuses.

A row's status is ``met``; ``missed`` (by the amount stated); or ``within noise`` (the median misses, but the
p20–p80 spread of the two timings reaches the requirement: rerun before concluding). A target adds
``not measurable on this device`` (a GPU target in a CPU run) and ``not measured`` (no matching case).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Callable, Optional

Record = dict[str, Any]

DTYPE_SHORT = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}
HIDDEN_PARAMS = {"shape", "dtype", "layout", "group", "image", "tensor_device"}


def size_label(params: dict[str, Any]) -> str:
    """``4×64×64×64 f32`` plus the layout when not contiguous and any other parameter."""
    parts = []
    shape = params.get("shape") or params.get("image")
    if shape:
        parts.append("×".join(str(s) for s in shape))
    if "dtype" in params:
        parts.append(DTYPE_SHORT.get(params["dtype"], params["dtype"]))
    if params.get("layout") == "channels_last":
        parts.append("channels_last")
    for k, v in params.items():
        if k not in HIDDEN_PARAMS:
            parts.append(f"{k}={v}")
    return " ".join(parts)


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
        v = fmt(self.value, self.unit)
        req = ("≥ " if self.higher_is_better else "≤ ") + fmt(self.required, self.unit)
        text = f"{v} (need {req})"
        if self.status != "met":
            gap = (self.required - self.value) if self.higher_is_better else (self.value - self.required)
            rel = abs(gap) / self.required * 100 if self.required else float("inf")
            if self.unit == "x":
                text += f", short by {rel:.1f}%"
            else:
                text += f", short by {fmt(abs(gap), self.unit)} ({rel:.0f}%)"
        if self.lo != self.hi:
            text += f", {self.range_label} {fmt(self.lo, self.unit)}–{fmt(self.hi, self.unit)}"
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


def fmt(v: float, unit: str) -> str:
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


def target(
    issue: int,
    key: str,
    text: str,
    device: str,
    run_device: str,
    rows: list[Optional[Row]],
    empty_reason: str = "",
) -> Record:
    """A target's record: its status over ``rows`` (None rows are cases that lack the figure)."""
    empty_reason = empty_reason or "no matching case in this run"
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


def is_case(rec: Record, area: str, case: Optional[str] = None, **params: Any) -> bool:
    if rec["area"] != area or (case is not None and rec["case"] != case):
        return False
    return all(rec["params"].get(k) == v for k, v in params.items())
