"""A tiny analysis cache for the weight-explorer tests: one model 'tinynet' of three convs (8, 16 and 2,048 neurons),
its tensor records made by the real analysis.tensor_report (numpy only, no torch, nothing trained), a feature
visualization for a few neurons of conv2, and dataset examples of every neuron of every layer in the records'
format (analysis/SCHEMA.md, `<model>/examples/`): EXAMPLES_K per neuron, rectangles in one 96 x 64 picture."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

SHAPES = {"conv1": [8, 3, 3, 3], "conv2": [16, 8, 3, 3], "conv3": [2048, 16, 3, 3]}
FV_CHANNELS = (3, 5)
EXAMPLE_CHANNEL = 3
FOLDER = "tinynet/0123456789abcdef"  # <safe name>/<model key>, as analysis.core.spec.Workspace.model_dir names it
EXAMPLES_K = 4
PICTURE = f"{FOLDER}/examples/pics/photo.png"  # 96 x 64: four 24-px colour bands


def example_activation(layer: str, channel: int, rank: int) -> float:
    return round(10.0 - rank + 0.001 * channel + 0.1 * list(SHAPES).index(layer), 3)


BIG_FIELD_CHANNEL = 7  # conv2's channel whose field is wider than its context square (a deep layer's can be)


def example_rect(channel: int, rank: int) -> tuple[list[float], list[float]]:
    """(at, rf_at) of an example in the picture: a 32-px context square, its 8-px receptive field in the middle (for
    BIG_FIELD_CHANNEL a 48-px field around the square)."""
    x, y = (channel * 7 + rank * 13) % 64, (channel * 3 + rank * 5) % 32
    if channel == BIG_FIELD_CHANNEL:
        return [x, y, 32, 32], [x - 8, y - 8, 48, 48]
    return [x, y, 32, 32], [x + 12, y + 12, 8, 8]


def _png(color: tuple[int, int, int], size: int = 16) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def make_cache(cache: Path, seed: int = 0) -> dict[str, dict]:
    """Write ``cache/analysis/`` and ``cache/featureviz/``; return the tensor records by id."""
    from analysis.core import jsonio
    from analysis.per_tensor import tensor_report
    from analysis.tensor_report import link_next, summary

    rng = np.random.default_rng(seed)
    root = cache / "analysis"
    records, entries = {}, []
    for tid, shape in SHAPES.items():
        record = {"schema": "vw-analysis/1", "model": "tinynet", "id": tid, "layer": tid, "source": None,
                  "label": tid, **tensor_report(rng.normal(size=shape).astype(np.float32))}
        path = root / FOLDER / "tensors" / f"{tid}.json"
        jsonio.write_json(path, record)
        records[tid] = json.loads(path.read_text())
        entries.append({"id": tid, "layer": tid, "source": None, "label": tid, "kind": "kernel",
                        "file": f"{FOLDER}/tensors/{tid}.json", **summary(records[tid])})
    link_next(entries)
    examples_entry = _write_examples(root)
    jsonio.write_json(root / FOLDER / "context-0.json", {
        "tensor": "conv2", "lower": "conv1", "upper": "conv2", "outs": [EXAMPLE_CHANNEL], "ins": [1]})
    manifest = {"schema": "vw-analysis-manifest/1", "code": "test", "unavailable": {},
                "models": {"tinynet": {
                    "label": "TinyNet", "family": "test", "color": "#333333", "notes": [],
                    "info": {"parameters": sum(int(np.prod(s)) for s in SHAPES.values()), "source": "random weights"},
                    "tensors": entries, "blocks": [{"name": t, "kind": "conv", "convs": [t]} for t in SHAPES],
                    "context": [{"file": f"{FOLDER}/context-0.json", "tensor": "conv2"}], "folder": FOLDER,
                    "examples": examples_entry,
                    "featured_nmf": ["conv2"], "featured_banding": ["conv3"], "first_layer": None}}}
    jsonio.write_json(root / "manifest.json", manifest)
    relist(cache)
    fv = []
    for ch in FV_CHANNELS:
        rel = f"tinynet/vw_block_1/c{ch:04d}.png"  # block 1 is conv2: the marker names it, as the analysis does
        (cache / "featureviz" / rel).parent.mkdir(parents=True, exist_ok=True)
        (cache / "featureviz" / rel).write_bytes(_png((200, 60 + 30 * ch, 40)))
        fv.append({"model": "tinynet", "layer": "vw_block_1", "channel": ch, "image": rel})
    (cache / "featureviz" / "manifest.json").write_text(json.dumps(fv), encoding="utf-8")
    return records


def relist(cache: Path) -> None:
    """List every file of ``cache/analysis/`` with its sha256 in the manifest, as analysis.pipeline does after a run
    (the build checks a manifest's model entries against this list: analysis.core.fingerprint.model_entry_ok)."""
    from analysis.core import jsonio

    root = cache / "analysis"
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"] = [{"path": p.relative_to(root).as_posix(), "sha256": jsonio.sha256_file(p)}
                         for p in sorted(root.rglob("*")) if p.is_file() and p.name != "manifest.json"]
    jsonio.write_json(root / "manifest.json", manifest)


def _write_examples(root: Path) -> dict:
    """Every layer's examples (records as analysis/examples_stage.py writes them) and the one picture they point into;
    returns the manifest's `examples` entry."""
    import hashlib

    from PIL import Image

    from analysis.core import jsonio

    picture = np.zeros((64, 96, 3), dtype=np.uint8)
    for band, colour in enumerate([(220, 60, 40), (40, 160, 60), (40, 80, 220), (230, 200, 40)]):
        picture[:, band * 24:(band + 1) * 24] = colour
    buf = io.BytesIO()
    Image.fromarray(picture, "RGB").save(buf, format="PNG")
    (root / PICTURE).parent.mkdir(parents=True, exist_ok=True)
    (root / PICTURE).write_bytes(buf.getvalue())
    sha = hashlib.sha256(buf.getvalue()).hexdigest()
    layers = {}
    for layer, shape in SHAPES.items():
        rows = []
        for ch in range(shape[0]):
            row = []
            for rank in range(EXAMPLES_K):
                at, rf_at = example_rect(ch, rank)
                row.append({"rank": rank, "activation": example_activation(layer, ch, rank), "image": 0,
                            "scale": 64, "position": [1, 1], "rf": rf_at, "box": at, "picture": 0, "at": at,
                            "rf_at": rf_at})
            rows.append(row)
        record = {"schema": "vw-examples/1", "model": "tinynet", "layer": layer, "hook": layer,
                  "channels": shape[0], "gray": False, "receptive_field": {"size": 8, "stride": [2, 2],
                                                                          "offset": [3.5, 3.5]},
                  "images": [{"id": "test/photo.png", "label": "test photo"}],
                  "pictures": [{"file": PICTURE, "width": 96, "height": 64, "sha256": sha}], "examples": rows}
        jsonio.write_json(root / FOLDER / "examples" / f"{layer}.json", record)
        layers[layer] = {"file": f"{FOLDER}/examples/{layer}.json", "channels": shape[0], "hook": layer,
                         "receptive_field": record["receptive_field"]}
    jsonio.write_json(root / FOLDER / "examples" / "index.json", {
        "schema": "vw-examples/1", "model": "tinynet", "top": EXAMPLES_K, "per_image": 2, "layers": layers,
        "dataset": {"kind": "folder", "name": "test", "images": 1, "seen": 1, "complete": True,
                    "pictures": "sources", "gray": False}})
    return {"file": f"{FOLDER}/examples/index.json", "complete": True, "images": 1, "total": 1}
