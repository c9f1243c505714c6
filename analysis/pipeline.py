"""The analysis stage of the build: models -> tensors -> reports, cached as versioned JSON + PNG, plus a manifest.

Layout under `<cache>/analysis/` (schema documented in analysis/SCHEMA.md):
  manifest.json                      models, tensors, files with sha256, fingerprint
  <model>/<key>/                     one model key's records (weights; a bring-your-own model's code, kwargs, image
                                     size): the few most recently used keys are kept, so going back to an earlier
                                     setting reuses its records (prune_variants)
  <model>/<key>/tensors/<id>.json    every per-tensor analysis of one tensor   (analysis.tensor_stage, per_tensor/)
  <model>/<key>/first-layer.json, .png  first-layer filters as RGB (and one picture of them all)  (analysis.first_layer)
  <model>/<key>/context-<n>.json     neuron pairs: weights, feature visualizations, dataset examples  (analysis.context_stage)
  <model>/<key>/examples/              every analysed channel's dataset examples  (analysis.examples_stage)
  lab-summary.json                   the controlled banding experiment (variant x seed)  (analysis.lab_summary)
Each entry carries a `key` (the code key of the module that computes it, analysis/core/codekey.py, + the model's weights
sha256 + parameters); a missing, corrupt or stale entry is recomputed, everything else is reused. This module is the run loop and the manifest.
"""
from __future__ import annotations

import hashlib
import posixpath
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from analysis import device, loading, parallel, per_tensor, recipes
from analysis.core import data, deadline, jsonio
from analysis.blocks import BlocksError
from analysis.context_stage import context
from analysis.core.errors import AnalysisError, ModelUnavailable
from analysis.examples_stage import dataset_key, examples
from analysis.first_layer import first_layer
from analysis.forward_check import check_image_size
from analysis.featureviz.budget import Budget
from analysis.lab_summary import lab_summary
from analysis.models import registry
from analysis.core.paths import inside, safe_component
from analysis.core.codekey import code_key
from analysis.core.spec import (DEFAULT_IMAGE_SIZE, AnalysisConfig, ModelSpec, Subject, Workspace, log as _log,
                           prune_variants, variant_name)
from analysis.neuron_featureviz import neuron_featureviz
from analysis.tensor_report import link_next, summary
from analysis.tensor_stage import analyse_tensors

__all__ = ["AnalysisConfig", "ModelSpec", "run"]

LAB_EXAMPLE_IMAGES = 1000  # digits each banding-lab network's dataset examples come from (100 of each class)


def run(cfg: AnalysisConfig, *, progress: bool = True, on_model: Callable[[str], None] | None = None) -> Path:
    """Run every analysis the articles need; return the path of the analysis manifest."""
    parallel.check(cfg.backend, cfg.scheduler)
    dev, note = device.resolve(cfg.device)
    if note and cfg.device == "auto" and progress:
        _log(progress, note)
    device.exact_math(dev)
    with parallel.backend(cfg.backend, cfg.scheduler):
        return _run(cfg, dev, progress, on_model)


def _run(cfg: AnalysisConfig, dev: str, progress: bool, on_model: Callable[[str], None] | None) -> Path:
    torch.set_num_threads(1)  # small tensors: one thread is faster than two fighting over a loaded machine
    cache_dir = Path(cfg.cache_dir)
    root = cache_dir / "analysis"
    root.mkdir(parents=True, exist_ok=True)
    names = [m.name for m in cfg.models]
    if any(n.startswith("lab-") or n == "banding-lab" for n in names):
        from analysis.models import lab

        _check_lab_config(cfg.lab)
        _log(progress, f"banding lab: training any of its models not in {cache_dir / lab.LAB_SUBDIR} "
                       f"(about 15 s of CPU each, {cfg.n_jobs} at a time)")
        lab_config = lab.LabConfig.from_json(cfg.lab)
        t0 = time.perf_counter()
        lab.train_all(cache_dir, n_jobs=cfg.n_jobs, config=lab_config)
        _log(progress, f"banding lab ready in {time.perf_counter() - t0:.1f}s")
    specs = []
    for spec in cfg.models:
        if spec.name == "banding-lab":
            specs += [ModelSpec(f"lab-{v}-s{s}", dataset=lab.DATASET) for v in lab.VARIANTS for s in lab_config.seeds]
        else:
            specs.append(spec)
    _check_folders([s.name for s in specs])

    manifest: dict = {"schema": "vw-analysis-manifest/1", "code": code_key(__name__, cache_dir=cache_dir),
                      "fingerprint": cfg.fingerprint, "models": {}, "unavailable": {}}
    tensor_entries: dict[str, list[dict]] = {}
    previous = jsonio.read_json(root / "manifest.json")
    for spec in specs:
        # Each model its own budget: a model reused without loading spends nothing, so a shared one would depend on
        # which models happened to be recomputed.
        budget = Budget.from_json(cfg.featureviz_budget) if cfg.featureviz_budget else None
        if budget is None and dev == "cuda":  # a GPU renders every neuron, Microscope-style, unless told otherwise
            budget = Budget(every=True)
        t0 = time.perf_counter()
        try:
            key = _spec_key(spec, cfg, cache_dir, budget)
            entry = _reusable(previous, spec.name, key, root)
            if entry is not None:
                _log(progress, f"{spec.name}: unchanged, reused without loading it")
            else:
                with deadline.about(model=spec.name):  # a step of its code past its time limit names the model
                    entry = {**_model_entry(spec, cache_dir, root, cfg, progress, dev, budget),
                             "spec_key": key}
            prune_variants(root / safe_component(spec.name), entry["folder"])
        except ModelUnavailable as exc:
            manifest["unavailable"][spec.name] = str(exc)
            _log(progress, f"{spec.name}: skipped ({exc})")
            continue
        except AnalysisError as exc:
            exc.model = exc.model or spec.name  # the build points at the front matter that declared it
            raise
        tensor_entries[spec.name] = entry["tensors"]
        manifest["models"][spec.name] = entry
        _log(progress, f"{spec.name}: {len(entry['tensors'])} tensors in {time.perf_counter() - t0:.1f}s")
        if on_model:
            on_model(spec.name)
    if any(n.startswith("lab-") for n in tensor_entries):
        jsonio.write_json(root / "lab-summary.json", lab_summary(root, tensor_entries, cache_dir, cfg.lab,
                                                                    data.photo_names()))
        manifest["lab_summary"] = "lab-summary.json"
    if any(not (m.get("examples") or {}).get("complete", True) for m in manifest["models"].values()):
        # A dataset-examples pass stopped by its time budget: the next build's freshness check must see the
        # analysis as stale, so that it resumes the pass.
        manifest["fingerprint"] = f"resume-examples:{cfg.fingerprint}"
    manifest["featureviz"] = {**cfg.featureviz, "count": _count_featureviz(root, manifest)}
    manifest["software"] = _software()
    manifest["files"] = _file_list(root, cache_dir, [m["folder"] for m in manifest["models"].values()])
    jsonio.write_json(root / "manifest.json", manifest)
    return root / "manifest.json"


def _check_folders(names: list[str]) -> None:
    """Two models may not share a cache folder (the build says where each was declared: article/byo_spec.py)."""
    from analysis.core.paths import same_folder

    for i, name in enumerate(names):
        other = next((n for n in names[:i] if n != name and same_folder(n, name)), None)
        if other is not None:
            raise AnalysisError(f"models {other!r} and {name!r} would share the folder {safe_component(name)!r}; "
                                "rename one", model=name)


def _spec_key(spec: ModelSpec, cfg: AnalysisConfig, cache_dir: Path, budget: Budget | None = None) -> str:
    """Everything one model's results depend on, without loading it: the analysis code, the model's declaration,
    the site's feature-visualization quality, and its weights (and, brought by an author, its code) by content."""
    from analysis.core.fingerprint import factory_code

    if spec.factory:
        code = [jsonio.sha256_file(p) for p in factory_code(spec.factory, spec.search_path)]
        weights = jsonio.sha256_file(Path(spec.weights)) if spec.weights and Path(spec.weights).is_file() else None
    else:
        fam = registry.family_of(spec.name)
        code, weights = [], fam.facts(spec.name, cache_dir).get("sha256") if fam is not None else None
    declared = {k: v for k, v in vars(spec).items() if k not in ("search_path", "weights", "dataset")}
    # The per-tensor analyses are found by name (analysis/per_tensor/), so their code is not in this module's key:
    # each one's is added, so an edited or new analysis makes the model's records stale (and only its fields redone).
    parts = [code_key(__name__), *per_tensor.code_keys(), jsonio.dumps(declared), jsonio.dumps(cfg.featureviz),
             jsonio.dumps(cfg.featureviz_budget), "every neuron" if budget is not None and budget.every else "",
             str(weights), *code, dataset_key(spec.dataset),
             jsonio.dumps(cfg.examples)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _reusable(previous: dict | None, name: str, key: str, root: Path) -> dict | None:
    """The previous build's entry for this model when its key matches and every file it wrote is intact."""
    if not isinstance(previous, dict):
        return None
    from analysis.core.fingerprint import model_entry_ok

    models, files = previous.get("models"), previous.get("files")
    entry = models.get(name) if isinstance(models, dict) else None
    files = [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []
    if not isinstance(entry, dict) or entry.get("spec_key") != key or \
            not model_entry_ok(name, entry, {f.get("path") for f in files}):
        return None
    if not (entry.get("examples") or {}).get("complete", True):
        return None  # its dataset-examples pass stopped early: resume it
    own = (f"{safe_component(name)}/", f"../featureviz/{safe_component(name)}/")
    for f in files:
        if str(f.get("path", "")).startswith(own):
            path = inside(root.parent, posixpath.join("analysis", str(f["path"])))
            if path is None or not path.is_file() or jsonio.sha256_file(path) != f.get("sha256"):
                return None
    return entry


def _model_entry(spec: ModelSpec, cache_dir: Path, root: Path, cfg: AnalysisConfig,
                 progress: bool, dev: str = "cpu", budget=None) -> dict:
    """Load one model, derive its recipe, analyse it: its manifest entry."""
    from analysis.models.byo import analysis_failure

    model, info = loading.load(spec, cache_dir)
    if spec.factory:  # the author's declared size, tried once before anything is analysed at it
        with _author_code(spec, f"its forward() at image_size {info['input_size'][0]}"):
            check_image_size(model, info["input_size"][0], info["input_channels"], spec.factory)
    try:  # tracing runs the model's forward() (an author's code) symbolically: time-limited like a call of it
        with _author_code(spec, "tracing its graph"):
            recipe = recipes.recipe_for(spec.name, model, spec.image_size, recipes.RecipeSpec.from_json(spec.recipe))
    except BlocksError as exc:  # the network's graph, not the author's recipe: said as it is, cause chained
        exc.model = spec.name
        raise
    except (AnalysisError, ValueError) as exc:
        raise AnalysisError(str(exc), model=spec.name, field=getattr(exc, "field", None) or "recipe") from None
    for note in recipe.notes:
        _log(progress, f"{spec.name}: {note}")
    if cfg.debug and recipe.graph is not None and len(recipe.graph.causes) > 1:
        for cause in recipe.graph.causes:
            _log(progress, f"{spec.name}: blocks: {cause}")
    if info.get("image_size_default"):
        _log(progress, f"{spec.name}: no image_size in its front matter, analysing at {DEFAULT_IMAGE_SIZE} px")
    image_set = _image_set(spec)
    try:
        tensors, first, ctx, neurons, ex = _analyse_model(spec, model, info, recipe, cache_dir, root, cfg,
                                                          progress, dev, budget,
                                                          image_set)
    except AnalysisError:
        raise
    except Exception as exc:
        if not spec.factory:
            raise
        raise AnalysisError(analysis_failure(exc, spec.factory, spec.search_path), model=spec.name,
                            field="factory") from exc
    entry = {"info": portable(info, cache_dir), **registry.presentation(spec.name, recipe), "tensors": tensors,
             "first_layer": first, "context": ctx, "examples": ex,
             "folder": f"{safe_component(spec.name)}/{variant_name(info['weights_sha256'])}"}
    if neurons is not None:
        entry["neuron_featureviz"] = neurons
    return entry


def _author_code(spec: ModelSpec, doing: str):
    """A step of the analysis's time limit (analysis.core.deadline) while a bring-your-own model's code runs outside its
    forward() hooks."""
    if not spec.factory:
        return deadline.step(0, "")
    from analysis.models.byo import MODEL_TIMEOUT_ENV, model_timeout

    seconds = model_timeout()
    return deadline.step(seconds, f"model factory {spec.factory!r}: {doing} did not finish within {seconds:g} s "
                                  f"(${MODEL_TIMEOUT_ENV} raises the limit)", field="factory")


def _image_set(spec: ModelSpec):
    """The model's image set for dataset examples (a bad folder: one error naming it, at the model's dataset field)."""
    from analysis.core.image_sets import DatasetError, open_set

    try:
        return open_set(spec.dataset)
    except DatasetError as exc:
        raise AnalysisError(str(exc), model=spec.name, field="dataset") from None


def _analyse_model(spec, model, info, recipe, cache_dir, root, cfg, progress, dev="cpu", budget=None,
                   image_set=None):
    if image_set is not None and image_set.kind == "mnist":
        recipe.photo_size = None  # dataset images are used at their own size (e.g. 28x28 digits)
    if spec.factory and spec.search_path:
        loading.ship_by_value(Path(spec.search_path))
    subject = Subject(spec.name, model, info, recipe)
    ws = Workspace(cache_dir=cache_dir, root=root, n_jobs=cfg.n_jobs, featureviz=cfg.featureviz, progress=progress,
                   device=dev, budget=budget)
    tensors = analyse_tensors(subject, ws)
    for entry in tensors:  # the numbers a table of layers shows, and which tensor reads each one's neurons
        entry.update(summary(jsonio.read_json(ws.root / entry["file"])))
    link_next(tensors, recipe.blocks_json())
    first = first_layer(subject, ws)
    ctx = []
    if not spec.name.startswith("lab-") or spec.name == "lab-gap-s0":  # one lab model stands for the nine
        ctx = context(subject, ws)
    # One lab network per variant stands for its three seeds in the article's figures.
    featured = registry.presentation(spec.name, recipe)["featured_nmf"]
    if spec.name.startswith("lab-"):
        neurons = neuron_featureviz(subject, ws, featured) if spec.name.endswith("-s0") else None
    else:
        neurons = neuron_featureviz(subject, ws, featured)
    settings = dict(cfg.examples)
    if spec.name.startswith("lab-"):  # nine small networks on one task: a tenth of the digits each is plenty
        settings["count"] = min(settings.get("count") or LAB_EXAMPLE_IMAGES, LAB_EXAMPLE_IMAGES)
    ex = examples(subject, ws, image_set or _image_set(spec), settings)
    return tensors, first, ctx, neurons, ex


def _check_lab_config(lab_cfg: dict) -> None:
    import dataclasses

    from analysis.models import lab

    known = {f.name for f in dataclasses.fields(lab.LabConfig)}
    unknown = sorted(set(lab_cfg) - known)
    if unknown:
        raise AnalysisError(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})",
                            field="analysis.lab")


def portable(info: dict, cache_dir: Path) -> dict:
    """A model's facts for the manifest with no absolute path: a file inside the cache folder relative to it (the
    lab's weights), any other by its name, so a cache folder can move (the files are found again when loading)."""
    out = dict(info)
    for key in ("weights", "init_weights"):
        value = out.get(key)
        if isinstance(value, str) and Path(value).is_absolute():
            try:
                out[key] = Path(value).relative_to(Path(cache_dir).resolve()).as_posix()
            except ValueError:
                try:
                    out[key] = Path(value).relative_to(Path(cache_dir).absolute()).as_posix()
                except ValueError:
                    out[key] = Path(value).name
    return out


def _file_list(root: Path, cache_dir: Path, folders: list[str]) -> list[dict]:
    """Every file the render side may read, with its hash: the torch-free freshness check verifies them. Of each
    model only its live folder: the kept older keys are not read until they are live again."""
    files = []
    found = [p for p in root.iterdir() if p.is_file()]
    for folder in sorted(set(folders)):
        found += [p for p in (root / folder).rglob("*") if p.is_file()]
    for path in sorted(found):
        if path.name != "manifest.json" and not path.name.endswith(".tmp"):
            files.append({"path": path.relative_to(root).as_posix(), "sha256": jsonio.sha256_file(path)})
    fv = cache_dir / "featureviz"
    if fv.exists():  # the pictures and the manifest the explorer pages read: verified like every other file
        for path in sorted(fv.rglob("*.png")) + [p for p in [fv / "manifest.json"] if p.is_file()]:
            files.append({"path": str(Path("..") / path.relative_to(cache_dir)), "sha256": jsonio.sha256_file(path)})
    return files


def _count_featureviz(root: Path, manifest: dict) -> int:
    """Distinct feature visualizations the site shows: weights in context (with readings), neurons, NMF factors."""
    seen: set[str] = set()
    for model in manifest["models"].values():
        for c in model["context"]:
            record = jsonio.read_json(root / c["file"]) or {}  # the file this run wrote (model_entry_ok)
            seen.update(p for v in record.get("featureviz", {}).values() for p in v)
            seen.update(p for v in record.get("directions", {}).get("images", []) for p in v)
            for r in record.get("readings", []):
                seen.update(p for p in [r.get("featviz"), *(i.get("featviz") for i in r["inputs"]),
                                        *(f.get("featviz") for f in (r.get("nmf") or {}).get("factors", []))] if p)
        listing = jsonio.read_json(root / model["neuron_featureviz"]["file"]) if model.get("neuron_featureviz") else {}
        seen.update(p for layer in (listing or {}).get("layers", {}).values() for p in layer.values())
        seen.update(p for t in (listing or {}).get("factors", {}).values() for ps in t.values() for p in ps)
    return len(seen)


def _software() -> dict:
    import platform

    from importlib.metadata import version

    # the installed version, read without importing scikit-learn (its import costs seconds of CPU)
    return {"python": platform.python_version(), "torch": torch.__version__.split("+")[0],
            "numpy": np.__version__, "sklearn": version("scikit-learn")}

