"""Data of the weight explorer: one small script + one sprite PNG per layer, packed from the analysis JSON.

Reads only `shape, banding.{R,C}, norm, nmf.{rgb,neuron_error}, top_inputs, top_outputs, identity` (and, for a
block whose identity skip was removed, `identity_at` and `total.{norm, top_inputs, top_outputs}`) of a tensor record
(the full weights and NMF factors may be absent for large models). Kernels are stored as integers -99..99 on each
neuron's own scale (the max |w| over its strongest inputs' kernels: one shared diverging scale per neuron), which
keeps MobileNetV2's 1,280-neuron layer under half a megabyte. Torch-free; numpy is imported only when packing (a
build whose explorer files are all cached never loads it).
"""
from __future__ import annotations

import io
import json
import math
import re
from typing import Any

LEVELS = 99  # kernel quantisation: integers -LEVELS..LEVELS of the neuron's scale
FV_MARKER = re.compile(r"vw_block_(\d+)")  # feature visualizations of a block are filed under its graph marker


def sig(x: Any, digits: int = 3) -> Any:
    """Three significant digits (None for a missing or non-finite number)."""
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    return 0 if x == 0 else float(f"{x:.{digits}g}")


def sigs(values: Any, digits: int = 3) -> list:
    import numpy as np

    return [sig(v, digits) for v in np.asarray(values, dtype=np.float64).ravel()]


def sprite(rgb: Any) -> tuple[bytes, int, int]:
    """[n, h, w, 3] pictures in [0, 1] -> (PNG of a grid of cells h x w, columns, rows); empty cells grey. The page
    scales it up with CSS (pixelated): the file holds each weight once."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(rgb, dtype=np.float64)
    n, h, w, _ = rgb.shape
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    grid = np.full((rows * h, cols * w, 3), 128, dtype=np.uint8)
    pix = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    for i in range(n):
        y, x = (i // cols) * h, (i % cols) * w
        grid[y:y + h, x:x + w] = pix[i]
    buf = io.BytesIO()
    Image.fromarray(grid, "RGB").save(buf, format="PNG", optimize=True)
    return buf.getvalue(), cols, rows


def quantised_kernels(kernel: Any) -> tuple[list[list[int]], list[Any]]:
    """[out, k, h, w] signed kernels -> (per neuron a flat list of integers, per neuron its scale max |w|)."""
    import numpy as np

    k = np.asarray(kernel, dtype=np.float64)
    out = k.shape[0]
    scale = np.abs(k.reshape(out, -1)).max(axis=1) if k.size else np.zeros(out)
    safe = np.where(scale > 0, scale, 1.0)
    q = np.round(k.reshape(out, -1) / safe[:, None] * LEVELS).astype(int)
    return q.tolist(), sigs(scale, 4)


def featureviz_by_channel(fv_manifest: list[dict], model: str, layer: str, blocks: list[dict]) -> dict[int, str]:
    """channel -> cached image path (relative to the featureviz folder or the cache) of the feature visualizations
    made for ``layer`` of ``model`` (a block's marker `vw_block_<i>` is the i-th block of the manifest)."""
    out = {}
    for e in fv_manifest:
        if e.get("model") != model:
            continue
        name = e.get("layer", "")
        m = FV_MARKER.fullmatch(name)
        if m and int(m.group(1)) < len(blocks):
            name = blocks[int(m.group(1))]["name"]
        if name == layer and isinstance(e.get("channel"), int) and e.get("image"):
            out.setdefault(e["channel"], e["image"])
    return out


def factor_featureviz(listing: dict | None, tensor: str) -> dict[int, list[str]]:
    """neuron -> feature visualizations of its NMF factors (paths relative to the cache folder) for ``tensor``, from
    the model's neurons-featureviz.json listing (analysis/neuron_featureviz.py)."""
    found = ((listing or {}).get("factors") or {}).get(tensor) or {}
    return {int(n): list(paths) for n, paths in found.items() if str(n).isdigit() and isinstance(paths, list)}


def _inputs(top: dict) -> dict:
    """Strongest inputs for the page: indices, norms and (when stored) their kernels, quantised."""
    import numpy as np

    out = {"index": np.asarray(top["index"], dtype=int).tolist(), "strength": [sigs(s) for s in top["strength"]]}
    if "kernel" in top:
        out["kernel"], out["scale"] = quantised_kernels(top["kernel"])
    return out


def _outputs(top: dict) -> dict:
    import numpy as np

    return {"index": np.asarray(top["index"], dtype=int).tolist(), "strength": [sigs(s) for s in top["strength"]]}


def layer_payload(record: dict, entry: dict, next_record: dict | None, prev_id: str | None) -> dict:
    """Everything the explorer shows about one layer's neurons, as plain lists (images are added by the caller).

    A block whose identity skip was removed (`identity`: "removed") also carries `total`: the norms and strongest
    inputs with the skip included, which the page switches to; `outputs_total` likewise when the next tensor's was."""
    import numpy as np

    from analysis.core.banding import picture_banding  # numpy only

    out, n_in, h, w = record["shape"]
    nmf = record.get("nmf") or {}
    # Each neuron's banding as the articles score it: R and C of its NMF picture (of W itself where it has none).
    banding = picture_banding(nmf["rgb"]) if nmf.get("rgb") is not None else record["banding"]
    payload: dict[str, Any] = {
        "id": entry["id"], "n": out, "in": n_in, "h": h, "w": w, "next": entry.get("next"), "prev": prev_id,
        # Sort keys keep four digits: thousands of neurons share a narrow range of norms.
        "norm": sigs(record["norm"], 4) if "norm" in record else None,
        "R": sigs(banding["R"], 4), "C": sigs(banding["C"], 4),
        "err": sigs(nmf["neuron_error"], 4) if "neuron_error" in nmf else None,
        "inputs": _inputs(record["top_inputs"]), "identity": record.get("identity", "none"),
        "outputs": None, "sprite": None, "fv": {}, "ex": None, "ffv": {},
    }
    if record.get("total"):
        payload["total"] = {"at": record["identity_at"], "norm": sigs(record["total"]["norm"], 4),
                            "inputs": _inputs(record["total"]["top_inputs"])}
    if nmf.get("rgb") is not None:  # R, G, B are factors 0-2, each peaking at 1: the factors, as integers 0..99
        rgb = np.asarray(nmf["rgb"], dtype=np.float64)
        payload["factors"] = np.round(rgb.transpose(0, 3, 1, 2).reshape(out, -1) * LEVELS).astype(int).tolist()
    if next_record is not None and "top_outputs" in next_record and next_record["shape"][1] == out:
        payload["outputs"] = _outputs(next_record["top_outputs"])
        if next_record.get("total"):
            payload["outputs_total"] = _outputs(next_record["total"]["top_outputs"])
    return payload


def layer_script(payload: dict) -> str:
    """A classic script (file:// pages cannot fetch JSON) that hands the layer to the explorer."""
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True, allow_nan=False)
    return f"VWExplorer.layer({text});\n"
