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
from .frontmatter import parse, split
from .recipe_spec import field_lines, validate_recipe

DEFAULTS: dict[str, Any] = {"models": [], "n_jobs": 2, "featureviz": {"size": 64, "steps": 256}, "lab": {}}


def _model_lines(text: str, path: Path) -> dict[str, int]:
    """Front matter `models:` entry name -> file line (1-based), for error messages."""
    import yaml

    from .frontmatter import split

    yaml_text = split(text, path)[0]
    node = yaml.compose(yaml_text, Loader=yaml.SafeLoader)
    out: dict[str, int] = {}
    for key, value in node.value if isinstance(node, yaml.MappingNode) else []:
        if getattr(key, "value", None) == "models" and isinstance(value, yaml.MappingNode):
            out = {k.value: k.start_mark.line + 2 for k, _ in value.value if isinstance(k, yaml.ScalarNode)}
    return out  # +2: the YAML text starts on file line 2


def byo_models(root: Path, config: SiteConfig) -> list[dict[str, Any]]:
    """Bring-your-own models named in articles' front matter: {name: {factory, weights, kwargs, image_size}}.

    Checks what can be checked without torch (spec shape, weights file present and non-empty), so these
    mistakes fail fast with the article's file:line.
    """
    out = []
    for slug in config.articles:
        path = root / "content" / slug / "index.md"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # the render stage reports unreadable articles with their own message
        meta = parse(text, path).meta
        lines = _model_lines(text, path) if meta.models else {}
        fields = field_lines(split(text, path)[0]) if meta.models else {}
        for name, spec in sorted((meta.models or {}).items()):
            if not isinstance(spec, dict) or not ({"factory", "weights"} & set(spec)):
                continue  # free-form model notes for figures, not a model to load

            def fail(msg: str) -> BuildError:
                return BuildError(f"front matter model '{name}' {msg}", path, lines.get(str(name)))

            factory = spec.get("factory")
            if not isinstance(factory, str) or factory.count(":") != 1 or not all(factory.split(":")):
                raise fail(f"needs factory: 'package.module:callable', got {factory!r}")
            if not isinstance(spec.get("weights"), str) or not spec["weights"].strip():
                raise fail("needs weights: a file path relative to the article")
            if not isinstance(spec.get("kwargs") or {}, dict):
                raise fail(f"kwargs must be a mapping, got {type(spec['kwargs']).__name__}")
            size = spec.get("image_size")
            if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 1024):
                raise fail(f"image_size must be an integer from 8 to 1024, got {size!r:.40}")
            weights = (path.parent / spec["weights"]).resolve()
            if not weights.is_file():
                raise fail(f"weights file {weights} not found")
            if weights.stat().st_size == 0:
                raise fail(f"weights file {weights} is empty (0 bytes)")
            dataset = spec.get("dataset", "photos")
            if dataset not in ("photos", "mnist"):
                raise BuildError(f"front matter model '{name}': dataset must be 'photos' or 'mnist', got {dataset!r}",
                                 path, lines.get(str(name)))
            def fail_at(msg: str, field: str | None) -> BuildError:
                line = fields.get((str(name), field)) if field else None
                return BuildError(f"front matter model '{name}' {msg}", path, line or lines.get(str(name)))

            recipe = validate_recipe(spec.get("recipe"), fail_at)
            out.append({"name": name, "factory": factory, "weights": str(weights), "dataset": dataset,
                        "kwargs": spec.get("kwargs") or {}, "image_size": size, "recipe": recipe,
                        "search_path": str(path.parent), "article": str(path), "line": lines.get(str(name))})
    return out


def _attributed(exc: Exception, byo: list[dict[str, Any]]) -> BuildError:
    """A BuildError for an analysis failure; one about a bring-your-own model (the error says which) also names
    the article (file:line) whose front matter declared it, so the author knows where to look."""
    message = str(exc)
    for m in byo:
        if getattr(exc, "model", None) == m["name"]:
            return BuildError(f"front matter model '{m['name']}': {message}", m["article"], m["line"])
    return BuildError(message)


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
    for folder in sorted({m["search_path"] for m in cfg["byo"]}):
        extra += sorted(Path(folder).glob("*.py"))
    fp = fingerprint(cfg, extra)
    manifest = cache_dir / "analysis" / "manifest.json"
    if not force and manifest_is_fresh(manifest, fp):
        return "fresh"
    try:  # fail before importing torch when the cache cannot be written (e.g. --cache-dir below a file)
        (cache_dir / "analysis").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in [cache_dir, *cache_dir.parents] if p.exists()), cache_dir)
        why = "is a file, not a folder" if not blocker.is_dir() else f"cannot be written to ({exc.strerror or exc})"
        raise BuildError(f"cannot write the analysis cache {cache_dir}: {blocker} {why}", blocker) from None
    t0 = time.perf_counter()
    if progress:
        print("analysis: no results cached yet, computing from nothing (a few minutes on 2 cores)"
              if not manifest.exists() else
              "analysis: inputs changed, recomputing (cached entries are reused)", flush=True)
    from analysis.errors import AnalysisError
    from analysis.pipeline import AnalysisConfig, ModelSpec, run

    # A lab model named on its own gets dataset examples from the digits it was trained on, as in "banding-lab".
    specs = [ModelSpec(name=m, dataset="mnist" if m.startswith("lab-") else "photos") for m in cfg["models"]]
    specs += [ModelSpec(name=m["name"], factory=m["factory"], weights=m["weights"], kwargs=m["kwargs"],
                        image_size=m["image_size"], search_path=m["search_path"], dataset=m["dataset"],
                        recipe=m["recipe"]) for m in cfg["byo"]]
    acfg = AnalysisConfig(models=specs, cache_dir=cache_dir, n_jobs=int(cfg["n_jobs"]),
                          featureviz=dict(cfg["featureviz"]), lab=dict(cfg["lab"]), fingerprint=fp)
    try:
        run(acfg, progress=progress)
    except AnalysisError as exc:
        raise _attributed(exc, cfg["byo"]) from None
    if progress:
        print(f"analysis: done in {time.perf_counter() - t0:.1f} s", flush=True)
    return "computed"
