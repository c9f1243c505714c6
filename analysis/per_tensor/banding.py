"""Weight banding of a tensor (Petrov et al. 2021): of W, of W - W_init when the initial weights are known, and of
the total with the identity added back for a block whose skip was removed."""
from __future__ import annotations

import numpy as np

from analysis.core.banding import banding_scores
from analysis.per_tensor import Facts, register


@register("banding")
def banding(weight: np.ndarray, facts: Facts) -> dict:
    out = {"banding": banding_scores(weight)}
    if facts.init is not None:
        out["banding_delta"] = banding_scores(weight - facts.init)
    total = facts.total(weight)
    if total is not None:
        out["total"] = {"banding": banding_scores(total)}
    return out
