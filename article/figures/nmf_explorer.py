"""Figure: one-sided NMF explorer. Pick a layer, click a neuron: its factors, loadings and strongest inputs.

Data are one compact record per neuron (arrays); Vega-Lite's flatten + window transforms expand them in the
browser, which keeps the data file several times smaller than one record per pixel.
"""
from __future__ import annotations

import math

from ..explorer_links import explorer_href, follow_selection
from . import analysis_data as ad
from .cells import unit_cells
from .registry import Figure, FigureContext, register

LOADINGS = 4  # channels listed per factor
TOP_INPUTS = 6
FACTOR_COLORS = ["#d62728", "#2ca02c", "#1f77b4"]  # factor 0, 1, 2 = R, G, B of the pictures


def default_layers(man: dict) -> list[tuple[str, str]]:
    """The tensors each of the article's models features (its family's choice, in the manifest): the lab's three
    variants (seed 0) first, then the real networks."""
    lab = [n for n in man["models"] if n.startswith("lab-") and n.endswith("-s0")]
    names = lab + [n for n in ad.article_models(man) if not n.startswith("lab-")]
    return [(name, tid) for name in names for tid in man["models"][name].get("featured_nmf", [])]


def tensor_label(man: dict, model: str, t: dict) -> str:
    return f"{ad.label(man, model)} \u2014 {t.get('label') or t['id']}"


def neuron_records(label: str, report: dict, key: str = "nmf") -> list[dict]:
    nmf = report[key]
    out_n = len(nmf["spatial"])
    k = nmf["k"]
    h, w = len(nmf["spatial"][0][0]), len(nmf["spatial"][0][0][0])
    cols = max(1, math.ceil(math.sqrt(out_n * 1.6)))
    recs = []
    for n in range(out_n):
        spatial = nmf["spatial"][n]
        rgb = nmf["rgb"][n]
        channels = nmf["channels"][n]
        lc, lv, lf = [], [], []
        for f in range(k):
            order = sorted(range(len(channels[f])), key=lambda c: -abs(channels[f][c]))[:LOADINGS]
            lc += order
            lv += [round(channels[f][c], 3) for c in order]
            lf += [f] * len(order)
        ti = report["top_inputs"]["index"][n][:TOP_INPUTS]
        tv = report["top_inputs"]["strength"][n][:TOP_INPUTS]
        recs.append({
            "t": label, "n": n, "w": w, "h": h, "cols": cols,
            "rgb": [ad.hexcolor(rgb[y][x])[1:] for y in range(h) for x in range(w)],
            "s": [round(spatial[f][y][x], 2) for f in range(k) for y in range(h) for x in range(w)],
            "lc": lc, "lv": lv, "lf": lf, "ti": ti, "tv": [ad.r3(v) for v in tv],
            "R": ad.r3(report["banding"]["R"][n]), "C": ad.r3(report["banding"]["C"][n]),
        })
    return recs


def _link_text(man: dict, model: str, tid: str, neuron) -> str:
    return f"Open {ad.label(man, model)} — {tid}, neuron {neuron} in the weight explorer"


@register("nmf_explorer")
def nmf_explorer(ctx: FigureContext, params: dict[str, str]) -> Figure:
    import altair as alt

    man = ad.manifest(ctx)
    layers = default_layers(man)
    if params.get("layers"):
        layers = [tuple(x.split(":", 1)) for x in params["layers"].split(",")]
    elif params.get("model"):  # every analysed tensor of one model: every block (large layers make heavy pages)
        layers = [(params["model"], t["id"]) for t in ad.model_entry(ctx, params["model"])["tensors"]
                  if t.get("nmf_error") is not None]
    records, labels, explorer, targets = [], [], {}, {}
    for model, tid in layers:
        entry = next((t for t in ad.model_entry(ctx, model)["tensors"] if t["id"] == tid), None)
        if entry is None:
            raise ctx.error(f"model '{model}' has no analysed tensor '{tid}'")
        report = ad.analysis_file(ctx, entry["file"])
        if "nmf" not in report:
            continue
        label = tensor_label(man, model, entry)
        labels.append(label)
        explorer.setdefault(model, tid)  # the model's first layer here, neuron 0: what the figure opens on
        records += neuron_records(label, report)
        targets[label] = {"href": explorer_href(model, tid), "text": _link_text(man, model, tid, "{n}"),
                          "neurons": len(report["nmf"]["spatial"])}
    if not labels:
        raise ctx.error("no tensor with NMF results to explore")

    layer = alt.param(name="layer", value=labels[0], bind=alt.binding_select(options=labels, name="Layer "))
    # nearest: a click anywhere selects the closest neuron, so clicking a gap never empties the detail panels.
    neuron = alt.selection_point(name="neuron", fields=["n"], value=[{"n": 0}], on="click", clear=False,
                                 toggle=False, nearest=True, empty=False)
    data = alt.Data(values=records)
    in_layer = alt.datum.t == layer

    overview = (
        alt.Chart(data)
        .transform_filter(in_layer)
        .transform_flatten(["rgb"], as_=["c"])
        .transform_window(p="row_number()", groupby=["t", "n"])
        .transform_calculate(
            gx="(datum.n % datum.cols) * (datum.w + 1) + (datum.p - 1) % datum.w",
            gy="floor(datum.n / datum.cols) * (datum.h + 1) + floor((datum.p - 1) / datum.w)",
            color="'#' + datum.c", gx2="datum.gx + 1", gy2="datum.gy + 1")
        .mark_rect()
        .encode(
            x=alt.X("gx:Q", axis=None, scale=alt.Scale(nice=False, zero=True)), x2="gx2:Q",
            y=alt.Y("gy:Q", axis=None, scale=alt.Scale(nice=False, zero=True, reverse=True)), y2="gy2:Q",
            color=alt.Color("color:N", scale=None),
            opacity=alt.condition(neuron, alt.value(1), alt.value(0.55)),
            tooltip=[alt.Tooltip("n:Q", title="neuron"), alt.Tooltip("R:Q", title="row share R"),
                     alt.Tooltip("C:Q", title="column share C")],
        )
        .add_params(layer, neuron)
        .properties(width=420, height=300, title="every neuron of the layer (click one)")
    )
    selected = alt.Chart(data).transform_filter(in_layer).transform_filter(neuron)
    positioned = (
        selected
        .transform_flatten(["s"], as_=["v"])
        .transform_window(p="row_number()", groupby=["t", "n"])
        .transform_calculate(
            f="floor((datum.p - 1) / (datum.w * datum.h))",
            q="(datum.p - 1) % (datum.w * datum.h)")
        .transform_calculate(
            fx="datum.f * (datum.w + 1) + datum.q % datum.w", fy="floor(datum.q / datum.w)",
            factor="'factor ' + datum.f")
    )
    factors = (
        unit_cells(
            positioned, "fx", "fy",
            color=alt.Color("factor:N", scale=alt.Scale(domain=["factor 0", "factor 1", "factor 2"],
                                                        range=FACTOR_COLORS), legend=None),
            opacity=alt.Opacity("v:Q", scale=alt.Scale(domain=[0, 1]), legend=None),
            tooltip=[alt.Tooltip("factor:N"), alt.Tooltip("v:Q", title="spatial weight", format=".2f")],
        )
        .properties(width=300, height=90, title="its three spatial factors (R, G, B)")
    )
    loadings = (
        selected
        .transform_flatten(["lc", "lv", "lf"], as_=["ch", "val", "f"])
        .transform_calculate(factor="'factor ' + datum.f", item="'f' + datum.f + ' \u00b7 ch ' + datum.ch")
        .mark_bar()
        .encode(
            y=alt.Y("item:N", sort=None, title=None),
            x=alt.X("val:Q", title="signed channel loading"),
            color=alt.Color("factor:N", scale=alt.Scale(domain=["factor 0", "factor 1", "factor 2"],
                                                        range=FACTOR_COLORS), legend=None),
            tooltip=[alt.Tooltip("factor:N"), alt.Tooltip("ch:Q", title="input channel"),
                     alt.Tooltip("val:Q", title="loading", format=".3f")],
        )
        .properties(width=300, height=170, title="channels loading most on each factor")
    )
    strongest = (
        selected
        .transform_flatten(["ti", "tv"], as_=["ch", "norm"])
        .transform_calculate(item="'ch ' + datum.ch")
        .mark_bar(color="#8c6d31")
        .encode(y=alt.Y("item:N", sort=None, title=None), x=alt.X("norm:Q", title="L2 norm of kernel"),
                tooltip=[alt.Tooltip("ch:Q", title="input channel"), alt.Tooltip("norm:Q", format=".4f")])
        .properties(width=300, height=110, title="strongest input channels")
    )
    chart = alt.hconcat(overview, alt.vconcat(factors, loadings, strongest)).configure_view(strokeWidth=0)
    chart = chart.configure_title(fontSize=12, anchor="start")
    # The model's link follows the neuron the reader picks in one of its layers (figures.js).
    chart = chart.properties(usermeta=follow_selection("neuron", "n", targets, param="layer"))
    links = [(_link_text(man, m, t, 0), explorer_href(m, t, 0)) for m, t in explorer.items()]
    return Figure(chart=chart, links=links, description=(
        f"Interactive one-sided NMF explorer over {len(labels)} layers ({'; '.join(labels)}). The grid shows every "
        "neuron's input weights reduced to three NMF factors drawn as RGB; selecting a neuron shows its spatial "
        "factors, the input channels with the largest signed loading on each factor, and its strongest inputs."))
