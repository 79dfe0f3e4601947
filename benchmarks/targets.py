"""The speed targets of the foundation (#2), discriminator (#3) and loss (#4) issues, read off a results file.

Each target lists one row per measured case with its value, the requirement and a status (see
:mod:`benchmarks.rows`: ``met``, ``missed``, ``within noise``; at the target level also ``not measurable on
this device`` and ``not measured``). The GPU targets are defined in :mod:`benchmarks.gpu_targets`, shared
with the one-shot GPU check.

Speedups compare medians within one run: ``baseline median / ganblocks median``, with the noise interval
``[baseline p20 / ganblocks p80, baseline p80 / ganblocks p20]``. Also here: derived figures (the amortized
StyleGAN step with lazy R1).
"""

from __future__ import annotations

from typing import Optional

from . import gpu_targets
from .rows import Index, Record, Row, is_case, speedup_row, target

OP_TARGET_SHAPE = [16, 512, 64, 64]
MSD_TARGET_SHAPE = [4, 3, 512, 512]
LAZY_R1_EVERY = 16


def evaluate(doc: Record) -> list[Record]:
    """Every speed target of the issues, evaluated on ``doc``'s results (GPU ones: :mod:`.gpu_targets`)."""
    idx = Index(doc["results"])
    dev = doc["meta"]["device"]
    out: list[Record] = []

    # Issue 2 (foundation), GPU: fused ops at (16, 512, 64, 64) bfloat16, forward+backward (and forward for
    # the bandwidth).
    def gpu_op(mode: str) -> list[Record]:
        return idx.select(
            lambda r: (
                is_case(r, "ops", shape=OP_TARGET_SHAPE, dtype="bfloat16", layout="contiguous")
                and r["mode"] == mode
            )
        )

    out += gpu_targets.op_targets(idx, dev, gpu_op("forward+backward"), gpu_op("forward"))

    # Issue 2, CPU: reference path no slower than plain; backend choice < 5 µs per call.
    def cpu_op(r: Record) -> bool:
        return is_case(r, "ops", group="target", dtype="float32") and r["mode"] == "forward+backward"

    out.append(
        target(
            2,
            "ops-reference-vs-plain-cpu",
            "Fused ops on CPU: the reference path (backend='torch') no slower than the plain formulation "
            "(forward+backward)",
            "cpu",
            dev,
            [speedup_row(idx, r, "plain", 1.0) for r in idx.select(cpu_op, provider="reference")],
        )
    )
    # Without autograd recording: argument checks and backend choice (< 5 µs). With it: also what the
    # custom autograd functions and custom ops cost on top of the plain torch calls (≤ 10 µs).
    dispatch_rows: dict[bool, list[Optional[Row]]] = {False: [], True: []}
    for rec in idx.select(lambda r: r["area"] == "dispatch", provider="public(torch)"):
        direct = idx.get(rec, "reference-direct")
        if direct is None:
            continue
        autograd = bool(rec["params"].get("autograd", False))
        for prov in ("public(torch)", "public(auto)"):
            pub = idx.get(rec, prov)
            if pub is None:
                continue
            # Noise on a shared machine only adds time: the 20th percentiles compare the clean repetitions.
            diffs = [(pub["time_ms"][k] - direct["time_ms"][k]) * 1e3 for k in ("p20", "min", "median")]
            dispatch_rows[autograd].append(
                Row(
                    f"{rec['case']} {prov}",
                    diffs[0],
                    min(diffs),
                    max(diffs),
                    10.0 if autograd else 5.0,
                    higher_is_better=False,
                    unit="µs",
                    note="difference of the 20th percentiles of the two timings",
                    range_label="range over the differences of minima, p20s and medians",
                )
            )
    out.append(
        target(
            2,
            "dispatch-overhead",
            "Backend choice and argument checks add < 5 µs per call (public function vs its reference, CPU tensor)",
            "any",
            dev,
            dispatch_rows[False],
        )
    )
    out.append(
        target(
            2,
            "autograd-overhead",
            "With autograd recording (inputs that require grad), the public function adds ≤ 10 µs per call over "
            "the plain torch calls of its reference (CPU tensor)",
            "any",
            dev,
            dispatch_rows[True],
        )
    )

    # Issue 3: MultiScaleDiscriminator forward+backward (3 scales, batch 4, 512x512).
    def msd(r: Record, dtype: str, layout: str) -> bool:
        return (
            is_case(r, "discriminators", "multiscale", shape=MSD_TARGET_SHAPE, dtype=dtype, layout=layout)
            and r["mode"] == "forward+backward"
        )

    cpu_msd = idx.select(lambda r: msd(r, "float32", "contiguous"))
    note = ""
    if not cpu_msd and dev == "cpu":
        cpu_msd = idx.select(
            lambda r: (
                is_case(r, "discriminators", "multiscale", dtype="float32")
                and r["mode"] == "forward+backward"
            )
        )
        note = "measured at a smaller size than the target's 4×3×512×512"
    out.append(
        target(
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
    out += gpu_targets.multiscale_targets(idx, dev, gpu_msd)

    # Issue 4: R1 step and VGGLoss.
    def r1(r: Record, dtype: Optional[str] = None) -> bool:
        return (
            r["area"] == "penalties"
            and r["case"].startswith("r1/")
            and (dtype is None or r["params"]["dtype"] == dtype)
        )

    out.append(gpu_targets.r1_target(idx, dev, idx.select(r1)))

    def vgg(r: Record) -> bool:
        return (
            is_case(r, "losses", "vgg", dtype="bfloat16", layout="channels_last")
            and r["mode"] == "forward+backward"
        )

    out.append(
        target(
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
            lambda r: is_case(r, "losses", "vgg", dtype="float32") and r["mode"] == "forward+backward"
        )
    ]
    out.append(
        target(
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
