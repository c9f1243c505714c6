"""Read the analysis stage's JSON (cache/analysis/) for figures and prose. Plain JSON: never imports torch."""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis.paths import inside

from .registry import FigureContext

ROOT = "analysis"
MANIFEST = f"{ROOT}/manifest.json"
NEUTRAL = "#9467bd"  # a model the analysis gave no colour


def manifest(ctx: FigureContext) -> Mapping[str, Any]:
    """The analysis manifest; a figure reads it part by part (its cache entry depends on the models it reads, not
    on every model: article/reads.py), prose data hooks whole."""
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


def webp(png: bytes, quality: int = 82) -> bytes:
    """Deterministic lossy WebP of a small PNG (no metadata)."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=quality, method=6)
    return buf.getvalue()
