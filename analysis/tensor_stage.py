"""The tensor stage: every weight tensor of a recipe (a conv's own, or expanded) -> its tensor_report() record."""
from __future__ import annotations

import io

import numpy as np
import torch

from analysis import jsonio, parallel, recipes
from analysis.cache import cached, entry_key
from analysis.loading import init_weights, weight_of
from analysis.paths import safe_component
from analysis.spec import Subject, Workspace
from analysis.tensor_report import SCHEMA, tensor_report


def tensor_of(model, job: recipes.TensorJob, recipe: recipes.Recipe, device: str = "cpu") -> np.ndarray:
    if job.source is None:
        return weight_of(model, job.layer)
    from analysis.expanded import expanded_weights, expanded_weights_via

    net, lower, upper = recipe.network(model), recipe.hook(job.source), recipe.hook(job.layer)
    # float32: 3-4x faster than float64 at a relative error near 1e-6, far below the 3 digits figures show.
    if job.via:
        return expanded_weights_via(net, lower, job.via, upper, dtype=torch.float32, device=device)
    return expanded_weights(net, lower, upper, dtype=torch.float32, device=device)


def tensor_path(s: Subject, ws: Workspace, tensor_id: str):
    return ws.root / s.name / "tensors" / f"{safe_component(tensor_id)}.json"


def _compute(model, job: recipes.TensorJob, recipe: recipes.Recipe, init: np.ndarray | None, device: str) -> dict:
    """One tensor, start to finish, in a joblib worker (local or on a cluster): expand if needed, then every numpy
    analysis."""
    torch.set_num_threads(1)
    weight = model if isinstance(model, np.ndarray) else tensor_of(model, job, recipe, device)
    report = tensor_report(weight, init=init)
    del weight, model, recipe
    release_memory()
    return report


def release_memory() -> None:
    """Hand freed heap back to the system (glibc keeps it otherwise): a worker or the build process that has just
    analysed a large tensor would hold ~1 GB it no longer uses while the next ones run."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


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
        key = entry_key(weights_sha, "tensor", job.id)
        entry = {"id": job.id, "layer": job.layer, "source": job.source, "label": job.label, "kind": job.kind,
                 "file": str(path.relative_to(ws.root))}
        entries.append(entry)
        if cached(path, key) is None:
            init = inits.get(f"{job.layer}.weight") if inits is not None and job.source is None else None
            todo.append((path, key, job, init))
    if todo:
        ws.log(f"{s.name}: {len(todo)} tensor(s) on {parallel.describe(ws.n_jobs, len(todo))}")
        # Largest first, so the workers finish together; each result is written (and dropped) as it arrives.
        todo.sort(key=lambda t: -_cost(s.model, t[2]))
        # Locally, the few largest (ResNet-50's last blocks: ~1.5 GB each while analysed) go one at a time first, so
        # two of them never share the machine's memory; a cluster takes everything at once.
        big = [t for t in todo if _cost(s.model, t[2]) > LARGE] if parallel.active() == "local" else []
        rest = [t for t in todo if t not in big]
        for batch, n_jobs in ((big, 1), (rest, ws.n_jobs)):
            tasks = [_task(s, job, init, ws.device) for _, _, job, init in batch]
            for k, report in parallel.unordered(_compute, tasks, n_jobs):
                path, key, job, _ = batch[k]
                record = {"schema": SCHEMA, "key": key, "model": s.name, "id": job.id, "layer": job.layer,
                          "source": job.source, "label": job.label, **_arrays_beside(path, report)}
                jsonio.write_json(path, record)
                del report, record
    for entry in entries:
        data = jsonio.read_json(ws.root / entry["file"])
        entry["shape"] = data["shape"]
        entry["R_layer"] = data["banding"]["R_layer"]
        entry["C_layer"] = data["banding"]["C_layer"]
        entry["nmf_error"] = data.get("nmf", {}).get("error")
        if "banding_delta" in data:
            entry["R_delta"] = data["banding_delta"]["R_layer"]
            entry["C_delta"] = data["banding_delta"]["C_layer"]
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
