"""Figure: one-sided NMF explorer. Pick a layer, click a neuron: its factors, loadings and strongest inputs.

Data are one compact record per neuron (arrays); Vega-Lite's flatten + window transforms expand them in the
browser, which keeps the data file several times smaller than one record per pixel.
"""
from __future__ import annotations

import json
import math

from . import analysis_data as ad
from ..structure.explorer_links import explorer_href, follow_selection
from .chart_data import inline
from .registry import PHONE_WIDTH, Figure, FigureContext, Interaction, register

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
    """The menu's name of a tensor; a residual block's says its NMF is of the block's own weights."""
    words = ad.skip_words(t, short=True)
    return f"{ad.label(man, model)} \u2014 {t.get('label') or t['id']}" + (f", {words}" if words else "")


def neuron_records(label: str, report: dict, key: str = "nmf", pictures: tuple[dict, dict] = ({}, {})) -> list[dict]:
    """One record per neuron; `pictures`: urls of its feature visualization and of its factors', by neuron."""
    nmf = report[key]
    out_n = len(nmf["spatial"])
    k = nmf["k"]
    h, w = len(nmf["spatial"][0][0]), len(nmf["spatial"][0][0][0])
    cols = max(1, math.ceil(math.sqrt(out_n * 1.6)))  # a landscape grid beside the panels (a phone's: phone_cols)
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
            "pics": [pictures[0].get(str(n), ""), *pictures[1].get(str(n), [])],
        })
    # A neuron's pictures: its own feature visualization, then its factors'. Where only some neurons of a layer have
    # all of them, those are ringed in the grid; any other says what it lacks, so no slot is left bare.
    counts = [sum(1 for u in r["pics"] if u) for r in recs]
    full = 1 + k
    some = any(c == full for c in counts) and not all(c == full for c in counts)
    for r, count in zip(recs, counts):
        r["ring"] = int(some and count == full)
        where = "the ringed neurons have them." if some else "in this layer."
        r["note"] = ("" if count == full
                     else f"No pictures of its factors;\n{where}" if r["pics"][0] and some
                     else "No pictures of its factors\nin this layer." if r["pics"][0]
                     else "No feature visualization of\nthis neuron; see the ringed ones." if some
                     else "No feature visualization of\nthis neuron.")
    return recs


def selection_in(spec: dict, param: str, view: str) -> dict:
    """The spec with selection `param` defined in the views named `view` only: Altair lists every layer of a layered
    view (here the rings over the neuron grid too), and Vega-Lite would then define the selection's signals twice."""
    for p in spec.get("params", []):
        if p.get("name") == param and "views" in p:
            p["views"] = [v for v in p["views"] if v.startswith(view)]
    return spec


def first_pictured(records: list[dict]) -> int:
    """The neuron the figure opens on: the first layer's first ringed neuron (0 when none is)."""
    first = [r for r in records if r["t"] == records[0]["t"]] if records else []
    return next((r["n"] for r in first if r["ring"]), 0)


def _pictures(ctx: FigureContext, assets: dict, model: str, entry: dict) -> tuple[dict, dict]:
    """{neuron: url} of the neurons' feature visualizations and {neuron: [url per factor]} of their NMF factors'."""
    layers, factors = ad.neuron_pictures(ctx, model)
    own = {n: ad.image_asset(ctx, assets, p) for n, p in (layers.get(entry["layer"]) or {}).items()}
    mixes = {n: [ad.image_asset(ctx, assets, p) for p in ps] for n, ps in (factors.get(entry["id"]) or {}).items()}
    return own, mixes


def _link_text(man: dict, model: str, tid: str, neuron) -> str:
    return f"Open {ad.label(man, model)} — {tid}, neuron {neuron} in the weight explorer"


def phone_cols(out_n: int) -> int:
    """Columns of a portrait grid of `out_n` neurons, above the panels on a phone."""
    return max(1, math.ceil(math.sqrt(out_n / 1.6)))


def per_layer(layer, values: dict[str, float]) -> str:
    """A Vega expression: the value for the layer the `layer` parameter shows."""
    items = list(values.items())
    expr = repr(items[-1][1])
    for name, v in reversed(items[:-1]):
        expr = f"({layer.name} === {json.dumps(name)} ? {v!r} : {expr})"
    return expr


def square_domains(alt, layer, extents: dict[str, tuple[int, int]], width: float, height: float):
    """x and y scales (zero at the top left) that give a grid cell as many pixels across as down in a view of
    width x height px, whichever layer the `layer` parameter shows: extents are each layer's grid in cells, and
    the scales' domains follow the parameter (a Vega expression), so a small layer is drawn larger, not stretched."""
    across = {k: round(max(gw, gh * width / height), 3) for k, (gw, gh) in extents.items()}
    down = {k: round(v * height / width, 3) for k, v in across.items()}
    x = alt.Scale(domain=[0, alt.ExprRef(per_layer(layer, across))], nice=False, zero=True)
    y = alt.Scale(domain=[0, alt.ExprRef(per_layer(layer, down))], nice=False, zero=True, reverse=True)
    return x, y


@register("nmf_explorer", interactions=(
    Interaction("bind:layer", "the grid of neurons (another layer's) and the selected neuron's panels", link=True),
    Interaction("click:neuron_cells", "the selected neuron's pictures, spatial factors, loadings and strongest inputs",
                link=True)))
def nmf_explorer(ctx: FigureContext, params: dict[str, str]) -> Figure:
    import altair as alt

    man = ad.manifest(ctx)
    layers = default_layers(man)
    if params.get("layers"):
        layers = [tuple(x.split(":", 1)) for x in params["layers"].split(",")]
    elif params.get("model"):  # every analysed tensor of one model: every block (large layers make heavy pages)
        layers = [(params["model"], t["id"]) for t in ad.model_entry(ctx, params["model"])["tensors"]
                  if t.get("nmf_error") is not None]
    records, labels, explorer, targets, assets = [], [], {}, {}, {}
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
        records += neuron_records(label, report, pictures=_pictures(ctx, assets, model, entry))
        targets[label] = {"href": explorer_href(model, tid), "text": _link_text(man, model, tid, "{n}"),
                          "neurons": len(report["nmf"]["spatial"])}
    if not labels:
        raise ctx.error("no tensor with NMF results to explore")

    layer = alt.param(name="layer", value=labels[0], bind=alt.binding_select(options=labels, name="Layer "))
    # nearest: a click anywhere selects the closest neuron, so clicking a gap never empties the detail panels.
    neuron = alt.selection_point(name="neuron", fields=["n"], value=[{"n": first_pictured(records)}], on="click",
                                 clear=False,
                                 toggle=False, nearest=True, empty=False)
    data = inline(records)
    in_layer = alt.datum.t == layer

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
    loadings = (
        selected
        .transform_flatten(["lc", "lv", "lf"], as_=["ch", "val", "f"])
        .transform_calculate(factor="'factor ' + datum.f", item="'f' + datum.f + ' \u00b7 ch ' + datum.ch")
        .mark_bar()
        .encode(
            y=alt.Y("item:N", sort=None, title=None),
            x=alt.X("val:Q", title="signed channel loading", axis=alt.Axis(tickCount=4)),
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
        .encode(y=alt.Y("item:N", sort=None, title=None), x=alt.X("norm:Q", title="L2 norm of kernel", axis=alt.Axis(tickCount=4)),
                tooltip=[alt.Tooltip("ch:Q", title="input channel"), alt.Tooltip("norm:Q", format=".4f")])
        .properties(width=300, height=110, title="strongest input channels")
    )
    # Pictures: the neuron's feature visualization, then each factor's channel mix visualized (Voss et al., Fig. 7).
    pictures = (
        selected
        .transform_flatten(["pics"], as_=["url"])
        .transform_window(p="row_number()", groupby=["t", "n"])
        .transform_filter("datum.url != ''")
        .transform_calculate(what="datum.p == 1 ? 'the neuron' : 'factor ' + (datum.p - 2) + \"'s channel mix\"")
        .mark_image(width=64, height=64)
        .encode(x=alt.X("p:O", axis=None, scale=alt.Scale(domain=[1, 2, 3, 4])), url="url:N",
                tooltip=[alt.Tooltip("what:N", title="feature visualization of")])
        .properties(width=300, height=70, title="feature visualizations: the neuron, then factors 0, 1, 2")
    )
    missing = (  # where a selected neuron's pictures are, when it has fewer than the ringed ones
        selected.transform_filter("datum.note != ''")
        .transform_calculate(tx="datum.pics[0] != '' ? 76 : 0")  # beside the neuron's own picture, if it has one
        .mark_text(align="left", baseline="middle", fontSize=11, lineBreak="\n", y=28)
        .encode(text="note:N", x=alt.X("tx:Q", scale=None, axis=None))
    )
    pictures = alt.layer(pictures, missing).resolve_scale(x="independent")
    extents, factor_extents, grid_cols = {}, {}, {}
    for r in records:
        if r["n"] == 0:
            out_n = sum(1 for q in records if q["t"] == r["t"])
            extents[r["t"]] = {key: (c * (r["w"] + 1) - 1, math.ceil(out_n / c) * (r["h"] + 1) - 1)
                               for key, c in (("cols", r["cols"]), ("pcols", phone_cols(out_n)))}
            factor_extents[r["t"]] = (3 * (r["w"] + 1) - 1, r["h"])
            grid_cols[r["t"]] = phone_cols(out_n)

    def compose(width: int, phone: bool):
        """The overview `width` px wide, beside the selected neuron's panels (on a phone: above them, portrait)."""
        # A phone's columns follow the layer menu (an expression, not a field sent with every neuron).
        cols = "pcols" if phone else "cols"
        ncols = per_layer(layer, grid_cols) if phone else "datum.cols"
        ow, oh = (width, width * 1.25) if phone else (420, 300)
        ox, oy = square_domains(alt, layer, {t: e[cols] for t, e in extents.items()}, ow, oh)
        panel = min(300, width)
        overview = (
            alt.Chart(data)
            .transform_filter(in_layer)
            .transform_flatten(["rgb"], as_=["c"])
            .transform_window(p="row_number()", groupby=["t", "n"])
            .transform_calculate(
                gx=f"(datum.n % {ncols}) * (datum.w + 1) + (datum.p - 1) % datum.w",
                gy=f"floor(datum.n / {ncols}) * (datum.h + 1) + floor((datum.p - 1) / datum.w)",
                color="'#' + datum.c", gx2="datum.gx + 1", gy2="datum.gy + 1")
            .mark_rect()
            .encode(
                x=alt.X("gx:Q", axis=None, scale=ox), x2="gx2:Q",
                y=alt.Y("gy:Q", axis=None, scale=oy), y2="gy2:Q",
                color=alt.Color("color:N", scale=None),
                opacity=alt.condition(neuron, alt.value(1), alt.value(0.55)),
                tooltip=[alt.Tooltip("n:Q", title="neuron"), alt.Tooltip("R:Q", title="row share R"),
                         alt.Tooltip("C:Q", title="column share C")],
            )
            .add_params(layer, neuron)
            .properties(name="neuron_cells")
        )
        rings = (  # the neurons with the layer's feature visualizations
            alt.Chart(data)
            .transform_filter(in_layer)
            .transform_filter("datum.ring == 1")
            .transform_calculate(
                gx=f"(datum.n % {ncols}) * (datum.w + 1) - 0.4", gy=f"floor(datum.n / {ncols}) * (datum.h + 1) - 0.4",
                gx2="datum.gx + datum.w + 0.8", gy2="datum.gy + datum.h + 0.8")
            .mark_rect(filled=False, strokeWidth=1.5, style="vw-ink", aria=False)  # decoration: the title says it
            .encode(x=alt.X("gx:Q", axis=None, scale=ox), x2="gx2:Q", y=alt.Y("gy:Q", axis=None, scale=oy), y2="gy2:Q")
            .properties(name="pictured_rings")
        )
        overview = alt.layer(overview, rings).properties(
            width=ow, height=oh,
            title=["every neuron of the layer (click one;", "ringed: its factors pictured too)"])
        fh = round(panel * 0.3)
        fx, fy = square_domains(alt, layer, factor_extents, panel, fh)
        factors = (
            positioned
            .transform_calculate(fx2="datum.fx + 1", fy2="datum.fy + 1")
            .mark_rect()
            .encode(
                x=alt.X("fx:Q", axis=None, scale=fx), x2="fx2:Q", y=alt.Y("fy:Q", axis=None, scale=fy), y2="fy2:Q",
                color=alt.Color("factor:N", scale=alt.Scale(domain=["factor 0", "factor 1", "factor 2"],
                                                            range=FACTOR_COLORS),
                                legend=alt.Legend(title="factor (its spatial weight: opacity)", orient="bottom",
                                                  direction="horizontal")),
                opacity=alt.Opacity("v:Q", scale=alt.Scale(domain=[0, 1]), legend=None),
                tooltip=[alt.Tooltip("factor:N"), alt.Tooltip("v:Q", title="spatial weight", format=".2f")],
            )
            .properties(width=panel, height=fh, title="its three spatial factors (R, G, B)", name="factor_cells")
        )
        # On a phone a long title would widen its view past the column: two lines instead.
        side = [pictures.properties(width=panel, height=70,
                                    title=["feature visualizations: the neuron,", "then factors 0, 1, 2"]
                                    if phone else "feature visualizations: the neuron, then factors 0, 1, 2"), factors, loadings.properties(width=panel),
                strongest.properties(width=panel)]
        # Independent legends at every level: only the factors show theirs (shared, Vega warns of "disable").
        stack = alt.vconcat(*side).resolve_legend(color="independent").resolve_scale(color="independent")
        joined = alt.vconcat(overview, *side) if phone else alt.hconcat(overview, stack)
        joined = joined.resolve_legend(color="independent").resolve_scale(color="independent")
        # The model's link follows the neuron the reader picks in one of its layers (figures.js).
        return (joined.configure_view(strokeWidth=0).configure_title(fontSize=12, anchor="start")
                .properties(usermeta=follow_selection("neuron", "n", targets, param="layer")))

    # Stacked views share a left edge after the widest axis (the loadings' "f0 · ch 16", ~55 px).
    chart, narrow = (selection_in(compose(w, phone=p).to_dict(), "neuron", "neuron_cells")
                     for w, p in ((420, False), (PHONE_WIDTH - 80, True)))
    opened = first_pictured(records)  # the neuron selected on opening: in the first layer, so its model's link
    links = [(_link_text(man, m, t, n), explorer_href(m, t, n))
             for i, (m, t) in enumerate(explorer.items()) for n in [opened if i == 0 else 0]]
    return Figure(chart=chart, narrow=narrow, links=links, assets=assets, description=(
        f"Interactive one-sided NMF explorer over {len(labels)} layers ({'; '.join(labels)}). The grid shows every "
        "neuron's input weights reduced to three NMF factors drawn as RGB; selecting a neuron shows its spatial "
        "factors, the input channels with the largest signed loading on each factor, and its strongest inputs, with "
        "feature visualizations of the neuron and of each factor's mix of input channels."
        + (" A residual block's NMF is of its own weights: the identity skip, weight 1 from each channel to itself "
           "at the centre, is removed first." if any(x.endswith(ad.SKIP_SHORT["removed"]) for x in labels) else "")))
