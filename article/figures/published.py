"""Figure: banding of published networks (read from the Weight Banding article's images) beside this build's own."""
from __future__ import annotations

from . import analysis_data as ad
from .registry import Figure, FigureContext, register

# Row-variance share R of each network's NMF pictures, read by eye from the images of Petrov et al. 2021, "Weight
# Banding" (Distill, doi:10.23915/distill.00024.009). The only numbers in the articles not computed here; the sample
# article's chart takes its ImageNet rows from this list too.
PUBLISHED = [
    ("InceptionV1 mixed5b", 0.95),
    ("ResNet50 block4", 0.89),
    ("VGG19 conv5", 0.92),
    ("AlexNet conv5", 0.57),
    ("simplified net 5b", 0.97),
    ("simplified net, rotated inputs", 0.02),
    ("simplified net, no GAP", 0.51),
]


@register("published_banding")
def published_banding(ctx: FigureContext, params: dict[str, str]) -> Figure:
    import altair as alt

    man = ad.manifest(ctx)
    rows = [{"network": n, "group": "published (read from NMF pictures)", "R": r,
             "source": "Petrov et al. 2021, read from the article's NMF pictures"} for n, r in PUBLISHED]
    if "lab_summary" in man:
        summary = ad.analysis_file(ctx, man["lab_summary"])
        names = {"gap": "this build: lab GAP", "flatten": "this build: lab flatten",
                 "rotated": "this build: lab GAP, rotated inputs"}
        for variant, stats in summary["variants"].items():
            key = "R_delta" if "R_delta" in stats else "R"
            rows.append({"network": names[variant], "group": "this build (layer-pooled score)",
                         "R": ad.r3(stats[key]["mean"]), "source": f"mean of {stats['n']} seeds, W - W_init"})
    for name, entry in man["models"].items():  # every real network's last block (expanded weights)
        if entry.get("family") == "bring-your-own":
            continue  # it belongs to the article that declared it (ad.article_models): not read, not drawn here
        blocks = [t for t in entry["tensors"] if t.get("kind") == "block"]
        if blocks and not name.startswith("lab-"):
            rows.append({"network": f"this build: {ad.label(man, name)}, last block",
                         "group": "this build (layer-pooled score)",
                         "R": ad.r3(blocks[-1]["R_layer"]), "source": "expanded weights of the last block"})
    groups = ["published (read from NMF pictures)", "this build (layer-pooled score)"]
    colors = ["#8c6d31", "#4c78a8"]
    pick = alt.selection_point(fields=["group"], bind="legend")
    bars = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        y=alt.Y("network:N", sort=None, title=None, axis=alt.Axis(labelLimit=260)),
        x=alt.X("R:Q", title="row share R of the NMF pictures", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("group:N", title=None, scale=alt.Scale(domain=groups, range=colors),
                        legend=alt.Legend(orient="top", columns=2)),
        opacity=alt.condition(pick, alt.value(1), alt.value(0.25)),
        tooltip=[alt.Tooltip("network:N"), alt.Tooltip("R:Q", format=".2f"), alt.Tooltip("source:N")],
    ).add_params(pick)
    rule = alt.Chart(alt.Data(values=[{"b": 0.25}])).mark_rule(color="#888", strokeDash=[4, 4]).encode(
        x="b:Q", tooltip=[alt.Tooltip("b:Q", title="random baseline (3x3)")])
    chart = alt.layer(bars, rule).properties(width=420, height=22 * len(rows))
    return Figure(chart=chart, description="Bar chart of the row share R: "
                  + "; ".join(f"{r['network']} {r['R']:.2f}" for r in rows) + ".")
