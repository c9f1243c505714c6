"""One source for the theme: article/structure/theme.py. The stylesheet, the chart script and figure code follow it."""
from __future__ import annotations

import re
from pathlib import Path

from article.structure import theme

ASSETS = Path(__file__).resolve().parent.parent / "templates" / "assets"


def defined_properties(css: str) -> set[str]:
    return set(re.findall(r"--([a-z][a-z0-9-]*)\s*:", css))


def test_every_custom_property_the_page_uses_comes_from_the_theme():
    css = theme.css()
    defined = defined_properties(css)
    used = set(re.findall(r"var\(--([a-z][a-z0-9-]*)\)", (ASSETS / "style.css").read_text(encoding="utf-8")))
    used |= set(re.findall(r'css\("([a-z][a-z0-9-]*)"\)', (ASSETS / "figures.js").read_text(encoding="utf-8")))
    assert used and used <= defined, f"used but not in article/structure/theme.py: {sorted(used - defined)}"
    assert set(theme.LIGHT) == set(theme.DARK), "every colour needs its dark twin"
    # style.css defines no theme colours of its own (print rules may override some).
    screen = (ASSETS / "style.css").read_text(encoding="utf-8").split("@media print")[0]
    assert not defined_properties(screen), "style.css defines theme properties: move them to article/structure/theme.py"


def test_theme_css_is_written_into_the_site_and_linked_before_the_stylesheet():
    base = (ASSETS.parent / "base.html").read_text(encoding="utf-8")
    assert base.index("assets/theme.css") < base.index("assets/style.css")
    dark = theme.css().split("prefers-color-scheme: dark")[1]
    assert f"--bg: {theme.DARK['bg']};" in dark


def test_figure_code_and_widths_read_the_theme():
    from article.figures.registry import FigureContext
    from article.markup import renderer

    ctx = FigureContext(article={}, site={}, cache_dir=Path("."), slug="s")
    assert ctx.theme["diverging"] == ["#0571b0", "#92c5de", "#f7f7f7", "#f4a582", "#ca0020"]  # Distill's, red > 0
    assert renderer.WIDTHS is theme.WIDTHS
    for width in theme.WIDTHS:
        assert f".{width}" in (ASSETS / "style.css").read_text(encoding="utf-8")


def test_static_svg_draws_named_styles_in_the_light_themes_colours(monkeypatch):
    """A mark styled "vw-ink" (drawn in the text colour by figures.js) is not Vega's default blue in the static SVG
    that readers without script, print and a failed draw get."""
    from article.figures import figrender, registry
    from article.figures.registry import Figure, FigureContext

    def ink(ctx, params):
        import altair as alt
        data = alt.Data(values=[{"x": 1, "y": 2}, {"x": 2, "y": 1}])
        return Figure(chart=alt.Chart(data).mark_point(style="vw-ink", filled=True).encode(x="x:Q", y="y:Q"),
                      description="two points")

    monkeypatch.setitem(registry.FIGURES, "ink_test", ink)
    monkeypatch.setitem(registry.INTERACTIONS, "ink_test", ())
    ctx = FigureContext(article={}, site={}, cache_dir=Path("."), slug="s", figure_id="ink")
    svg = figrender.make_output("ink_test", {}, ctx).svg
    fills = set(re.findall(r'<path[^>]*role="graphics-symbol"[^>]*>', svg))
    assert fills and all(f'fill="{theme.LIGHT["fg"]}"' in p for p in fills), fills
    # and figures.js styles nothing the static config leaves out
    named = set(re.findall(r'"(vw-[a-z-]+)"\s*:', (ASSETS / "figures.js").read_text(encoding="utf-8")))
    assert named and named <= set(theme.static_config()["style"])
