"""Figure: first-layer filters as RGB images, one model at a time (menu)."""
from __future__ import annotations

import math

from . import analysis_data as ad
from .registry import Figure, FigureContext, register



@register("first_layer")
def first_layer(ctx: FigureContext, params: dict[str, str]) -> Figure:
    import altair as alt

    man = ad.manifest(ctx)
    wanted = params["models"].split(",") if params.get("models") else ad.article_models(man)
    names = [m for m in wanted if m in man["models"] and man["models"][m].get("first_layer")]
    if not names:
        raise ctx.error("no analysed model has first-layer results")
    rows, summary = [], []
    for name in names:
        shown = ad.label(man, name)
        rec = ad.analysis_file(ctx, man["models"][name]["first_layer"]["file"])
        rgb, norms = rec["rgb"], rec["norm"]
        n, h, w = len(rgb), len(rgb[0]), len(rgb[0][0])
        cols = max(1, math.ceil(math.sqrt(2 * n)))
        for f in range(n):
            gx, gy = (f % cols) * (w + 1), (f // cols) * (h + 1)
            for y in range(h):
                for x in range(w):
                    rows.append({"m": shown, "f": f, "x": gx + x, "y": gy + y,
                                 "c": ad.hexcolor(rgb[f][y][x]), "norm": ad.r3(norms[f])})
        summary.append(f"{ad.label(man, name)}: {n} filters of {h}x{w}")
    labels = [ad.label(man, n) for n in names]
    pick = alt.param(name="model", value=labels[0],
                     bind=alt.binding_select(options=labels, name="Model "))
    chart = (
        alt.Chart(alt.Data(values=rows))
        .transform_filter(alt.datum.m == pick)
        .transform_calculate(x2="datum.x + 1", y2="datum.y + 1")
        .mark_rect()
        .encode(
            x=alt.X("x:Q", axis=None, scale=alt.Scale(zero=True, nice=False)),
            x2="x2:Q",
            y=alt.Y("y:Q", axis=None, scale=alt.Scale(zero=True, nice=False, reverse=True)),
            y2="y2:Q",
            color=alt.Color("c:N", scale=None),
            tooltip=[alt.Tooltip("m:N", title="model"), alt.Tooltip("f:Q", title="filter"),
                     alt.Tooltip("norm:Q", title="L2 norm")],
        )
        .add_params(pick)
        .properties(width=620, height=310)
        .configure_view(strokeWidth=0)
    )
    return Figure(chart=chart, description="First-layer convolution filters drawn as small RGB images; "
                  + "; ".join(summary) + ". Grey means zero weight.")
