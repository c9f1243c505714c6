"""What the explorer and figures read of a tensor besides banding and NMF: norms, strongest inputs and outputs with
their kernels, the largest |w|, the strongest pairs' kernels, the raw weights of a small tensor; the same views of the
total with the identity added back for a block whose skip was removed."""
from __future__ import annotations

import numpy as np

from analysis.per_tensor import Facts, register
from analysis.core.weights import top_inputs

TOP_INPUTS = 8
MAX_STORED_WEIGHTS = 100_000  # raw weights are kept for heatmaps unless the tensor is large
TOP_PAIRS = 6  # strongest outputs x inputs whose kernels are always kept


@register("views")
def views(weight: np.ndarray, facts: Facts) -> dict:
    out = _views(weight)
    if weight.size <= MAX_STORED_WEIGHTS:
        out["weight"] = weight
    total = facts.total(weight)
    if total is not None:
        out["total"] = _views(total)
    return out


def _views(weight: np.ndarray) -> dict:
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
