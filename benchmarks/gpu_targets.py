"""The GPU speed targets, defined once for the suite's target table and the one-shot GPU check.

- Fused ops (issue #2): forward+backward ≥ 1.5× the plain eager formulation and no slower than
  ``torch.compile`` of it; forward at ≥ 80% of the bandwidth of a copy of the op's own input (same size and
  dtype, timed the same way), counting the least bytes the op must move.
- ``MultiScaleDiscriminator`` forward+backward (pix2pixHD configuration, 3 scales; issue #3): ≥ 1.2×
  pix2pixHD's formulation, with ≤ 0.8× its peak memory.
- R1 step (issue #4): ≥ 1.3× the plain eager formulation.

:func:`evaluate_gpu` reads them off whichever records it is given: the suite picks those at the issues'
sizes (:mod:`benchmarks.targets`), the GPU check takes its own.
"""

from __future__ import annotations

from typing import Optional

from .rows import Index, Record, Row, size_label, speedup_row, target

OPS_VS_EAGER = 1.5
OPS_VS_COMPILE = 1.0
OPS_COPY_FRACTION = 0.8
MSD_VS_PLAIN = 1.2
MSD_MEMORY = 0.8
R1_VS_PLAIN = 1.3
GPU = "an H100-class GPU"


def _where(records: list[Record], fallback: str) -> str:
    return size_label(records[0]["params"]) if records else fallback


def bandwidth_row(rec: Record, required: float = OPS_COPY_FRACTION) -> Optional[Row]:
    """The achieved fraction of copy bandwidth, its range from the p80 and p20 times."""
    frac = rec.get("bandwidth_fraction_of_copy")
    if frac is None or not rec.get("time_ms"):
        return None
    t = rec["time_ms"]
    return Row(
        f"{rec['id']} {rec['mode']}",
        frac,
        frac * t["median"] / t["p80"],
        frac * t["median"] / t["p20"],
        required,
        unit="%",
        note=f"{rec['bandwidth_gbs']:.0f} GB/s vs {rec.get('copy_bandwidth_gbs')} GB/s for a copy of the input",
    )


def memory_row(idx: Index, rec: Record, required: float = MSD_MEMORY) -> Optional[Row]:
    base = idx.get(rec, "plain")
    if not base or not rec.get("peak_memory_bytes") or not base.get("peak_memory_bytes"):
        return None
    ratio = rec["peak_memory_bytes"] / base["peak_memory_bytes"]
    return Row(
        f"{rec['id']} {rec['mode']}",
        ratio,
        ratio,
        ratio,
        required,
        higher_is_better=False,
        note=f"{rec['peak_memory_bytes'] / 2**20:.0f} MiB vs {base['peak_memory_bytes'] / 2**20:.0f} MiB",
    )


def op_targets(idx: Index, dev: str, fwd_bwd: list[Record], fwd: list[Record]) -> list[Record]:
    where = _where(fwd_bwd or fwd, "(16, 512, 64, 64) bfloat16")
    return [
        target(
            2,
            "ops-vs-plain-gpu",
            f"Fused ops, forward+backward at {where} on {GPU}: ≥ {OPS_VS_EAGER}× faster than the plain eager "
            "formulation",
            "cuda",
            dev,
            [speedup_row(idx, r, "plain", OPS_VS_EAGER) for r in fwd_bwd],
        ),
        target(
            2,
            "ops-vs-compile-gpu",
            "Same ops, forward+backward: no slower than torch.compile of the plain formulation",
            "cuda",
            dev,
            [speedup_row(idx, r, "compile", OPS_VS_COMPILE) for r in fwd_bwd],
            "torch.compile of the plain formulation did not run (see the skip reasons)" if fwd_bwd else "",
        ),
        target(
            2,
            "ops-bandwidth-gpu",
            f"Same ops, forward: ≥ {OPS_COPY_FRACTION:.0%} of the bandwidth of a copy of the op's input (same "
            "size and dtype; least-traffic byte count)",
            "cuda",
            dev,
            [bandwidth_row(r) for r in fwd],
        ),
    ]


def multiscale_targets(idx: Index, dev: str, records: list[Record]) -> list[Record]:
    where = _where(records, "batch 4, 512×512, bfloat16 channels_last")
    return [
        target(
            3,
            "multiscale-gpu",
            f"MultiScaleDiscriminator forward+backward (3 scales, {where}) on {GPU}: ≥ {MSD_VS_PLAIN}× faster "
            "than pix2pixHD's formulation",
            "cuda",
            dev,
            [speedup_row(idx, r, "plain", MSD_VS_PLAIN) for r in records],
        ),
        target(
            3,
            "multiscale-gpu-memory",
            f"Same GPU case: ≤ {MSD_MEMORY}× the peak memory of pix2pixHD's formulation (ganblocks / plain)",
            "cuda",
            dev,
            [memory_row(idx, r) for r in records],
            "no peak memory measured (CUDA only)" if records else "",
        ),
    ]


def r1_target(idx: Index, dev: str, records: list[Record]) -> Record:
    return target(
        4,
        "r1-gpu",
        f"R1 step (forward, gradient, double backward) through a ganblocks discriminator on {GPU}: "
        f"≥ {R1_VS_PLAIN}× faster than the plain eager formulation of the same architecture",
        "cuda",
        dev,
        [speedup_row(idx, r, "plain", R1_VS_PLAIN) for r in records],
    )


def evaluate_gpu(doc: Record, run_device: Optional[str] = None) -> list[Record]:
    """The GPU targets over every matching record of ``doc`` (whatever their size): the GPU check's view.

    ``run_device`` overrides the run's device (a dry run evaluates its CPU records as if on CUDA).
    """
    idx = Index(doc["results"])
    dev = run_device or doc["meta"]["device"]

    def mode_of(area: str, mode: str, case: Optional[str] = None) -> list[Record]:
        return idx.select(
            lambda r: r["area"] == area and r["mode"] == mode and (case is None or r["case"].startswith(case))
        )

    return [
        *op_targets(idx, dev, mode_of("ops", "forward+backward"), mode_of("ops", "forward")),
        *multiscale_targets(idx, dev, mode_of("discriminators", "forward+backward", "multiscale")),
        r1_target(idx, dev, mode_of("penalties", "step", "r1/")),
    ]
