"""`data.vw.*` in article prose: every number the text quotes, taken from this build's analysis JSON."""
from __future__ import annotations

from typing import Any

from analysis.core import tv_weights  # torch-free: torchvision's official file names
from analysis.core.spec import EXAMPLES_SETTINGS  # torch-free: the analysis's own defaults

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
        # The articles' banding score: R and C of the NMF pictures, mean and spread over seeds.
        for key in ("R_nmf", "C_nmf", "R_nmf_delta", "C_nmf_delta"):
            if key in stats:
                v[key], v[key + "_sd"] = stats[key]["mean"], stats[key]["std"]
                v[key + "_min"], v[key + "_max"] = stats[key]["min"], stats[key]["max"]
        acc = stats.get("test_accuracy", {})
        v["acc_min"], v["acc_max"], v["acc_median"] = acc.get("min"), acc.get("max"), acc.get("median")
        if "R_delta" in stats and "C_delta" in stats:
            v["R_over_C_delta"] = stats["R_delta"]["mean"] / stats["C_delta"]["mean"]
            v["R_delta"], v["C_delta"] = stats["R_delta"]["mean"], stats["C_delta"]["mean"]
            v["C_over_R_delta"] = stats["C_delta"]["mean"] / stats["R_delta"]["mean"]
        out[variant] = v
    return out


def _ratio(t: dict | None) -> float | None:
    return t["R_layer"] / t["C_layer"] if t and t.get("C_layer") else None


def _baseline(t: dict | None) -> float | None:
    """Row share of random weights, (h-1)/(hw-1); none for a 1x1 kernel."""
    if not t or t["shape"][2] * t["shape"][3] <= 1:
        return None
    return (t["shape"][2] - 1) / (t["shape"][2] * t["shape"][3] - 1)


def _picture_scores(entry: dict, controls_max: float) -> dict[str, Any]:
    """The article's banding score, R and C of the NMF pictures, over the network's blocks (or its kernels where it
    has no blocks), with its stem and the blocks above the published unbanded controls (the one criterion the prose
    states: a score against its random baseline and the published marks, no ratio thresholds)."""
    tensors = [t for t in entry["tensors"] if t.get("R_nmf") is not None and t.get("kind") != "span"]
    blocks = [t for t in tensors if t.get("kind") == "block"] or tensors
    stem = next((t for t in tensors if t.get("kind", "kernel") == "kernel"), None)
    top_r = max(blocks, key=lambda t: t["R_nmf"], default=None)
    top_c = max(blocks, key=lambda t: t["C_nmf"], default=None)
    above = [t for t in blocks if t["R_nmf"] > controls_max]
    pick = lambda t, k: t[k] if t else None  # noqa: E731
    return {"pictures_R_max": pick(top_r, "R_nmf"), "pictures_R_max_label": pick(top_r, "layer"),
            "pictures_R_max_C": pick(top_r, "C_nmf"),
            "pictures_C_max": pick(top_c, "C_nmf"), "pictures_C_max_label": pick(top_c, "layer"),
            "pictures_C_max_R": pick(top_c, "R_nmf"),
            "pictures_above_controls": len(above), "pictures_above_controls_labels": [t["layer"] for t in above],
            "pictures_n": len(blocks),
            "pictures_last_R": pick(blocks[-1] if blocks else None, "R_nmf"),
            "pictures_last_C": pick(blocks[-1] if blocks else None, "C_nmf"),
            "stem_label": pick(stem, "label"), "stem_R": pick(stem, "R_nmf"), "stem_C": pick(stem, "C_nmf")}


def network(entry: dict | None) -> dict[str, Any]:
    """Numbers about one analysed network: its blocks' expanded weights and their banding."""
    if not entry:
        return {"available": False, "last_block_R": None}
    tensors = entry["tensors"]
    blocks = [t for t in tensors if t.get("kind") == "block" and t["source"] != "input"]
    last = blocks[-1] if blocks else None
    two = next((t for t in tensors if t.get("kind") == "span"), None)
    ratios = [_ratio(t) for t in blocks if _ratio(t) is not None]
    spatial = [t for t in tensors if t["shape"][2] * t["shape"][3] > 1 and t.get("kind") != "span"]
    final = spatial[-1] if spatial else None  # the last block, or the last conv of a network without blocks
    out = {"available": True, "label": entry.get("label"), "params": entry["info"].get("parameters"),
           "blocks": len(blocks), "n_tensors": len(tensors), "n_convs": len(entry["info"].get("conv_layers", [])),
           "baseline": _baseline(last),
           "top1": (entry["info"].get("accuracy") or {}).get("imagenet_top1_published"),
           "last_block_R": last["R_layer"] if last else None, "last_block_C": last["C_layer"] if last else None,
           "last_block_label": last["label"] if last else None,
           "last_block_weights": (lambda s: s[0] * s[1] * s[2] * s[3])(last["shape"]) if last else 0,
           "last_block_shape": "x".join(map(str, last["shape"])) if last else "",
           "two_block_support": two["shape"][2] if two else None,
           "last_R": final["R_layer"] if final else None, "last_C": final["C_layer"] if final else None,
           "last_ratio": _ratio(final), "last_label": final["label"] if final else None,
           "last_block_ratio": _ratio(last), "median_block_ratio": _median(ratios),
           "max_block_ratio": max(ratios) if ratios else None,
           "max_block_label": max(blocks, key=lambda t: _ratio(t) or 0)["layer"] if ratios else None,
           "two_block_label": two["label"] if two else None,
           "two_block_shape": "x".join(map(str, two["shape"])) if two else ""}
    out.update(_picture_scores(entry, _published()["controls_max"]))
    out.update(_layers(entry))
    return out


def _layers(entry: dict) -> dict[str, Any]:
    """What a section about one network quotes of particular layers: its weights file, its first layer, its featured
    NMF layers (by tensor id) and its first context pair."""
    by_id = {t["id"]: t for t in entry["tensors"]}
    first = by_id.get((entry.get("first_layer") or {}).get("layer"))
    context = by_id.get(((entry.get("context") or [{}])[0]).get("tensor"))
    shape = lambda t: "x".join(map(str, t["shape"])) if t else ""  # noqa: E731
    weights = str(entry["info"].get("weights") or "").replace("\\", "/").rsplit("/", 1)[-1]
    featured = {tid: {"label": by_id[tid]["label"], "shape": shape(by_id[tid]), "neurons": by_id[tid]["shape"][0],
                      "inputs": by_id[tid]["shape"][1], "R": by_id[tid].get("R_nmf"), "C": by_id[tid].get("C_nmf"),
                      "baseline": by_id[tid].get("R_baseline"), "nmf_error": by_id[tid].get("nmf_error")}
                for tid in entry.get("featured_nmf", []) if tid in by_id}
    arch = entry["info"].get("torchvision_arch")
    official = arch in tv_weights.ALL and weights == tv_weights.ALL[arch].filename  # torchvision's own file
    return {"weights_file": weights, "weights_official": official,
            "first_layer_label": first["label"] if first else None,
            "first_layer_shape": shape(first), "first_layer_filters": first["shape"][0] if first else None,
            "context_shape": shape(context),
            "featured": featured}


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    v = sorted(values)
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def _nmf(ctx: FigureContext, man: dict) -> dict[str, Any]:
    neurons = tensors = 0
    errors = []
    for model in (m for m in man["models"].values() if m.get("family") != "bring-your-own"):
        for t in model["tensors"]:
            if t.get("nmf_error") is not None:
                tensors += 1
                neurons += t["shape"][0]
                errors.append(t["nmf_error"])
    return {"neurons": neurons, "tensors": tensors, "mean_error": sum(errors) / len(errors) if errors else None}


def _published() -> dict[str, Any]:
    """The published layers' scores (bench/published_banding.py, on Petrov et al.'s own NMF pictures), by name, and
    the ranges the prose quotes: the banded ImageNet networks and the unbanded controls."""
    from .published_data import PUBLISHED

    nets = PUBLISHED["networks"]
    imagenet = [n["R"] for n in nets if n["role"] == "banded" and not n["network"].startswith("simplified")]
    controls = [n["R"] for n in nets if n["role"] == "control"]
    return {"nets": {n["network"]: n for n in nets}, "min_banded": min(imagenet), "max_banded": max(imagenet),
            "controls_min": min(controls), "controls_max": max(controls), "commit": PUBLISHED["commit"][:7]}


def _readings(ctx: FigureContext, man: dict) -> dict[str, dict]:
    """Each network's first worked reading (analysis/reading.py): the neuron and its strongest inputs by kernel norm,
    so prose about a connection names the ids and numbers the figure draws."""
    out: dict[str, dict] = {}
    for name, entry in man["models"].items():
        if name.startswith("lab-") or entry.get("family") == "bring-your-own":
            continue
        for c in entry.get("context", []):
            rec = ad.analysis_file(ctx, c["file"])
            for r in (rec.get("readings") or [])[:1]:
                out.setdefault(name, {"tensor": rec["tensor"], "lower": rec["lower"], "upper": rec["upper"],
                                      "neuron": r["neuron"], "channels": [i["channel"] for i in r["inputs"]],
                                      "inputs": {str(i["channel"]): {"sum": i["sum"], "l2": i["l2"]}
                                                 for i in r["inputs"]}})
    return out


@register_data("vw")
def numbers(ctx: FigureContext) -> dict[str, Any]:
    man = ad.manifest(ctx)
    unavailable = man.get("unavailable", {})
    fv = man.get("featureviz", {})
    return {
        "lab": _lab(ctx, man),
        # Every analysed network by name (the article names the ones it discusses), and why any is missing.
        "nets": {name: network(entry) for name, entry in man["models"].items() if not name.startswith("lab-")},
        "unavailable": unavailable,
        "nmf": _nmf(ctx, man),
        "readings": _readings(ctx, man),
        "featureviz": {"size": fv.get("size"), "steps": fv.get("steps"), "count": fv.get("count", 0)},
        "examples": _examples(ctx),
        "software": man.get("software", {}),
        "published": _published(),
        "models": sorted(man["models"]),
    }


def _examples(ctx: FigureContext) -> dict[str, Any]:
    """The dataset-example settings the analysis ran with: site.yml's analysis.examples over its defaults."""
    analysis = ctx.site.get("analysis") or {}
    given = analysis.get("examples") if hasattr(analysis, "get") else None
    settings = {**EXAMPLES_SETTINGS, **{k: v for k, v in (given or {}).items() if v is not None}}
    return {"top": settings["top"], "per_image": settings["per_image"]}


@register_data("report")
def report_numbers(ctx: FigureContext) -> dict[str, Any]:
    """Numbers for a generated weight report: the first bring-your-own model of the article's front matter."""
    models = ctx.article.get("models") or {}
    if not models:
        raise ctx.error("data.report needs a bring-your-own model in the front matter's `models:`")
    name = sorted(models)[0]
    entry = ad.model_entry(ctx, name)
    tensors = entry["tensors"]
    spatial = [t for t in tensors if t["shape"][2] * t["shape"][3] > 1]
    last = spatial[-1] if spatial else None
    man = ad.manifest(ctx)
    lab_gap = None
    if "lab_summary" in man:
        gap = ad.analysis_file(ctx, man["lab_summary"])["variants"].get("gap", {})
        if "R_nmf" in gap:  # the article's score: R of the NMF pictures, mean and spread over seeds
            lab_gap = {"R": gap["R_nmf"]["mean"], "R_sd": gap["R_nmf"]["std"], "n": gap.get("n")}
    convs = entry["info"].get("conv_layers", [])
    return {"name": name, "convs": len(convs), "tensors": len(tensors), "lab_gap": lab_gap,
            "params": entry["info"].get("parameters"), "blocks": network(entry)["blocks"],
            "last_label": last["label"] if last else None,
            "last_R": last["R_layer"] if last else None, "last_C": last["C_layer"] if last else None,
            "last_ratio": _ratio(last), "baseline": _baseline(last), "network": network(entry),
            "published": {k: v for k, v in _published().items() if k != "nets"}}
