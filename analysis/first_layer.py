"""The first-layer stage: a model's first conv filters as RGB pictures (one JSON record and one sprite PNG)."""
from __future__ import annotations

import numpy as np

from analysis.cache import Entry, entry_key
from analysis.loading import weight_of
from analysis.pictures import filter_sprite, png_bytes
from analysis.core.spec import Subject, Workspace


def first_layer(s: Subject, ws: Workspace) -> dict | None:
    layer = s.recipe.first_layer
    if layer is None:
        return None
    from analysis.core.weights import dead_filters, first_layer_rgb

    weight = weight_of(s.model, layer)
    if weight.shape[1] not in (1, 3):
        return None
    cache = Entry(ws.model_dir(s) / "first-layer.json", entry_key(__name__, s.info["weights_sha256"], "first", layer))
    if cache.get(picture=True) is None:
        # One scale for the model by default (a weak filter looks weak); each filter's own scale one click away.
        rgb = first_layer_rgb(weight, scaling="shared")
        cache.put({"model": s.name, "layer": layer, "shape": list(weight.shape), "rgb": rgb,
                   "rgb_per_filter": first_layer_rgb(weight, scaling="per_filter"),
                   "norm": np.sqrt((weight.reshape(weight.shape[0], -1) ** 2).sum(1)),
                   "max_abs": np.abs(weight).reshape(weight.shape[0], -1).max(1),
                   "dead": dead_filters(weight).tolist(), "gray": int(weight.shape[1]) == 1},
                  png=png_bytes(filter_sprite(rgb)))
    return {"file": str(cache.path.relative_to(ws.root)), "image": str(cache.png.relative_to(ws.root)),
            "layer": layer}
