"""The tensor stage: every weight tensor of a recipe (a conv's own, or expanded) -> its tensor_report() record."""
from __future__ import annotations

import functools
import gc
import io

import numpy as np
import torch

from analysis import jsonio, parallel, recipes
from analysis.cache import Entry, entry_key
from analysis.errors import AnalysisError
from analysis.heap import keep_large_blocks_mapped, release_free_heap
from analysis.loading import init_weights, weight_of
from analysis.paths import safe_component
from analysis.spec import Subject, Workspace
from analysis.tensor_report import link_next, summary, tensor_report


def tensor_of(model, job: recipes.TensorJob, recipe: recipes.Recipe, device: str = "cpu") -> np.ndarray:
    """The [out, in, h, w] tensor of a job: a conv's own weight, or the expanded weights between two layers."""
    if job.source is None:
        return weight_of(model, job.layer)
    from analysis.expanded import expanded_weights, expanded_weights_via

    net, lower, upper = recipe.network(model), recipe.hook(job.source), recipe.hook(job.layer)
    # float32: 3-4x faster than float64 at a relative error near 1e-6, far below the 3 digits figures show.
    if job.via:
        expand = functools.partial(expanded_weights_via, net, lower, job.via, upper, dtype=torch.float32,
                                   device=device)
    else:
        expand = functools.partial(expanded_weights, net, lower, upper, dtype=torch.float32, device=device)
    try:
        return expand()  # the smallest input that holds the whole support: cheapest
    except AnalysisError as searched:
        # A model that runs only at the size it was built for (e.g. a fixed-size layer below `upper`): expand there.
        try:
            return expand(input_size=recipe.image_size)
        except AnalysisError:
            # Which tensor, and its hooks: a block boundary that is not a [B, C, H, W] map points at the blocks.
            raise AnalysisError(f"expanded weights {job.id} (hooks {lower} -> {upper}): {searched}") from searched


def tensor_path(s: Subject, ws: Workspace, tensor_id: str):
    return ws.model_dir(s) / "tensors" / f"{safe_component(tensor_id)}.json"


def _compute(model, job: recipes.TensorJob, recipe: recipes.Recipe, init: np.ndarray | None, device: str) -> dict:
    """One tensor, start to finish, in a joblib worker (local or on a cluster): expand if needed, then every numpy
    analysis; then the freed heap goes back to the system (analysis.heap: loky's leak check, and memory at scale)."""
    torch.set_num_threads(1)
    keep_large_blocks_mapped()
    weight = model if isinstance(model, np.ndarray) else tensor_of(model, job, recipe, device)
    report = tensor_report(weight, init=init)
    del weight, model, recipe
    gc.collect()  # model copies a task brought along are freed only by the collector
    release_free_heap()
    return report


def _task(s: Subject, job: recipes.TensorJob, init, device: str) -> tuple:
    """What a worker needs for one tensor, and no more: a conv's own weight travels as its array; expanded weights
    need only the recipe's probed network, not a second copy of the model (ResNet-50: 100 MB per task saved)."""
    if job.source is None:
        return weight_of(s.model, job.layer), job, None, init, device
    return (None if s.recipe.graph is not None else s.model), job, s.recipe, init, device


def analyse_tensors(s: Subject, ws: Workspace) -> list[dict]:
    weights_sha = s.info["weights_sha256"]
    inits = init_weights(s.info)
    todo, entries = [], []
    for job in s.recipe.tensors:
        path = tensor_path(s, ws, job.id)
        cache = Entry(path, entry_key(__name__, weights_sha, "tensor", job.id))
        entry = {"id": job.id, "layer": job.layer, "source": job.source, "label": job.label, "kind": job.kind,
                 "file": str(path.relative_to(ws.root))}
        entries.append(entry)
        if cache.get() is None:
            init = inits.get(f"{job.layer}.weight") if inits is not None and job.source is None else None
            todo.append((cache, job, init))
    if todo:
        ws.log(f"{s.name}: {len(todo)} tensor(s) on {parallel.describe(ws.n_jobs, len(todo))}")
        # Largest first, so the workers finish together; each result is written (and dropped) as it arrives.
        todo.sort(key=lambda t: -_cost(s.model, t[1]))
        # Locally, the few largest (ResNet-50's last blocks: ~1.5 GB each while analysed) go one at a time first, so
        # two of them never share the machine's memory; a cluster takes everything at once.
        big = [t for t in todo if _cost(s.model, t[1]) > LARGE] if parallel.active() == "local" else []
        rest = [t for t in todo if t not in big]
        for batch, n_jobs in ((big, 1), (rest, ws.n_jobs)):
            tasks = [_task(s, job, init, ws.device) for _, job, init in batch]
            for k, report in parallel.unordered(_compute, tasks, n_jobs):
                cache, job, _ = batch[k]
                cache.put({"model": s.name, "id": job.id, "layer": job.layer, "source": job.source,
                           "label": job.label, **_arrays_beside(cache.path, report)})
                del report
    for entry in entries:
        entry.update(summary(jsonio.read_json(ws.root / entry["file"])))
    link_next(entries, s.recipe.blocks_json())
    return entries


LARGE = 1 << 21  # parameters spanned (see _cost) above which a tensor is analysed alone on a local machine
BESIDE = 1 << 21  # NMF channel loadings with more values than this go to a .npy beside the JSON (ResNet-50's
# last blocks: 12.6 M values, 118 MB as JSON text); figures read them through article.figures.analysis_data


def _arrays_beside(path, report: dict) -> dict:
    """The report with each large `channels` array of its NMF records saved as float32 .npy next to `path` and
    replaced by {"npy": file name, "shape": [...]}: the JSON stays small and quick to write, read and hash."""
    for key in ("nmf", "nmf_delta"):
        nmf = report.get(key)
        channels = nmf.get("channels") if isinstance(nmf, dict) else None
        if channels is None or np.asarray(channels).size <= BESIDE:
            continue
        array = np.ascontiguousarray(channels, dtype=np.float32)
        name = f"{path.stem}.{key}-channels.npy"
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        jsonio.write_bytes_atomic(path.with_name(name), buffer.getvalue())
        report = {**report, key: {**nmf, "channels": {"npy": name, "shape": list(array.shape)}}}
    return report


def _cost(model, job: recipes.TensorJob) -> int:
    """Rough work estimate for scheduling: parameters of the modules a tensor spans."""
    mods = dict(model.named_modules())
    return sum(p.numel() for n in (job.layer, job.source) if n in mods for p in mods[n].parameters())
