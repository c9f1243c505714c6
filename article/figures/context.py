"""Figures that put hidden-layer weights in context: small multiples with feature visualizations along both
edges, a linked enlarged view with dataset examples, and the spatial-position view (Voss et al. 2021)."""
from __future__ import annotations


from analysis.core.paths import safe_component

from . import examples_data as exd
from . import analysis_data as ad
from ..structure.errors import BuildError
from ..structure.explorer_links import explorer_href, follow_selection
from .chart_data import inline
from .registry import PHONE_WIDTH, Figure, FigureContext, Interaction, register


def _context_record(ctx: FigureContext, model: str, index: int = 0) -> dict:
    entry = ad.model_entry(ctx, model)
    if len(entry["context"]) <= index:
        raise ctx.error(f"model '{model}' has no neuron-pair context in the analysis results")
    return ad.analysis_file(ctx, entry["context"][index]["file"])


EXAMPLE_PX = 64  # dataset examples are shown this large, drawn at twice that for sharp screens
EXAMPLES_SHOWN = 4


def examples_layer(ctx: FigureContext, model: str, layer: str) -> exd.LayerExamples | None:
    """The layer's dataset examples (analysis/examples_stage.py), read through ctx.load_json; None without them."""
    try:
        return exd.layer(ctx.cache_dir, model, layer, load=ctx.load_json)
    except BuildError:
        return None


def example_asset(ctx: FigureContext, assets: dict, lay: exd.LayerExamples, ex: exd.Example) -> str:
    """One example as a WebP: its context crop with the receptive field outlined."""
    name = f"ex-{safe_component(lay.layer)}-{ex.channel}-{ex.rank}.webp"
    if name not in assets:
        assets[name] = ad.webp(lay.crop_png(ex, 2 * EXAMPLE_PX))
    return ctx.asset_url(name)


def _robust_scale(weight: list) -> float:
    """Shared colour scale: max |w| over all shown kernels, ignoring the few largest values (a residual
    connection adds the identity, +1 at the centre of matching channels, which would wash out the rest).
    Values beyond it are clipped by the colour scale."""
    values = sorted(abs(v) for a in weight for b in a for c in b for v in c)
    if not values:
        return 1.0
    return values[int(0.995 * (len(values) - 1))] or values[-1] or 1.0


def diverging_scale(alt, ctx: FigureContext):
    return alt.Scale(domain=[-1, -0.5, 0, 0.5, 1], range=list(ctx.theme["diverging"]), clamp=True)


@register("context_explorer", interactions=(
    Interaction("click:kernel_cells", "the enlarged kernel, both neurons' feature visualizations and dataset examples",
                link=True),))
def context_explorer(ctx: FigureContext, params: dict[str, str]) -> Figure:
    import altair as alt

    model = ad.required(ctx, params, "model")
    rec = _context_record(ctx, model)
    outs, ins, weight = rec["outs"], rec["ins"], rec["weight"]
    kh, kw = rec["kernel"]
    scale = _robust_scale(weight)
    assets: dict[str, bytes] = {}
    cells, images, examples = [], [], []
    for oi, o in enumerate(outs):
        for ii, i in enumerate(ins):
            # One record per kernel; flatten + window expand it to pixels in the browser.
            cells.append({"pair": f"{o}-{i}", "o": o, "i": i, "oi": oi, "ii": ii,
                          "w": [float(f"{v:.3g}") for row in weight[oi][ii] for v in row]})
    up_urls = [ad.image_asset(ctx, assets, p) for p in rec["featureviz"]["upper"]]
    low_urls = [ad.image_asset(ctx, assets, p) for p in rec["featureviz"]["lower"]]
    edge = []
    for ii, url in enumerate(low_urls):
        edge.append({"url": url, "cx": (ii + 1) * (kw + 1) + kw / 2, "cy": kh / 2, "label": f"input {ins[ii]}"})
    for oi, url in enumerate(up_urls):
        edge.append({"url": url, "cx": kw / 2, "cy": (oi + 1) * (kh + 1) + kh / 2, "label": f"output {outs[oi]}"})
    layers = {side: examples_layer(ctx, model, rec[side]) for side in ("lower", "upper")}
    for oi, o in enumerate(outs):
        for ii, i in enumerate(ins):
            pair = f"{o}-{i}"
            images.append({"pair": pair, "role": "input", "n": i, "url": low_urls[ii], "col": 0})
            images.append({"pair": pair, "role": "output", "n": o, "url": up_urls[oi], "col": 1})
            for side, ch, role in (("lower", i, "input"), ("upper", o, "output")):
                lay = layers[side]
                for ex in lay.top(ch, EXAMPLES_SHOWN) if lay is not None and ch < lay.channels else []:
                    examples.append({"pair": pair, "role": role, "rank": ex.rank,
                                     "url": example_asset(ctx, assets, lay, ex), "photo": ex.image_label,
                                     "act": ad.r3(ex.activation)})

    units = (len(ins) + 1) * (kw + 1)
    first = f"{outs[0]}-{ins[0]}"

    def compose(side_px: float, stacked: bool):
        """The grid `side_px` wide beside (or, on a phone, above) the enlarged kernel and its neurons."""
        unit = side_px / units
        img_px = kw * unit
        sel = alt.selection_point(name="pair", fields=["pair"], value=[{"pair": first}], on="click",
                                  clear=False, toggle=False, nearest=True, empty=False)
        sx = alt.Scale(domain=[0, units], nice=False, zero=True)
        sy = alt.Scale(domain=[0, (len(outs) + 1) * (kh + 1)], nice=False, zero=True, reverse=True)
        pixels = (
            alt.Chart(inline(cells))
            .transform_flatten(["w"])
            .transform_window(p="row_number()", groupby=["pair"])
            .transform_calculate(x=f"(datum.p - 1) % {kw}", y=f"floor((datum.p - 1) / {kw})",
                                 v=f"datum.w / {scale!r}")
            .transform_calculate(gx=f"(datum.ii + 1) * {kw + 1} + datum.x", gy=f"(datum.oi + 1) * {kh + 1} + datum.y")
        )
        grid = (
            pixels
            .transform_calculate(gx2="datum.gx + 1", gy2="datum.gy + 1")
            .mark_rect()
            .encode(
                x=alt.X("gx:Q", axis=None, scale=sx), x2="gx2:Q",
                y=alt.Y("gy:Q", axis=None, scale=sy), y2="gy2:Q",
                color=alt.Color("v:Q", scale=diverging_scale(alt, ctx), legend=None),
                stroke=alt.condition(sel, alt.value("#111"), alt.value(None)),
                tooltip=[alt.Tooltip("o:Q", title="output neuron"), alt.Tooltip("i:Q", title="input neuron"),
                         alt.Tooltip("x:Q", title="kernel x"), alt.Tooltip("y:Q", title="kernel y"),
                         alt.Tooltip("w:Q", title="weight", format=".4f")],
            )
            .add_params(sel)
            .properties(name="kernel_cells")  # tests/browser: cells are square
        )
        edge_layer = alt.Chart(inline(edge)).mark_image(width=img_px, height=img_px).encode(
            x=alt.X("cx:Q", scale=sx, axis=None), y=alt.Y("cy:Q", scale=sy, axis=None), url="url:N",
            tooltip=["label:N"])
        small = alt.layer(edge_layer, grid).properties(
            width=side_px, height=side_px * (len(outs) + 1) * (kh + 1) / units, title="click a kernel")

        big_px = 200
        big = (
            pixels
            .transform_filter(sel)
            .encode(x=alt.X("x:O", axis=None), y=alt.Y("y:O", axis=None))
            .properties(width=big_px, height=big_px * kh / kw, title="selected kernel")
        )
        big = alt.layer(
            big.mark_rect().encode(color=alt.Color("v:Q", scale=diverging_scale(alt, ctx), legend=alt.Legend(
                title=["colour: weight / max |w|", "numbers: the weight itself"], orient="bottom", gradientLength=160))),
            big.mark_text(fontSize=9).encode(text=alt.Text("w:Q", format=".2f"),
                                             color=alt.value("#222")),
        )
        ends = (
            alt.Chart(inline(images))
            .transform_filter(sel)
            .mark_image(width=96, height=96, baseline="top")
            # y set: without it the picture is centred on the view's top edge, over its "input"/"output" label
            .encode(x=alt.X("role:N", sort=["input", "output"],
                            axis=alt.Axis(title=None, labelAngle=0, orient="top", domain=False, ticks=False)),
                    y=alt.value(4), url="url:N", tooltip=[alt.Tooltip("role:N"), alt.Tooltip("n:Q", title="neuron")])
            .properties(width=220, height=104, title="feature visualizations")
        )
        ex = (
            alt.Chart(inline(examples))
            .transform_filter(sel)
            .mark_image(width=EXAMPLE_PX, height=EXAMPLE_PX)
            .encode(x=alt.X("rank:O", axis=alt.Axis(title="dataset examples, strongest first (box: receptive field)")),
                    y=alt.Y("role:N", axis=alt.Axis(title=None), sort=["input", "output"]), url="url:N",
                    tooltip=[alt.Tooltip("photo:N", title="source image"), alt.Tooltip("act:Q", title="activation")])
            .properties(width=EXAMPLES_SHOWN * (EXAMPLE_PX + 6), height=2 * (EXAMPLE_PX + 8))
        )
        # One colour scale for both views, its legend only under the enlarged kernel (a shared legend with "disable"
        # on one side and not the other makes Vega warn and drop it).
        joined = alt.vconcat(small, big, ends, ex) if stacked else alt.hconcat(small, alt.vconcat(big, ends, ex))
        return joined.resolve_legend(color="independent").configure_view(strokeWidth=0)

    # Stacked views share a left edge after the widest axis (the examples' "input"/"output", ~45 px).
    chart, narrow = compose(430, stacked=False), compose(PHONE_WIDTH - 60, stacked=True)
    links = []
    if rec.get("tensor"):
        text = "Open output neuron {n} of " + rec["tensor"] + " in the weight explorer"
        links = [(text.replace("{n}", str(outs[0])), explorer_href(model, rec["tensor"], outs[0]))]
        # The link follows the kernel the reader clicks: its output neuron, the leading integer of "out-in".
        follow = follow_selection("pair", "pair", {"": {"href": explorer_href(model, rec["tensor"]), "text": text}})
        chart, narrow = chart.properties(usermeta=follow), narrow.properties(usermeta=follow)
    return Figure(
        chart=chart, narrow=narrow, assets=assets, links=links,
        description=(f"Small multiples of {len(outs)} x {len(ins)} weight kernels ({kh}x{kw}) of {ad.label(ad.manifest(ctx), model)} "
                     f"from {rec['lower']} to {rec['upper']}, with feature visualizations of the input neurons "
                     f"({', '.join(map(str, ins))}) above and of the output neurons ({', '.join(map(str, outs))}) "
                     "on the left. Selecting a kernel shows it enlarged with values, and both neurons' dataset "
                     "examples."),
    )


@register("spatial_positions", interactions=(
    Interaction("bind:neuron", "the grid of feature visualizations (another output neuron's)"),))
def spatial_positions(ctx: FigureContext, params: dict[str, str]) -> Figure:
    import altair as alt

    model = ad.required(ctx, params, "model")
    rec = _context_record(ctx, model)
    kh, kw = rec["kernel"]
    dirs = rec["directions"]
    assets: dict[str, bytes] = {}
    rows = []
    for o, urls, mags in zip(dirs["outs"], dirs["images"], dirs["magnitude"]):
        top = max(mags) or 1.0
        for p, (rel, m) in enumerate(zip(urls, mags)):
            rows.append({"neuron": str(o), "x": p % kw, "y": p // kw, "url": ad.image_asset(ctx, assets, rel),
                         "fade": ad.r3(m / top), "mag": ad.r3(m)})
    options = [str(o) for o in dirs["outs"]]
    pick = alt.param(name="neuron", value=options[0], bind=alt.binding_select(options=options,
                                                                             name="Output neuron "))
    cell = 84 if kw <= 3 else 64
    base = alt.Chart(inline(rows)).transform_filter(alt.datum.neuron == pick).encode(
        x=alt.X("x:O", axis=alt.Axis(title="kernel x")), y=alt.Y("y:O", axis=alt.Axis(title="kernel y")))
    chart = alt.layer(
        base.mark_rect(color="#888", opacity=0.15),
        base.mark_image(width=cell - 4, height=cell - 4).encode(
            url="url:N", opacity=alt.Opacity("fade:Q", legend=None, scale=alt.Scale(domain=[0, 1], range=[0.08, 1])),
            tooltip=[alt.Tooltip("x:Q"), alt.Tooltip("y:Q"), alt.Tooltip("mag:Q", title="|w| at position")]),
    ).add_params(pick).properties(width=cell * kw, height=cell * kh).configure_view(strokeWidth=0)
    return Figure(chart=chart, assets=assets,
                  description=(f"For output neurons {', '.join(options)} of {rec['upper']} in {ad.label(ad.manifest(ctx), model)}, "
                               f"a {kh}x{kw} grid: each cell is the feature visualization of the input-channel "
                               "weight vector at that kernel position, faded by its magnitude."))
