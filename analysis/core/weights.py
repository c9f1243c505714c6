"""Direct views of conv weights: first-layer RGB pictures, shared-scale heatmap tiles, strongest inputs.

All functions take a conv weight [out, in, h, w] as a numpy array (a CPU torch tensor works too) and
return numpy arrays. Conventions follow Distill's "Visualizing Weights": red is positive, blue negative,
and every tile of one figure shares a single max |w| so that tiles are comparable.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from analysis.core.errors import AnalysisError


def as_conv_weight(weight: Any, where: str = "weight", *, keep_float32: bool = False) -> np.ndarray:
    """Return `weight` as a float64 array [out, in, h, w]; raise AnalysisError naming `where` otherwise.
    keep_float32: a float32 array stays float32 (no copy: callers that widen chunk by chunk save memory)."""
    if hasattr(weight, "detach"):  # torch tensor, without importing torch here
        weight = weight.detach().cpu().numpy()
    keep = keep_float32 and getattr(weight, "dtype", None) == np.float32
    arr = np.asarray(weight, dtype=np.float32 if keep else np.float64)
    if arr.ndim != 4 or 0 in arr.shape:
        raise AnalysisError(f"{where}: expected a conv weight [out, in, h, w], got shape {list(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise AnalysisError(f"{where}: weight of shape {list(arr.shape)} contains NaN or inf")
    return arr


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (an all-zero filter stays at zero, i.e. mid-grey)."""
    return np.divide(num, den, out=np.zeros(np.broadcast_shapes(num.shape, den.shape)), where=den > 0)


DEAD_FRACTION = 1e-3  # a filter whose max |w| is below this share of the layer's is dead: never scaled up


def dead_filters(weight: Any) -> np.ndarray:
    """[out] bools: filters whose largest |w| is below DEAD_FRACTION of the layer's largest (e.g. 7 of
    EfficientNet-Lite1's 32 stem filters, max |w| < 5e-8, next to live ones near 1)."""
    w = as_conv_weight(weight, "dead_filters")
    peak = np.abs(w).max(axis=(1, 2, 3))
    return peak < DEAD_FRACTION * peak.max() if peak.max() > 0 else np.ones(len(peak), dtype=bool)


def first_layer_rgb(weight: Any, scaling: str = "shared") -> np.ndarray:
    """First-layer filters as RGB images.

    weight: [out, 3, h, w] (or [out, 1, h, w], shown as grey). Returns [out, h, w, 3] in [0, 1] where
    0.5 is a zero weight and 0 / 1 are -max|w| / +max|w|. `"shared"` (default) uses one max |w| for the whole
    layer, so relative strength is visible; `scaling="per_filter"` divides each filter by its own max |w| (shape
    is visible for weak filters), except dead filters (`dead_filters`), which keep the shared scale and so look
    dead instead of as saturated as the live ones.
    """
    w = as_conv_weight(weight, "first_layer_rgb")
    if w.shape[1] == 1:
        w = np.repeat(w, 3, axis=1)
    elif w.shape[1] != 3:
        raise AnalysisError(f"first_layer_rgb: expected 1 or 3 input channels, got shape {list(w.shape)}")
    shared = np.full((1, 1, 1, 1), np.abs(w).max())
    if scaling == "per_filter":
        scale = np.where(dead_filters(w)[:, None, None, None], shared, np.abs(w).max(axis=(1, 2, 3), keepdims=True))
    elif scaling == "shared":
        scale = shared
    else:
        raise AnalysisError(f"first_layer_rgb: scaling must be 'per_filter' or 'shared', got {scaling!r}")
    rgb = 0.5 + 0.5 * _safe_divide(w, scale)
    return np.clip(rgb.transpose(0, 2, 3, 1), 0.0, 1.0)


def _indices(sel: Sequence[int] | None, size: int, axis: str) -> np.ndarray:
    if sel is None:
        return np.arange(size)
    idx = np.asarray(sel, dtype=np.int64).reshape(-1)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= size:
        raise AnalysisError(f"heatmap_tiles: {axis} indices {idx.tolist()} out of range [0, {size})")
    return idx


def heatmap_tiles(weight: Any, outs: Sequence[int] | None = None, ins: Sequence[int] | None = None) -> dict:
    """Tiles W[outs][:, ins] on one shared diverging scale.

    Returns {"tiles": [len(outs), len(ins), h, w] in [-1, 1], "scale": max |w| over the selected tiles
    (float; 0.0 if all are zero), "outs": [...], "ins": [...]}. None selects all. The render side colours them (article/theme.py).
    """
    w = as_conv_weight(weight, "heatmap_tiles")
    o = _indices(outs, w.shape[0], "outs")
    i = _indices(ins, w.shape[1], "ins")
    tiles = w[o][:, i]
    scale = float(np.abs(tiles).max())
    return {
        "tiles": tiles / scale if scale > 0 else np.zeros_like(tiles),
        "scale": scale,
        "outs": o.tolist(),
        "ins": i.tolist(),
    }


def top_inputs(weight: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each output neuron, the k input channels whose kernels have the largest L2 norm.

    Returns (indices [out, k] int64, strength [out, k] = those L2 norms), strongest first; ties keep the
    lower channel index first. k larger than the number of input channels is clipped to it.
    """
    w = as_conv_weight(weight, "top_inputs")
    if int(k) < 1:
        raise AnalysisError(f"top_inputs: k must be >= 1, got {k}")
    k = min(int(k), w.shape[1])
    norms = np.sqrt((w**2).sum(axis=(2, 3)))  # [out, in]
    order = np.argsort(-norms, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(norms, order, axis=1)
