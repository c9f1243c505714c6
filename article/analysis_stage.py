"""The build's analysis stage, seen from the render side: decide whether analyses must run, without torch.

Reads the `analysis:` section of site.yml and the bring-your-own `models:` of every article's front matter
(byo_spec.py), computes the torch-free fingerprint, and only when the cached manifest is stale imports
`analysis.pipeline` (which imports torch) to recompute. A content-only rebuild therefore never pays for importing torch.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from analysis.core.spec import BACKENDS, DEVICES, NAMED_DATASETS, SITE_FEATUREVIZ

from .config.byo_spec import byo_models
from .config.dataset_spec import check_dataset, check_examples, site_line
from .config.recipe_spec import FIELDS as RECIPE_FIELDS, validate_recipe
from .config.site import SiteConfig
from .structure.errors import BuildError

DEFAULTS: dict[str, Any] = {"models": [], "n_jobs": 2, "featureviz": dict(SITE_FEATUREVIZ), "lab": {},
                            "featureviz_budget": {}, "backend": "local", "scheduler": None, "device": "auto",
                            "dataset": "photos", "examples": {}, "recipes": {}}
RUNTIME = ("backend", "scheduler", "device")  # where the analysis runs; build.py's flags override site.yml's


def _attributed(exc: Exception, root: Path, byo: list[dict[str, Any]], recipes: dict | None = None) -> BuildError:
    """A BuildError for an analysis failure, placed by the error's own `model` and `field`: a bring-your-own model's
    at the article (file:line of the field) whose front matter declared it, a site.yml setting's at site.yml."""
    message, model, field = str(exc), getattr(exc, "model", None), getattr(exc, "field", None)
    for m in byo:
        if model == m["name"]:
            line = m.get("field_lines", {}).get(field or "") or m["line"]
            return BuildError(f"front matter model '{m['name']}': {message}", m["article"], line)
    if model is not None and field in ("recipe", *RECIPE_FIELDS) and model in (recipes or {}):  # analysis.recipes
        return BuildError(f"field 'analysis.recipes.{model}': {message}", root / "site.yml", site_line(root, "recipes"))
    if model is not None:  # a model named in site.yml's analysis.models
        return BuildError(f"analysis.models: model '{model}': {message}", root / "site.yml")
    if field is not None and field.startswith("analysis."):
        return BuildError(f"{field}: {message}", root / "site.yml")
    return BuildError(message)


def analysis_config(root: Path, config: SiteConfig, jobs: int | None = None, yaml_cache: Path | None = None,
                    **runtime: str | None) -> dict[str, Any]:
    """site.yml's `analysis:` section checked, with defaults, the bring-your-own models of every article, and
    `jobs` (the build's --jobs) in place of `n_jobs` when given; `runtime`: --backend, --scheduler, --device
    (None: site.yml's)."""
    section = config.raw.get("analysis") or {}
    if not isinstance(section, dict):
        raise BuildError("field 'analysis' must be a mapping", root / "site.yml")
    cfg = {**DEFAULTS, **section}
    site = root / "site.yml"
    if not isinstance(cfg["models"], list) or not all(isinstance(m, str) for m in cfg["models"]):
        raise BuildError("field 'analysis.models' must be a list of model names", site)

    def count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1

    if not count(cfg["n_jobs"]):
        raise BuildError(f"field 'analysis.n_jobs' must be a positive integer, got {cfg['n_jobs']!r}", site)
    if jobs is not None:
        if not count(jobs):
            raise BuildError(f"--jobs must be a positive integer, got {jobs!r}")
        cfg["n_jobs"] = jobs
    fv = cfg["featureviz"]
    if not isinstance(fv, dict) or set(fv) - {"size", "steps"} or not all(count(v) for v in fv.values()):
        raise BuildError("field 'analysis.featureviz' must be a mapping {size: pixels, steps: optimization steps} "
                         f"of positive integers, got {fv!r}", site)
    cfg["featureviz"] = {**DEFAULTS["featureviz"], **fv}
    budget = cfg["featureviz_budget"]
    if budget != "all" and (not isinstance(budget, dict) or set(budget) - {"count", "seconds"} or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in budget.values())):
        raise BuildError("field 'analysis.featureviz_budget' must be a mapping {count: pictures in all, "
                         f"seconds: rendering time per build}} of numbers >= 0, or all, got {budget!r}", site)
    cfg.update({k: v for k, v in runtime.items() if v is not None})
    if cfg["backend"] not in BACKENDS:
        raise BuildError(f"field 'analysis.backend' must be one of {', '.join(BACKENDS)}, got {cfg['backend']!r}", site)
    if cfg["scheduler"] is not None and not isinstance(cfg["scheduler"], str):
        raise BuildError(f"field 'analysis.scheduler' must be an address such as tcp://host:8786, got "
                         f"{cfg['scheduler']!r}", site)
    if cfg["device"] not in DEVICES:
        raise BuildError(f"field 'analysis.device' must be one of {', '.join(DEVICES)}, got {cfg['device']!r}", site)
    if cfg["backend"] == "dask" and not cfg["scheduler"]:  # checked on every build, not only when analyses run
        raise BuildError("analysis backend 'dask' needs the scheduler's address (site.yml analysis: scheduler: "
                         "tcp://host:8786, or --scheduler)", None if runtime.get("backend") else site)
    if not isinstance(cfg["lab"], dict):
        raise BuildError(f"field 'analysis.lab' must be a mapping of LabConfig fields, got {cfg['lab']!r}", site)
    cfg["examples"] = check_examples(cfg["examples"], site)
    cfg["recipes"] = _check_recipes(cfg["recipes"], cfg["models"], root)
    cfg["dataset"], signature = check_dataset(cfg["dataset"], root, site, "analysis.dataset",
                                                lambda: site_line(root, "dataset"))
    unknown = sorted(set(section) - set(DEFAULTS))
    if unknown:
        raise BuildError(f"field 'analysis' has unknown key(s) {', '.join(map(str, unknown))} "
                         f"(known: {', '.join(DEFAULTS)})", site)
    cfg["byo"] = byo_models(root, config, yaml_cache)
    # Folder datasets by their listing (names, sizes, times): an added image makes the analysis look again.
    cfg["dataset_signatures"] = {k: v for k, v in [(cfg["dataset"], signature)] + [
        (m["dataset"], m.get("dataset_signature")) for m in cfg["byo"]] if v}
    return cfg


def _check_recipes(value: Any, models: list[str], root: Path) -> dict[str, dict]:
    """site.yml's `analysis.recipes`: {zoo model: recipe}, the same fields a front-matter model's `recipe:` takes
    (article/config/recipe_spec.py), for a model of `analysis.models`; the banding lab's recipe is its experiment, fixed."""
    site = root / "site.yml"
    if not isinstance(value, dict):
        raise BuildError(f"field 'analysis.recipes' must be a mapping of model name to recipe, got {value!r:.80}", site,
                         site_line(root, "recipes"))
    out = {}
    for name, recipe in value.items():
        if name not in models or str(name).startswith("lab-") or name == "banding-lab":
            raise BuildError(f"field 'analysis.recipes' names {name!r}, which is not a pretrained model of "
                             "analysis.models (the banding lab's recipe is fixed)", site, site_line(root, "recipes"))
        out[name] = validate_recipe(recipe, lambda message, field, name=name: BuildError(
            f"field 'analysis.recipes.{name}': {message}", site, site_line(root, "recipes"))) or None
    out = {k: v for k, v in out.items() if v}  # an empty recipe is the default one: the same key, nothing recomputed
    return out


# What `--clean` deletes: everything the build computed, so that every analysis and every render is made again,
# except the banding lab's trained weights (analysis.models.lab.LAB_SUBDIR: minutes of training, reused when intact,
# as README says). Named one by one, not "all but": a --cache-dir may hold other things.
DERIVED = ("analysis", "featureviz", "render")  # and the two memos of file digests and parsed imports


def clean(cache_dir: Path) -> None:
    """Delete what ``--clean`` recomputes (``DERIVED`` and the memos) from the cache folder."""
    import shutil

    from analysis.core import codekey, fingerprint

    for name in (*DERIVED, fingerprint.MEMO_NAME, codekey.MEMO_NAME):
        path = Path(cache_dir) / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


HOW = frozenset({"n_jobs", *RUNTIME})  # how and where the analyses run, never their results: not in the fingerprint


def _fingerprint_config(root: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """The analysis config as the freshness check sees it: no absolute paths and no article lines (a copied project
    or an edit above the models: entry is still fresh); weights and factory files are hashed by content."""
    def rel(p: str | None) -> str | None:
        if p is None:
            return None
        try:
            return Path(p).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return Path(p).name  # outside the project: its content (hashed separately) decides

    signatures = cfg.get("dataset_signatures") or {}

    def data(v: str) -> str:
        return v if v in NAMED_DATASETS else f"folder:{signatures.get(v)}"

    byo = [{k: (rel(v) if k in ("weights", "search_path") else data(v) if k == "dataset" else v)
            for k, v in m.items() if k not in ("article", "line", "dataset_signature")} for m in cfg["byo"]]
    out = {**{k: v for k, v in cfg.items() if k not in ("byo", "dataset_signatures", "dataset") and k not in HOW},
           "dataset": data(cfg.get("dataset", "photos")), "byo": byo}
    if cfg.get("device") == "cuda" and not cfg.get("featureviz_budget"):
        # A GPU without a budget renders every neuron (analysis/pipeline.py): a result, not only where it runs.
        # (`auto` cannot be resolved without torch; the analysis's own keys cover it once it runs.)
        out["featureviz_budget"] = "all"
    return out


def needed(cfg: dict[str, Any]) -> bool:
    return bool(cfg["models"] or cfg["byo"])


def inputs_fingerprint(root: Path, cfg: dict[str, Any], memo: Any = None) -> str:
    """The fingerprint of everything the analyses read (config, code, weights, bring-your-own factories); file
    digests through ``memo`` (analysis.core.fingerprint.DigestMemo) when given."""
    from analysis.core.fingerprint import factory_code, fingerprint  # stdlib only: no torch

    extra = [Path(m["weights"]) for m in cfg["byo"]]
    # Bring-your-own factories are user code: their source (a package's too) is part of the inputs.
    extra += sorted({p for m in cfg["byo"] for p in factory_code(m["factory"], m["search_path"])})
    return fingerprint(_fingerprint_config(root, cfg), extra, root, memo)


def _is_fresh(root: Path, cfg: dict[str, Any], cache_dir: Path) -> tuple[bool, str]:
    """(the cached manifest is fresh, the inputs' fingerprint); file digests through the cache's stat memo."""
    from analysis.core.fingerprint import MEMO_NAME, DigestMemo, manifest_is_fresh

    memo = DigestMemo(Path(cache_dir) / MEMO_NAME)
    fp = inputs_fingerprint(root, cfg, memo)
    try:
        return manifest_is_fresh(Path(cache_dir) / "analysis" / "manifest.json", fp, memo), fp
    finally:
        memo.save()


def analysis_state(root: Path, config: SiteConfig, cache_dir: Path, jobs: int | None = None,
                   yaml_cache: Path | None = None, **runtime: str | None) -> str:
    """The torch-free freshness check: 'none' (no models configured), 'fresh' (the cached manifest carries the
    fingerprint of the current inputs and every file it lists is intact) or 'stale' (the analyses must run)."""
    cfg = analysis_config(root, config, jobs, yaml_cache, **runtime)
    if not needed(cfg):
        return "none"
    return "fresh" if _is_fresh(root, cfg, cache_dir)[0] else "stale"


def ensure_analysis(root: Path, config: SiteConfig, cache_dir: Path, *, progress: bool = True, debug: bool = False,
                    force: bool = False, jobs: int | None = None, yaml_cache: Path | None = None,
                    **runtime: str | None) -> str:
    """Run the analyses when their inputs changed; return 'fresh', 'computed' or 'none'. jobs: parallel analysis
    workers (default: site.yml's analysis.n_jobs). yaml_cache: where parsed front matter is kept (yamlcache.py)."""
    cfg = analysis_config(root, config, jobs, yaml_cache, **runtime)
    if not needed(cfg):
        return "none"
    manifest = cache_dir / "analysis" / "manifest.json"
    if force:
        fp = inputs_fingerprint(root, cfg)
    else:
        fresh, fp = _is_fresh(root, cfg, cache_dir)
        if fresh:
            if cfg["device"] == "cuda":  # asked for by name: say now, not on the next build that computes, if it's absent
                from analysis.device import resolve
                from analysis.core.errors import AnalysisError

                try:
                    resolve("cuda")
                except AnalysisError as exc:
                    raise BuildError(str(exc)) from None
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
    from analysis.core import deadline
    from analysis.core.errors import AnalysisError
    from analysis.core.spec import AnalysisConfig, ModelSpec

    # A lab model named on its own gets dataset examples from the digits it was trained on, as in "banding-lab".
    specs = [ModelSpec(name=m, dataset="mnist" if m.startswith("lab-") else cfg["dataset"],
                       recipe=cfg["recipes"].get(m)) for m in cfg["models"]]
    specs += [ModelSpec(name=m["name"], factory=m["factory"], weights=m["weights"], kwargs=m["kwargs"],
                        image_size=m["image_size"], search_path=m["search_path"], dataset=m["dataset"],
                        recipe=m["recipe"]) for m in cfg["byo"]]
    acfg = AnalysisConfig(models=specs, cache_dir=cache_dir, n_jobs=int(cfg["n_jobs"]),
                          featureviz=dict(cfg["featureviz"]), lab=dict(cfg["lab"]), fingerprint=fp,
                          featureviz_budget=cfg["featureviz_budget"] if cfg["featureviz_budget"] == "all"
                          else dict(cfg["featureviz_budget"]), backend=cfg["backend"],
                          scheduler=cfg["scheduler"], device=cfg["device"], debug=debug,
                          examples=dict(cfg["examples"]))
    if progress and cfg["byo"]:  # user code runs next: say what the build is waiting for if it takes long
        print("analysis: importing and calling bring-your-own factories "
              + ", ".join(f"{m['factory']} ('{m['name']}')" for m in cfg["byo"])
              + " (the factory and each forward() may take up to $VW_MODEL_TIMEOUT s, default 600)", flush=True)
    # In a worker process (analysis/core/deadline.py): torch stays out of this one, and a model's code stuck past its time
    # limit, even in C, is killed with everything it started.
    worker = deadline.Worker()
    try:
        worker.call(_analyse, acfg, progress)
    except AnalysisError as exc:
        raise _attributed(exc, root, cfg["byo"], cfg.get("recipes")) from exc  # --debug's traceback shows the chain of causes
    except SystemExit as exc:  # user code (a bring-your-own model's forward()) called sys.exit(): not a success
        if not cfg["byo"]:
            raise
        names = ", ".join(f"'{m['name']}' ({m['factory']!r})" for m in cfg["byo"])
        first = cfg["byo"][0] if len(cfg["byo"]) == 1 else {"article": None, "line": None}
        raise BuildError(f"the analysis stopped: code called sys.exit({exc.code!r}) while analysing bring-your-own "
                         f"model(s) {names}", first["article"], first["line"]) from None
    finally:
        worker.close()
    if progress:
        print(f"analysis: done in {time.perf_counter() - t0:.1f} s", flush=True)
    return "computed"


def missing_models(cache_dir: Path) -> list[str]:
    """One line per model the analyses wanted but this build lacked (e.g. a weights file never supplied), for the
    build's output: pages leave such a model's sections out and never say why, so the build says it here."""
    from analysis.core.jsonio import read_json  # stdlib only

    manifest = read_json(Path(cache_dir) / "analysis" / "manifest.json")
    unavailable = manifest.get("unavailable") if isinstance(manifest, dict) else None
    return [f"note: {name} is not in this build (the pages leave its sections out): {why}"
            for name, why in sorted((unavailable or {}).items())]


def _analyse(acfg: Any, progress: bool) -> None:
    """The analyses, in the worker process: imports torch there."""
    from analysis.pipeline import run

    run(acfg, progress=progress)
