"""Feature visualizations of the neurons the site shows, and of their NMF factors, cached per picture
(analysis/featureviz/cache.py).

Three sources, in this order:
1. The output neurons of the model's featured NMF tensors (the article's NMF explorer shows each of them), at most
   FEATURED_NEURONS of each, strongest first (every one on the default site), and the NMF factors of the strongest
   FACTOR_NEURONS of each: always, whatever the budget.
2. The author's budget (site.yml `analysis: featureviz_budget: {count, seconds}`), per model: neurons in rounds across
   the recipe's layers (the strongest first), a round small enough that the count reaches every layer; a later build
   with a larger budget renders only the new ones.
3. `featureviz_budget: all` (the default on a CUDA GPU): every neuron of every analysed layer and every NMF factor of
   every neuron, Microscope-style.
"""
from __future__ import annotations

import numpy as np

from analysis.core import jsonio
from analysis.context_stage import _cap, _nmf_arrays, _quality, featureviz_key
from analysis.core.spec import Subject, Workspace
from analysis.tensor_report import SCHEMA
from analysis.tensor_stage import tensor_path

ROUND = 8  # at most this many neurons per layer per round (one rendering batch)
FACTOR_NEURONS = 2  # neurons of each featured tensor whose NMF factors are visualized
FEATURED_NEURONS = 64  # neurons of each featured tensor always visualized (a brought ResNet-50's 2,048 would take hours)


def neuron_order(report: dict) -> list[int]:
    n = int(report["shape"][0])
    norm = report.get("norm")
    if isinstance(norm, list) and len(norm) == n:
        return sorted(range(n), key=lambda i: (-float(norm[i]), i))
    return list(range(n))


class _Renderer:
    """One model's cached renderers: neurons of a layer, NMF-factor directions of a tensor."""

    def __init__(self, s: Subject, ws: Workspace):
        self.s, self.ws = s, ws
        from analysis.featureviz import picture_channels

        self.quality = _quality(s.recipe.featureviz, ws.featureviz)  # its size caps each layer's (featureviz.canvas)
        self.key = featureviz_key(s)
        self.net, self.channels_in = s.recipe.network(s.model), picture_channels(s.info)
        self.images: dict[str, dict[str, str]] = {}
        self.factors: dict[str, dict[str, list[str]]] = {}
        self.sizes: dict[str, int] = {}

    def sized(self, layer: str) -> dict:
        """The quality at `layer`'s own render size: its receptive field up to the cap (the context figures' too,
        so both share the cached pictures)."""
        from analysis.featureviz import render_size

        if layer not in self.sizes:
            self.sizes[layer] = render_size(self.net, self.s.recipe.hook(layer), cap=_cap(self.quality),
                                            channels_in=self.channels_in, input_size=self.s.recipe.image_size)
        return {**self.quality, "size": self.sizes[layer]}

    def neurons(self, layer: str, chans: list[int], budget=None) -> None:
        from analysis.featureviz import cached_visualize

        for e in cached_visualize(self.net, self.s.name, self.key, self.s.recipe.hook(layer), chans,
                                  self.ws.cache_dir, self.sized(layer), channels_in=self.channels_in,
                                  num_threads=self.ws.n_jobs, device=self.ws.device, batch=max(1, len(chans)),
                                  budget=budget):
            self.images.setdefault(layer, {})[str(e["channel"])] = f"featureviz/{e['image']}"

    def nmf_factors(self, job, report: dict, neurons: list[int]) -> None:
        """Each factor's signed channel loadings, visualized as a direction in the tensor's input layer."""
        from analysis.featureviz import cached_visualize_directions

        lower = job.source or self.s.recipe.graph.feeds.get(job.layer) if self.s.recipe.graph else job.source
        nmf = _nmf_arrays(self.ws, self.s, job.id, report)
        if lower in (None, "input") or nmf is None or not neurons:
            return
        loadings = np.concatenate([np.asarray(nmf["channels"][o], dtype=np.float32) for o in neurons])
        entries = cached_visualize_directions(self.net, self.s.name, self.key, self.s.recipe.hook(lower), loadings,
                                              self.ws.cache_dir, self.sized(lower), channels_in=self.channels_in,
                                              num_threads=self.ws.n_jobs, device=self.ws.device)
        k = len(loadings) // len(neurons)
        for i, o in enumerate(neurons):
            self.factors.setdefault(job.id, {})[str(o)] = [f"featureviz/{e['image']}" for e in entries[i * k:(i + 1) * k]]


def neuron_featureviz(s: Subject, ws: Workspace, featured: list[str]) -> dict | None:
    """{"file": <model>/neurons-featureviz.json, "count"}: {"layers": {layer: {neuron: image}}, "factors": {tensor:
    {neuron: [image per factor]}}}; None when nothing is shown (no featured tensor, no budget)."""
    jobs = {job.id: job for job in s.recipe.tensors}
    reports = {tid: r for tid in jobs if (r := jsonio.read_json(tensor_path(s, ws, tid))) is not None}
    every = ws.budget is not None and ws.budget.every
    if not featured and (ws.budget is None or ws.budget.count == 0) and not every:
        return None
    r = _Renderer(s, ws)
    for tid in featured:  # 1. what the article shows
        if tid in reports:
            order = neuron_order(reports[tid])
            r.neurons(jobs[tid].layer, order[:FEATURED_NEURONS])
            r.nmf_factors(jobs[tid], reports[tid], order[:FACTOR_NEURONS])
    orders: dict[str, list[int]] = {}
    for tid, report in reports.items():
        orders.setdefault(jobs[tid].layer, neuron_order(report))
    if every:  # 3. Microscope: every neuron and every factor
        for layer, order in orders.items():
            for start in range(0, len(order), 64):
                r.neurons(layer, order[start:start + 64], ws.budget)
        for tid, report in reports.items():
            r.nmf_factors(jobs[tid], report, neuron_order(report))
    elif ws.budget is not None and ws.budget.count != 0:  # 2. the author's budget, in rounds across layers
        _budgeted(r, ws.budget, orders)
    listed = sum(map(len, r.images.values()))
    factors = sum(map(len, r.factors.values()))
    budgeted = ws.budget is not None and (ws.budget.count != 0 or every)
    rendered = f"; budget per model: {ws.budget.describe()}, {ws.budget.rendered} rendered now" if budgeted else ""
    ws.log(f"{s.name}: feature visualizations of {listed} neuron(s) in {len(r.images)} layer(s) and of the NMF "
           f"factors of {factors} neuron(s){rendered}")
    path = ws.model_dir(s) / "neurons-featureviz.json"
    jsonio.write_json(path, {"schema": SCHEMA, "model": s.name, "quality": r.quality, "layers": r.images,
                             "factors": r.factors, "sizes": r.sizes})
    return {"file": str(path.relative_to(ws.root)), "count": listed}


def _budgeted(r: _Renderer, budget, orders: dict[str, list[int]]) -> None:
    longest = max((len(o) for o in orders.values()), default=0)
    count = budget.count
    step = ROUND if count is None else max(1, min(ROUND, count // max(1, len(orders))))
    for start in range(0, longest, step):
        if count is not None and budget.spent_count >= count:
            break
        for layer, order in orders.items():
            chans = order[start:start + step]
            if chans:
                r.neurons(layer, chans, budget)
