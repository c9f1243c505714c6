"""The first-layer stage: a model's first conv filters as RGB pictures (one JSON record and one sprite PNG)."""
from __future__ import annotations

import numpy as np

from analysis import jsonio
from analysis.cache import cached, entry_key
from analysis.loading import weight_of
from analysis.pictures import filter_sprite, png_bytes
from analysis.spec import Subject, Workspace
from analysis.tensor_report import SCHEMA


def first_layer(s: Subject, ws: Workspace) -> dict | None:
    layer = s.recipe.first_layer
    if layer is None:
        return None
    from analysis.weights import first_layer_rgb

    weight = weight_of(s.model, layer)
    if weight.shape[1] not in (1, 3):
        return None
    path = ws.root / s.name / "first-layer.json"
    key = entry_key(s.info["weights_sha256"], "first", layer)
    if cached(path, key) is None or not path.with_suffix(".png").exists():
        record = {"schema": SCHEMA, "key": key, "model": s.name, "layer": layer,
                  "shape": list(weight.shape),
                  "rgb": first_layer_rgb(weight, scaling="per_filter"),
                  "rgb_shared": first_layer_rgb(weight, scaling="shared"),
                  "norm": np.sqrt((weight.reshape(weight.shape[0], -1) ** 2).sum(1))}
        jsonio.write_json(path, record)
        jsonio.write_bytes_atomic(path.with_suffix(".png"), png_bytes(filter_sprite(record["rgb"])))
    return {"file": str(path.relative_to(ws.root)), "image": str(path.with_suffix(".png").relative_to(ws.root)),
            "layer": layer}
