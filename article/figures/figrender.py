"""Turn a registered figure into page HTML plus files under ``<slug>/data/`` (through the render cache:
figure_cache.py).

A chart figure becomes: the Vega-Lite spec without data inline as ``<script type="application/json">``;
its datasets as ``data/<id>.json`` (canonical download) and ``data/<id>.data.js`` (a classic-script twin,
because pages opened from file:// cannot fetch); a static SVG (``data/<id>.svg``) from vl-convert used
in ``<noscript>``, in print, and when drawing fails.

A cache hit (figure_cache.py) imports neither altair nor vl_convert.
"""
from __future__ import annotations

import dataclasses
import html
import json
from dataclasses import dataclass, field
from typing import Any

from ..cache import fileset
from ..config import limits
from ..structure import jsonio, theme
from ..structure.errors import BuildError
from . import chart_data, registry
from .registry import Figure, FigureContext

@dataclass
class FigureOutput:
    """Cacheable result of one figure (no page-specific numbering). Spec and datasets are kept as their final
    deterministic JSON text, so a cache hit writes them without re-serialising (the data can be large)."""

    description: str
    spec_text: str | None = None  # Vega-Lite without data, jsonio.dumps
    datasets_text: str | None = None  # jsonio.dumps of the datasets
    svg: str | None = None
    narrow_text: str | None = None  # Figure.narrow's Vega-Lite, without data (its datasets are in datasets_text)
    width: int | None = None  # the chart's drawn width in px (its static SVG's): figures.js draws narrow_text in a narrower column
    html: str | None = None
    assets: dict[str, bytes] = field(default_factory=dict)
    links: list[tuple[str, str]] = field(default_factory=list)

    @property
    def spec(self) -> dict[str, Any] | None:
        return None if self.spec_text is None else json.loads(self.spec_text)

    _TEXTS = ("spec_text", "datasets_text", "svg", "narrow_text", "html")

    def to_files(self) -> dict[str, bytes]:
        """The render-cache form: the large texts and the assets as raw members (``cache.pack``), so a cache hit
        does not JSON-decode megabytes of escaped SVG and chart data (~10 ms per content-only rebuild)."""
        files = {"output.json": json.dumps({"description": self.description, "width": self.width,
                                            "links": [list(l) for l in self.links]}).encode()}
        files.update({f"text/{k}": getattr(self, k).encode() for k in self._TEXTS if getattr(self, k) is not None})
        files.update({f"asset/{k}": v for k, v in self.assets.items()})
        return files

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> "FigureOutput":
        """From a render-cache entry; a wrong shape or type, or an unsafe asset name, raises ValueError (a miss)."""
        d = json.loads(files["output.json"])
        ok = (isinstance(d, dict) and isinstance(d.get("description"), str) and isinstance(d.get("links"), list)
              and (d.get("width") is None or isinstance(d.get("width"), int))
              and all(isinstance(l, list) and len(l) == 2 and all(isinstance(x, str) for x in l) for l in d["links"])
              and all(n == "output.json" or n.removeprefix("text/") in cls._TEXTS
                      or (n.startswith("asset/") and safe_asset_name(n[6:])) for n in files))
        if not ok:
            raise ValueError("render cache entry of the wrong shape")
        texts = {k: files[f"text/{k}"].decode("utf-8") for k in cls._TEXTS if f"text/{k}" in files}
        return cls(description=d["description"], width=d.get("width"), links=[tuple(l) for l in d["links"]], **texts,
                   assets={n[6:]: v for n, v in files.items() if n.startswith("asset/")})


@dataclass
class RenderedFigure:
    id: str
    number: int
    html: str  # the whole <figure> element
    scripts: list[str]  # data twins to load before figures.js (relative to the article page)


def svg_width(svg: str | None) -> int | None:
    """The drawn width of a vl-convert SVG (its root's width attribute), or None."""
    import re

    found = re.search(r'<svg[^>]*?\swidth="([0-9.]+)', svg or "")
    return round(float(found.group(1))) if found else None


# ---------------------------------------------------------------- chart spec handling

def split_data(spec: dict[str, Any], fig_id: str, ctx: FigureContext,
               rows: dict[str, Any] | None = None) -> tuple[dict, dict]:
    """Move top-level ``datasets``, every inline ``data.values`` and the ``rows`` (chart_data.collecting) a ``data``
    names into one datasets dict.

    Returns (spec without data, datasets). ``data.url`` is refused: pages opened from file:// can't fetch.
    """
    rows = rows or {}
    spec = json.loads(jsonio.dumps(spec))  # deep copy, normalised floats
    datasets: dict[str, Any] = spec.pop("datasets", {}) or {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict):
                if "url" in data:
                    raise ctx.error(f"chart uses data.url {data['url']!r}; give inline data instead")
                if "values" in data:
                    values = data.pop("values")
                    name = chart_data.dataset_name(values)
                    datasets[name] = values
                    data["name"] = name
                elif isinstance(data.get("name"), str) and data["name"] in rows and data["name"] not in datasets:
                    datasets[data["name"]] = json.loads(jsonio.dumps(rows[data["name"]]))  # normalised floats
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return spec, datasets


REF = "$vwref"  # {REF: [key or index, ...]}: the part of the wide spec found at that path (figures.js expands it)


def shared_parts(narrow: Any, wide: dict[str, Any], smallest: int = 64) -> Any:
    """The narrow spec with every part the wide spec also has (as JSON text of at least ``smallest`` characters)
    written as a reference to it: a narrow twin mostly repeats its wide spec's views, transforms and encodings,
    and inline in the page it would add ~60 KB to an article."""
    index: dict[str, list] = {}

    def walk(node: Any, path: list) -> None:
        text = jsonio.dumps(node)
        if len(text) >= smallest:
            index.setdefault(text, path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + [k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + [i])

    def encode(node: Any) -> Any:
        found = index.get(jsonio.dumps(node)) if isinstance(node, (dict, list)) else None
        if found is not None:
            return {REF: found}
        if isinstance(node, dict):
            return {k: encode(v) for k, v in node.items()}
        if isinstance(node, list):
            return [encode(v) for v in node]
        return node

    walk(wide, [])
    return encode(narrow)


def expand_shared(narrow: Any, wide: Any) -> Any:
    """Inverse of ``shared_parts`` (figures.js does the same in the browser)."""
    if isinstance(narrow, dict):
        if set(narrow) == {REF}:
            node = wide
            for step in narrow[REF]:
                node = node[step]
            return json.loads(json.dumps(node))
        return {k: expand_shared(v, wide) for k, v in narrow.items()}
    if isinstance(narrow, list):
        return [expand_shared(v, wide) for v in narrow]
    return narrow


def with_font(spec: dict[str, Any], chart_theme: dict[str, Any]) -> dict[str, Any]:
    """The spec with the theme's (vendored) font as its default font; a figure's own config settings win."""
    config = dict(spec.get("config") or {})
    for key, value in theme.vega_config(chart_theme).items():
        config[key] = {**value, **(config.get(key) or {})} if isinstance(value, dict) else config.get(key, value)
    return dict(spec, config=config)


def _chart_output(fig: Figure, fig_id: str, ctx: FigureContext, rows: dict[str, Any]) -> FigureOutput:
    chart = fig.chart
    spec = chart if isinstance(chart, dict) else chart.to_dict()
    spec, datasets = split_data(with_font(spec, ctx.theme), fig_id, ctx, rows)
    narrow_text = None
    if fig.narrow is not None:
        narrow = fig.narrow if isinstance(fig.narrow, dict) else fig.narrow.to_dict()
        narrow, narrow_data = split_data(with_font(narrow, ctx.theme), fig_id, ctx, rows)
        datasets.update(narrow_data)  # named by content: the data both specs share is stored once
        narrow_text = jsonio.dumps(shared_parts(narrow, spec))
    import vl_convert  # lazy: only on a cache miss

    theme.register_chart_font()
    try:
        svg = vl_convert.vegalite_to_svg(dict(spec, datasets=datasets), config=theme.static_config())
    except Exception as exc:
        raise ctx.error(f"Vega-Lite spec does not render: {exc}") from None
    return FigureOutput(description=fig.description, spec_text=jsonio.dumps(spec),
                        datasets_text=jsonio.dumps(datasets), svg=svg, narrow_text=narrow_text, width=svg_width(svg),
                        html=fig.html, assets=dict(fig.assets), links=list(fig.links))


def safe_asset_name(name: Any) -> bool:
    return fileset.safe_name(name) and not name.startswith(".")


class _Params(dict):
    """The figure's parameters, remembering which ones the figure code looked at (typos are errors)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.used: set[str] = set()

    def __getitem__(self, key):
        self.used.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.used.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        self.used.add(key)
        return super().__contains__(key)


NOT_FOR_FIGURE_CODE = {"width"}  # directive attributes the page layout reads, not the figure's own code


def make_output(kind: str, params: dict[str, str], ctx: FigureContext) -> FigureOutput:
    fn = registry.FIGURES[kind]
    seen = _Params(params)
    seconds = limits.render_timeout()
    try:
        with limits.time_limit(seconds, lambda: ctx.error(
                f"kind '{kind}' did not finish within {seconds:g} s (a huge parameter? ${limits.TIMEOUT_ENV} "
                "raises the limit)")), chart_data.collecting() as rows:
            fig = fn(ctx, seen)
    except BuildError:
        raise
    except Exception as exc:
        raise ctx.error(f"kind '{kind}' failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(fig, Figure):
        raise ctx.error(f"kind '{kind}' returned {type(fig).__name__}, expected Figure")
    unknown = sorted(set(params) - seen.used - NOT_FOR_FIGURE_CODE)
    if unknown:
        raise ctx.error(f"unknown parameter(s) {', '.join(unknown)} for kind '{kind}' (it reads: "
                        f"{', '.join(sorted(seen.used)) or 'none'}; layout: width)")
    if not (isinstance(fig.description, str) and fig.description.strip()):
        raise ctx.error("Figure.description (text for screen readers) is required")
    if fig.chart is None and fig.html is None:
        raise ctx.error("Figure needs a chart or html")
    for name in fig.assets:
        if not safe_asset_name(name):
            raise ctx.error(f"bad asset name {name!r}")
    if fig.chart is not None:
        return _chart_output(fig, ctx.figure_id or "", ctx, rows)
    return FigureOutput(description=fig.description, html=fig.html, assets=dict(fig.assets),
                        links=list(fig.links))


# ---------------------------------------------------------------- page HTML

def figure_files(out: FigureOutput, fig_id: str) -> dict[str, bytes]:
    """The files a figure adds to its article folder: chart data (JSON, and a classic script for file://), the static
    SVG, its assets."""
    files: dict[str, bytes] = {}
    if out.spec_text is not None:
        data_text = out.datasets_text or "{}"
        files[f"data/{fig_id}.json"] = (data_text + "\n").encode()
        files[f"data/{fig_id}.data.js"] = (
            f"(window.VW_DATA=window.VW_DATA||{{}})[{json.dumps(fig_id)}]={jsonio.script_safe(data_text)};\n"
        ).encode()
        files[f"data/{fig_id}.svg"] = (out.svg or "").encode()
    for name, data in sorted(out.assets.items()):
        files[f"data/{fig_id}/{name}"] = data
    return files


def figure_html(out: FigureOutput, fig_id: str, number: int, width: str, caption_html: str,
                kind: str) -> RenderedFigure:
    """Assemble the <figure> element (its files: ``figure_files``)."""
    e = html.escape
    scripts: list[str] = []
    desc_id = f"fig-{fig_id}-desc"
    body = []
    links = list(out.links)
    if out.spec_text is not None:
        scripts.append(f"data/{fig_id}.data.js")
        # figures.js draws the narrow spec where the column is narrower than the wide drawing.
        wide = out.width
        narrow = "" if out.narrow_text is None else (
            f'<script type="application/json" id="spec-narrow-{e(fig_id)}">'
            f"{jsonio.script_safe(out.narrow_text)}</script>\n")
        body.append(
            f'<div class="vw-chart" id="chart-{e(fig_id)}" data-vw-chart="{e(fig_id)}" role="img" '
            + (f'data-vw-width="{wide}" ' if wide else "")
            + f'aria-label="Figure {number}" aria-describedby="{desc_id}"></div>\n'
            f'<script type="application/json" id="spec-{e(fig_id)}">'
            f"{jsonio.script_safe(out.spec_text)}</script>\n" + narrow +
            f'<noscript><img class="vw-noscript" src="data/{e(fig_id)}.svg" alt="{e(out.description)}"></noscript>\n'
            # lazy: a hidden image is not fetched on screen; it loads for print or when drawing fails.
            f'<img class="vw-static" src="data/{e(fig_id)}.svg" alt="" aria-hidden="true" loading="lazy">'
        )
        links.insert(0, ("Download data (JSON)", f"data/{fig_id}.json"))
    if out.html is not None:
        attrs = "" if out.spec_text is not None else f' role="group" aria-describedby="{desc_id}"'
        body.append(f'<div class="vw-html"{attrs}>{out.html}</div>')
    link_html = ""
    if links:
        # Inside the figcaption: a <figure>'s caption must be its first or last child.
        link_html = ' <span class="vw-links">' + " · ".join(
            f'<a href="{e(href)}">{e(label)}</a>' for label, href in links) + "</span>"
    declared = registry.INTERACTIONS.get(kind) or ()
    acts = (' data-vw-interactions="' + e(json.dumps([dataclasses.asdict(i) for i in declared])) + '"'
            if declared else "")
    element = (
        f'<figure id="fig-{e(fig_id)}" class="vw-figure {width}" data-kind="{e(kind)}"{acts}>\n'
        + "\n".join(body) + "\n"
        f'<p class="sr-only" id="{desc_id}">{e(out.description)}</p>\n'
        f'<figcaption><span class="fig-label">Figure {number}:</span> {caption_html}{link_html}</figcaption>\n'
        "</figure>"
    )
    return RenderedFigure(id=fig_id, number=number, html=element, scripts=scripts)
