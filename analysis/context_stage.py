"""The context stage: neuron pairs joined by a weight tensor, with feature visualizations and dataset examples of
both ends, plus the spatial-position view (each kernel position's input-channel vector visualized as a direction)."""
from __future__ import annotations

import time

import numpy as np

from analysis import jsonio, recipes
from analysis.cache import Entry, entry_key
from analysis.errors import AnalysisError
from analysis.paths import safe_component
from analysis.pictures import png_bytes
from analysis.spec import QUALITY_PRESETS, Subject, Workspace
from analysis.tensor_stage import tensor_of, tensor_path

EXAMPLE_SIZE = 64  # dataset-example crops are stored at most this large (page weight)


def _pick_pairs(report: dict, n_out: int, n_in: int) -> tuple[list[int], list[int]]:
    """Output neurons by total weight norm, then the inputs that matter most to them together."""
    from analysis.tensor_report import strongest_pairs

    if "weight" in report:
        return strongest_pairs(np.asarray(report["weight"], dtype=np.float32), n_out, n_in)
    return report["top_pairs"]["outs"][:n_out], report["top_pairs"]["ins"][:n_in]


def _quality(model_choice: dict | str | None, site: dict) -> dict:
    """Feature-visualization size and steps: the model's recipe (a preset name or numbers), else the site's."""
    if isinstance(model_choice, str):
        preset = QUALITY_PRESETS[model_choice]
        return {"size": preset["size"], "steps": preset["steps"]}
    return {**site, **(model_choice or {})}


def _check_neurons(name: str, job: recipes.ContextJob, n_out: int) -> list[int]:
    bad = [n for n in job.neurons if not 0 <= n < n_out]
    if bad:
        raise AnalysisError(f"recipe context {job.tensor}: neurons {bad} out of range "
                            f"(the tensor has {n_out} outputs)", model=name, field="context")
    return sorted(dict.fromkeys(job.neurons))


def _job_by_id(recipe: recipes.Recipe, tensor_id: str) -> recipes.TensorJob:
    return next(t for t in recipe.tensors if t.id == tensor_id)


def featureviz_key(s: Subject) -> str:
    """The model part of its feature visualizations' keys (the featureviz cache adds its own code key): the
    model, the block structure they were drawn for (block markers are numbered) and the code that builds the network
    and the hooks they are drawn through (analysis.recipes), not the code of any other record."""
    return entry_key("analysis.recipes", s.info["weights_sha256"], "blocks", jsonio.dumps(s.recipe.blocks_json()))


def context(s: Subject, ws: Workspace, photos: list) -> list[dict]:
    """One record per context job of the recipe: its file, and the tensor it shows."""
    out = []
    for n, job in enumerate(s.recipe.context):
        report = jsonio.read_json(tensor_path(s, ws, job.tensor))
        if report is None:
            continue
        outs, ins = _pick_pairs(report, job.n_out, job.n_in)
        if job.neurons:
            outs = _check_neurons(s.name, job, report["shape"][0])
        quality = _quality(s.recipe.featureviz, ws.featureviz)
        # Small nets see small images: visualize at (about) their own input size, which is also 4x cheaper.
        quality["size"] = min(int(quality.get("size", 64)), max(32, int(s.recipe.image_size)))
        cache = Entry(ws.model_dir(s) / f"context-{n}.json",
                      entry_key(__name__, s.info["weights_sha256"], "context", job, outs, ins, sorted(quality.items()),
                                [p for p, _ in photos], job.n_directions))
        if cache.get() is None:
            t0 = time.perf_counter()
            cache.put(_record(s, ws, job, outs, ins, quality, photos))
            ws.log(f"{s.name}: context {job.tensor} in {time.perf_counter() - t0:.1f}s")
        out.append({"file": str(cache.path.relative_to(ws.root)), "tensor": job.tensor})
    return out


def _record(s: Subject, ws: Workspace, job: recipes.ContextJob, outs: list[int], ins: list[int], quality: dict,
            photos: list) -> dict:
    from analysis.examples import dataset_examples
    from analysis.featureviz import cached_visualize, cached_visualize_directions

    name, recipe, channels_in = s.name, s.recipe, int(s.info.get("input_channels", 3))
    fv_key = featureviz_key(s)
    # Recomputed only on a miss: the tensor report may not hold the full weights (large tensors).
    full = np.asarray(tensor_of(s.model, _job_by_id(recipe, job.tensor), recipe, ws.device), dtype=np.float32)
    net = recipe.network(s.model)
    fv = {}
    for side, layer, chans in (("lower", job.lower, ins), ("upper", job.upper, outs)):
        entries = cached_visualize(net, name, fv_key, recipe.hook(layer), chans, ws.cache_dir, quality,
                                   channels_in=channels_in, num_threads=ws.n_jobs, device=ws.device)
        fv[side] = [f"featureviz/{e['image']}" for e in entries]
    examples = {}
    for side, layer, chans in (("lower", job.lower, ins), ("upper", job.upper, outs)):
        found = dataset_examples(net, recipe.hook(layer), chans, photos, top=4, channels_in=channels_in,
                                 photo_size=recipe.photo_size, num_threads=ws.n_jobs)
        examples[side] = []
        for ch, items in zip(chans, found):
            row = []
            for rank, item in enumerate(items):
                png = ws.model_dir(s) / "examples" / f"{safe_component(layer)}-{ch}-{rank}.png"
                jsonio.write_bytes_atomic(png, png_bytes(item.crop, EXAMPLE_SIZE))
                row.append({"image": f"analysis/{png.relative_to(ws.root)}", "photo": item.photo,
                            "y": item.y, "x": item.x, "activation": item.activation})
            examples[side].append(row)
    # Spatial positions: for the strongest output neurons, W[o, :, y, x] is a direction in the lower layer.
    directions = {"outs": outs[: job.n_directions], "images": [], "magnitude": []}
    for o in directions["outs"]:
        vecs = full[o].transpose(1, 2, 0).reshape(-1, full.shape[1])  # [h*w, in]
        entries = cached_visualize_directions(net, name, fv_key, recipe.hook(job.lower), vecs,
                                              ws.cache_dir, quality, channels_in=channels_in,
                                              num_threads=ws.n_jobs, device=ws.device)
        directions["images"].append([f"featureviz/{e['image']}" for e in entries])
        directions["magnitude"].append(np.linalg.norm(vecs, axis=1))
    return {"model": name, "tensor": job.tensor, "lower": job.lower,
            "upper": job.upper, "outs": outs, "ins": ins, "weight": full[np.ix_(outs, ins)],
            "kernel": list(full.shape[2:]), "featureviz": fv, "examples": examples,
            "directions": directions, "quality": quality}
