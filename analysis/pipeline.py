"""The analysis stage of the build: models -> tensors -> reports, cached as versioned JSON + PNG, plus a manifest.

Layout under `<cache>/analysis/` (schema documented in analysis/SCHEMA.md):
  manifest.json                      models, tensors, files with sha256, fingerprint
  <model>/tensors/<tensor id>.json   tensor_report() of one weight tensor
  <model>/first-layer.json, .png     first-layer filters as RGB (and one picture of them all)
  <model>/context-<n>.json           neuron pairs: weights, feature visualizations, dataset examples
  lab-summary.json                   the controlled banding experiment (variant x seed)
Each entry carries a `key` (weights sha256 + parameters + ANALYSIS_VERSION); a missing, corrupt or stale entry is
recomputed, everything else is reused.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from joblib import Parallel, delayed

from analysis import jsonio, recipes
from analysis.models import registry
from analysis.errors import AnalysisError, ModelUnavailable
from analysis.paths import safe_component
from analysis.pictures import png_bytes
from analysis.tensor_report import SCHEMA, link_next, summary, tensor_report

ANALYSIS_VERSION = "4"  # 2: NMF records carry their RGB picture; 3: graph-derived blocks; 4: explorer fields
DEFAULT_IMAGE_SIZE = 224  # a bring-your-own model without image_size (said in the build's output)
EXAMPLE_SIZE = 64  # dataset-example crops are stored at most this large (page weight)


@dataclass
class ModelSpec:
    """A model the articles need: a zoo name, or bring-your-own (`factory` + `weights`)."""

    name: str
    factory: str | None = None
    weights: str | None = None
    kwargs: dict = field(default_factory=dict)
    image_size: int | None = None
    search_path: str | None = None  # folder put on sys.path to import a bring-your-own factory
    dataset: str = "photos"  # where dataset examples come from: analysis.data.DATASETS
    recipe: dict | None = None  # the author's recipe choices (analysis.recipes.RecipeSpec fields)


@dataclass
class AnalysisConfig:
    models: list[ModelSpec]
    cache_dir: Path
    n_jobs: int = 2
    featureviz: dict = field(default_factory=lambda: {"size": 64, "steps": 256})
    lab: dict = field(default_factory=dict)
    fingerprint: str = ""


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(f"  analysis: {msg}", flush=True)


def safe_name(text: str) -> str:
    return safe_component(text)


# --------------------------------------------------------------------------- models


def _load(spec: ModelSpec, cache_dir: Path) -> tuple[torch.nn.Module, dict]:
    from analysis import models
    from analysis.models.common import conv_layers, parameter_count

    if spec.factory:
        import sys

        from analysis.models.byo import load_byo

        if not spec.weights or not Path(spec.weights).is_file():
            raise AnalysisError(f"{spec.weights}: weights file of model '{spec.name}' not found")
        added = spec.search_path and spec.search_path not in sys.path
        if added:
            sys.path.insert(0, spec.search_path)  # a factory module may live next to the article
        try:
            model = load_byo(spec.factory, spec.weights, spec.kwargs, folder=spec.search_path)
        finally:
            if added:
                sys.path.remove(spec.search_path)
        first = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
        module = sys.modules.get(spec.factory.split(":")[0])
        code = Path(module.__file__).read_bytes() if module is not None and getattr(module, "__file__", None) else b""
        weights_sha = jsonio.sha256_file(Path(spec.weights))
        info = {"name": spec.name, "source": f"bring-your-own: {spec.factory}",
                "sha256": weights_sha, "weights": Path(spec.weights).name,
                # The model's code decides its activations (feature visualizations, dataset examples), so it is
                # part of every cache key along with the weights.
                "code_sha256": hashlib.sha256(code).hexdigest(),
                "parameter_count": parameter_count(model), "conv_layers": conv_layers(model),
                "input_channels": first.in_channels if first is not None else 3,
                "input_size": [spec.image_size or DEFAULT_IMAGE_SIZE] * 2,
                "image_size_default": spec.image_size is None}
    else:
        model = models.load(spec.name, cache_dir=cache_dir)
        info = models.describe(spec.name, cache_dir=cache_dir, model=model)
    # The model key of every cache entry: the weights, and for bring-your-own models also the factory code,
    # its kwargs and the image size, since each changes what the network computes.
    info["weights_sha256"] = info["sha256"]
    if info.get("code_sha256"):
        parts = [info["sha256"], info["code_sha256"], jsonio.dumps(spec.kwargs), str(info["input_size"])]
        info["weights_sha256"] = hashlib.sha256("|".join(parts).encode()).hexdigest()
    info["parameters"] = info.get("parameter_count")
    return model, info


def _weight_of(model: torch.nn.Module, layer: str) -> np.ndarray:
    module = dict(model.named_modules()).get(layer)
    if module is None or not hasattr(module, "weight"):
        raise AnalysisError(f"model has no conv layer named {layer!r}")
    return module.weight.detach().float().numpy()


def _init_weights(info: dict) -> dict[str, np.ndarray] | None:
    """Initial weights of a lab model (bands are clearest in W - W_init)."""
    path = info.get("init_weights")
    if not path or not Path(path).exists():
        return None
    from analysis.safeload import load_state_dict

    return {k: v.float().numpy() for k, v in load_state_dict(path).items()}


# --------------------------------------------------------------------------- tensors


def _tensor_job(model, job: recipes.TensorJob, recipe: recipes.Recipe) -> np.ndarray:
    if job.source is None:
        return _weight_of(model, job.layer)
    from analysis.expanded import expanded_weights, expanded_weights_via

    net, lower, upper = recipe.network(model), recipe.hook(job.source), recipe.hook(job.layer)
    # float32: 3-4x faster than float64 at a relative error near 1e-6, far below the 3 digits figures show.
    if job.via:
        return expanded_weights_via(net, lower, job.via, upper, dtype=torch.float32)
    return expanded_weights(net, lower, upper, dtype=torch.float32)


def _entry_key(weights_sha: str, *parts) -> str:
    return hashlib.sha256("|".join([ANALYSIS_VERSION, weights_sha, *map(str, parts)]).encode()).hexdigest()


def _cached(path: Path, key: str) -> dict | None:
    data = jsonio.read_json(path)
    if isinstance(data, dict) and data.get("key") == key and data.get("schema") == SCHEMA:
        return data
    return None


def _compute(model, job: recipes.TensorJob, recipe: recipes.Recipe, init: np.ndarray | None) -> dict:
    """One tensor, start to finish, in a joblib worker: (expand if needed) then every numpy analysis."""
    torch.set_num_threads(1)
    return tensor_report(_tensor_job(model, job, recipe), init=init)


def analyse_tensors(name, model, info, recipe, cache_dir: Path, root: Path, n_jobs: int, progress: bool) -> list[dict]:
    weights_sha = info["weights_sha256"]
    inits = _init_weights(info)
    todo, entries = [], []
    for job in recipe.tensors:
        path = root / name / "tensors" / f"{safe_name(job.id)}.json"
        key = _entry_key(weights_sha, "tensor", job.id)
        entry = {"id": job.id, "layer": job.layer, "source": job.source, "label": job.label, "kind": job.kind,
                 "file": str(path.relative_to(root))}
        entries.append(entry)
        if _cached(path, key) is None:
            init = inits.get(f"{job.layer}.weight") if inits is not None and job.source is None else None
            todo.append((path, key, job, init))
    if todo:
        _log(progress, f"{name}: {len(todo)} tensor(s) on {min(n_jobs, len(todo))} worker(s)")
        if n_jobs > 1 and len(todo) > 1:
            # Largest first, so the two workers finish together.
            order = sorted(range(len(todo)), key=lambda k: -_cost(model, todo[k][2]))
            # No backend named here: `with joblib.parallel_backend("dask"):` (or ray) around the build takes over.
            results = Parallel(n_jobs=min(n_jobs, len(todo)))(
                delayed(_compute)(model, todo[k][2], recipe, todo[k][3]) for k in order)
            reports = [None] * len(todo)
            for k, r in zip(order, results):
                reports[k] = r
        else:
            reports = [_compute(model, job, recipe, init) for _, _, job, init in todo]
        for (path, key, job, _), report in zip(todo, reports):
            record = {"schema": SCHEMA, "key": key, "model": name, "id": job.id, "layer": job.layer,
                      "source": job.source, "label": job.label, **report}
            jsonio.write_json(path, record)
    for entry in entries:
        entry.update(summary(jsonio.read_json(root / entry["file"])))
    link_next(entries)
    return entries


def _cost(model, job: recipes.TensorJob) -> int:
    """Rough work estimate for scheduling: parameters of the modules a tensor spans."""
    mods = dict(model.named_modules())
    return sum(p.numel() for n in (job.layer, job.source) if n in mods for p in mods[n].parameters())


# --------------------------------------------------------------------------- pictures


def filter_sprite(rgb: np.ndarray, scale: int = 8) -> np.ndarray:
    """[out, h, w, 3] filters -> one picture: a grid of filters, each upscaled, one grey pixel apart."""
    rgb = np.asarray(rgb, dtype=np.float32)
    n, h, w, _ = rgb.shape
    cols = int(np.ceil(np.sqrt(2 * n)))
    rows = int(np.ceil(n / cols))
    big = np.repeat(np.repeat(rgb, scale, axis=1), scale, axis=2)
    out = np.full((rows * (h * scale + 2), cols * (w * scale + 2), 3), 0.5, dtype=np.float32)
    for f in range(n):
        y, x = (f // cols) * (h * scale + 2), (f % cols) * (w * scale + 2)
        out[y:y + h * scale, x:x + w * scale] = big[f]
    return out


def first_layer(name, model, info, recipe, root: Path) -> dict | None:
    if recipe.first_layer is None:
        return None
    from analysis.weights import first_layer_rgb

    weight = _weight_of(model, recipe.first_layer)
    if weight.shape[1] not in (1, 3):
        return None
    path = root / name / "first-layer.json"
    key = _entry_key(info["weights_sha256"], "first", recipe.first_layer)
    if _cached(path, key) is None or not path.with_suffix(".png").exists():
        record = {"schema": SCHEMA, "key": key, "model": name, "layer": recipe.first_layer,
                  "shape": list(weight.shape),
                  "rgb": first_layer_rgb(weight, scaling="per_filter"),
                  "rgb_shared": first_layer_rgb(weight, scaling="shared"),
                  "norm": np.sqrt((weight.reshape(weight.shape[0], -1) ** 2).sum(1))}
        jsonio.write_json(path, record)
        jsonio.write_bytes_atomic(path.with_suffix(".png"), png_bytes(filter_sprite(record["rgb"])))
    return {"file": str(path.relative_to(root)), "image": str(path.with_suffix(".png").relative_to(root)),
            "layer": recipe.first_layer}


def _pick_pairs(report: dict, n_out: int, n_in: int) -> tuple[list[int], list[int]]:
    """Output neurons by total weight norm, then the inputs that matter most to them together."""
    from analysis.tensor_report import strongest_pairs

    if "weight" in report:
        return strongest_pairs(np.asarray(report["weight"], dtype=np.float32), n_out, n_in)
    return report["top_pairs"]["outs"][:n_out], report["top_pairs"]["ins"][:n_in]


def _quality(model_choice: dict | str | None, site: dict) -> dict:
    """Feature-visualization size and steps: the model's recipe (a preset name or numbers), else the site's."""
    if isinstance(model_choice, str):
        from analysis.featureviz.cache import QUALITY_PRESETS

        preset = QUALITY_PRESETS[model_choice]
        return {"size": preset["size"], "steps": preset["steps"]}
    return {**site, **(model_choice or {})}


def _check_neurons(name: str, job: recipes.ContextJob, n_out: int) -> list[int]:
    bad = [n for n in job.neurons if not 0 <= n < n_out]
    if bad:
        raise AnalysisError(f"model '{name}': recipe context {job.tensor}: neurons {bad} out of range "
                            f"(the tensor has {n_out} outputs)", model=name, field="context")
    return sorted(dict.fromkeys(job.neurons))


def _job_by_id(recipe: recipes.Recipe, tensor_id: str) -> recipes.TensorJob:
    return next(t for t in recipe.tensors if t.id == tensor_id)


def context(name, model, info, recipe, cache_dir: Path, root: Path, cfg: AnalysisConfig, photos, progress) -> list[dict]:
    """Weights between neuron pairs with feature visualizations and dataset examples of both ends, plus the
    spatial-position view: each kernel position's input-channel vector visualized as a direction."""
    from analysis.examples import dataset_examples
    from analysis.featureviz import cached_visualize, cached_visualize_directions

    out = []
    channels_in = int(info.get("input_channels", 3))
    for n, job in enumerate(recipe.context):
        tensor_path = root / name / "tensors" / f"{safe_name(job.tensor)}.json"
        report = jsonio.read_json(tensor_path)
        if report is None:
            continue
        outs, ins = _pick_pairs(report, job.n_out, job.n_in)
        if job.neurons:
            outs = _check_neurons(name, job, report["shape"][0])
        path = root / name / f"context-{n}.json"
        quality = _quality(recipe.featureviz, cfg.featureviz)
        # Small nets see small images: visualize at (about) their own input size, which is also 4x cheaper.
        quality["size"] = min(int(quality.get("size", 64)), max(32, int(recipe.image_size)))
        key = _entry_key(info["weights_sha256"], "context", job, outs, ins, sorted(quality.items()),
                         [p for p, _ in photos], job.n_directions)
        if _cached(path, key) is None:
            t0 = time.perf_counter()
            # Block markers are numbered: the pictures' key covers the block structure they were drawn for.
            fv_key = _entry_key(info["weights_sha256"], "blocks", jsonio.dumps(recipe.blocks_json()))
            # Recomputed only on a miss: the tensor report may not hold the full weights (large tensors).
            full = np.asarray(_tensor_job(model, _job_by_id(recipe, job.tensor), recipe), dtype=np.float32)
            net = recipe.network(model)
            fv = {}
            for side, layer, chans in (("lower", job.lower, ins), ("upper", job.upper, outs)):
                entries = cached_visualize(net, name, fv_key, recipe.hook(layer), chans, cache_dir, quality,
                                           channels_in=channels_in, num_threads=cfg.n_jobs)
                fv[side] = [f"featureviz/{e['image']}" for e in entries]
            examples = {}
            for side, layer, chans in (("lower", job.lower, ins), ("upper", job.upper, outs)):
                found = dataset_examples(net, recipe.hook(layer), chans, photos, top=4, channels_in=channels_in,
                                         photo_size=recipe.photo_size, num_threads=cfg.n_jobs)
                examples[side] = []
                for ch, items in zip(chans, found):
                    row = []
                    for rank, item in enumerate(items):
                        png = root / name / "examples" / f"{safe_name(layer)}-{ch}-{rank}.png"
                        jsonio.write_bytes_atomic(png, png_bytes(item.crop, EXAMPLE_SIZE))
                        row.append({"image": f"analysis/{png.relative_to(root)}", "photo": item.photo,
                                    "y": item.y, "x": item.x, "activation": item.activation})
                    examples[side].append(row)
            # Spatial positions: for the strongest output neurons, W[o, :, y, x] is a direction in the lower layer.
            directions = {"outs": outs[: job.n_directions], "images": [], "magnitude": []}
            for o in directions["outs"]:
                vecs = full[o].transpose(1, 2, 0).reshape(-1, full.shape[1])  # [h*w, in]
                entries = cached_visualize_directions(net, name, fv_key, recipe.hook(job.lower), vecs,
                                                      cache_dir, quality, channels_in=channels_in,
                                                      num_threads=cfg.n_jobs)
                directions["images"].append([f"featureviz/{e['image']}" for e in entries])
                directions["magnitude"].append(np.linalg.norm(vecs, axis=1))
            record = {"schema": SCHEMA, "key": key, "model": name, "tensor": job.tensor, "lower": job.lower,
                      "upper": job.upper, "outs": outs, "ins": ins, "weight": full[np.ix_(outs, ins)],
                      "kernel": list(full.shape[2:]), "featureviz": fv, "examples": examples,
                      "directions": directions, "quality": quality}
            jsonio.write_json(path, record)
            _log(progress, f"{name}: context {job.tensor} in {time.perf_counter() - t0:.1f}s")
        out.append({"file": str(path.relative_to(root)), "tensor": job.tensor})
    return out


# --------------------------------------------------------------------------- lab summary


def lab_summary(root: Path, entries: dict[str, list[dict]], cache_dir: Path, lab_cfg: dict,
                photo_names: list[str]) -> dict:
    """The controlled experiment: banding of the last conv for every variant and seed."""
    from analysis import data
    from analysis.models import lab

    manifest = jsonio.read_json(cache_dir / lab.LAB_SUBDIR / lab.MANIFEST) or []
    rows = []
    for item in manifest:
        name = f"lab-{item['variant']}-s{item['seed']}"
        if name not in entries:
            continue
        layer = item["last_conv"].rsplit(".", 1)[0]
        report = jsonio.read_json(root / name / "tensors" / f"{safe_name(layer)}.json")
        rows.append({
            "model": name, "variant": item["variant"], "seed": item["seed"], "layer": layer,
            "test_accuracy": item.get("test_accuracy"),
            "R": report["banding"]["R_layer"], "C": report["banding"]["C_layer"],
            "R_delta": report.get("banding_delta", {}).get("R_layer"),
            "C_delta": report.get("banding_delta", {}).get("C_layer"),
            "baseline_R": report["banding"]["baseline_R"],
        })
    config = lab.LabConfig.from_json(lab_cfg)
    summary: dict = {"schema": SCHEMA, "rows": rows, "variants": {}, "config": {
        "steps": config.steps, "weight_decay": config.weight_decay, "input_size": config.input_size,
        "widths": "-".join(map(str, config.widths)), "side": config.input_size // 4, "n_train": config.n_train,
        "n_test": config.n_test, "batch_size": config.batch_size, "lr": config.lr, "task": lab.TASK,
        "n_photos_shipped": len(photo_names), "n_digits_shipped": len(data.mnist_arrays()[0]),
        "n_digit_examples": len(data.DATASETS[lab.DATASET]())}}  # no wall-clock times: the site must be byte-reproducible
    for variant in ("gap", "flatten", "rotated"):
        sel = [r for r in rows if r["variant"] == variant]
        if not sel:
            continue
        stats = {}
        for field_ in ("R", "C", "R_delta", "C_delta", "test_accuracy"):
            vals = np.array([r[field_] for r in sel if r[field_] is not None], dtype=float)
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


# --------------------------------------------------------------------------- run


def run(cfg: AnalysisConfig, *, progress: bool = True, on_model: Callable[[str], None] | None = None) -> Path:
    """Run every analysis the articles need; return the path of the analysis manifest."""
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

    datasets: dict[str, list] = {}  # loaded on first use: a bad model then fails before paying for them
    manifest: dict = {"schema": "vw-analysis-manifest/1", "analysis_version": ANALYSIS_VERSION,
                      "fingerprint": cfg.fingerprint, "models": {}, "unavailable": {}}
    tensor_entries: dict[str, list[dict]] = {}
    previous = jsonio.read_json(root / "manifest.json")
    for spec in specs:
        t0 = time.perf_counter()
        try:
            key = _spec_key(spec, cfg, cache_dir)
            entry = _reusable(previous, spec.name, key, root)
            if entry is not None:
                _log(progress, f"{spec.name}: unchanged, reused without loading it")
            else:
                entry = {**_model_entry(spec, cache_dir, root, cfg, datasets, progress), "spec_key": key}
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
                                                                    [n for n, _ in datasets.get("photos") or _photos()]))
        manifest["lab_summary"] = "lab-summary.json"
    manifest["featureviz"] = {**cfg.featureviz, "count": _count_featureviz(root, manifest)}
    manifest["software"] = _software()
    manifest["files"] = _file_list(root, cache_dir)
    jsonio.write_json(root / "manifest.json", manifest)
    return root / "manifest.json"


def _spec_key(spec: ModelSpec, cfg: AnalysisConfig, cache_dir: Path) -> str:
    """Everything one model's results depend on, without loading it: the analysis code, the model's declaration,
    the site's feature-visualization quality, and its weights (and, brought by an author, its code) by content."""
    from analysis.fingerprint import factory_code, source_hash

    if spec.factory:
        code = [jsonio.sha256_file(p) for p in factory_code(spec.factory, spec.search_path)]
        weights = jsonio.sha256_file(Path(spec.weights)) if spec.weights and Path(spec.weights).is_file() else None
    else:
        fam = registry.family_of(spec.name)
        code, weights = [], fam.facts(spec.name, cache_dir).get("sha256") if fam is not None else None
    declared = {k: v for k, v in vars(spec).items() if k not in ("search_path", "weights")}
    parts = [ANALYSIS_VERSION, source_hash(), jsonio.dumps(declared), jsonio.dumps(cfg.featureviz), str(weights), *code]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _reusable(previous: dict | None, name: str, key: str, root: Path) -> dict | None:
    """The previous build's entry for this model when its key matches and every file it wrote is intact."""
    if not isinstance(previous, dict):
        return None
    entry = (previous.get("models") or {}).get(name)
    if not isinstance(entry, dict) or entry.get("spec_key") != key:
        return None
    own = (f"{safe_name(name)}/", f"../featureviz/{safe_name(name)}/")
    for f in previous.get("files") or []:
        if isinstance(f, dict) and str(f.get("path", "")).startswith(own):
            path = root / f["path"]
            if not path.is_file() or jsonio.sha256_file(path) != f.get("sha256"):
                return None
    return entry


def _model_entry(spec: ModelSpec, cache_dir: Path, root: Path, cfg: AnalysisConfig, datasets: dict,
                 progress: bool) -> dict:
    """Load one model, derive its recipe, analyse it: its manifest entry."""
    from analysis.data import DATASETS

    model, info = _load(spec, cache_dir)
    try:
        recipe = registry.recipe_for(spec.name, model, spec.image_size, recipes.RecipeSpec.from_json(spec.recipe))
    except (AnalysisError, ValueError) as exc:
        raise AnalysisError(f"model '{spec.name}': {exc}", model=spec.name, field=getattr(exc, "field", None)) from None
    for note in recipe.notes:
        _log(progress, f"{spec.name}: {note}")
    if info.get("image_size_default"):
        _log(progress, f"{spec.name}: no image_size in its front matter, analysing at {DEFAULT_IMAGE_SIZE} px")
    if spec.dataset not in DATASETS:
        raise AnalysisError(f"model '{spec.name}': unknown dataset {spec.dataset!r} (known: {', '.join(DATASETS)})")
    if spec.dataset not in datasets:
        datasets[spec.dataset] = DATASETS[spec.dataset]()
    try:
        tensors, first, ctx = _analyse_model(spec, model, info, recipe, cache_dir, root, cfg,
                                             datasets[spec.dataset], progress)
    except AnalysisError:
        raise
    except Exception as exc:
        if not spec.factory:
            raise
        raise AnalysisError(_user_error(spec, exc)) from exc
    return {"info": info, **registry.presentation(spec.name, recipe), "tensors": tensors, "first_layer": first,
            "context": ctx}


def _analyse_model(spec, model, info, recipe, cache_dir, root, cfg, photos, progress):
    if spec.dataset != "photos":
        recipe.photo_size = None  # dataset images are used at their own size (e.g. 28x28 digits)
    if spec.factory and spec.search_path:
        _ship_by_value(Path(spec.search_path))
    tensors = analyse_tensors(spec.name, model, info, recipe, cache_dir, root, cfg.n_jobs, progress)
    first = first_layer(spec.name, model, info, recipe, root)
    ctx = []
    if not spec.name.startswith("lab-") or spec.name == "lab-gap-s0":  # one lab model stands for the nine
        ctx = context(spec.name, model, info, recipe, cache_dir, root, cfg, photos, progress)
    return tensors, first, ctx


def _ship_by_value(folder: Path) -> None:
    """A bring-your-own factory module lives next to its article, where joblib's worker processes cannot import it:
    have cloudpickle send those modules' code along with the model instead of a reference to them."""
    import sys

    import cloudpickle

    folder = folder.resolve()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve().parent == folder:
            cloudpickle.register_pickle_by_value(module)


def _user_error(spec: ModelSpec, exc: Exception) -> str:
    """One line for a failure inside a bring-your-own model: the innermost frame of the user's own code."""
    import traceback

    where = ""
    folder = str(Path(spec.search_path).resolve()) if spec.search_path else None
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if folder and str(Path(frame.filename).resolve()).startswith(folder):
            where = f"{frame.filename}:{frame.lineno}: "
            break
    return f"{where}model factory {spec.factory!r}: analysis failed: {type(exc).__name__}: {exc}"


def _check_lab_config(lab_cfg: dict) -> None:
    import dataclasses

    from analysis.models import lab

    known = {f.name for f in dataclasses.fields(lab.LabConfig)}
    unknown = sorted(set(lab_cfg) - known)
    if unknown:
        raise AnalysisError(f"site.yml: analysis.lab: unknown field(s) {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(known))})")


def _file_list(root: Path, cache_dir: Path) -> list[dict]:
    """Every file the render side may read, with its hash: the torch-free freshness check verifies them."""
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != "manifest.json" and not path.name.endswith(".tmp"):
            files.append({"path": str(path.relative_to(root)), "sha256": jsonio.sha256_file(path)})
    fv = cache_dir / "featureviz"
    if fv.exists():
        for path in sorted(fv.rglob("*.png")):
            files.append({"path": str(Path("..") / path.relative_to(cache_dir)), "sha256": jsonio.sha256_file(path)})
    return files


def _count_featureviz(root: Path, manifest: dict) -> int:
    n = 0
    for model in manifest["models"].values():
        for c in model["context"]:
            record = jsonio.read_json(root / c["file"]) or {}
            n += sum(len(v) for v in record.get("featureviz", {}).values())
            n += sum(len(v) for v in record.get("directions", {}).get("images", []))
    return n


def _software() -> dict:
    import platform

    import sklearn

    return {"python": platform.python_version(), "torch": torch.__version__.split("+")[0],
            "numpy": np.__version__, "sklearn": sklearn.__version__}


def _photos() -> list:
    from analysis.data import load_photos

    return load_photos()
