"""Dataset examples for the weight explorer: per analysed layer one classic script (`examples/<layer>.js`, calling
`VWExplorer.examples(...)`: file:// pages cannot fetch) with every channel's examples as rectangles in pictures, and
the pictures themselves, copied from the analysis cache.

Page weight: for few images (the bundled photos, digits) the pictures are the source images, once per model (small
ones packed into sprite sheets), and the browser shows each example as a CSS crop of its picture at any size, with the
receptive field drawn as a box over it: no per-example files at all. For a large folder they are per-channel strips
of 64-px crops. A layer's script is loaded only when the reader opens that layer or a neuron that lists its neurons
(inputs come from the previous layer's script, outputs from the next one's). Torch-free.
"""
from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any, Callable

from analysis.core.paths import safe_component


def _rel(path: str, model_folder: str) -> str:
    """A cache path `<model>/examples/x` as a path inside the model's site folder: `examples/x`."""
    p = PurePosixPath(path)
    prefix = PurePosixPath(model_folder) / "examples"
    return "examples/" + p.relative_to(prefix).as_posix()


def _n(x: float) -> float | int:
    r = round(float(x), 1)
    return int(r) if r == int(r) else r


def layer_payload(record: dict, model_folder: str, dataset: str) -> dict:
    """One layer's examples as compact lists: pics [[url, width, height]], labels of the source images, and per
    channel [[picture, x, y, w, h, rf x, rf y, rf w, rf h, activation, label], ...] (rects in picture pixels)."""
    rows = []
    for channel in record["examples"]:
        rows.append([[e["picture"], *map(_n, e["at"]), *map(_n, e["rf_at"]), float(f"{e['activation']:.3g}"),
                      e["image"]] for e in channel])
    return {"layer": record["layer"], "n": record["channels"], "gray": bool(record.get("gray")), "dataset": dataset,
            "rf": record["receptive_field"]["size"],
            "pics": [[_rel(p["file"], model_folder), p["width"], p["height"]] for p in record["pictures"]],
            "labels": [i["label"] for i in record["images"]], "ex": rows}


def script(payload: dict) -> bytes:
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True, allow_nan=False, ensure_ascii=False)
    return f"VWExplorer.examples({text});\n".encode("utf-8")


def describe(index: dict) -> str:
    d = index.get("dataset") or {}
    name = {"photos": "the photos bundled with scikit-image, scikit-learn and matplotlib", "mnist": "MNIST digits"}.get(
        d.get("kind"), f"the folder {d.get('name')}")
    seen, total = d.get("seen", 0), d.get("images", 0)
    return f"{name} ({seen:,} of {total:,} images)" if seen != total else f"{name} ({total:,} images)"


def model_examples(model: dict, read_json: Callable[[str], Any], read_bytes: Callable[[str], bytes | None],
                   model_folder: str) -> tuple[dict[str, dict], dict[str, str], dict[str, bytes]]:
    """({layer: {layer, src: script path, n: channels}}, {tensor id: the layer its inputs are}, {path in the model's
    folder: bytes}) for a manifest model entry; empty when the model has no examples. `read_json` / `read_bytes` take
    paths relative to the analysis folder."""
    ref = model.get("examples")
    if not isinstance(ref, dict) or not ref.get("file"):
        return {}, {}, {}
    index = read_json(ref["file"])
    dataset = describe(index)
    layers: dict[str, dict] = {}
    files: dict[str, bytes] = {}
    for name, entry in (index.get("layers") or {}).items():
        record = read_json(entry["file"])
        src = f"examples/{safe_component(name)}.js"
        files[src] = script(layer_payload(record, model_folder, dataset))
        for p in record["pictures"]:
            target = _rel(p["file"], model_folder)
            if target not in files:
                data = read_bytes(p["file"])
                if data is not None:
                    files[target] = data
        layers[name] = {"layer": name, "src": src, "n": int(record["channels"])}
    return layers, dict(index.get("inputs") or {}), files


def record_files(manifest: dict, model_folder: str) -> list[str]:
    """The example records of a model as the manifest lists them (for cache keys: they carry their pictures' hashes)."""
    prefix = f"{model_folder}/examples/"
    return sorted(f["path"] for f in manifest.get("files", []) if isinstance(f, dict)
                  and str(f.get("path", "")).startswith(prefix) and str(f["path"]).endswith(".json"))
