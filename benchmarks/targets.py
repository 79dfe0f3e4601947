"""The speed targets of the issues (#2 fused ops, #3 discriminators, #4 losses, #21 metrics), read off a results file.

Each target names the records it reads (area, row name, mode, device, a parameter filter), what they are
compared with (a provider's median, the saved or peak memory, a copy's time) and the required ratio. A ratio
whose interquartile interval straddles the requirement is "within noise".
"""

from __future__ import annotations

from typing import Any

# (issue, device, what, area, names, mode, params, against, metric, required)
# metric "speed": against's median / ganblocks'; "memory": ganblocks' peak / against's (at most required);
# "bandwidth": the copy's median / ganblocks' forward (the ops move what a copy of their input moves).
TARGETS: list[tuple[int, str, str, str, tuple[str, ...], str, dict[str, Any], str, str, float]] = [
    (2, "cuda", "fused ops fwd+bwd ≥ 1.5× plain eager (bfloat16)", "ops", ("bias_act", "pixel_norm",
     "instance_norm_act", "adain", "inject_noise", "minibatch_stddev"), "fwd+bwd", {"dtype": "bfloat16"}, "plain", "speed", 1.5),
    (2, "cuda", "fused ops fwd+bwd no slower than torch.compile of plain (bfloat16)", "ops", ("bias_act", "pixel_norm",
     "instance_norm_act", "adain", "inject_noise", "minibatch_stddev"), "fwd+bwd", {"dtype": "bfloat16"}, "compile", "speed", 1.0),
    (2, "cuda", "fused ops forward ≥ 80% of the bandwidth of a copy of the input (bfloat16)", "ops", ("bias_act",
     "pixel_norm", "instance_norm_act", "adain", "inject_noise", "minibatch_stddev"), "forward", {"dtype": "bfloat16"}, "copy", "bandwidth", 0.8),
    (2, "cpu", "fused ops fwd+bwd no slower than plain (torch path)", "ops", ("bias_act", "pixel_norm", "instance_norm_act",
     "adain", "inject_noise", "minibatch_stddev"), "fwd+bwd", {}, "plain", "speed", 1.0),
    (3, "cpu", "MultiScaleDiscriminator fwd+bwd (batch 4, 512×512) no slower than pix2pixHD's", "discriminators",
     ("multiscale",), "fwd+bwd", {"shape": [4, 3, 512, 512]}, "plain", "speed", 1.0),
    (3, "cuda", "MultiScaleDiscriminator fwd+bwd (4×3×512×512 bfloat16 channels_last) ≥ 1.2× pix2pixHD's", "discriminators",
     ("multiscale",), "fwd+bwd", {"shape": [4, 3, 512, 512], "dtype": "bfloat16"}, "plain", "speed", 1.2),
    (3, "cuda", "MultiScaleDiscriminator fwd+bwd peak memory ≤ 0.8× pix2pixHD's", "discriminators", ("multiscale",),
     "fwd+bwd", {"shape": [4, 3, 512, 512], "dtype": "bfloat16"}, "plain", "memory", 0.8),
    (4, "cuda", "R1 step ≥ 1.3× the plain formulation", "penalties", ("r1/style", "r1/multiscale"), "step", {}, "plain", "speed", 1.3),
    (4, "cuda", "VGGLoss fwd+bwd (bfloat16 channels_last) ≥ 1.2× pix2pixHD's", "losses", ("vgg",), "fwd+bwd", {}, "plain", "speed", 1.2),
    (4, "cpu", "R1 step and VGGLoss fwd+bwd no slower than plain", "", ("r1/style", "r1/multiscale", "vgg"), "", {}, "plain", "speed", 1.0),
    (21, "cpu", "frechet_distance of 2048×2048 covariances ≥ 2× pytorch-fid's scipy sqrtm", "metrics", ("frechet_distance",),
     "forward", {"dim": 2048}, "plain", "speed", 2.0),
]  # fmt: skip


def _ratio(g: dict[str, Any], b: dict[str, Any], metric: str) -> tuple[float, float, float]:
    """The ratio and its interval from the two interquartile ranges (median ± IQR/2)."""
    if metric == "memory":
        r = g["peak_bytes"] / b["peak_bytes"]
        return r, r, r
    lo_g, hi_g = g["median_ms"] - g["iqr_ms"] / 2, g["median_ms"] + g["iqr_ms"] / 2
    lo_b, hi_b = b["median_ms"] - b["iqr_ms"] / 2, b["median_ms"] + b["iqr_ms"] / 2
    return b["median_ms"] / g["median_ms"], lo_b / hi_g, hi_b / max(lo_g, 1e-12)


def evaluate(doc: dict[str, Any]) -> list[dict[str, Any]]:
    recs, device = doc["results"], doc["meta"]["device"]
    out = []
    for issue, dev, what, area, names, mode, params, against, metric, required in TARGETS:
        if dev != device:
            continue
        rows = []
        for g in recs:
            if (g["provider"] != "ganblocks" or g["name"] not in names or (area and g["area"] != area)
                    or (mode and g["mode"] != mode) or "median_ms" not in g
                    or any(g["params"].get(k) != v for k, v in params.items())):  # fmt: skip
                continue
            b = next((r for r in recs if r["row"] == g["row"] and r["mode"] == g["mode"] and r["provider"] == against
                      and "median_ms" in r), None)  # fmt: skip
            if b is None or (metric == "memory" and not (g.get("peak_bytes") and b.get("peak_bytes"))):
                continue
            r, lo, hi = _ratio(g, b, metric)
            ok = r <= required if metric == "memory" else r >= required
            noise = lo < required < hi
            rows.append({"row": g["row"], "mode": g["mode"], "ratio": round(r, 3), "interval": [round(lo, 3), round(hi, 3)],
                         "status": "within noise" if noise and not ok else "met" if ok else "missed"})  # fmt: skip
        statuses = {r["status"] for r in rows}
        status = "not measured" if not rows else "missed" if "missed" in statuses else (
            "within noise" if "within noise" in statuses else "met")  # fmt: skip
        detail = (
            ", ".join(f"{r['row']} {r['ratio']:.2f}× ({r['status']})" for r in rows) or "no matching rows"
        )
        out.append(
            {
                "issue": issue,
                "what": what,
                "required": required,
                "status": status,
                "detail": detail,
                "rows": rows,
            }
        )
    return out
