"""Links into the weight explorer: a model page, a layer of it or one neuron, as figures and pages write them.

Its own module so that a figure's render-cache key (its import closure, analysis/core/codekey.py) holds these helpers and
not the whole page-writing stage that model_pages.py is.
"""
from __future__ import annotations

from analysis.core.paths import safe_component


def model_slug(name: str) -> str:
    """A model's folder under models/: the analysis cache's one safe-name rule (analysis.core.paths.safe_component)."""
    return safe_component(name)


def explorer_href(model: str, tensor: str | None = None, neuron: int | None = None, root: str = "../") -> str:
    """Link from a page ``root`` below the site root to a model page, its layer, or one neuron of that layer."""
    href = f"{root}models/{model_slug(model)}/index.html"
    if tensor is not None:
        href += "#" + fragment(tensor) + (f"/{int(neuron)}" if neuron is not None else "")
    return href


def follow_selection(select: str, field: str, targets: dict[str, dict], param: str | None = None) -> dict:
    """A chart's `usermeta` telling figures.js to keep its "in the weight explorer" link on the reader's neuron.

    select/field: the Vega-Lite point selection and the field that holds the neuron (its leading integer: a
    context pair "12-3" is output neuron 12). param: a parameter whose value picks the target (the NMF explorer's
    layer), else the target is "". targets: value -> {href: explorer_href(model, tensor), text: the link's text
    with "{n}" for the neuron, neurons: how many (optional)}; the link followed is the figure's link to the target's page.
    """
    return {"vwExplorer": {"select": select, "field": field, "param": param, "targets": targets}}


def fragment(tensor: str) -> str:
    """A tensor id as a URL fragment: '>' is percent-encoded (browsers do it anyway), the rest reads as written."""
    return tensor.replace("%", "%25").replace(">", "%3E").replace(" ", "%20").replace('"', "%22")
