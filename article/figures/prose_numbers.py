"""`data.vw.*` in article prose: every number the text quotes, taken from this build's analysis JSON."""
from __future__ import annotations

from typing import Any

from . import analysis_data as ad
from .registry import FigureContext, register_data


def _lab(ctx: FigureContext, man: dict) -> dict[str, Any]:
    if "lab_summary" not in man:
        return {"n_models": 0}
    summary = ad.analysis_file(ctx, man["lab_summary"])
    out: dict[str, Any] = {"n_models": len(summary["rows"]), **summary.get("config", {})}
    accs = [r["test_accuracy"] for r in summary["rows"] if r.get("test_accuracy") is not None]
    out["acc_min"], out["acc_max"] = (min(accs), max(accs)) if accs else (None, None)
    out["baseline_R"] = summary["rows"][0]["baseline_R"] if summary["rows"] else None
    seeds = {r["seed"] for r in summary["rows"]}
    out["n_seeds"] = len(seeds)
    for variant, stats in summary["variants"].items():
        v = {"R": stats["R"]["mean"], "C": stats["C"]["mean"], "R_sd": stats["R"]["std"],
             "R_over_C": stats["R_over_C"], "C_over_R": stats["C_over_R"]}
        # Per-seed ratios, median over seeds (the lab's stated claim), and the variant's accuracy beside them.
        for key in ("median_R_over_C", "median_C_over_R", "median_R_over_C_delta", "median_C_over_R_delta"):
            v[key] = stats.get(key)
        acc = stats.get("test_accuracy", {})
        v["acc_min"], v["acc_max"], v["acc_median"] = acc.get("min"), acc.get("max"), acc.get("median")
        if "R_delta" in stats and "C_delta" in stats:
            v["R_over_C_delta"] = stats["R_delta"]["mean"] / stats["C_delta"]["mean"]
            v["R_delta"], v["C_delta"] = stats["R_delta"]["mean"], stats["C_delta"]["mean"]
            v["C_over_R_delta"] = stats["C_delta"]["mean"] / stats["R_delta"]["mean"]
        out[variant] = v
    return out


def _effnet(ctx: FigureContext, man: dict) -> dict[str, Any]:
    entry = man["models"].get("efficientnet-lite0")
    if not entry:
        return {"available": False, "last_block_R": None}
    tensors = entry["tensors"]
    blocks = [t for t in tensors if t["source"] and t["id"].count("_blocks.") <= 2 and t["label"].startswith("block ")]
    last = blocks[-1] if blocks else None
    two = next((t for t in tensors if t["label"].startswith("blocks ")), None)
    out = {"available": True, "params": entry["info"].get("parameters"), "blocks": len(blocks),
           "last_block_R": last["R_layer"] if last else None, "last_block_C": last["C_layer"] if last else None,
           "last_block_label": last["label"] if last else None,
           "last_block_weights": (lambda s: s[0] * s[1] * s[2] * s[3])(last["shape"]) if last else 0,
           "last_block_shape": "x".join(map(str, last["shape"])) if last else "",
           "two_block_support": two["shape"][2] if two else None,
           "last_block_ratio": (last["R_layer"] / last["C_layer"]) if last and last["C_layer"] else None,
           "median_block_ratio": _median([t["R_layer"] / t["C_layer"] for t in blocks if t["C_layer"]]),
           "two_block_label": two["label"] if two else None}
    return out


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    v = sorted(values)
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def _nmf(ctx: FigureContext, man: dict) -> dict[str, Any]:
    neurons = tensors = 0
    errors = []
    for model in man["models"].values():
        for t in model["tensors"]:
            if t.get("nmf_error") is not None:
                tensors += 1
                neurons += t["shape"][0]
                errors.append(t["nmf_error"])
    return {"neurons": neurons, "tensors": tensors, "mean_error": sum(errors) / len(errors) if errors else None}


def _published() -> dict[str, float]:
    """Range of the row shares read off the published NMF pictures of large banded ImageNet models."""
    from .published import PUBLISHED

    banded = [r for name, r in PUBLISHED if name in ("InceptionV1 mixed5b", "ResNet50 block4", "VGG19 conv5")]
    return {"min_banded": min(banded), "max_banded": max(banded)}


def _digit(man: dict) -> dict[str, Any] | None:
    entry = man["models"].get("digitnet")
    if not entry or not entry["tensors"]:
        return None
    last = entry["tensors"][-1]
    return {"R": last["R_layer"], "C": last["C_layer"], "ratio": last["R_layer"] / last["C_layer"]}


@register_data("vw")
def numbers(ctx: FigureContext) -> dict[str, Any]:
    man = ad.manifest(ctx)
    unavailable = man.get("unavailable", {})
    fv = man.get("featureviz", {})
    return {
        "lab": _lab(ctx, man),
        "effnet": _effnet(ctx, man),
        "nmf": _nmf(ctx, man),
        "inception": {"available": "inceptionv1" in man["models"],
                      "reason": unavailable.get("inceptionv1", "not requested by the site config.")},
        "featureviz": {"size": fv.get("size"), "steps": fv.get("steps"), "count": fv.get("count", 0)},
        "software": man.get("software", {}),
        "digit": _digit(man),
        "published": _published(),
        "models": sorted(man["models"]),
    }


@register_data("report")
def report_numbers(ctx: FigureContext) -> dict[str, Any]:
    """Numbers for a generated weight report: the first bring-your-own model of the article's front matter."""
    models = ctx.article.get("models") or {}
    if not models:
        raise ctx.error("data.report needs a bring-your-own model in the front matter's `models:`")
    name = sorted(models)[0]
    entry = ad.model_entry(ctx, name)
    tensors = entry["tensors"]
    last = tensors[-1] if tensors else None
    man = ad.manifest(ctx)
    lab_gap = None
    if "lab_summary" in man:
        variants = ad.analysis_file(ctx, man["lab_summary"])["variants"]
        lab_gap = variants.get("gap", {}).get("R_over_C")
    return {"name": name, "convs": len(tensors), "lab_gap": lab_gap, "params": entry["info"].get("parameters"),
            "last_R": last["R_layer"] if last else None, "last_C": last["C_layer"] if last else None,
            "baseline": ((last["shape"][2] - 1) / (last["shape"][2] * last["shape"][3] - 1)) if last else None}
