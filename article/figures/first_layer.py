"""Figure: first-layer filters as RGB images, one model at a time (menu), honest about scale.

By default every filter of a model is drawn on one scale (the layer's largest |w|), so a weak filter looks weak and a
dead one looks dead; a radio button switches to each filter's own scale (shape visible for weak filters; dead
filters stay grey). A bar under each filter shows its L2 norm relative to the model's strongest filter in both views.
"""
from __future__ import annotations

import math

from . import analysis_data as ad
from .registry import PHONE_WIDTH, Figure, FigureContext, Interaction, register

SHARED, OWN = "one scale for the model", "each filter on its own scale"


def _filter_rows(shown: str, rec: dict) -> tuple[list[dict], list[dict], int, int]:
    """Pixel rows and norm-bar rows for one model's filters; also the grid's width and height in cells."""
    rgb, own, norms = rec["rgb"], rec.get("rgb_per_filter", rec["rgb"]), rec["norm"]
    dead = rec.get("dead") or [False] * len(rgb)
    n, h, w = len(rgb), len(rgb[0]), len(rgb[0][0])
    cols = max(1, math.ceil(math.sqrt(2 * n)))
    top = max(max(norms), 1e-30)
    pixels, bars = [], []
    for f in range(n):
        gx, gy = (f % cols) * (w + 1), (f // cols) * (h + 2)  # one cell between filters, one more row for the bar
        state = "dead" if dead[f] else "live"
        for y in range(h):
            for x in range(w):
                pixels.append({"m": shown, "f": f, "x": gx + x, "y": gy + y, "c": ad.hexcolor(rgb[f][y][x]),
                               "cf": ad.hexcolor(own[f][y][x]), "norm": ad.r3(norms[f]), "state": state})
        bars.append({"m": shown, "f": f, "x": gx, "x2": gx + max(0.05, w * norms[f] / top), "y": gy + h + 0.25,
                     "y2": gy + h + 0.75, "norm": ad.r3(norms[f]), "state": state})
    rows = math.ceil(n / cols)
    return pixels, bars, cols * (w + 1) - 1, rows * (h + 2) - 1


@register("first_layer", interactions=(
    Interaction("bind:model", "the filters drawn (another model's)"),
    Interaction("bind:scale", "the filters' colours (one scale for the model, or each filter's own)")))
def first_layer(ctx: FigureContext, params: dict[str, str]) -> Figure:
    import altair as alt

    man = ad.manifest(ctx)
    wanted = params["models"].split(",") if params.get("models") else ad.article_models(man)
    names = [m for m in wanted if m in man["models"] and man["models"][m].get("first_layer")]
    if not names:
        raise ctx.error("no analysed model has first-layer results")
    pixels, bars, summary, extent = [], [], [], (1, 1)
    for name in names:
        shown = ad.label(man, name)
        rec = ad.analysis_file(ctx, man["models"][name]["first_layer"]["file"])
        p, b, gw, gh = _filter_rows(shown, rec)
        pixels += p
        bars += b
        extent = (max(extent[0], gw), max(extent[1], gh))
        n, h, w = len(rec["rgb"]), len(rec["rgb"][0]), len(rec["rgb"][0][0])
        dead = sum(bool(d) for d in rec.get("dead") or [])
        kind = "grey" if rec.get("gray") else "RGB"
        summary.append(f"{shown}: {n} {kind} filters of {h}x{w}" + (f", {dead} of them dead (drawn grey)" if dead else ""))
    labels = [ad.label(man, n) for n in names]
    pick = alt.param(name="model", value=labels[0], bind=alt.binding_select(options=labels, name="Model "))
    scale = alt.param(name="scale", value=SHARED, bind=alt.binding_radio(options=[SHARED, OWN], name="Colour: "))
    # Square cells: one unit of x is as many pixels as one unit of y (the grid's aspect ratio is the chart's).
    # On a phone the cells shrink to fit the column, never below 4 px (a wider grid then scrolls in its figure).
    cell, phone_cell = (max(4, min(22, px // max(1, extent[0]))) for px in (620, PHONE_WIDTH))
    x = alt.X("x:Q", axis=None, scale=alt.Scale(domain=[0, extent[0]], nice=False, zero=True))
    y = alt.Y("y:Q", axis=None, scale=alt.Scale(domain=[0, extent[1]], nice=False, zero=True, reverse=True))
    tip = [alt.Tooltip("m:N", title="model"), alt.Tooltip("f:Q", title="filter"),
           alt.Tooltip("norm:Q", title="L2 norm"), alt.Tooltip("state:N", title="filter")]
    filters = (
        alt.Chart(alt.Data(values=pixels))
        .transform_filter(alt.datum.m == pick)
        .transform_calculate(x2="datum.x + 1", y2="datum.y + 1",
                             colour=f"scale == '{OWN}' ? datum.cf : datum.c")
        .mark_rect()
        .encode(x=x, x2="x2:Q", y=y, y2="y2:Q", color=alt.Color("colour:N", scale=None, legend=None), tooltip=tip)
        .properties(name="filter_cells")
    )
    norm_bars = (
        alt.Chart(alt.Data(values=bars))
        .transform_filter(alt.datum.m == pick)
        .mark_rect(color="#666")
        .encode(x=x, x2="x2:Q", y=y, y2="y2:Q", tooltip=tip)
    )
    chart, narrow = (
        alt.layer(filters, norm_bars)
        .add_params(pick, scale)
        .properties(width=c * extent[0], height=c * extent[1])
        .configure_view(strokeWidth=0)
        for c in (cell, phone_cell)
    )
    return Figure(chart=chart, narrow=narrow if phone_cell < cell else None, description="First-layer convolution filters drawn as small images on one colour "
                  "scale per model (grey is zero weight; a switch draws each filter on its own scale), with a bar "
                  "under each filter for its L2 norm relative to the model's strongest; " + "; ".join(summary) + ".")
