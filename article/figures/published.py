"""Figure: banding of the published networks beside this build's, one quantity for all: R and C of NMF pictures.

The published values are measured on the NMF pictures of Petrov et al. 2021, "Weight Banding" (Distill,
doi:10.23915/distill.00024.009), by bench/published_banding.py; the numbers and their provenance are in
published_data.py (generated). This build's values are the same score on its own NMF pictures (`R_nmf`, `C_nmf` in
the analysis manifest, analysis.tensor_report.nmf_banding).
"""
from __future__ import annotations

from typing import Any

from . import analysis_data as ad
from .chart_data import inline
from .published_data import PUBLISHED
from .registry import PHONE_WIDTH, Figure, FigureContext, Interaction, register

SHORT_REPO = "distillpub/post--weight-banding"
GROUPS = ["published (Petrov et al.)", "this build"]
COLORS = ["#8c6d31", "#4c78a8"]
LAB_NAMES = {"gap": "lab: GAP", "flatten": "lab: flatten", "rotated": "lab: GAP, rotated inputs"}


def published_rows() -> list[dict[str, Any]]:
    """One record per published layer: its scores, random baseline, role and where the pictures are."""
    where = f"{SHORT_REPO}@{PUBLISHED['commit'][:7]}"
    return [{"network": n["network"], "role": n["role"], "R": n["R"], "C": n["C"], "baseline": n["baseline_R"],
             "kernel": n["kernel"], "neurons": n["neurons"],
             "source": f"{n['neurons']} published NMF pictures ({n['kernel']}), {where}: {n['file'].rsplit('/', 1)[-1]}"}
            for n in PUBLISHED["networks"]]


def build_rows(ctx: FigureContext) -> list[dict[str, Any]]:
    """This build's layers on the same score: the lab's variants (mean and spread over seeds) and, for every real
    network of the article, its featured banding layer or else its last block (expanded weights)."""
    man = ad.manifest(ctx)
    rows = []
    if "lab_summary" in man:
        summary = ad.analysis_file(ctx, man["lab_summary"])
        baseline = summary["rows"][0]["baseline_R"] if summary["rows"] else None
        for variant, stats in summary["variants"].items():
            if "R_nmf" not in stats:
                continue
            rows.append({"network": LAB_NAMES[variant], "R": stats["R_nmf"]["mean"], "C": stats["C_nmf"]["mean"],
                         "R_sd": stats["R_nmf"]["std"], "C_sd": stats["C_nmf"]["std"], "baseline": baseline,
                         "kernel": "3x3", "source": f"mean and standard deviation over {stats['n']} seeds"})
    for name in ad.article_models(man):
        entry = man["models"][name]
        if name.startswith("lab-"):
            continue
        tensors = entry["tensors"]
        t = next((t for t in tensors if t["id"] == entry.get("featured_banding")), None)
        if t is None:
            blocks = [t for t in tensors if t.get("kind") == "block"]
            t = blocks[-1] if blocks else None
        if t is None or t.get("R_nmf") is None:
            continue
        block = t.get("kind") == "block"
        what = "expanded weights of the last block" if block else "the convolution's own weights"
        where = "last block" if block else t["layer"]
        rows.append({"network": f"{ad.label(man, name)}, {where}", "R": t["R_nmf"], "C": t["C_nmf"],
                     "baseline": t.get("R_baseline"), "kernel": f"{t['shape'][2]}x{t['shape'][3]}",
                     "source": f"{t['shape'][0]} NMF pictures of {what}, one network"})
    return rows


@register("published_banding", interactions=(
    Interaction("legend", "the other group fades: a click on \"published\" or \"this build\" highlights its bars"),))
def published_banding(ctx: FigureContext, params: dict[str, str]) -> Figure:
    import altair as alt

    rows = [{**r, "group": GROUPS[0]} for r in published_rows()] + [{**r, "group": GROUPS[1]} for r in build_rows(ctx)]
    for r in rows:
        for key in ("R", "C", "baseline", "R_sd", "C_sd"):
            if key in r:
                r[key] = ad.r3(r[key])
        if r.get("R_sd") is not None:
            r["R_lo"], r["R_hi"] = ad.r3(r["R"] - r["R_sd"]), ad.r3(r["R"] + r["R_sd"])
            r["C_lo"], r["C_hi"] = ad.r3(r["C"] - r["C_sd"]), ad.r3(r["C"] + r["C_sd"])
    order = [r["network"] for r in rows]
    pick = alt.selection_point(fields=["group"], bind="legend")
    tooltip = [alt.Tooltip("network:N"), alt.Tooltip("R:Q", title="row share R", format=".2f"),
               alt.Tooltip("C:Q", title="column share C", format=".2f"),
               alt.Tooltip("baseline:Q", title="random baseline", format=".2f"), alt.Tooltip("kernel:N"),
               alt.Tooltip("source:N")]

    def compose(width: int, phone: bool):
        """Networks named beside their bars, or (on a phone, whose column cannot hold both) above them."""
        step = 40 if phone else 24
        base = alt.Chart(inline(rows)).encode(
            y=alt.Y("network:N", sort=order, title=None, axis=None if phone else alt.Axis(labelLimit=230),
                    scale=alt.Scale(paddingInner=0.1)),
            opacity=alt.condition(pick, alt.value(1), alt.value(0.25)))
        x = alt.X("R:Q", title="share of the NMF pictures' spatial variance", scale=alt.Scale(domain=[0, 1]))
        bars = base.mark_bar(height={"band": 0.45 if phone else 0.7}, yOffset=7 if phone else 0).encode(
            x=x, color=alt.Color("group:N", title=None, scale=alt.Scale(domain=GROUPS, range=COLORS),
                                 legend=alt.Legend(orient="top", columns=1 if phone else 2)),
            tooltip=tooltip).add_params(pick)
        shift = {"yOffset": 7} if phone else {}
        columns = base.mark_point(shape="diamond", filled=True, size=70, style="vw-ink", **shift).encode(
            x="C:Q", tooltip=tooltip)
        baseline = base.mark_tick(color="#888", thickness=2, size=16, **shift).encode(x="baseline:Q", tooltip=tooltip)
        spread = base.transform_filter("isValid(datum.R_lo)")
        r_err = spread.mark_rule(style="vw-ink", **shift).encode(x="R_lo:Q", x2="R_hi:Q")
        c_err = spread.mark_rule(style="vw-ink", strokeDash=[2, 2], **shift).encode(x="C_lo:Q", x2="C_hi:Q")
        layers = [bars, baseline, r_err, c_err, columns]
        if phone:
            layers.append(base.mark_text(align="left", baseline="bottom", yOffset=-3, fontSize=11).encode(
                x=alt.datum(0), text="network:N"))
        return alt.layer(*layers).properties(width=width, height=step * len(rows))

    chart, narrow = compose(360, phone=False), compose(PHONE_WIDTH - 20, phone=True)
    return Figure(chart=chart, narrow=narrow, description="Bar chart of the row share R of NMF pictures (bars), with the column "
                  "share C (diamonds) and the random baseline (grey ticks): " + "; ".join(
                      f"{r['network']} R {r['R']:.2f}, C {r['C']:.2f}" for r in rows) + ".")
