"""Weight banding scores: how much of a neuron's spatial weight variation is constant along rows or columns.

For output neuron o the input-channel vectors v(y, x) = W[o, :, y, x] vary over the kernel positions.
Their total spatial sum of squares T = sum_{y,x} ||v(y,x) - mean_v||^2 splits like a two-way ANOVA:
the part explained by the row means (horizontal bands: v depends on y only) is
W * sum_y ||row_mean(y) - mean_v||^2, by the column means H * sum_x ||col_mean(x) - mean_v||^2.
R and C are those shares of T (each in [0, 1]; R + C <= 1).

For i.i.d. Gaussian weights with `in` channels, R ~ Beta((H-1)in/2, H(W-1)in/2), whose mean is exactly the
baseline (H-1)/(HW-1); likewise C with (W-1)/(HW-1). Banded layers (Petrov et al. 2021) sit far above it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from analysis.core.errors import AnalysisError
from analysis.core.weights import as_conv_weight


def banding_scores(weight: Any) -> dict:
    """Row/column variance shares of each neuron and of the layer.

    weight: [out, in, H, W]. Returns {"R": [out], "C": [out] (float64 arrays, nan where T = 0),
    "R_layer", "C_layer" (pooled: sum of explained / sum of T over neurons with T > 0; nan if none),
    "baseline_R": (H-1)/(HW-1), "baseline_C": (W-1)/(HW-1) (nan for 1x1 kernels), "shape": [out, in, H, W]}.
    """
    w = as_conv_weight(weight, "banding_scores")
    _, _, h, wd = w.shape
    centred = w - w.mean(axis=(2, 3), keepdims=True)
    total = (centred**2).sum(axis=(1, 2, 3))  # T per neuron
    rows = wd * (centred.mean(axis=3) ** 2).sum(axis=(1, 2))  # explained by row means
    cols = h * (centred.mean(axis=2) ** 2).sum(axis=(1, 2))  # explained by column means
    # T below a round-off floor counts as zero: a constant kernel has no spatial structure to score.
    live = (total > 0) & (total > 1e-24 * (w**2).sum(axis=(1, 2, 3)))
    r = np.full(total.shape, np.nan)
    c = np.full(total.shape, np.nan)
    r[live] = rows[live] / total[live]
    c[live] = cols[live] / total[live]
    pooled_t = total[live].sum()
    n_pos = h * wd - 1
    return {
        "R": r,
        "C": c,
        "R_layer": float(rows[live].sum() / pooled_t) if live.any() else float("nan"),
        "C_layer": float(cols[live].sum() / pooled_t) if live.any() else float("nan"),
        "baseline_R": (h - 1) / n_pos if n_pos > 0 else float("nan"),
        "baseline_C": (wd - 1) / n_pos if n_pos > 0 else float("nan"),
        "shape": [int(s) for s in w.shape],
    }


def picture_banding(rgb: Any) -> dict:
    """`banding_scores` of NMF pictures: [out, h, w, 3], each neuron's three factors as the colour channels.

    The one banding score the articles compare: R and C of a layer's NMF pictures, pooled over its neurons, computed
    the same way on this build's pictures (`nmf.rgb` of a tensor report) and on the pixels of the pictures Petrov et al.
    published (bench/published_banding.py). Pixel scale does not matter (R and C are shares).
    """
    pic = np.asarray(rgb, dtype=np.float64)
    if pic.ndim != 4 or pic.shape[3] != 3 or 0 in pic.shape:
        raise AnalysisError(f"picture_banding: expected NMF pictures [out, h, w, 3], got shape {list(pic.shape)}")
    return banding_scores(pic.transpose(0, 3, 1, 2))
