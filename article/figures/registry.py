"""Figure and data hooks: article Markdown names a figure ``kind``; code here makes it.

Figure modules in this package register functions on import::

    from article.figures.registry import Figure, FigureContext, register, register_data

    @register("weight_heatmap")
    def make(ctx: FigureContext, params: dict[str, str]) -> Figure:
        import altair as alt           # import heavy libraries inside: cached figures skip them
        rows = ctx.load_json(f"{params['model']}/weights.json")
        return Figure(chart=alt.Chart(...), description="Heatmap of ...")

    @register_data("lab")               # -> {{ data.lab.gap.ratio | fmt(2) }} in prose
    def lab(ctx: FigureContext) -> dict:
        return ctx.load_json("lab/summary.json")
"""
from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Callable

from analysis.core.paths import inside

from ..structure import theme as site_theme
from ..structure.errors import BuildError


@dataclass(frozen=True)
class Figure:
    """What a figure function returns. At least one of ``chart`` / ``html``.

    chart: an altair chart or a Vega-Lite dict (inline data only, never ``data.url``).
    html: trusted HTML built by figure code (e.g. an image grid); reference assets via ``ctx.asset_url``.
    description: plain text for screen readers (required, non-empty).
    assets: extra files ``name -> bytes`` written to ``<slug>/data/<fig-id>/<name>``.
    links: ``(label, href)`` pairs shown under the figure; hrefs are relative to the article page
        (e.g. ``ctx.asset_url("weights.csv")``).
    narrow: the same chart re-specified to fit ``PHONE_WIDTH`` px (stacked instead of side by side, smaller cells
        that stay legible); figures.js draws it where the column is narrower than ``chart``. None: ``chart`` fits.
        (Scaling a Vega drawing down with CSS would break its pointer coordinates, so a phone gets its own spec.)
    """

    description: str
    chart: Any = None
    html: str | None = None
    assets: dict[str, bytes] = field(default_factory=dict)
    links: list[tuple[str, str]] = field(default_factory=list)
    narrow: Any = None


# The column a phone gives a figure: a 390 px viewport less the page's 16 px margins, less a little for safety
# (360 px Android phones then scroll by only a few pixels). Narrow variants (Figure.narrow) fit inside it.
PHONE_WIDTH = 340


@dataclass(frozen=True)
class Interaction:
    """Something a reader can do to a figure, and what it changes: declared with the kind (``register``), written
    onto the page (``data-vw-interactions``), and exercised by the browser tests (tests/browser/test_figures_fit.py).

    control: "click:<view name>" (a click on a mark of the Vega-Lite view named so, ``.properties(name=...)``),
        "bind:<param>" (the menu, radio or checkbox bound to that parameter), or "legend" (a click on a legend entry).
    changes: what the reader sees change, in words (the test checks the drawing changes).
    link: True when the figure's "in the weight explorer" link follows the choice.
    """

    control: str
    changes: str
    link: bool = False


@dataclass
class FigureContext:
    """Everything a figure or data hook may use. ``figure_id`` is None for data hooks."""

    article: dict[str, Any]  # the article's front matter (incl. free-form ``models`` / ``analysis``)
    site: dict[str, Any]  # site.yml as a dict (incl. free-form sections such as ``analysis``)
    cache_dir: Path
    slug: str
    figure_id: str | None = None
    path: Path | None = None  # article file, for error messages
    line: int | None = None  # directive line, for error messages
    theme: dict[str, Any] = field(default_factory=lambda: dict(site_theme.CHART))  # article/structure/theme.py
    reads: dict[str, str] = field(default_factory=dict)  # relpath -> sha256, for the render cache

    def load_json(self, relpath: str) -> Any:
        """Read analysis JSON ``cache_dir/relpath``; missing or corrupt files are BuildErrors, and so is a path
        (read from a cache record) that leads out of the cache folder."""
        file = inside(self.cache_dir, relpath)
        if file is None:
            raise self.error(f"analysis file path {str(relpath)[:200]!r} leads out of the cache folder "
                             f"{self.cache_dir}; run `python build.py --clean`")
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            raise self.error(f"analysis result {file} not found (run the analysis stage first)") from None
        self.reads[relpath] = hashlib.sha256(raw).hexdigest()
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise self.error(f"analysis result {file} is not valid JSON: {exc}") from None

    def load_parts(self, relpath: str) -> Mapping[str, Any]:
        """Analysis JSON ``cache_dir/relpath`` (an object) as a view that records each part the figure reads of it
        (article/figures/reads.py): the figure's cache entry then depends on those parts, not the whole file."""
        from .reads import Parts

        file = self.cache_dir / relpath
        try:
            raw = file.read_bytes()
            data = json.loads(raw)
        except FileNotFoundError:
            raise self.error(f"analysis result {file} not found (run the analysis stage first)") from None
        except ValueError as exc:
            raise self.error(f"analysis result {file} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            return self.load_json(relpath)
        self.reads.setdefault(relpath + "@", hashlib.sha256(raw).hexdigest())
        return Parts(data, relpath, self.reads)

    def asset_url(self, name: str) -> str:
        """Href of an asset of this figure, relative to the article page."""
        if not self.figure_id:
            raise self.error("asset_url() is only available to figures")
        return f"data/{self.figure_id}/{name}"

    def error(self, message: str) -> BuildError:
        what = f"figure '{self.figure_id}': " if self.figure_id else ""
        return BuildError(what + message, self.path, self.line)


FigureFn = Callable[[FigureContext, dict[str, str]], Figure]
DataFn = Callable[[FigureContext], dict[str, Any]]
FIGURES: dict[str, FigureFn] = {}
INTERACTIONS: dict[str, tuple[Interaction, ...]] = {}
DATA: dict[str, DataFn] = {}


def _add(table: dict, name: str, fn: Callable, what: str) -> None:
    old = table.get(name)
    if old is not None and (old.__module__, old.__qualname__) != (fn.__module__, fn.__qualname__):
        raise ValueError(f"{what} '{name}' registered twice: {old.__module__} and {fn.__module__}")
    table[name] = fn


def register(kind: str, interactions: tuple[Interaction, ...] = ()) -> Callable[[FigureFn], FigureFn]:
    """Decorator: ``make(ctx, params) -> Figure`` draws figures of ``kind``; ``interactions``: what a reader can do
    to such a figure (none: it is a still picture)."""
    def deco(fn: FigureFn) -> FigureFn:
        _add(FIGURES, kind, fn, "figure kind")
        INTERACTIONS[kind] = tuple(interactions)
        return fn
    return deco


def register_data(name: str) -> Callable[[DataFn], DataFn]:
    """Decorator: ``fn(ctx) -> dict`` becomes ``data.<name>`` in the article's prose template."""
    def deco(fn: DataFn) -> DataFn:
        _add(DATA, name, fn, "data hook")
        return fn
    return deco


def discover() -> None:
    """Import every module of this package (sorted) so their decorators run."""
    package = importlib.import_module(__package__)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name == "registry":
            continue
        try:
            importlib.import_module(f"{__package__}.{info.name}")
        except BuildError:
            raise
        except Exception as exc:
            raise BuildError(f"cannot import figure module: {type(exc).__name__}: {exc}",
                             Path(package.__path__[0]) / f"{info.name}.py") from exc


class LazyData(Mapping):
    """``data`` for prose templates: each hook runs on first use, so an article that never names
    ``data.vw`` builds without that hook's analysis results."""

    def __init__(self, ctx: FigureContext):
        self._ctx = ctx
        self._values: dict[str, dict[str, Any]] = {}

    def __getitem__(self, name: str) -> dict[str, Any]:
        if name not in self._values:
            if name not in DATA:
                raise KeyError(name)
            value = DATA[name](self._ctx)
            if not isinstance(value, dict):
                raise self._ctx.error(f"data hook '{name}' returned {type(value).__name__}, expected dict")
            self._values[name] = value
        return self._values[name]

    def __iter__(self):
        return iter(sorted(DATA))

    def __len__(self) -> int:
        return len(DATA)


def collect_data(ctx: FigureContext) -> LazyData:
    """``{name: hook(ctx)}`` for one article, evaluated lazily per name."""
    return LazyData(ctx)
