"""A tiny analysis cache for the weight-explorer tests: one model 'tinynet' of three convs (8, 16 and 2,048 neurons),
its tensor records made by the real analysis.tensor_report (numpy only, no torch, nothing trained), a feature
visualization and dataset examples for a few neurons of conv2."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

SHAPES = {"conv1": [8, 3, 3, 3], "conv2": [16, 8, 3, 3], "conv3": [2048, 16, 3, 3]}
FV_CHANNELS = (3, 5)
EXAMPLE_CHANNEL = 3
FOLDER = "tinynet/0123456789abcdef"  # <safe name>/<model key>, as analysis.spec.Workspace.model_dir names it


def _png(color: tuple[int, int, int], size: int = 16) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def make_cache(cache: Path, seed: int = 0) -> dict[str, dict]:
    """Write ``cache/analysis/`` and ``cache/featureviz/``; return the tensor records by id."""
    from analysis import jsonio
    from analysis.tensor_report import link_next, summary, tensor_report

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
    (root / FOLDER / "examples").mkdir(parents=True)
    examples = []
    for rank in range(3):
        rel = f"analysis/{FOLDER}/examples/conv2-{EXAMPLE_CHANNEL}-{rank}.png"
        (cache / rel).write_bytes(_png((40 * rank, 120, 200)))
        examples.append({"image": rel, "photo": "coffee", "x": 0, "y": 0, "activation": 3.0 - rank})
    jsonio.write_json(root / FOLDER / "context-0.json", {
        "tensor": "conv2", "lower": "conv1", "upper": "conv2", "outs": [EXAMPLE_CHANNEL], "ins": [1],
        "examples": {"upper": [examples], "lower": [[]]}})
    manifest = {"schema": "vw-analysis-manifest/1", "code": "test", "unavailable": {},
                "models": {"tinynet": {
                    "label": "TinyNet", "family": "test", "color": "#333333", "notes": [],
                    "info": {"parameters": sum(int(np.prod(s)) for s in SHAPES.values()), "source": "random weights"},
                    "tensors": entries, "blocks": [{"name": t, "kind": "conv", "convs": [t]} for t in SHAPES],
                    "context": [{"file": f"{FOLDER}/context-0.json", "tensor": "conv2"}], "folder": FOLDER,
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
    (the build checks a manifest's model entries against this list: analysis.fingerprint.model_entry_ok)."""
    from analysis import jsonio

    root = cache / "analysis"
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"] = [{"path": p.relative_to(root).as_posix(), "sha256": jsonio.sha256_file(p)}
                         for p in sorted(root.rglob("*")) if p.is_file() and p.name != "manifest.json"]
    jsonio.write_json(root / "manifest.json", manifest)
