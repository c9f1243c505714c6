"""Every analysis of one weight tensor [out, in, h, w], as a JSON-able record (pure numpy; runs in joblib workers)."""
from __future__ import annotations

import numpy as np

from analysis.banding import banding_scores, picture_banding
from analysis.nmf import nmf_rgb, one_sided_nmf, reconstruction_error
from analysis.spec import SCHEMA  # noqa: F401  (defined there so the record cache does not import this module)
from analysis.weights import top_inputs

TOP_INPUTS = 8
MAX_STORED_WEIGHTS = 100_000  # raw weights are kept for heatmaps unless the tensor is large
TOP_PAIRS = 6  # strongest outputs x inputs whose kernels are always kept


def tensor_report(weight: np.ndarray, *, init: np.ndarray | None = None, k: int = 3, seed: int = 0,
                  skip: dict | None = None) -> dict:
    """Banding (of W and, when the initial weights are known, of W - W_init), one-sided NMF, strongest inputs.

    skip: what `weight` holds about a residual skip (analysis.tensor_stage): {"identity": "removed", "identity_at":
    [y, x]} when it is a block's own contribution, the identity taken out; then `total` adds the views a reader can
    switch to (weight + the identity). Default {"identity": "none"}."""
    weight = np.asarray(weight, dtype=np.float32)
    out, n_in, h, w = weight.shape
    report: dict = {"shape": [out, n_in, h, w], "banding": banding_scores(weight), **(skip or {"identity": "none"})}
    if init is not None:
        report["banding_delta"] = banding_scores(weight - np.asarray(init, dtype=np.float32))
    if h * w > 1 and n_in > 1:
        spatial, channels = one_sided_nmf(weight, k=k, seed=seed)
        report["nmf"] = {
            "k": k,
            "spatial": spatial,
            "channels": channels,
            "rgb": nmf_rgb(spatial),  # the picture: figures draw it, they don't re-derive it
            "error": float(reconstruction_error(weight, spatial, channels)),
        }
        if init is not None:
            delta = weight - np.asarray(init, dtype=np.float32)
            spatial_d, channels_d = one_sided_nmf(delta, k=k, seed=seed)
            report["nmf_delta"] = {"k": k, "spatial": spatial_d, "channels": channels_d, "rgb": nmf_rgb(spatial_d),
                                   "error": float(reconstruction_error(delta, spatial_d, channels_d))}
    if "nmf" in report:
        report["nmf"]["neuron_error"] = reconstruction_error(weight, spatial, channels, per_neuron=True)
    report.update(_views(weight))
    if weight.size <= MAX_STORED_WEIGHTS:
        report["weight"] = weight
    if report["identity"] == "removed":
        total = with_identity(weight, report["identity_at"])
        report["total"] = {"banding": banding_scores(total), **_views(total)}
    return report


def with_identity(weight: np.ndarray, at) -> np.ndarray:
    """The total expanded weights of a block whose own contribution is `weight`: weight 1 added from each channel
    to itself at kernel position `at` (y, x), where the identity skip puts it."""
    total = np.array(weight, dtype=np.float32)
    idx = np.arange(min(total.shape[:2]))
    total[idx, idx, int(at[0]), int(at[1])] += 1.0
    return total


def _views(weight: np.ndarray) -> dict:
    """What the explorer and figures read of a tensor besides banding and NMF: norms, strongest inputs and outputs
    with their kernels, the largest |w|, the strongest pairs' kernels."""
    out, n_in = weight.shape[:2]
    idx, strength = top_inputs(weight, min(TOP_INPUTS, n_in))
    outs, ins = strongest_pairs(weight, TOP_PAIRS, TOP_PAIRS)
    return {
        "norm": np.sqrt((weight.astype(np.float64) ** 2).reshape(out, -1).sum(axis=1)),
        # The signed kernels themselves: the explorer draws them without the (possibly dropped) full weight.
        "top_inputs": {"index": idx, "strength": strength,
                       "kernel": np.take_along_axis(weight, idx[:, :, None, None], axis=1)},
        "top_outputs": top_outputs(weight, TOP_INPUTS),
        "max_abs": float(np.abs(weight).max()) if weight.size else 0.0,
        "top_pairs": {"outs": outs, "ins": ins, "weight": weight[np.ix_(outs, ins)]},
    }


def strongest_pairs(weight: np.ndarray, n_out: int, n_in: int) -> tuple[list[int], list[int]]:
    """The n_out output neurons with the largest weights, and the inputs that matter most to them together."""
    norms = np.sqrt((weight.astype(np.float64) ** 2).sum(axis=(1, 2, 3)))
    outs = sorted(np.argsort(-norms, kind="stable")[:n_out].tolist())
    per_in = np.sqrt((weight[outs].astype(np.float64) ** 2).sum(axis=(0, 2, 3)))
    ins = sorted(np.argsort(-per_in, kind="stable")[:n_in].tolist())
    return outs, ins


def top_outputs(weight: np.ndarray, k: int) -> dict:
    """For each input channel, the k output neurons it feeds most strongly (L2 norm of the kernel), strongest
    first, ties by lower index: the explorer's "where does this channel go" in the layer below."""
    norms = np.sqrt((weight.astype(np.float64) ** 2).sum(axis=(2, 3))).T  # [in, out]
    k = min(k, norms.shape[1])
    order = np.argsort(-norms, axis=1, kind="stable")[:, :k]
    return {"index": order, "strength": np.take_along_axis(norms, order, axis=1)}


def summary(record: dict) -> dict:
    """The manifest entry's numbers for one tensor record: what a table of layers shows without opening it."""
    banding = record["banding"]
    out, n_in, h, w = record["shape"]
    entry = {"shape": record["shape"], "parameters": out * n_in * h * w,
             "R_layer": banding["R_layer"], "C_layer": banding["C_layer"],
             "R_baseline": banding.get("baseline_R"), "C_baseline": banding.get("baseline_C"),
             "nmf_error": record.get("nmf", {}).get("error"), "identity": record.get("identity", "none")}
    if "banding_delta" in record:
        entry["R_delta"] = record["banding_delta"]["R_layer"]
        entry["C_delta"] = record["banding_delta"]["C_layer"]
    entry.update(nmf_banding(record))
    return entry


def nmf_banding(record: dict) -> dict:
    """The articles' banding score: R and C of the layer's NMF pictures, pooled over its neurons (`R_nmf`, `C_nmf`;
    `_delta` for the pictures of W - W_init). Derived from the stored pictures, so a cached record needs no rerun."""
    out = {}
    for key, suffix in (("nmf", ""), ("nmf_delta", "_delta")):
        if isinstance(record.get(key), dict) and "rgb" in record[key]:
            scores = picture_banding(record[key]["rgb"])
            out["R_nmf" + suffix], out["C_nmf" + suffix] = scores["R_layer"], scores["C_layer"]
    return out


def link_next(entries: list[dict], blocks: list[dict] = ()) -> None:
    """Set each manifest entry's `next`: the tensor whose input channels are this tensor's output neurons.

    A block or span feeds the block tensor read from its last block (`source` == its `layer`). A conv kernel that is
    the last conv of a block (`blocks`: the manifest's `{name, convs}`) feeds the block tensor read from that block,
    when the channel counts agree (a concatenation's last branch is only a slice of its block's output); any other
    kernel feeds the next kernel in forward order whose input count equals its output count; anything else: None.
    """
    last_conv_of = {b["convs"][-1]: b["name"] for b in blocks if b.get("convs")}
    for i, entry in enumerate(entries):
        entry["next"] = None
        if entry["kind"] in ("block", "span"):
            entry["next"] = _block_read_from(entries, entry["layer"], exclude=entry)
        elif entry["kind"] == "kernel":
            block = last_conv_of.get(entry["layer"])
            read = _block_read_from(entries, block, channels=entry["shape"][0]) if block else None
            entry["next"] = read or next((e["id"] for e in entries[i + 1:] if e["kind"] == "kernel"
                                          and e["shape"][1] == entry["shape"][0]), None)


def _block_read_from(entries: list[dict], source: str, *, exclude: dict | None = None,
                     channels: int | None = None) -> str | None:
    """The id of the block tensor whose `source` is `source` (and that reads `channels` inputs), or None."""
    return next((e["id"] for e in entries if e["kind"] == "block" and e.get("source") == source and e is not exclude
                 and (channels is None or e["shape"][1] == channels)), None)
