"""Figures about weight banding: NMF gallery of last layers, the controlled experiment, every layer's score."""
from __future__ import annotations

import math

from analysis.core.banding import picture_banding  # numpy only: the score the analysis and the bench use

from . import analysis_data as ad
from .chart_data import inline
from .registry import PHONE_WIDTH, Figure, FigureContext, Interaction, register

VARIANT_ORDER = ["gap", "flatten", "rotated"]
VARIANT_TITLE = {"gap": "GAP", "flatten": "flatten", "rotated": "GAP, rotated inputs"}


def _neuron_tiles(report: dict, key: str, panel: str, cols: int) -> list[dict]:
    """One record per pixel of every neuron's NMF picture, laid out in a grid of `cols` neurons, with the picture's
    own row and column shares (the article's banding score)."""
    nmf = report[key]
    banding = picture_banding(nmf["rgb"])
    rows = []
    for n, rgb in enumerate(nmf["rgb"]):
        h, w = len(rgb), len(rgb[0])
        gx, gy = (n % cols) * (w + 1), (n // cols) * (h + 1)
        for y in range(h):
            for x in range(w):
                rows.append({"p": panel, "n": n, "x": gx + x, "y": gy + y, "c": ad.hexcolor(rgb[y][x]),
                             "R": ad.r3(banding["R"][n]), "C": ad.r3(banding["C"][n])})
    return rows


@register("banding_gallery")
def banding_gallery(ctx: FigureContext, params: dict[str, str]) -> Figure:
    import altair as alt

    seed = params.get("seed", "0")
    # The pictures of the trained weights W, as Petrov et al. show them; weights=delta: of W - W_init (lab only).
    lab_key = "nmf_delta" if params.get("weights") == "delta" else "nmf"
    man = ad.manifest(ctx)
    only = [m for m in params.get("models", "").split(",") if m]
    panels = []
    for variant in VARIANT_ORDER if not only else ():
        name = f"lab-{variant}-s{seed}"
        if name in man["models"]:
            last = man["models"][name]["tensors"][-1]
            panels.append((VARIANT_TITLE[variant], ad.analysis_file(ctx, last["file"]), lab_key))
    for name in only:  # a real network's featured banding layer (its family names one), when asked for
        entry = ad.model_entry(ctx, name)
        t = next((t for t in entry["tensors"] if t["id"] == entry.get("featured_banding")), None)
        if t is None:
            raise ctx.error(f"model '{name}' has no featured banding layer")
        words = ad.skip_words(t, short=True)
        panels.append((f"{ad.label(man, name)} {t['label']}" + (f", {words}" if words else ""),
                       ad.analysis_file(ctx, t["file"]), "nmf"))
    if not panels:
        raise ctx.error("no banding-lab results to show")
    charts, desc = [], []
    for index, (title, report, key) in enumerate(panels):
        if key not in report:
            key = "nmf"
        n = len(report[key]["spatial"])
        cols = max(1, math.ceil(math.sqrt(n)))
        rows = _neuron_tiles(report, key, title, cols)
        h, w = len(report[key]["rgb"][0]), len(report[key]["rgb"][0][0])
        extent = (cols * (w + 1) - 1, math.ceil(n / cols) * (h + 1) - 1)  # the grid in cells
        bd = picture_banding(report[key]["rgb"])
        desc.append(f"{title}: layer R {bd['R_layer']:.2f}, C {bd['C_layer']:.2f}")
        hover = alt.selection_point(name=f"hover{index}", on="pointerover", fields=["n"], empty=False,
                                    clear="pointerout")
        charts.append((extent, lambda px, rows=rows, title=title, bd=bd, hover=hover, extent=extent, index=index: (
            alt.Chart(inline(rows), title=alt.TitleParams(
                [title, f"(R={bd['R_layer']:.2f}, C={bd['C_layer']:.2f})"] if px < 200 else
                f"{title}  (R={bd['R_layer']:.2f}, C={bd['C_layer']:.2f})"))
            .transform_calculate(x2="datum.x + 1", y2="datum.y + 1")
            .mark_rect()
            .encode(
                # Square cells: both scales give a cell the same number of pixels (px across the grid's longer side).
                x=alt.X("x:Q", axis=None, scale=alt.Scale(domain=[0, extent[0]], nice=False, zero=True)), x2="x2:Q",
                y=alt.Y("y:Q", axis=None, scale=alt.Scale(domain=[0, extent[1]], nice=False, zero=True,
                                                          reverse=True)), y2="y2:Q",
                color=alt.Color("c:N", scale=None),
                opacity=alt.condition(hover, alt.value(1), alt.value(0.92)),
                tooltip=[alt.Tooltip("n:Q", title="neuron"), alt.Tooltip("R:Q", title="row share R"),
                         alt.Tooltip("C:Q", title="column share C")],
            )
            .add_params(hover)
            .properties(width=px * extent[0] / max(extent), height=px * extent[1] / max(extent),
                        name=f"gallery_cells_{index}")
        )))

    # The pictures' colour key: each neuron's three NMF factors are its picture's red, green and blue.
    key = (alt.Chart(inline([{"f": f"factor {i}"} for i in range(3)])).mark_point(filled=True, opacity=0)
           .encode(color=alt.Color("f:N", scale=alt.Scale(domain=[f"factor {i}" for i in range(3)],
                                                          range=["#ff0000", "#00ff00", "#0000ff"]),
                                   legend=alt.Legend(title=["colour: the NMF factors", "of a neuron's weights"],
                                                     orient="bottom", symbolType="square", symbolOpacity=1)))
           .properties(width=1, height=1))

    def gallery(px: float, columns: int):
        return alt.concat(*(draw(px) for _, draw in charts), key, columns=columns).configure_view(
            strokeWidth=0).configure_title(fontSize=12)

    # A phone shows two panels a row (each half the column), smaller but every cell still several pixels.
    narrow = gallery((PHONE_WIDTH - 20) / 2, 2) if len(charts) > 1 else gallery(PHONE_WIDTH - 20, 1)
    return Figure(chart=gallery(200, len(charts)), narrow=narrow, description="NMF pictures (three factors as RGB) of every neuron of the last "
                  "convolution, with the row share R and column share C of the pictures. " + "; ".join(desc) + ".")


@register("banding_experiment", interactions=(
    Interaction("legend", "the other measure fades: a click on R or C highlights that measure"),))
def banding_experiment(ctx: FigureContext, params: dict[str, str]) -> Figure:
    import altair as alt

    man = ad.manifest(ctx)
    if "lab_summary" not in man:
        raise ctx.error("the banding lab was not part of this build's analysis")
    summary = ad.analysis_file(ctx, man["lab_summary"])
    # R and C of the NMF pictures of W (the article's score); weights=delta: of the pictures of W - W_init.
    suffix = "_nmf_delta" if params.get("weights") == "delta" else "_nmf"
    rows = []
    for r in summary["rows"]:
        for measure in ("R", "C"):
            value = r.get(measure + suffix)
            if value is None:
                raise ctx.error("the lab summary has no NMF-picture scores (run `python build.py --clean`)")
            rows.append({"variant": VARIANT_TITLE[r["variant"]], "seed": r["seed"],
                         "measure": "R (rows)" if measure == "R" else "C (columns)", "value": ad.r3(value),
                         "acc": ad.r3(r.get("test_accuracy"))})
    baseline = summary["rows"][0]["baseline_R"]
    order = [VARIANT_TITLE[v] for v in VARIANT_ORDER]
    pick = alt.selection_point(fields=["measure"], bind="legend")
    base = alt.Chart(inline(rows)).encode(
        x=alt.X("variant:N", sort=order, title=None, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("measure:N"),
        color=alt.Color("measure:N", title=None,
                        scale=alt.Scale(range=["#e45756", "#4c78a8"]),
                        legend=alt.Legend(orient="top")),
        opacity=alt.condition(pick, alt.value(1), alt.value(0.2)),
    )
    points = base.mark_circle(size=55).encode(
        y=alt.Y("value:Q", title="share of the NMF pictures' spatial variance", scale=alt.Scale(domain=[0, 1])),
        tooltip=[alt.Tooltip("variant:N"), alt.Tooltip("seed:Q"), alt.Tooltip("measure:N"),
                 alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("acc:Q", title="test accuracy", format=".2f")],
    ).add_params(pick)
    bars = base.mark_errorbar(extent="stdev", ticks=True).encode(
        y=alt.Y("value:Q", title="share of the NMF pictures' spatial variance"))
    means = base.mark_tick(thickness=2, size=18).encode(y="mean(value):Q")
    rule = alt.Chart(inline([{"b": baseline}])).mark_rule(strokeDash=[4, 4], color="#888").encode(
        y="b:Q", tooltip=[alt.Tooltip("b:Q", title="random baseline", format=".3f")])
    # The legend-bound selection's layer first: Vega-Lite binds a layered legend to the first layer's selection
    # only (with the points last, clicking R or C did nothing).
    chart, narrow = (alt.layer(points, bars, means, rule).properties(width=w, height=300)
                     for w in (460, PHONE_WIDTH - 70))  # the y axis and its title take ~60 px beside the plot

    def _acc(s: dict) -> str:
        acc = s.get("test_accuracy")
        return f" (held-out accuracy {acc['min']:.0%} to {acc['max']:.0%})" if acc else ""

    means_txt = "; ".join(
        f"{VARIANT_TITLE[v]}: R {s['R' + suffix]['mean']:.2f}, C {s['C' + suffix]['mean']:.2f}{_acc(s)}"
        for v, s in summary["variants"].items() if "R" + suffix in s)
    return Figure(chart=chart, narrow=narrow, description="Dot plot with error bars of the NMF pictures' banding shares per variant "
                  "and seed (bars: one standard deviation over seeds). "
                  f"Means: {means_txt}. Random baseline {baseline:.2f}.")


def layer_points(entry: dict) -> list[dict]:
    """The tensors a network contributes to the by-depth view: every block (expanded weights from the block before)
    and the convolutions outside blocks (the stem), in forward order; a network without blocks gives every conv."""
    spatial = [t for t in entry["tensors"] if t["shape"][2] * t["shape"][3] > 1 and t["shape"][1] > 1
               and t.get("R_nmf") is not None]
    blocks = [t for t in spatial if t.get("kind") == "block"]
    kernels = [t for t in spatial if t.get("kind", "kernel") == "kernel"]
    if not blocks:
        return kernels
    inside = {c for b in entry.get("blocks") or [] for c in b.get("convs") or []}
    return [t for t in kernels if t["layer"] not in inside] + blocks


@register("banding_layers", interactions=(
    Interaction("legend", "the other models fade: a click on a model highlights its layers in both panels"),))
def banding_layers(ctx: FigureContext, params: dict[str, str]) -> Figure:
    import altair as alt

    man = ad.manifest(ctx)
    only = params.get("models", "").split(",") if params.get("models") else None
    zoo = only is None
    rows = []
    for name, entry in sorted(man["models"].items()):
        if only and name not in only:
            continue
        if zoo and entry["info"].get("source", "").startswith("bring-your-own"):
            continue
        tensors = layer_points(entry)
        for i, t in enumerate(tensors):
            for measure, key in (("R (rows)", "R_nmf"), ("C (columns)", "C_nmf")):
                rows.append({"model": name, "family": ad.label(man, name), "layer": t["label"] or t["id"],
                             "measure": measure, "depth": ad.r3((i + 1) / len(tensors)), "value": ad.r3(t[key]),
                             "R": ad.r3(t["R_nmf"]), "C": ad.r3(t["C_nmf"]), "baseline": ad.r3(t.get("R_baseline")),
                             "part": "block" if t.get("kind") == "block" else "convolution",
                             "kernel": f"{t['shape'][2]}x{t['shape'][3]}",
                             "weights": ad.skip_words(t) or "as they are"})
    if not rows:
        raise ctx.error("no analysed convolution with NMF pictures to show")
    families = list(dict.fromkeys(r["family"] for r in rows))
    palette = ad.palette(man, list(dict.fromkeys(r["model"] for r in rows)))
    baselines = sorted({(r["kernel"], r["baseline"]) for r in rows if r["baseline"] is not None}, key=lambda b: -b[1])
    pick = alt.selection_point(fields=["family"], bind="legend")
    tooltip = [alt.Tooltip("model:N"), alt.Tooltip("layer:N"), alt.Tooltip("part:N"), alt.Tooltip("kernel:N"),
               alt.Tooltip("R:Q", title="row share R", format=".3f"),
               alt.Tooltip("C:Q", title="column share C", format=".3f"),
               alt.Tooltip("baseline:Q", title="random baseline", format=".3f"),
               alt.Tooltip("weights:N", title="weights scored")]
    rules = alt.Chart().transform_filter("false").mark_rule()  # replaced below when baselines are known
    if baselines:
        rules = alt.Chart(inline([{"b": b, "kernel": k} for k, b in baselines])).mark_rule(
            color="#888", strokeDash=[4, 4]).encode(
            y="b:Q", tooltip=[alt.Tooltip("kernel:N", title="random baseline for"), alt.Tooltip("b:Q", format=".3f")])

    def compose(width: int, columns: int):
        """Both panels `width` px wide, the legend in `columns` (one on a phone, so no model's name is cut)."""
        base = alt.Chart().encode(
            x=alt.X("depth:Q", title="relative depth (last = 1)", scale=alt.Scale(domain=[0, 1]),
                    axis=alt.Axis(tickCount=5, format=".1f")),
            y=alt.Y("value:Q", title="share of the NMF pictures' variance", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("family:N", title=None, scale=alt.Scale(domain=families,
                                                                    range=[palette[f] for f in families]),
                            legend=alt.Legend(orient="top", columns=columns)),
            detail="model:N",
            opacity=alt.condition(pick, alt.value(0.9), alt.value(0.1)),
        )
        lines = base.mark_line(strokeWidth=1.5, clip=True)
        points = base.mark_circle(size=40, clip=True).encode(tooltip=tooltip)
        panels = []
        for measure in ("R (rows)", "C (columns)"):
            # The legend-bound selection's layer first (see banding_experiment), in both panels.
            panel = alt.layer(points.add_params(pick) if not panels else points, lines,
                              data=inline([r for r in rows if r["measure"] == measure]))
            panels.append(alt.layer(panel, rules).properties(width=width, height=200, title=measure))
        return alt.vconcat(*panels)

    chart, narrow = compose(600, 3), compose(PHONE_WIDTH - 70, 1)
    n_models = len({r["model"] for r in rows})
    own = len({(r["model"], r["layer"]) for r in rows if r["weights"] == ad.SKIP_WORDS["removed"]})
    return Figure(chart=chart, narrow=narrow, description=f"Two line charts by relative depth, the row share R and the column share "
                  f"C of the NMF pictures of each block (and of the convolutions outside blocks) for {n_models} "
                  f"models ({', '.join(families)}); dashed lines: random baselines "
                  + ", ".join(f"{b:.2f} at {k}" for k, b in baselines) + "." + (
                      f" For the {own} residual blocks with an identity skip, R and C are of the block's own weights, "
                      "the identity removed." if own else ""))
