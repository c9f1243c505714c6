"""Figure: expanded weights of a network's blocks (e.g. inverted residuals: 1x1 -> depthwise -> 1x1 composed)."""
from __future__ import annotations

import textwrap

import json

from . import analysis_data as ad
from .cells import unit_cells
from .chart_data import inline
from .context import diverging_scale
from .registry import PHONE_WIDTH, Figure, FigureContext, Interaction, register

N = 6  # strongest outputs x strongest inputs shown per block


def _parts(entry: dict, block: str) -> str:
    """"1x1 16->96 -> depthwise 3x3 (96) -> 1x1 96->24": the convs a block composes, from the manifest."""
    shapes = {c["name"]: c for c in entry["info"].get("conv_layers", [])}
    convs = next((b["convs"] for b in entry.get("blocks", []) if b["name"] == block), [])
    bits = []
    for name in convs:
        c = shapes.get(name)
        if c:
            o, i, kh, kw = c["shape"]
            bits.append(f"depthwise {kh}x{kw} ({o})" if c["kind"] == "depthwise" else f"{kh}x{kw} {i}\u2192{o}")
    return " \u2192 ".join(bits)


def _kernel_cells(label: str, pairs: dict, kh: int, kw: int, mode: str) -> list[dict]:
    """One record per kernel of the strongest pairs (flatten + window expand it in the browser: 5x smaller data)."""
    outs, ins, kernels = pairs["outs"][:N], pairs["ins"][:N], pairs["weight"]
    scale = max(abs(v) for a in kernels for b in a for r in b for v in r) or 1.0
    return [{"b": label, "m": mode, "o": o, "i": i, "oi": oi, "ii": ii, "k": kw, "kh": kh,
             "w": [float(f"{v:.3g}") for row in kernels[oi][ii] for v in row], "s": float(f"{scale:.4g}")}
            for oi, o in enumerate(outs) for ii, i in enumerate(ins)]


def skip_lines(identity: str, mode: str) -> list[str]:
    """What a tensor holds about its block's skip, in words (mode "own" or "total" where the identity was removed)."""
    if identity == "removed" and mode == "own":
        return ["skip: identity, removed. Shown: the block's own weights.",
                "The block also passes its input through unchanged:",
                "weight 1 from each channel to itself at the centre."]
    if identity == "removed":
        return ["skip: identity, included. Shown: the total,",
                "+1 from each channel to itself at the centre."]
    if identity == "projection":
        return ["skip: through a projection, not an identity;", "shown: the total, skip included."]
    return ["skip: none"]


def _title(skips: dict[str, list[str]]) -> dict:
    """The grid's title; a second line says which weights it shows where the picked block has a skip (an expression
    of the menu and the checkbox, so that it stays next to the kernels on a phone, where the notes scroll away)."""
    grid = f"{N} strongest outputs (rows) x {N} strongest inputs (columns)"
    own, total, projected = ("the block's own weights (identity skip removed)", "the total (identity skip included)",
                             "the total (projection skip included)")
    removed, projection = json.dumps(skips["removed"]), json.dumps(skips["projection"])
    return {"expr": f"indexof({removed}, block) >= 0 ? [{json.dumps(grid)}, skip ? {json.dumps(total)} : "
                    f"{json.dumps(own)}] : indexof({projection}, block) >= 0 ? [{json.dumps(grid)}, "
                    f"{json.dumps(projected)}] : {json.dumps(grid)}"}


NOTE_CHARS = 40  # a note's line, wrapped to fit 280 px of 12 px text


@register("expanded_explorer", interactions=(
    # The skip first: the block the figure opens on is a residual one, and the menu's last entry spans blocks.
    Interaction("bind:skip", "a residual block's kernels with or without its identity skip, and their notes"),
    Interaction("bind:block", "the expanded kernels drawn (another block's) and the notes on its composition")))
def expanded_explorer(ctx: FigureContext, params: dict[str, str]) -> Figure:
    import altair as alt

    model = ad.required(ctx, params, "model")
    entry = ad.model_entry(ctx, model)
    cells, notes, options, skips = [], [], [], {"removed": [], "projection": []}
    note_lines = 1
    for t in entry["tensors"]:
        if not t["source"]:
            continue
        report = ad.analysis_file(ctx, t["file"])
        o_n, i_n, kh, kw = report["shape"]
        label = f"{t['label']} ({o_n}x{i_n}x{kh}x{kw})"
        options.append(label)
        identity = report.get("identity", "none")
        if t.get("kind") == "block":
            composition = _parts(entry, t["layer"])
        else:
            composition = "several blocks, residual paths included"
        # A block whose identity skip was removed has both views; the reader's checkbox picks one ("all": no choice).
        views = [("own", report), ("total", report["total"])] if identity == "removed" else [("all", report)]
        skips.get(identity, []).append(label)
        for mode, view in views:
            cells += _kernel_cells(label, view["top_pairs"], kh, kw, mode)
            lines = [composition, f"expanded: {o_n} outputs x {i_n} inputs x {kh}x{kw}",
                     _banding_note(t) + (" (of the block's own weights)" if mode == "total" else ""),
                     *skip_lines(identity, mode)]
            # Wrapped here: a Vega text mark neither wraps nor grows its view, so a long line was cut at the edge.
            # One record per note, its wrapped lines an array (a multi-line text mark), placed below the lines
            # before it: `line` counts the lines above it.
            top = 0
            for text in lines:
                wrapped = textwrap.wrap(text, NOTE_CHARS, break_on_hyphens=False) or [""]
                notes.append({"b": label, "m": mode, "line": top, "text": wrapped})
                top += len(wrapped)
            note_lines = max(note_lines, top)
    if not options:
        raise ctx.error(f"model '{model}' has no expanded weights in the analysis results")
    pick = alt.param(name="block", value=options[min(4, len(options) - 1)],
                     bind=alt.binding_select(options=options, name="Expanded weights of "))
    skip = alt.param(name="skip", value=False, bind=alt.binding_checkbox(name="include the skip (identity) "))
    shown = "datum.b == block && (datum.m == 'all' || datum.m == (skip ? 'total' : 'own'))"
    positioned = (
        alt.Chart(inline(cells))
        .transform_filter(shown)
        .transform_flatten(["w"])
        .transform_window(p="row_number()", groupby=["b", "m", "o", "i"])
        .transform_calculate(x="(datum.p - 1) % datum.k", y="floor((datum.p - 1) / datum.k)")
        .transform_calculate(gx="datum.ii * (datum.k + 1) + datum.x", gy="datum.oi * (datum.kh + 1) + datum.y",
                             v="datum.w / datum.s")
    )

    def compose(side: int, phone: bool):
        """The grid `side` px square, its notes beside it (on a phone: below it)."""
        grid = (
        unit_cells(
            positioned, "gx", "gy",
            color=alt.Color("v:Q", scale=diverging_scale(alt, ctx),
                            legend=alt.Legend(title="weight / max |w|", orient="bottom")),
            tooltip=[alt.Tooltip("o:Q", title="output channel"), alt.Tooltip("i:Q", title="input channel"),
                     alt.Tooltip("x:Q", title="x"), alt.Tooltip("y:Q", title="y"),
                     alt.Tooltip("w:Q", title="expanded weight", format=".4f")],
        )
        .add_params(pick, skip)
        .properties(width=side, height=side, title=alt.TitleParams(text=_title(skips)), name="kernel_cells")
        )
        text = (
            alt.Chart(inline(notes))
            .transform_filter(shown)
            .mark_text(align="left", baseline="top", fontSize=12, lineHeight=16)
            # Left-aligned at the view's edge, each note `line` lines of 16 px down.
            .encode(x=alt.value(0), y=alt.Y("line:Q", axis=None, scale=alt.Scale(domain=[0, note_lines], nice=False,
                                                                                reverse=True)),
                    text="text:N")
            .properties(width=NOTE_CHARS * 7, height=16 * note_lines)
        )
        joined = alt.vconcat(grid, text) if phone else alt.hconcat(grid, text)
        return joined.configure_view(strokeWidth=0).configure_title(fontSize=12, anchor="start")

    chart, narrow = compose(380, phone=False), compose(PHONE_WIDTH - 20, phone=True)
    residual = len(skips["removed"])
    skipped = (f" In the {residual} residual blocks with an identity skip the kernels are the block's own "
               "contribution, the total minus the identity (weight 1 from each channel to itself at the centre); a "
               "checkbox includes the skip." if residual else "")
    return Figure(chart=chart, narrow=narrow, description=(
        f"Expanded weights of {ad.label(ad.manifest(ctx), model)}: {len(options)} tensors (single blocks and any "
        f"spans of several), each a grid of the {N} strongest output and "
        "input channels' spatial kernels on a red (positive) to blue (negative) scale, with the shapes of the "
        f"convolutions each block composes.{skipped}"))


def _banding_note(t: dict) -> str:
    """The article's banding score of a tensor: R and C of its NMF pictures (none for a tensor without pictures)."""
    if t.get("R_nmf") is None:
        return "banding: no NMF pictures"
    return f"banding of its NMF pictures: R = {t['R_nmf']:.2f}, C = {t['C_nmf']:.2f}"

