"""The tensor stage: every weight tensor of a recipe (a conv's own, or expanded) -> its tensor_report() record."""
from __future__ import annotations

import functools

import numpy as np
import torch
from joblib import Parallel, delayed

from analysis import jsonio, recipes
from analysis.cache import Entry, entry_key
from analysis.errors import AnalysisError
from analysis.heap import keep_large_blocks_mapped, release_free_heap
from analysis.loading import init_weights, weight_of
from analysis.paths import safe_component
from analysis.spec import Subject, Workspace
from analysis.tensor_report import link_next, summary, tensor_report


def tensor_of(model, job: recipes.TensorJob, recipe: recipes.Recipe) -> np.ndarray:
    """The [out, in, h, w] tensor of a job: a conv's own weight, or the expanded weights between two layers."""
    if job.source is None:
        return weight_of(model, job.layer)
    from analysis.expanded import expanded_weights, expanded_weights_via

    net, lower, upper = recipe.network(model), recipe.hook(job.source), recipe.hook(job.layer)
    # float32: 3-4x faster than float64 at a relative error near 1e-6, far below the 3 digits figures show.
    if job.via:
        expand = functools.partial(expanded_weights_via, net, lower, job.via, upper, dtype=torch.float32)
    else:
        expand = functools.partial(expanded_weights, net, lower, upper, dtype=torch.float32)
    try:
        return expand()  # the smallest input that holds the whole support: cheapest
    except AnalysisError as searched:
        # A model that runs only at the size it was built for (e.g. a fixed-size layer below `upper`): expand there.
        try:
            return expand(input_size=recipe.image_size)
        except AnalysisError:
            raise searched from None


def tensor_path(s: Subject, ws: Workspace, tensor_id: str):
    return ws.root / s.name / "tensors" / f"{safe_component(tensor_id)}.json"


def _compute(model, job: recipes.TensorJob, recipe: recipes.Recipe, init: np.ndarray | None) -> dict:
    """One tensor, start to finish, in a joblib worker: (expand if needed) then every numpy analysis."""
    torch.set_num_threads(1)
    keep_large_blocks_mapped()  # with the trim below: loky's leak check sees what the worker holds (analysis.heap)
    report = tensor_report(tensor_of(model, job, recipe), init=init)
    release_free_heap()
    return report


def analyse_tensors(s: Subject, ws: Workspace) -> list[dict]:
    weights_sha = s.info["weights_sha256"]
    inits = init_weights(s.info)
    todo, entries = [], []
    for job in s.recipe.tensors:
        path = tensor_path(s, ws, job.id)
        cache = Entry(path, entry_key(weights_sha, "tensor", job.id))
        entry = {"id": job.id, "layer": job.layer, "source": job.source, "label": job.label, "kind": job.kind,
                 "file": str(path.relative_to(ws.root))}
        entries.append(entry)
        if cache.get() is None:
            init = inits.get(f"{job.layer}.weight") if inits is not None and job.source is None else None
            todo.append((cache, job, init))
    if todo:
        n_jobs = ws.n_jobs
        ws.log(f"{s.name}: {len(todo)} tensor(s) on {min(n_jobs, len(todo))} worker(s)")
        if n_jobs > 1 and len(todo) > 1:
            # Largest first, so the two workers finish together.
            order = sorted(range(len(todo)), key=lambda k: -_cost(s.model, todo[k][1]))
            # No backend named here: `with joblib.parallel_backend("dask"):` (or ray) around the build takes over.
            results = Parallel(n_jobs=min(n_jobs, len(todo)))(
                delayed(_compute)(s.model, todo[k][1], s.recipe, todo[k][2]) for k in order)
            reports = [None] * len(todo)
            for k, r in zip(order, results):
                reports[k] = r
        else:
            reports = [_compute(s.model, job, s.recipe, init) for _, job, init in todo]
        for (cache, job, _), report in zip(todo, reports):
            cache.put({"model": s.name, "id": job.id, "layer": job.layer, "source": job.source, "label": job.label,
                       **report})
    for entry in entries:
        entry.update(summary(jsonio.read_json(ws.root / entry["file"])))
    link_next(entries, s.recipe.blocks_json())
    return entries


def _cost(model, job: recipes.TensorJob) -> int:
    """Rough work estimate for scheduling: parameters of the modules a tensor spans."""
    mods = dict(model.named_modules())
    return sum(p.numel() for n in (job.layer, job.source) if n in mods for p in mods[n].parameters())
