"""One-sided NMF of a tensor to `facts.k` spatial factors (Voss et al. 2021), shown as RGB; of W - W_init too when the
initial weights are known."""
from __future__ import annotations

import numpy as np

from analysis.nmf import nmf_rgb, one_sided_nmf, reconstruction_error
from analysis.per_tensor import Facts, register


@register("nmf")
def nmf(weight: np.ndarray, facts: Facts) -> dict:
    _, n_in, h, w = weight.shape
    if h * w <= 1 or n_in <= 1:  # a 1x1 kernel has no spatial factors; one input channel, nothing to factor
        return {}
    out = {"nmf": _factorize(weight, facts)}
    out["nmf"]["neuron_error"] = reconstruction_error(weight, out["nmf"]["spatial"], out["nmf"]["channels"],
                                                      per_neuron=True)
    if facts.init is not None:
        out["nmf_delta"] = _factorize(weight - facts.init, facts)
    return out


def _factorize(weight: np.ndarray, facts: Facts) -> dict:
    spatial, channels = one_sided_nmf(weight, k=facts.k, seed=facts.seed)
    return {"k": facts.k, "spatial": spatial, "channels": channels,
            "rgb": nmf_rgb(spatial),  # the picture: figures draw it, they don't re-derive it
            "error": float(reconstruction_error(weight, spatial, channels))}
