"""A worked reading of one neuron's input weights (Voss et al. 2021, "Weights in context"), as data.

For an output neuron of a weight tensor [out, in, h, w]: its strongest input neurons by the L2 norm of the kernel
between them, each kernel itself (signed, on the figure's one scale), a feature visualization of the neuron and of
each input, and the neuron's one-sided NMF with a feature visualization of each factor's channel loadings (a
direction in the input layer: Voss et al., Figures 7-8). The render side lays it out (article/figures/reading.py);
dataset examples come from the examples stage by (layer, channel).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

ImagesFn = Callable[[str, list[int]], list[str | None]]  # (side, channels) -> feature-visualization paths
DirectionsFn = Callable[[np.ndarray], list[str | None]]  # directions [n, in] in the lower layer -> paths


def strongest_inputs(kernels: np.ndarray, k: int) -> list[int]:
    """The k input channels whose kernels [in, h, w] have the largest L2 norm, strongest first, ties by index."""
    norms = np.sqrt((np.asarray(kernels, dtype=np.float64) ** 2).sum(axis=(1, 2)))
    return np.argsort(-norms, kind="stable")[: max(0, int(k))].tolist()


def top_loadings(loadings: np.ndarray, k: int = 4) -> list[dict]:
    """The k input channels with the largest |loading| of one NMF factor, signed, strongest first."""
    v = np.asarray(loadings, dtype=np.float64)
    order = np.argsort(-np.abs(v), kind="stable")[:k]
    return [{"channel": int(c), "loading": float(v[c])} for c in order]


def reading(neuron: int, kernels: np.ndarray, n_inputs: int, images: ImagesFn,
            nmf: dict | None = None, directions: DirectionsFn | None = None) -> dict:
    """One neuron's reading. kernels: its input weights [in, h, w]; nmf: {"rgb" [h, w, 3], "spatial" [k, h, w],
    "channels" [k, in]} of this neuron (from its tensor report), or None for a tensor NMF does not cover."""
    kernels = np.asarray(kernels, dtype=np.float32)
    ins = strongest_inputs(kernels, n_inputs)
    own = images("upper", [neuron])[0]
    fv_in = images("lower", ins)
    record: dict = {
        "neuron": int(neuron), "featviz": own,
        "norm": float(np.sqrt((kernels.astype(np.float64) ** 2).sum())),
        "inputs": [{"channel": int(c), "featviz": fv, "kernel": kernels[c],
                    "l2": float(np.sqrt((kernels[c].astype(np.float64) ** 2).sum())),
                    "sum": float(kernels[c].astype(np.float64).sum())} for c, fv in zip(ins, fv_in)],
        # One scale per reading: every kernel shown for this neuron is comparable with every other.
        "scale": float(np.abs(kernels[ins]).max()) if ins else 0.0,
    }
    if nmf is not None:
        loadings = np.asarray(nmf["channels"], dtype=np.float32)  # [k, in], signed: positive minus negative part
        pictures = directions(loadings) if directions is not None else [None] * len(loadings)
        record["nmf"] = {"rgb": np.asarray(nmf["rgb"], dtype=np.float32),
                         "factors": [{"spatial": np.asarray(nmf["spatial"][f], dtype=np.float32),
                                      "featviz": pictures[f], "top": top_loadings(loadings[f])}
                                     for f in range(len(loadings))]}
    return record
