"""The tensor stage: every weight tensor of a recipe (a conv's own, or expanded) -> its record of every per-tensor
analysis (analysis/per_tensor/).

A record's own key covers the tensor (this module's code, which expands it, and the model's weights); each
analysis's fields in it are keyed by the code of that analysis's module too, so an edit of one analysis, or a new one,
recomputes only its own fields. (This module imports the registry, analysis/per_tensor/__init__.py, not the analyses:
they are found by name at run time, so their code is not part of this module's key.)"""
from __future__ import annotations

import gc
import io

import numpy as np
import torch

from analysis import parallel, recipes, skips
from analysis.core import jsonio
from analysis.cache import Entry, entry_key
from collections.abc import Callable

from analysis import per_tensor
from analysis.core.errors import AnalysisError
from analysis.heap import keep_large_blocks_mapped, release_free_heap
from analysis.loading import init_weights, weight_of
from analysis.core.paths import safe_component
from analysis.core.spec import Subject, Workspace


def tensor_of(model, job: recipes.TensorJob, recipe: recipes.Recipe, device: str = "cpu") -> np.ndarray:
    """The [out, in, h, w] tensor the analyses show for a job: a conv's own weight, or the expanded weights between
    two layers, less the identity where a residual skip joins them (shown_tensor)."""
    return shown_tensor(model, job, recipe, device)[0]


def shown_tensor(model, job: recipes.TensorJob, recipe: recipes.Recipe,
                 device: str = "cpu") -> tuple[np.ndarray, dict]:
    """(tensor, skip facts). Expanded weights through an identity skip (every block between the two layers adds its
    input back: analysis.skips) are the blocks' own contribution, total minus the identity, which would otherwise
    fill every view with weight 1 from each channel to itself: facts {"identity": "removed", "identity_at": [y, x]}
    say where it was. A skip through a projection stays in: {"identity": "projection"}; else {"identity": "none"}."""
    if job.source is None:
        return weight_of(model, job.layer), {"identity": skips.NONE}
    from analysis.expanded import expanded_weights, expanded_weights_split, expanded_weights_via, identity_at

    net, lower, upper = recipe.network(model), recipe.hook(job.source), recipe.hook(job.layer)
    verdict = skips.between(net, lower, upper)  # None: the graph cannot tell (untraced): the numbers decide
    check = verdict in (skips.IDENTITY, None)
    # float32: 3-4x faster than float64 at a relative error near 1e-6, far below the 3 digits figures show.
    common = {"dtype": torch.float32, "device": device}

    def expand(**size) -> tuple[np.ndarray, tuple[int, int] | None]:
        if job.via:
            total = expanded_weights_via(net, lower, job.via, upper, **common, **size)
            square = total.shape[0] == total.shape[1]
            return total, identity_at(net, lower, upper, **common, **size) if check and square else None
        if check:
            return expanded_weights_split(net, lower, upper, **common, **size)
        return expanded_weights(net, lower, upper, **common, **size), None

    try:
        total, at = expand()  # the smallest input that holds the whole support: cheapest
    except AnalysisError as searched:
        # A model that runs only at the size it was built for (e.g. a fixed-size layer below `upper`): expand there.
        try:
            total, at = expand(input_size=recipe.image_size)
        except AnalysisError:
            # Which tensor, and its hooks: a block boundary that is not a [B, C, H, W] map points at the blocks.
            raise AnalysisError(f"expanded weights {job.id} (hooks {lower} -> {upper}): {searched}") from searched
    if at is None:  # none looked for (a projection or no skip), or none in the numbers (an untraced model's)
        return total, {"identity": skips.NONE if check else verdict}
    idx = np.arange(total.shape[0])
    total[idx, idx, at[0], at[1]] -= 1.0  # now the blocks' own contribution
    return total, {"identity": "removed", "identity_at": [int(at[0]), int(at[1])]}


def tensor_path(s: Subject, ws: Workspace, tensor_id: str):
    return ws.model_dir(s) / "tensors" / f"{safe_component(tensor_id)}.json"


def _compute(model, job: recipes.TensorJob, recipe: recipes.Recipe, init: np.ndarray | None, device: str,
             analyses: list[tuple[str, Callable]]) -> dict:
    """One tensor, start to finish, in a joblib worker (local or on a cluster): expand if needed, then the analyses
    asked for; then the freed heap goes back to the system (analysis.heap: loky's leak check, and memory at scale).
    {"base": shape and skip facts, "parts": {analysis: its fields}}."""
    torch.set_num_threads(1)
    keep_large_blocks_mapped()
    if isinstance(model, np.ndarray):
        weight, skip = model, {"identity": skips.NONE}
    else:
        weight, skip = shown_tensor(model, job, recipe, device)
    weight = np.asarray(weight, dtype=np.float32)
    facts = per_tensor.Facts(init=None if init is None else np.asarray(init, dtype=np.float32), skip=skip)
    result = {"base": per_tensor.base_fields(weight, facts), "parts": {name: fn(weight, facts) for name, fn in analyses}}
    del weight, model, recipe
    gc.collect()  # model copies a task brought along are freed only by the collector
    release_free_heap()
    return result


def _task(s: Subject, job: recipes.TensorJob, init, device: str, analyses: list[tuple[str, Callable]]) -> tuple:
    """What a worker needs for one tensor, and no more: a conv's own weight travels as its array; expanded weights
    need only the recipe's probed network, not a second copy of the model (ResNet-50: 100 MB per task saved)."""
    if job.source is None:
        return weight_of(s.model, job.layer), job, None, init, device, analyses
    return (None if s.recipe.graph is not None else s.model), job, s.recipe, init, device, analyses


def analyse_tensors(s: Subject, ws: Workspace) -> list[dict]:
    """Every tensor of the recipe analysed by every registered per-tensor analysis: the manifest entries, each with
    its record's file; only the analyses whose fields are missing or stale in a record are run."""
    analyses = per_tensor.registered()
    weights_sha = s.info["weights_sha256"]
    inits = init_weights(s.info)
    todo, entries = [], []
    for job in s.recipe.tensors:
        path = tensor_path(s, ws, job.id)
        base = entry_key(__name__, weights_sha, "tensor", job.id)
        keys = {name: entry_key(fn.__module__, base, name) for name, fn in analyses.items()}
        entry = {"id": job.id, "layer": job.layer, "source": job.source, "label": job.label, "kind": job.kind,
                 "file": str(path.relative_to(ws.root))}
        entries.append(entry)
        old = Entry(path, base).get()
        kept = _kept_parts(old, keys)
        stale = [name for name in keys if name not in kept]
        if stale:
            init = inits.get(f"{job.layer}.weight") if inits is not None and job.source is None else None
            todo.append((Entry(path, base), job, init, keys, kept, stale))
        elif old is not None and set(old.get("parts") or {}) != set(keys):  # an analysis is gone: so are its fields
            _write(Entry(path, base), s, job, {k: old[k] for k in per_tensor.BASE_FIELDS if k in old}, kept, keys)
    if todo:
        running = sorted({name for *_, stale in todo for name in stale})
        ws.log(f"{s.name}: {len(todo)} tensor(s) on {parallel.describe(ws.n_jobs, len(todo))}"
               + ("" if len(running) == len(analyses) else f" ({', '.join(running)} only)"))
        # Largest first, so the workers finish together; each result is written (and dropped) as it arrives.
        todo.sort(key=lambda t: -_cost(s.model, t[1]))
        # Locally, the few largest (ResNet-50's last blocks: ~1.5 GB each while analysed) go one at a time first, so
        # two of them never share the machine's memory; a cluster takes everything at once.
        big = [t for t in todo if _cost(s.model, t[1]) > LARGE] if parallel.active() == "local" else []
        rest = [t for t in todo if t not in big]
        for batch, n_jobs in ((big, 1), (rest, ws.n_jobs)):
            tasks = [_task(s, job, init, ws.device, [(n, analyses[n]) for n in stale])
                     for _, job, init, _, _, stale in batch]
            for k, result in parallel.unordered(_compute, tasks, n_jobs):
                cache, job, _, keys, kept, _ = batch[k]
                _write(cache, s, job, result["base"], {**kept, **result["parts"]}, keys)
                del result
    return entries


def _write(cache: Entry, s: Subject, job: recipes.TensorJob, base: dict, parts: dict[str, dict],
           keys: dict[str, str]) -> None:
    """The tensor's record: its base fields, then each analysis's fields (in the analyses' order) and where they are."""
    record = {"model": s.name, "id": job.id, "layer": job.layer, "source": job.source, "label": job.label, **base,
              **per_tensor.merge([parts[n] for n in keys]),
              "parts": {name: {"key": keys[name], "fields": _paths(parts[name])} for name in keys}}
    cache.put(_arrays_beside(cache.path, record))


def _paths(fields: dict) -> list[str]:
    """Where an analysis's fields sit in the merged record: "key", or "key/sub" for each entry of a dict field (two
    analyses may share a dict field, e.g. `total`)."""
    return [f"{k}/{sub}" for k, v in fields.items() if isinstance(v, dict) and v for sub in v] + \
        [k for k, v in fields.items() if not (isinstance(v, dict) and v)]


def _kept_parts(record: dict | None, keys: dict[str, str]) -> dict[str, dict]:
    """The fields of each analysis whose key the record still holds (its code and the tensor are unchanged): read
    back from the record by the paths it stored."""
    if record is None or not isinstance(record.get("parts"), dict):
        return {}
    kept = {}
    for name, key in keys.items():
        part = record["parts"].get(name)
        if not isinstance(part, dict) or part.get("key") != key or not isinstance(part.get("fields"), list):
            continue
        fields: dict = {}
        try:
            for path in part["fields"]:
                top, _, sub = str(path).partition("/")
                if sub:
                    fields.setdefault(top, {})[sub] = record[top][sub]
                else:
                    fields[top] = record[top]
        except (KeyError, TypeError):
            continue  # a record that lost a field it lists: recompute that analysis
        kept[name] = fields
    return kept


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
