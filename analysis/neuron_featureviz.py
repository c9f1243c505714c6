"""Feature visualizations of every neuron the explorer shows, on the author's budget (site.yml
`analysis: featureviz_budget: {count, seconds}`), cached per neuron (analysis/featureviz/cache.py).

The budget is per model. Neurons are taken in rounds across the recipe's layers (the strongest first where the
tensor report has `norm`), a round being small enough that the count reaches every layer, so a small budget gives
every layer some pictures; a later build with a larger budget renders only the new ones.
"""
from __future__ import annotations

from analysis import jsonio
from analysis.context_stage import _quality, featureviz_key
from analysis.spec import Subject, Workspace
from analysis.tensor_report import SCHEMA
from analysis.tensor_stage import tensor_path

ROUND = 8  # at most this many neurons per layer per round (one rendering batch)


def neuron_order(report: dict) -> list[int]:
    n = int(report["shape"][0])
    norm = report.get("norm")
    if isinstance(norm, list) and len(norm) == n:
        return sorted(range(n), key=lambda i: (-float(norm[i]), i))
    return list(range(n))


def neuron_featureviz(s: Subject, ws: Workspace) -> dict | None:
    """{"file": <model>/neurons-featureviz.json} listing {layer: {neuron: image}}, or None without a budget."""
    from analysis.featureviz import cached_visualize

    if ws.budget is None or ws.budget.count == 0:
        return None
    orders: dict[str, list[int]] = {}
    for job in s.recipe.tensors:
        report = jsonio.read_json(tensor_path(s, ws, job.id))
        if report is not None and job.layer not in orders:
            orders[job.layer] = neuron_order(report)
    quality = _quality(s.recipe.featureviz, ws.featureviz)
    quality["size"] = min(int(quality.get("size", 64)), max(32, int(s.recipe.image_size)))
    fv_key = featureviz_key(s)
    net, channels_in = s.recipe.network(s.model), int(s.info.get("input_channels", 3))
    images: dict[str, dict[str, str]] = {layer: {} for layer in orders}
    longest = max((len(o) for o in orders.values()), default=0)
    count = ws.budget.count
    step = ROUND if count is None else max(1, min(ROUND, count // max(1, len(orders))))
    for start in range(0, longest, step):
        if count is not None and ws.budget.spent_count >= count:
            break
        for layer, order in orders.items():
            chans = order[start:start + step]
            if not chans:
                continue
            for e in cached_visualize(net, s.name, fv_key, s.recipe.hook(layer), chans, ws.cache_dir, quality,
                                      channels_in=channels_in, num_threads=ws.n_jobs, device=ws.device,
                                      batch=step, budget=ws.budget):
                images[layer][str(e["channel"])] = f"featureviz/{e['image']}"
    listed = sum(map(len, images.values()))
    ws.log(f"{s.name}: {listed} neuron feature visualization(s) in {sum(1 for v in images.values() if v)} of "
           f"{len(images)} layer(s), {ws.budget.rendered} rendered now (budget per model: {ws.budget.describe()})")
    path = ws.model_dir(s) / "neurons-featureviz.json"
    jsonio.write_json(path, {"schema": SCHEMA, "model": s.name, "quality": quality, "layers": images})
    return {"file": str(path.relative_to(ws.root)), "count": sum(map(len, images.values()))}
