"""The markdown of a GPU check (:mod:`benchmarks.gpu_check`): each target met or not, the correctness tests,
the cases and the measurements (the suite's own tables)."""

from __future__ import annotations

from typing import Any

from .rows import Index, Record
from .tables import AREA_TITLES, bandwidth_table, memory_table, num, skips, target_area, time_table

STATUS = {
    "met": "met",
    "missed": "**not met**",
    "within noise": "within noise (rerun)",
    "not measured": "not measured",
    "not measurable on this device": "not measurable here",
    "dry run": "dry run",
}
AREAS = ("ops", "discriminators", "penalties")


def _short(case: str) -> str:
    """``ops/bias_act[shape=...] forward+backward`` -> ``ops/bias_act forward+backward``."""
    name, _, rest = case.partition("[")
    return f"{name} {rest.rsplit(' ', 1)[-1]}" if rest else case


def target_table(targets: list[Record]) -> list[str]:
    lines = ["| area | target | case | measured | status |", "|---|---|---|---|---|"]
    for t in targets:
        if not t["rows"]:
            lines.append(
                f"| {target_area(t)} | {t['target']} | – | {t['detail']} | {STATUS.get(t['status'], t['status'])} |"
            )
            continue
        for i, row in enumerate(t["rows"]):
            text = t["target"] if i == 0 else "″"
            status = STATUS.get(row["status"], row["status"])
            if t["status"] == "dry run":
                status = f"dry run ({row['status']})"
            lines.append(
                f"| {target_area(t)} | {text} | `{_short(row['case'])}` | {row['detail']} | {status} |"
            )
    return lines


def _tests_section(tests: dict[str, Any]) -> list[str]:
    if not tests:
        return ["Not run (the check ended before them)."]
    lines = [f"Status: **{tests['status']}**" + (f" ({tests['reason']})" if tests.get("reason") else "")]
    lines += ["", f"Command: `{tests.get('command', '')}`"]
    counts = tests.get("counts")
    if counts:
        shown = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        lines += ["", f"Counts: {shown or 'none'} in {tests.get('seconds')} s (cap {tests.get('cap_s')} s)"]
        if tests.get("summary"):
            lines += ["", f"pytest: `{tests['summary']}`"]
    if tests.get("failures"):
        lines += ["", "Failed:", ""] + [f"- `{f}`" for f in tests["failures"]]
    if tests.get("tail"):
        lines += ["", "Last lines of the log:", "", "```", *tests["tail"], "```"]
    if tests.get("log"):
        lines += ["", f"Log: `{tests['log']}`"]
    return lines


def fusion_table(results: list[Record]) -> list[str]:
    """Does the custom op cost the fusion inductor finds around the plain formulation? compile(ganblocks)
    against compile(plain) and against ganblocks eager, forward+backward."""
    idx = Index(results)
    lines = [
        "| op | ganblocks ms | compile(ganblocks) ms | compile(plain) ms | compile(plain) / compile(ganblocks) "
        "| ganblocks / compile(ganblocks) |",
        "|---|---|---|---|---|---|",
    ]
    for rec in idx.select(lambda r: r["area"] == "ops" and r["mode"] == "forward+backward"):
        cg, cp = idx.get(rec, "compile(ganblocks)"), idx.get(rec, "compile")
        g = rec["time_ms"]["median"]
        cgm = cg["time_ms"]["median"] if cg else None
        cpm = cp["time_ms"]["median"] if cp else None
        lines.append(
            f"| {rec['case']} | {num(g)} | {'–' if cgm is None else num(cgm)} | {'–' if cpm is None else num(cpm)} "
            f"| {'–' if not (cgm and cpm) else f'{cpm / cgm:.2f}×'} | {'–' if not cgm else f'{g / cgm:.2f}×'} |"
        )
    return lines if len(lines) > 2 else []


def render(doc: Record) -> str:
    meta, check = doc["meta"], doc.get("gpu_check") or {}
    results = doc["results"]
    gpu = meta.get("gpu") or {}
    versions = meta["versions"]
    git = meta.get("git") or {}
    commit = (git.get("commit") or "unknown")[:12] + (" (uncommitted changes)" if git.get("dirty") else "")
    title = gpu.get("name") or meta["device"].upper()
    lines = [f"# ganblocks GPU check: {title}, {meta['date'][:10]}", ""]
    if check.get("dry_run"):
        lines += ["> **Dry run**: tiny sizes, a rehearsal of the flow. The numbers below mean nothing.", ""]
    lines += [
        "| | |",
        "|---|---|",
        f"| GPU | {gpu.get('name', 'none')}"
        + (f" (CUDA {gpu.get('cuda')}, {gpu.get('memory_gib')} GiB)" if gpu else "")
        + " |",
        f"| versions | python {versions['python']}, torch {versions['torch']}, triton {versions.get('triton')}, "
        f"ganblocks {versions.get('ganblocks')} |",
        f"| commit | {commit} |",
        f"| run | `python -m benchmarks.gpu_check {' '.join(meta.get('argv') or [])}`: {meta.get('duration_s')} s "
        f"of a {check.get('budget_s')} s budget |",
    ]
    if meta.get("copy_bandwidth_gbs"):
        lines.append(f"| device-to-device copy | {meta['copy_bandwidth_gbs']} GB/s (256 MiB, read + write) |")
    lines += ["", "## Targets", "", *target_table(doc.get("targets") or [])]
    lines += ["", "## Correctness tests", "", *_tests_section(check.get("tests") or {})]
    lines += ["", "## Cases", "", "| case | status | seconds | share of the budget s |", "|---|---|---|---|"]
    lines += [
        f"| `{c['id']}` | {c['status']} | {c['seconds']} | {c['slice_s']} |" for c in check.get("cases", [])
    ]
    lines += [f"| `{c}` | not run | – | – |" for c in check.get("not_run", [])]
    cuda = meta["device"] == "cuda"
    for area in AREAS:
        if not any(r["area"] == area for r in results):
            continue
        lines += ["", f"## {AREA_TITLES[area]}", "", *time_table(results, area), ""]
        lines += memory_table(results, area, cuda)
        if area == "ops":
            bw = bandwidth_table(results)
            if bw:
                lines += ["", "Achieved bandwidth (least-traffic bytes / median time):", "", *bw]
            fusion = fusion_table(results)
            if fusion:
                lines += ["", "torch.compile around the fused ops (forward+backward):", "", *fusion]
        skipped = skips(results, area)
        if skipped:
            lines += ["", *skipped]
    notes = list(check.get("notes") or []) + sorted(set((doc.get("notes") or {}).values()))
    if notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"
