"""Figure: a worked reading of one neuron's input weights, as Distill's "Visualizing Weights" reads them.

The neuron (its feature visualization and its NMF factors, each with a feature visualization of the factor's channel
loadings), then its strongest input neurons, each with its feature visualization and the kernel from it to the
neuron at a legible size, all kernels on one diverging scale with a legend that says what red and blue mean.
Plain HTML and inline SVG (article/figures/heatmap_svg.py): it reflows on a phone and needs no script.
The data is the analysis's reading record (analysis/reading.py), found in the model's context records.
"""
from __future__ import annotations

from html import escape

from ..structure.explorer_links import explorer_href
from . import analysis_data as ad
from .context import example_asset, examples_layer
from .heatmap_svg import kernel_svg, legend_svg
from .registry import Figure, FigureContext, register

FACTOR_NAMES = ("red", "green", "blue")


def _readings(ctx: FigureContext, model: str, tensor: str | None) -> tuple[dict, dict]:
    """(context entry, its record) holding readings for `tensor` (default: the model's first context)."""
    entries = ad.model_entry(ctx, model)["context"]
    for entry in entries:
        if tensor is None or entry["tensor"] == tensor:
            record = ad.analysis_file(ctx, entry["file"])
            if record.get("readings"):
                return entry, record
    where = f"tensor '{tensor}'" if tensor else "any tensor"
    raise ctx.error(f"model '{model}' has no worked reading for {where}; list the weights under the model's "
                    f"recipe: context with read: [neuron ids] (article/README.md)")


def _pick(ctx: FigureContext, record: dict, neuron: str | None) -> dict:
    by_id = {r["neuron"]: r for r in record["readings"]}
    if neuron is None:
        return record["readings"][0]
    try:
        return by_id[int(neuron)]
    except (ValueError, KeyError):
        raise ctx.error(f"neuron={neuron} has no reading in {record['tensor']} (read: "
                        f"{', '.join(map(str, by_id))}); add it to the context's read: list") from None


def _previous_tensor(ctx: FigureContext, model: str, tensor: str) -> str | None:
    """The analysed tensor whose output neurons are this tensor's inputs (its `next` is this one), if any."""
    return next((t["id"] for t in ad.model_entry(ctx, model)["tensors"] if t.get("next") == tensor), None)


def _picture(ctx: FigureContext, assets: dict, rel: str | None, alt: str, size: int) -> str:
    if not rel:
        return ""
    return (f'<img class="vw-fv" src="{escape(ad.image_asset(ctx, assets, rel))}" width="{size}" height="{size}" '
            f'alt="{escape(alt)}" loading="lazy">')


def _examples(ctx: FigureContext, assets: dict, layer, channel: int, k: int, size: int, who: str) -> str:
    """The channel's `k` strongest dataset examples (analysis/examples_stage.py), each `size` px with its receptive
    field outlined; empty when the layer has none (the network's input)."""
    if layer is None or channel >= layer.channels:
        return ""
    imgs = "".join(f'<img src="{escape(example_asset(ctx, assets, layer, ex))}" width="{size}" height="{size}" '
                   f'alt="{escape(f"dataset example {ex.rank + 1} of {who}: {ex.image_label}, activation {ex.activation:.3g}")}" '
                   f'loading="lazy">' for ex in layer.top(channel, k))
    return f'<div class="vw-reading-examples">{imgs}</div>' if imgs else ""


def _rgb_svg(rgb: list, cell: int, label: str) -> str:
    h, w = len(rgb), len(rgb[0])
    cells = "".join(f'<rect x="{x * cell}" y="{y * cell}" width="{cell}" height="{cell}" fill="{ad.hexcolor(c)}"/>'
                    for y, row in enumerate(rgb) for x, c in enumerate(row))
    return (f'<svg class="vw-wkernel" width="{w * cell}" height="{h * cell}" role="img" '
            f'aria-label="{escape(label)}">{cells}</svg>')


def _factor_svg(spatial: list, channel: int, cell: int, label: str) -> str:
    """One NMF factor's spatial map in its own colour (factor 0 red, 1 green, 2 blue), black where zero."""
    rgb = [[[v if k == channel else 0.0 for k in range(3)] for v in row] for row in spatial]
    return _rgb_svg(rgb, cell, label)


def _cell(h: int, w: int, box: int) -> int:
    """Square cells that fit a `box`-px square, never below 6 px (a 13x13 expanded kernel stays legible)."""
    return max(6, box // max(h, w))


def _nmf_html(ctx: FigureContext, assets: dict, nmf: dict, lower: str, name: str) -> str:
    h, w = len(nmf["rgb"]), len(nmf["rgb"][0])
    parts = ['<div class="vw-reading-nmf"><p class="vw-reading-label">Its input weights as three NMF factors '
             '(red, green, blue), each a spatial pattern times a mix of input channels:</p>',
             f'<div class="vw-factors"><div class="vw-factor">{_rgb_svg(nmf["rgb"], _cell(h, w, 72), name + " NMF")}'
             '<p>all three</p></div>']
    for f, factor in enumerate(nmf["factors"]):
        colour = FACTOR_NAMES[f] if f < 3 else f"factor {f}"
        mix = ", ".join(f'{t["channel"]} ({t["loading"]:+.2g})' for t in factor["top"][:3])
        parts.append(f'<div class="vw-factor">{_factor_svg(factor["spatial"], f, _cell(h, w, 72), f"{colour} factor")}'
                     + _picture(ctx, assets, factor.get("featviz"), f"feature visualization of the {colour} factor's "
                                f"mix of {lower} channels", 72)
                     + f'<p>{colour}: {escape(lower)} {escape(mix)}</p></div>')
    parts.append("</div></div>")
    return "".join(parts)


@register("weight_reading")
def weight_reading(ctx: FigureContext, params: dict[str, str]) -> Figure:
    model = ad.required(ctx, params, "model")
    entry, record = _readings(ctx, model, params.get("tensor"))
    read = _pick(ctx, record, params.get("neuron"))
    n_inputs = len(read["inputs"])
    if params.get("inputs"):
        try:
            n_inputs = max(1, min(n_inputs, int(params["inputs"])))
        except ValueError:
            raise ctx.error(f"inputs={params['inputs']!r} must be a number") from None
    inputs = read["inputs"][:n_inputs]
    stops = list(ctx.theme["diverging"])
    scale = max((abs(v) for i in inputs for row in i["kernel"] for v in row), default=0.0) or 1.0
    tensor, lower, upper, o = record["tensor"], record["lower"], record["upper"], read["neuron"]
    label = ad.label(ad.manifest(ctx), model)
    before = _previous_tensor(ctx, model, tensor)
    assets: dict[str, bytes] = {}
    kh, kw = len(inputs[0]["kernel"]), len(inputs[0]["kernel"][0])
    cell = _cell(kh, kw, 112)
    name = f"{upper} neuron {o}"
    upper_ex, lower_ex = examples_layer(ctx, model, upper), examples_layer(ctx, model, lower)
    head = (f'<div class="vw-reading-self">{_picture(ctx, assets, read.get("featviz"), f"feature visualization of {name}", 144)}'
            + _examples(ctx, assets, upper_ex, o, 4, 68, name)
            + f'<p class="vw-reading-name"><a href="{escape(explorer_href(model, tensor, o))}">{escape(label)}: '
            f'{escape(upper)}, neuron {o}</a></p></div>')
    nmf = _nmf_html(ctx, assets, read["nmf"], lower, name) if read.get("nmf") else ""
    cards = []
    for i in inputs:
        c = i["channel"]
        who = f"{lower} neuron {c}"
        link = (f'<a href="{escape(explorer_href(model, before, c))}">{escape(lower)} {c}</a>' if before
                else f"{escape(lower)} {c}")
        cards.append(f'<li class="vw-input"><p class="vw-reading-label">{link}</p>'
                     + _picture(ctx, assets, i.get("featviz"), f"feature visualization of {who}", 96)
                     + _examples(ctx, assets, lower_ex, c, 2, 64, who)
                     + kernel_svg(i["kernel"], scale, stops, cell=cell, label=f"weights from {who} to {name}")
                     + f'<p class="vw-sum">sum {i["sum"]:+.2f}, norm {i["l2"]:.2f}</p></li>')
    key = (f'<div class="vw-reading-key">{legend_svg(scale, stops, gradient_id=f"vw-legend-{ctx.figure_id}")}'
           f'<p>Each kernel is the {kh}&#215;{kw} weight from one input neuron to neuron {o}, by position relative to '
           f'the neuron\'s centre. <span class="vw-red">Red</span>: where that input is active, neuron {o} is '
           f'excited; <span class="vw-blue">blue</span>: inhibited. One colour scale for all {len(inputs)} kernels '
           f'(largest |w| {scale:.3g}).</p></div>')
    entry_t = next((t for t in ad.model_entry(ctx, model)["tensors"] if t["id"] == tensor), {})
    skip = ""
    if entry_t.get("identity") == "removed":  # analysis/tensor_stage.shown_tensor
        skip = (f" These are the block's own weights: it also adds its input back unchanged (weight 1 from "
                f"{escape(lower)} neuron {o} to neuron {o} at the centre), which is left out here.")
    html = (f'<div class="vw-reading">{head}{nmf}{key}<p class="vw-reading-label">Its {len(inputs)} strongest '
            f'inputs, by the norm of their kernel.{skip}</p><ol class="vw-reading-inputs">{"".join(cards)}</ol></div>')
    strongest = ", ".join(f'{i["channel"]} (sum {i["sum"]:+.2f})' for i in inputs)
    description = (f"A worked reading of {label} {name}: its feature visualization, its input weights as three NMF "
                   f"factors, and the {kh}x{kw} kernels from its {len(inputs)} strongest input neurons in {lower}: "
                   f"{strongest}. Red is positive (excites), blue negative (inhibits), one scale up to {scale:.3g}.")
    return Figure(html=html, description=description, assets=assets,
                  links=[(f"Open {name} in the weight explorer", explorer_href(model, tensor, o))])
