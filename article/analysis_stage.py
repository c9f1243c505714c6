"""The build's analysis stage, seen from the render side: decide whether analyses must run, without torch.

Reads the `analysis:` section of site.yml and the bring-your-own `models:` of every article's front matter,
computes the torch-free fingerprint, and only when the cached manifest is stale imports `analysis.pipeline`
(which imports torch) to recompute. A content-only rebuild therefore never pays for importing torch.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .config import SiteConfig
from .errors import BuildError
from .frontmatter import parse

DEFAULTS: dict[str, Any] = {"models": [], "n_jobs": 2, "featureviz": {"size": 64, "steps": 256}, "lab": {}}


def byo_models(root: Path, config: SiteConfig) -> list[dict[str, Any]]:
    """Bring-your-own models named in articles' front matter: {name: {factory, weights, kwargs, image_size}}."""
    out = []
    for slug in config.articles:
        path = root / "content" / slug / "index.md"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # the render stage reports unreadable articles with their own message
        meta = parse(text, path).meta
        for name, spec in sorted((meta.models or {}).items()):
            if not isinstance(spec, dict) or not ({"factory", "weights"} & set(spec)):
                continue  # free-form model notes for figures, not a model to load
            if not isinstance(spec, dict) or not isinstance(spec.get("factory"), str) or ":" not in spec["factory"]:
                raise BuildError(f"front matter model '{name}' needs factory: 'package.module:callable'", path)
            if not isinstance(spec.get("weights"), str):
                raise BuildError(f"front matter model '{name}' needs weights: a file path", path)
            weights = (path.parent / spec["weights"]).resolve()
            out.append({"name": name, "factory": spec["factory"], "weights": str(weights),
                        "kwargs": spec.get("kwargs") or {}, "image_size": spec.get("image_size"),
                        "search_path": str(path.parent), "article": str(path)})
    return out


def analysis_config(root: Path, config: SiteConfig) -> dict[str, Any]:
    section = config.raw.get("analysis") or {}
    if not isinstance(section, dict):
        raise BuildError("field 'analysis' must be a mapping", root / "site.yml")
    cfg = {**DEFAULTS, **section}
    if not isinstance(cfg["models"], list):
        raise BuildError("field 'analysis.models' must be a list of model names", root / "site.yml")
    if os.environ.get("VW_JOBS"):
        cfg["n_jobs"] = int(os.environ["VW_JOBS"])
    cfg["byo"] = byo_models(root, config)
    return cfg


def needed(cfg: dict[str, Any]) -> bool:
    return bool(cfg["models"] or cfg["byo"])


def ensure_analysis(root: Path, config: SiteConfig, cache_dir: Path, *, progress: bool = True,
                    force: bool = False) -> str:
    """Run the analyses when their inputs changed; return 'fresh', 'computed' or 'none'."""
    cfg = analysis_config(root, config)
    if not needed(cfg):
        return "none"
    from analysis.fingerprint import fingerprint, manifest_is_fresh  # stdlib only: no torch

    extra = [Path(m["weights"]) for m in cfg["byo"]]
    # Bring-your-own factories are user code next to the article: their source is part of the inputs.
    extra += sorted(Path(m["search_path"]).glob("*.py")) if cfg["byo"] else []
    fp = fingerprint({k: v for k, v in cfg.items()}, extra)
    manifest = cache_dir / "analysis" / "manifest.json"
    if not force and manifest_is_fresh(manifest, fp):
        return "fresh"
    t0 = time.perf_counter()
    if progress:
        print("analysis: inputs changed, recomputing (cached entries are reused)", flush=True)
    from analysis.errors import AnalysisError
    from analysis.pipeline import AnalysisConfig, ModelSpec, run

    specs = [ModelSpec(name=m) for m in cfg["models"]]
    specs += [ModelSpec(name=m["name"], factory=m["factory"], weights=m["weights"], kwargs=m["kwargs"],
                        image_size=m["image_size"], search_path=m["search_path"]) for m in cfg["byo"]]
    acfg = AnalysisConfig(models=specs, cache_dir=cache_dir, n_jobs=int(cfg["n_jobs"]),
                          featureviz=dict(cfg["featureviz"]), lab=dict(cfg["lab"]), fingerprint=fp)
    try:
        run(acfg, progress=progress)
    except AnalysisError as exc:
        raise BuildError(str(exc)) from None
    if progress:
        print(f"analysis: done in {time.perf_counter() - t0:.1f} s", flush=True)
    return "computed"
