"""Read the analysis stage's JSON (cache/analysis/) for figures and prose. Plain JSON: never imports torch."""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis.core.paths import inside

from .registry import FigureContext

ROOT = "analysis"
MANIFEST = f"{ROOT}/manifest.json"
NEUTRAL = "#9467bd"  # a model the analysis gave no colour


def manifest(ctx: FigureContext) -> Mapping[str, Any]:
    """The analysis manifest; a figure reads it part by part (its cache entry depends on the models it reads, not
    on every model: article/figures/reads.py), prose data hooks whole."""
    return ctx.load_parts(MANIFEST) if ctx.figure_id else ctx.load_json(MANIFEST)


def required(ctx: FigureContext, params: dict[str, str], name: str) -> str:
    if not params.get(name):
        raise ctx.error(f"needs {name}=... (one of the analysed models: {', '.join(sorted(manifest(ctx)['models']))})")
    return params[name]


def model_entry(ctx: FigureContext, name: str) -> dict[str, Any]:
    models = manifest(ctx)["models"]
    if name not in models:
        raise ctx.error(f"model '{name}' is not in the analysis results (have: {', '.join(sorted(models))})")
    return models[name]


def tensor(ctx: FigureContext, model: str, tensor_id: str) -> dict[str, Any]:
    for entry in model_entry(ctx, model)["tensors"]:
        if entry["id"] == tensor_id:
            return with_arrays(ctx, entry["file"], ctx.load_json(f"{ROOT}/{entry['file']}"))
    raise ctx.error(f"model '{model}' has no analysed tensor '{tensor_id}'")


def analysis_file(ctx: FigureContext, rel: str) -> Any:
    return with_arrays(ctx, rel, ctx.load_json(f"{ROOT}/{rel}"))


def with_arrays(ctx: FigureContext, rel: str, data: Any) -> Any:
    """A tensor report whose large NMF loadings were saved beside it (analysis/tensor_stage.py: {"npy": name}) with
    them read back as nested lists, as if they had been in the JSON."""
    if not isinstance(data, dict):
        return data
    for key in ("nmf", "nmf_delta"):
        ref = (data.get(key) or {}).get("channels") if isinstance(data.get(key), dict) else None
        if isinstance(ref, dict) and "npy" in ref:
            import numpy as np

            folder = Path(ctx.cache_dir) / ROOT / Path(rel).parent
            path = inside(folder, ref["npy"])
            try:
                if path is None or path.parent != Path(os.path.realpath(folder)):
                    raise ValueError("the array's name leads out of its record's folder")
                channels = np.load(path, allow_pickle=False).tolist()
            except (OSError, ValueError):
                path = path or folder / str(ref["npy"])[:200]
                raise ctx.error(f"analysis array {path} is missing or damaged (run `python build.py --clean`)") from None
            data = {**data, key: {**data[key], "channels": channels}}
    return data


def cache_bytes(ctx: FigureContext, rel: str) -> bytes:
    """A PNG the analysis wrote (listed with its sha256 in the manifest, so the render cache sees changes)."""
    path = inside(ctx.cache_dir, rel)
    try:
        if path is None:
            raise OSError("the path leads out of the cache folder")
        return path.read_bytes()
    except OSError:
        path = path or Path(ctx.cache_dir) / str(rel)[:200]
        raise ctx.error(f"analysis image {path} is missing (run `python build.py --clean`)") from None


def image_asset(ctx: FigureContext, assets: dict[str, bytes], rel: str) -> str:
    """Put a cached PNG into the figure's data folder as WebP (a quarter of the bytes, same look at this size);
    return its URL relative to the page. The lossless PNGs stay in the analysis cache as the data of record."""
    from pathlib import PurePosixPath

    name = PurePosixPath(rel).stem + ".webp"
    if rel.startswith("analysis/"):
        name = "ex-" + name
    if name not in assets:
        assets[name] = webp(cache_bytes(ctx, rel))
    return ctx.asset_url(name)


def neuron_pictures(ctx: FigureContext, model: str) -> tuple[dict, dict]:
    """The model's feature visualizations by (layer, neuron) and its NMF factors' by (tensor, neuron): paths relative
    to the cache folder, from analysis/neuron_featureviz.py's listing ({}, {} when the model has none)."""
    entry = model_entry(ctx, model).get("neuron_featureviz")
    if not entry:
        return {}, {}
    listing = ctx.load_json(f"{ROOT}/{entry['file']}")
    return listing.get("layers") or {}, listing.get("factors") or {}


SKIP_WORDS = {"removed": "own weights, identity skip removed", "projection": "total, projection skip included"}
SKIP_SHORT = {"removed": "skip removed", "projection": "projection skip"}  # in menus and titles


def skip_words(entry: dict, short: bool = False) -> str:
    """What a tensor's numbers are of, where its block has a skip (a manifest entry's or record's `identity`): words
    to put beside its name, or "" for a tensor without one."""
    return (SKIP_SHORT if short else SKIP_WORDS).get(entry.get("identity", "none"), "")


def family(name: str) -> str:
    """lab-gap-s0 -> gap; other names stay."""
    if name.startswith("lab-"):
        return name.split("-")[1]
    return name


def r3(x: Any) -> Any:
    """Three significant digits keep the site's data files small without visible loss."""
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        return [r3(v) for v in x]
    x = float(x)
    if not math.isfinite(x):
        return None
    if x == 0:
        return 0
    return float(f"{x:.3g}")


def hexcolor(rgb: list[float]) -> str:
    r, g, b = (max(0, min(255, int(round(v * 255)))) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def label(man: dict[str, Any], model: str) -> str:
    """The model's display name, as its family in the analysis registry gives it."""
    return man["models"].get(model, {}).get("label", model)


def article_models(man: dict[str, Any]) -> list[str]:
    """The models a figure shows when the article names none: every zoo model (one lab network standing for the
    nine), never a bring-your-own model, which belongs to the article that declared it. Real networks first."""
    names = [n for n, e in man["models"].items() if e.get("family") != "bring-your-own"]
    return [n for n in names if not n.startswith("lab-")] + [n for n in names if n == "lab-gap-s0"]


def color(man: dict[str, Any], model: str) -> str:
    return man["models"].get(model, {}).get("color", NEUTRAL)


# Colours for models whose own colour another model in the same chart already has (Tableau 10, then 10 more).
SPARE_COLORS = ("#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d",
                "#bab0ac", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                "#17becf", "#393b79")


def palette(man: dict[str, Any], models: list[str]) -> dict[str, str]:
    """{label: colour} for the models of one chart, every label its own colour: a model keeps its family's colour
    unless a model before it has that colour (two bring-your-own models both get the neutral one), then it takes
    the first spare colour no label has."""
    out: dict[str, str] = {}
    for model in models:
        name = label(man, model)
        if name in out:
            continue  # the seeds of one lab variant share its label, and so its colour
        own = color(man, model)
        taken = set(out.values())
        out[name] = own if own not in taken else next(
            (c for c in SPARE_COLORS if c not in taken and c not in {color(man, m) for m in models}),
            next((c for c in SPARE_COLORS if c not in taken), own))
    return out


def webp(png: bytes, quality: int = 82) -> bytes:
    """Deterministic lossy WebP of a small PNG (no metadata)."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=quality, method=6)
    return buf.getvalue()
