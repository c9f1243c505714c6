"""Figure: first-layer filters as RGB images, one model at a time (menu), honest about scale.

By default every filter of a model is drawn on one scale (the layer's largest |w|), so a weak filter looks weak and a
dead one looks dead; a radio button switches to each filter's own scale (shape visible for weak filters; dead
filters stay grey). A bar under each filter shows its L2 norm relative to the model's strongest filter in both views.
"""
from __future__ import annotations

import json
import math

from . import analysis_data as ad
from .chart_data import inline
from .registry import PHONE_WIDTH, Figure, FigureContext, Interaction, register

SHARED, OWN = "one scale for the model", "each filter on its own scale"


MIN_CELL = 4  # px: below this a filter's pixels stop being legible


def _filter_rows(shown: str, rec: dict) -> tuple[list[dict], list[dict], dict, tuple[int, int], tuple[int, int]]:
    """Pixel rows and norm-bar rows for one model's filters in a landscape grid for a desktop; the layout (columns
    there and in a grid narrow enough for a phone's column at MIN_CELL px a cell, a filter's size with its gaps)
    from which the phone's spec moves them; both grids' size in cells."""
    rgb, own, norms = rec["rgb"], rec.get("rgb_per_filter", rec["rgb"]), rec["norm"]
    dead = rec.get("dead") or [False] * len(rgb)
    n, h, w = len(rgb), len(rgb[0]), len(rgb[0][0])
    cols = max(1, math.ceil(math.sqrt(2 * n)))
    phone_cols = max(1, min(cols, (PHONE_WIDTH // MIN_CELL + 1) // (w + 1)))
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
    layout = {"c": cols, "pc": phone_cols, "w1": w + 1, "h2": h + 2}
    extents = tuple((c * (w + 1) - 1, math.ceil(n / c) * (h + 2) - 1) for c in (cols, phone_cols))
    return pixels, bars, layout, extents[0], extents[1]


KEY_STEPS = 9  # swatches from -max |w| to +max |w| in the colour key
KEY_CELL = 14  # px a swatch


def _key_rows(shown: str, rec: dict) -> list[dict]:
    """The colour key of one model: for each input channel alone, the colour a weight from -max |w| to +max |w|
    gets (0.5 + 0.5 w / max |w| in that channel, 0.5 in the others: grey is zero); a grey model has one row."""
    channels = [("weight", (0, 1, 2))] if rec.get("gray") else [("red in", (0,)), ("green in", (1,)),
                                                                  ("blue in", (2,))]
    rows = []
    for name, lit in channels:
        for i in range(KEY_STEPS):
            t = 2 * i / (KEY_STEPS - 1) - 1
            rows.append({"m": shown, "row": name, "i": i, "w": round(t, 2),
                         "colour": ad.hexcolor([0.5 + 0.5 * t if c in lit else 0.5 for c in range(3)])})
    return rows


def _per_model(layouts: dict[str, dict], key: str) -> str:
    """A Vega expression: the layout value `key` of the row's model."""
    items = list(layouts.items())
    expr = str(items[-1][1][key])
    for label, layout in reversed(items[:-1]):
        expr = f"(datum.m === {json.dumps(label)} ? {layout[key]} : {expr})"
    return expr


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
    pixels, bars, keys, summary, layouts, extent, phone_extent = [], [], [], [], {}, (1, 1), (1, 1)
    for name in names:
        shown = ad.label(man, name)
        rec = ad.analysis_file(ctx, man["models"][name]["first_layer"]["file"])
        p, b, layouts[shown], wide, phone = _filter_rows(shown, rec)
        pixels += p
        bars += b
        keys += _key_rows(shown, rec)
        extent = (max(extent[0], wide[0]), max(extent[1], wide[1]))
        phone_extent = (max(phone_extent[0], phone[0]), max(phone_extent[1], phone[1]))
        n, h, w = len(rec["rgb"]), len(rec["rgb"][0]), len(rec["rgb"][0][0])
        dead = sum(bool(d) for d in rec.get("dead") or [])
        kind = "grey" if rec.get("gray") else "RGB"
        summary.append(f"{shown}: {n} {kind} filters of {h}x{w}" + (f", {dead} of them dead (drawn grey)" if dead else ""))
    labels = [ad.label(man, n) for n in names]
    pick = alt.param(name="model", value=labels[0], bind=alt.binding_select(options=labels, name="Model "))
    scale = alt.param(name="scale", value=SHARED, bind=alt.binding_radio(options=[SHARED, OWN], name="Colour: "))
    # Square cells: one unit of x is as many pixels as one unit of y (the grid's aspect ratio is the chart's).
    # A phone gets the narrower grid, its cells as large as the column allows and never below MIN_CELL px.
    cell = max(MIN_CELL, min(22, 620 // max(1, extent[0])))
    phone_cell = max(MIN_CELL, min(22, PHONE_WIDTH // max(1, phone_extent[0])))
    tip = [alt.Tooltip("m:N", title="model"), alt.Tooltip("f:Q", title="filter"),
           alt.Tooltip("norm:Q", title="L2 norm"), alt.Tooltip("state:N", title="filter")]

    # The phone's grid: each filter moved from its place in `cols` columns to its place in `pc` (a calculation in
    # the spec, so the data are not sent twice).
    c, pc, w1, h2 = (_per_model(layouts, k) for k in ("c", "pc", "w1", "h2"))
    move = {"dx": f"((datum.f % {pc}) - (datum.f % {c})) * {w1}",
            "dy": f"(floor(datum.f / {pc}) - floor(datum.f / {c})) * {h2}"}

    def compose(cell_px: int, grid: tuple[int, int], phone: bool):
        x = alt.X("gx:Q", axis=None, scale=alt.Scale(domain=[0, grid[0]], nice=False, zero=True))
        y = alt.Y("gy:Q", axis=None, scale=alt.Scale(domain=[0, grid[1]], nice=False, zero=True, reverse=True))

        def placed(chart, right: str, bottom: str):
            chart = chart.transform_calculate(**(move if phone else {"dx": "0", "dy": "0"}))
            return chart.transform_calculate(gx="datum.x + datum.dx", gy="datum.y + datum.dy",
                                             gx2=f"{right} + datum.dx", gy2=f"{bottom} + datum.dy")

        filters = (
            placed(alt.Chart(inline(pixels)).transform_filter(alt.datum.m == pick), "datum.x + 1",
                   "datum.y + 1")
            .transform_calculate(colour=f"scale == '{OWN}' ? datum.cf : datum.c")
            .mark_rect()
            .encode(x=x, x2="gx2:Q", y=y, y2="gy2:Q", color=alt.Color("colour:N", scale=None, legend=None),
                    tooltip=tip)
            .properties(name="filter_cells")
        )
        norm_bars = (
            placed(alt.Chart(inline(bars)).transform_filter(alt.datum.m == pick), "datum.x2", "datum.y2")
            .mark_rect(color="#666")
            .encode(x=x, x2="gx2:Q", y=y, y2="gy2:Q", tooltip=tip)
        )
        # The key: what a colour means, per input channel, on the scale the switch picks.
        ends = {0: "\u2212max |w|", (KEY_STEPS - 1) // 2: "0", KEY_STEPS - 1: "+max |w|"}
        labels = " : ".join(f"datum.value === {i} ? '{t}'" for i, t in ends.items()) + " : ''"
        key = (
            alt.Chart(inline(keys)).transform_filter(alt.datum.m == pick)
            .mark_rect(stroke="#888888", strokeWidth=0.5)  # a white or black end still shows on either page
            # End labels aligned inward and row names on the right: nothing sticks out left of the filters' edge,
            # which would push the whole figure right (past a phone's column).
            .encode(x=alt.X("i:O", axis=alt.Axis(title=None, labelExpr=labels, ticks=False, domain=False,
                                                 labelAngle=0, labelPadding=3, labelAlign=alt.ExprRef(
                                                     f"datum.value === 0 ? 'left' : datum.value === {KEY_STEPS - 1}"
                                                     " ? 'right' : 'center'"))),
                    y=alt.Y("row:N", sort=None, axis=alt.Axis(title=None, ticks=False, domain=False, orient="right")),
                    color=alt.Color("colour:N", scale=None, legend=None),
                    tooltip=[alt.Tooltip("row:N", title="input channel"),
                             alt.Tooltip("w:Q", title="weight / max |w|")])
            .properties(name="colour_key", width=alt.Step(KEY_CELL), height=alt.Step(KEY_CELL),
                        title=alt.TitleParams(["Key: one input channel's weight; a pixel adds",
                                               "its channels; max |w| as the Colour switch says"], fontSize=11,
                                              fontWeight="normal", anchor="start"))
        )
        drawn = alt.layer(filters, norm_bars).properties(width=cell_px * grid[0], height=cell_px * grid[1])
        return (alt.vconcat(drawn, key, spacing=12).add_params(pick, scale).configure_view(strokeWidth=0))

    chart = compose(cell, extent, phone=False)
    narrow = compose(phone_cell, phone_extent, phone=True) if cell * extent[0] > PHONE_WIDTH else None
    return Figure(chart=chart, narrow=narrow, description="First-layer convolution filters drawn as small images on one colour "
                  "scale per model (grey is zero weight; a switch draws each filter on its own scale), with a bar "
                  "under each filter for its L2 norm relative to the model's strongest; " + "; ".join(summary) + ".")
