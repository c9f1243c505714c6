"""Figure kinds for the sample article and tests: inline numbers only, no analysis JSON needed."""
from __future__ import annotations

import io
from typing import Any

from .chart_data import inline
from .published_data import PUBLISHED
from .registry import PHONE_WIDTH, Figure, FigureContext, register, register_data

# The published ImageNet networks' row share R of their NMF pictures (measured by bench/published_banding.py);
# "random" is the (H-1)/(HW-1) baseline at 3x3.
BANDING = {**{n["network"]: round(n["R"], 2) for n in PUBLISHED["networks"] if not n["network"].startswith("simplified")},
           "random 3x3": 0.25}


@register_data("sample")
def sample_data(ctx: FigureContext) -> dict[str, Any]:
    return {"banding": dict(BANDING), "random_3x3": 2 / 8}


@register("sample_bars")
def bars(ctx: FigureContext, params: dict[str, str]) -> Figure:
    """Bar chart with a hover selection and tooltip. params: ``highlight`` (optional network name)."""
    import altair as alt  # lazy: the render cache skips this import for unchanged figures

    rows = [{"network": k, "R": v} for k, v in BANDING.items()]
    hover = alt.selection_point(name="hover", on="pointerover", clear="pointerout", fields=["network"])
    accent = ctx.theme["accent"]
    px = _int_param(ctx, params, "px", 520, 100, 2000)
    chart, narrow = (
        alt.Chart(inline(rows))
        .mark_bar()
        .encode(
            x=alt.X("R:Q", title="row-variance share R", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("network:N", sort="-x", title=None),
            color=alt.condition(hover, alt.value(params.get("color", accent)), alt.value("#9aa5b1")),
            tooltip=[alt.Tooltip("network:N"), alt.Tooltip("R:Q", format=".2f")],
        )
        .add_params(hover)
        .properties(width=w, height=170)
        for w in (px, min(px, PHONE_WIDTH - 110))  # the network names take ~100 px left of the bars
    )
    # Altair puts inline values in top-level "datasets" when given a DataFrame; make that explicit.
    spec = chart.to_dict()
    return Figure(chart=spec, narrow=narrow if px > PHONE_WIDTH - 110 else None, description="Horizontal bar chart of the row-variance share R: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in BANDING.items()) + ".")


def _int_param(ctx: FigureContext, params: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """An integer figure parameter within [lo, hi]: a huge value must not hang the build (e.g. n=100000000)."""
    raw = params.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ctx.error(f"parameter {name}={raw!r} must be an integer from {lo} to {hi}") from None
    if not lo <= value <= hi:
        raise ctx.error(f"parameter {name}={value} must be from {lo} to {hi}")
    return value


@register("sample_tiles")
def tiles(ctx: FigureContext, params: dict[str, str]) -> Figure:
    """An HTML figure: a grid of PNG tiles (assets) along the diverging weight colour scale."""
    from PIL import Image

    n = _int_param(ctx, params, "n", 5, 1, 100)
    colors = ctx.theme["diverging"]
    assets, cells = {}, []
    for i in range(n):
        hexcol = colors[i * (len(colors) - 1) // max(n - 1, 1)]
        img = Image.new("RGB", (24, 24), hexcol)
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=False)
        name = f"tile-{i}.png"
        assets[name] = buf.getvalue()
        value = -1 + 2 * i / max(n - 1, 1)
        cells.append(f'<figure class="vw-tile"><img src="{ctx.asset_url(name)}" width="48" height="48" '
                     f'alt=""><figcaption>{value:+.1f}</figcaption></figure>')
    csv = "value,color\n" + "".join(f"{-1 + 2 * i / max(n - 1, 1):.2f},{colors[i * (len(colors) - 1) // max(n - 1, 1)]}\n"
                                     for i in range(n))
    assets["scale.csv"] = csv.encode()
    return Figure(
        html='<div class="vw-tiles">' + "".join(cells) + "</div>",
        description=f"{n} colour tiles from blue (negative weight) through white (zero) to red (positive).",
        assets=assets,
        links=[("Download scale (CSV)", ctx.asset_url("scale.csv"))],
    )
