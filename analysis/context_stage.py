"""The context stage: neuron pairs joined by a weight tensor, with feature visualizations of both ends, plus the
spatial-position view (each kernel position's input-channel vector visualized as a direction). Their dataset examples
are every channel's, from the examples stage (analysis/examples_stage.py)."""
from __future__ import annotations

import time

import numpy as np

from analysis import recipes
from analysis.core import jsonio
from analysis.cache import Entry, entry_key
from analysis.core.errors import AnalysisError
from analysis.core.paths import safe_component
from analysis.core.spec import QUALITY_PRESETS, SITE_FEATUREVIZ, Subject, Workspace
from analysis.tensor_stage import tensor_of, tensor_path


def _pick_pairs(report: dict, n_out: int, n_in: int) -> tuple[list[int], list[int]]:
    """Output neurons by total weight norm, then the inputs that matter most to them together."""
    from analysis.per_tensor.views import strongest_pairs

    if "weight" in report:
        return strongest_pairs(np.asarray(report["weight"], dtype=np.float32), n_out, n_in)
    return report["top_pairs"]["outs"][:n_out], report["top_pairs"]["ins"][:n_in]


def _quality(model_choice: dict | str | None, site: dict) -> dict:
    """Feature-visualization size and steps: the model's recipe (a preset name or numbers), else the site's."""
    if isinstance(model_choice, str):
        preset = QUALITY_PRESETS[model_choice]
        return {"size": preset["size"], "steps": preset["steps"]}
    return {**site, **(model_choice or {})}


def _cap(quality: dict) -> int:
    """The largest side a layer's pictures get (featureviz.canvas.render_size covers its receptive field up to it)."""
    return int(quality.get("size", SITE_FEATUREVIZ["size"]))


def _check_neurons(name: str, job: recipes.ContextJob, n_out: int, neurons: tuple[int, ...]) -> list[int]:
    bad = [n for n in neurons if not 0 <= n < n_out]
    if bad:
        raise AnalysisError(f"recipe context {job.tensor}: neurons {bad} out of range "
                            f"(the tensor has {n_out} outputs)", model=name, field="context")
    return sorted(dict.fromkeys(neurons))


def _job_by_id(recipe: recipes.Recipe, tensor_id: str) -> recipes.TensorJob:
    return next(t for t in recipe.tensors if t.id == tensor_id)


def featureviz_key(s: Subject) -> str:
    """The model part of its feature visualizations' keys (the featureviz cache adds its own code key): the
    model, the block structure they were drawn for (block markers are numbered) and the code that builds the network
    and the hooks they are drawn through (analysis.recipes), not the code of any other record."""
    return entry_key("analysis.recipes", s.info["weights_sha256"], "blocks", jsonio.dumps(s.recipe.blocks_json()))


def context(s: Subject, ws: Workspace) -> list[dict]:
    """One record per context job of the recipe: its file, and the tensor it shows."""
    out = []
    for n, job in enumerate(s.recipe.context):
        report = jsonio.read_json(tensor_path(s, ws, job.tensor))
        if report is None:
            continue
        outs, ins = _pick_pairs(report, job.n_out, job.n_in)
        if job.neurons:
            outs = _check_neurons(s.name, job, report["shape"][0], job.neurons)
        read = _check_neurons(s.name, job, report["shape"][0], job.read) if job.read else outs[:job.n_read]
        quality = _quality(s.recipe.featureviz, ws.featureviz)  # its size caps each layer's (featureviz.canvas)
        cache = Entry(ws.model_dir(s) / f"context-{n}.json",
                      entry_key(__name__, s.info["weights_sha256"], "context", job, outs, ins, sorted(quality.items()),
                                featureviz_key(s), job.n_directions, "read", read, job.read_inputs,
                                # what it copies from the tensor record (NMF, views): keyed by the analyses that made
                                # them, whose code no import of this module reaches (analysis/per_tensor/)
                                report.get("key"), jsonio.dumps({n: p.get("key") for n, p in
                                                                 (report.get("parts") or {}).items()}),
                                # its weights are the block's own when the skip was removed (tensor_stage.shown_tensor)
                                *(["identity removed"] if report.get("identity") == "removed" else [])))
        if cache.get() is None:
            t0 = time.perf_counter()
            cache.put(_record(s, ws, job, outs, ins, quality, read, report))
            ws.log(f"{s.name}: context {job.tensor} in {time.perf_counter() - t0:.1f}s")
        out.append({"file": str(cache.path.relative_to(ws.root)), "tensor": job.tensor})
    return out


def _record(s: Subject, ws: Workspace, job: recipes.ContextJob, outs: list[int], ins: list[int], quality: dict,
            read: list[int], report: dict) -> dict:
    from analysis.featureviz import cached_visualize, cached_visualize_directions, picture_channels, render_size

    name, recipe, channels_in = s.name, s.recipe, int(s.info.get("input_channels", 3))
    gray_or_rgb = picture_channels(s.info)
    fv_key = featureviz_key(s)
    # Recomputed only on a miss: the tensor report may not hold the full weights (large tensors).
    full = np.asarray(tensor_of(s.model, _job_by_id(recipe, job.tensor), recipe, ws.device), dtype=np.float32)
    net = recipe.network(s.model)
    fv, sized = {}, {}
    for side, layer, chans in (("lower", job.lower, ins), ("upper", job.upper, outs)):
        sized[side] = {**quality, "size": render_size(net, recipe.hook(layer), cap=_cap(quality),
                                                      channels_in=gray_or_rgb, input_size=recipe.image_size)}
        entries = cached_visualize(net, name, fv_key, recipe.hook(layer), chans, ws.cache_dir, sized[side],
                                   channels_in=gray_or_rgb, num_threads=ws.n_jobs, device=ws.device)
        fv[side] = [f"featureviz/{e['image']}" for e in entries]
    # Spatial positions: for the strongest output neurons, W[o, :, y, x] is a direction in the lower layer.
    directions = {"outs": outs[: job.n_directions], "images": [], "magnitude": []}
    for o in directions["outs"]:
        vecs = full[o].transpose(1, 2, 0).reshape(-1, full.shape[1])  # [h*w, in]
        entries = cached_visualize_directions(net, name, fv_key, recipe.hook(job.lower), vecs,
                                              ws.cache_dir, sized["lower"], channels_in=gray_or_rgb,
                                              num_threads=ws.n_jobs, device=ws.device)
        directions["images"].append([f"featureviz/{e['image']}" for e in entries])
        directions["magnitude"].append(np.linalg.norm(vecs, axis=1))
    readings = _readings(s, ws, job, net, fv_key, full, report, read, sized, gray_or_rgb)
    return {"model": name, "tensor": job.tensor, "lower": job.lower,
            "upper": job.upper, "outs": outs, "ins": ins, "weight": full[np.ix_(outs, ins)],
            "kernel": list(full.shape[2:]), "featureviz": fv,
            "directions": directions, "quality": quality, "sizes": {k: q["size"] for k, q in sized.items()},
            "readings": readings}


def _readings(s: Subject, ws: Workspace, job: recipes.ContextJob, net, fv_key: str, full: np.ndarray, report: dict,
              read: list[int], sized: dict[str, dict], channels_in: int) -> list[dict]:
    """Worked readings (analysis.reading) of the `read` output neurons: strongest inputs, kernels, NMF factors.
    ``sized``: each side's featureviz quality at its own render size (the same pictures as the figure's)."""
    from analysis.featureviz import cached_visualize, cached_visualize_directions
    from analysis.reading import reading

    layers = {"lower": job.lower, "upper": job.upper}

    def images(side: str, chans: list[int]) -> list[str | None]:
        if layers[side] == "input":  # the network's input channels are colours, not neurons to visualize
            return [None] * len(chans)
        entries = cached_visualize(net, s.name, fv_key, s.recipe.hook(layers[side]), chans, ws.cache_dir,
                                   sized[side], channels_in=channels_in, num_threads=ws.n_jobs, device=ws.device)
        found = {e["channel"]: f"featureviz/{e['image']}" for e in entries}
        return [found.get(c) for c in chans]

    def directions(loadings: np.ndarray) -> list[str | None]:
        if job.lower == "input":
            return [None] * len(loadings)
        entries = cached_visualize_directions(net, s.name, fv_key, s.recipe.hook(job.lower), loadings, ws.cache_dir,
                                              sized["lower"], channels_in=channels_in, num_threads=ws.n_jobs,
                                              device=ws.device)
        return [f"featureviz/{e['image']}" for e in entries]

    nmf = _nmf_arrays(ws, s, job.tensor, report)
    return [reading(o, full[o], job.read_inputs, images,
                    None if nmf is None else {k: nmf[k][o] for k in ("rgb", "spatial", "channels")}, directions)
            for o in read]


def _nmf_arrays(ws: Workspace, s: Subject, tensor: str, report: dict) -> dict | None:
    """The tensor report's NMF with its channel loadings read back when they were saved beside it (.npy)."""
    nmf = report.get("nmf")
    if not isinstance(nmf, dict):
        return None
    channels = nmf.get("channels")
    if isinstance(channels, dict) and "npy" in channels:
        folder = tensor_path(s, ws, tensor).parent
        channels = np.load(folder / safe_component(str(channels["npy"])), mmap_mode="r", allow_pickle=False)
    return {"rgb": np.asarray(nmf["rgb"]), "spatial": np.asarray(nmf["spatial"]), "channels": np.asarray(channels)}
