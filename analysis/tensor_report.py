"""Every analysis of one weight tensor [out, in, h, w], as a JSON-able record (pure numpy; runs in joblib workers)."""
from __future__ import annotations

import numpy as np

from analysis.banding import banding_scores
from analysis.nmf import nmf_rgb, one_sided_nmf, reconstruction_error
from analysis.weights import top_inputs

SCHEMA = "vw-analysis/1"
TOP_INPUTS = 8
MAX_STORED_WEIGHTS = 100_000  # raw weights are kept for heatmaps unless the tensor is large
TOP_PAIRS = 6  # strongest outputs x inputs whose kernels are always kept


def tensor_report(weight: np.ndarray, *, init: np.ndarray | None = None, k: int = 3, seed: int = 0) -> dict:
    """Banding (of W and, when the initial weights are known, of W - W_init), one-sided NMF, strongest inputs."""
    weight = np.asarray(weight, dtype=np.float32)
    out, n_in, h, w = weight.shape
    report: dict = {"shape": [out, n_in, h, w], "banding": banding_scores(weight)}
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
    idx, strength = top_inputs(weight, min(TOP_INPUTS, n_in))
    report["top_inputs"] = {"index": idx, "strength": strength}
    report["max_abs"] = float(np.abs(weight).max()) if weight.size else 0.0
    if weight.size <= MAX_STORED_WEIGHTS:
        report["weight"] = weight
    outs, ins = strongest_pairs(weight, TOP_PAIRS, TOP_PAIRS)
    report["top_pairs"] = {"outs": outs, "ins": ins, "weight": weight[np.ix_(outs, ins)]}
    return report


def strongest_pairs(weight: np.ndarray, n_out: int, n_in: int) -> tuple[list[int], list[int]]:
    """The n_out output neurons with the largest weights, and the inputs that matter most to them together."""
    norms = np.sqrt((weight.astype(np.float64) ** 2).sum(axis=(1, 2, 3)))
    outs = sorted(np.argsort(-norms, kind="stable")[:n_out].tolist())
    per_in = np.sqrt((weight[outs].astype(np.float64) ** 2).sum(axis=(0, 2, 3)))
    ins = sorted(np.argsort(-per_in, kind="stable")[:n_in].tolist())
    return outs, ins
