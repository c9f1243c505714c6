"""The banding lab's statistics: banding of the last conv for every variant and seed, summarized per variant."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.core import jsonio
from analysis.tensor_report import SCHEMA, nmf_banding


def lab_summary(root: Path, entries: dict[str, list[dict]], cache_dir: Path, lab_cfg: dict,
                photo_names: list[str]) -> dict:
    """The controlled experiment: banding of the last conv for every variant and seed."""
    from analysis.core import data, image_sets
    from analysis.models import lab

    manifest = jsonio.read_json(cache_dir / lab.LAB_SUBDIR / lab.MANIFEST) or []
    rows = []
    for item in manifest:
        name = f"lab-{item['variant']}-s{item['seed']}"
        if name not in entries:
            continue
        layer = item["last_conv"].rsplit(".", 1)[0]
        own = next(e for e in entries[name] if e["layer"] == layer and e.get("source") is None)
        report = jsonio.read_json(root / own["file"])
        rows.append({
            "model": name, "variant": item["variant"], "seed": item["seed"], "layer": layer,
            "test_accuracy": item.get("test_accuracy"),
            "R": report["banding"]["R_layer"], "C": report["banding"]["C_layer"],
            "R_delta": report.get("banding_delta", {}).get("R_layer"),
            "C_delta": report.get("banding_delta", {}).get("C_layer"),
            "baseline_R": report["banding"]["baseline_R"],
            **nmf_banding(report),  # R_nmf, C_nmf (+ _delta): the score the article compares
        })
    config = lab.LabConfig.from_json(lab_cfg)
    summary: dict = {"schema": SCHEMA, "rows": rows, "variants": {}, "config": {
        "steps": config.steps, "weight_decay": config.weight_decay, "input_size": config.input_size,
        "widths": "-".join(map(str, config.widths)), "side": config.input_size // 4, "n_train": config.n_train,
        "n_test": config.n_test, "batch_size": config.batch_size, "lr": config.lr, "task": lab.TASK,
        "n_photos_shipped": len(photo_names), "n_digits_shipped": len(data.mnist_arrays()[0]),
        "n_photo_set": len(image_sets.resolve("photos").items),  # what the ImageNet networks' examples come from
        "n_digit_examples": len(data.DATASETS[lab.DATASET]())}}  # no wall-clock times: the site must be byte-reproducible
    for variant in ("gap", "flatten", "rotated"):
        sel = [r for r in rows if r["variant"] == variant]
        if not sel:
            continue
        stats = {}
        for field_ in ("R", "C", "R_delta", "C_delta", "R_nmf", "C_nmf", "R_nmf_delta", "C_nmf_delta",
                       "test_accuracy"):
            vals = np.array([r[field_] for r in sel if r.get(field_) is not None], dtype=float)
            if vals.size:
                stats[field_] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if vals.size > 1 else 0.0,
                                 "min": float(vals.min()), "max": float(vals.max()), "median": float(np.median(vals))}
        r, c = stats["R"]["mean"], stats["C"]["mean"]
        stats["R_over_C"] = r / c if c else None
        stats["C_over_R"] = c / r if r else None
        # The lab's claim is per seed: the median over seeds of each network's own ratio (W, then W - W_init).
        for suffix in ("", "_delta"):
            pairs = [(x["R" + suffix], x["C" + suffix]) for x in sel if x["R" + suffix] and x["C" + suffix]]
            if pairs:
                stats["median_R_over_C" + suffix] = float(np.median([a / b for a, b in pairs]))
                stats["median_C_over_R" + suffix] = float(np.median([b / a for a, b in pairs]))
        stats["n"] = len(sel)
        summary["variants"][variant] = stats
    return summary
