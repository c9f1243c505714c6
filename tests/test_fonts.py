"""The same bytes on every machine: a chart's static SVG must not depend on the fonts the machine has installed.

vl-convert resolves the generic ``sans-serif`` to a font named Arial when the machine has one (fontconfig's
directories, including ``~/.fonts``), else to its built-in Liberation Sans, and measures text with it: the
SVG's width moves. Each render here runs in its own interpreter (vl-convert loads the system fonts once per
process) under a HOME with or without an extra "Arial" font. The control, with the old ``sans-serif`` chart
font, shows the difference is real; the theme's vendored font makes it vanish.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

RENDER = """
import hashlib, json, re, sys
from pathlib import Path
from article.figures import figrender, registry
from article.structure import theme
registry.discover()
chart_theme = dict(theme.CHART, **json.loads(sys.argv[1]))
ctx = registry.FigureContext(article={}, site={}, cache_dir=Path("."), slug="s", figure_id="f", theme=chart_theme)
svg = figrender.make_output("sample_bars", {}, ctx).svg
print(json.dumps({"sha": hashlib.sha256(svg.encode()).hexdigest(), "width": re.search(r'width="([0-9.]+)"', svg)[1]}))
"""


def home_with_arial(home: Path) -> Path:
    """A HOME whose ~/.fonts holds a face named Arial (the vendored bold face renamed: other glyph widths)."""
    from fontTools.ttLib import TTFont

    font = TTFont(REPO / "templates" / "assets" / "fonts" / "Arimo-Bold.ttf")
    for record in font["name"].names:
        if record.nameID in (1, 4, 6, 16):
            record.string = "Arial"
        elif record.nameID in (2, 17):
            record.string = "Regular"
    font["OS/2"].usWeightClass = 400
    (home / ".fonts").mkdir(parents=True)
    font.save(home / ".fonts" / "Arial.ttf")
    return home


def render(home: Path, font: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "FONTCONFIG"))}
    env.update(HOME=str(home), PYTHONPATH=str(REPO))
    override = {} if font is None else {"font": font}
    done = subprocess.run([sys.executable, "-c", RENDER, json.dumps(override)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def homes(tmp_path_factory) -> tuple[Path, Path]:
    bare = tmp_path_factory.mktemp("home-bare")
    return bare, home_with_arial(tmp_path_factory.mktemp("home-arial"))


def test_without_the_vendored_font_the_svg_depends_on_the_machine(homes):
    bare, arial = (render(h, "sans-serif") for h in homes)
    assert bare["sha"] != arial["sha"], ("an extra Arial in ~/.fonts did not change the sans-serif chart: the "
                                        "control cannot show what the vendored font fixes (does this machine "
                                        "have an Arial of its own?)")


def test_with_the_vendored_font_the_svg_is_the_same_bytes_everywhere(homes):
    bare, arial = (render(h, None) for h in homes)
    assert bare == arial


def test_charts_name_the_vendored_font_and_pages_load_its_subset_with_the_same_metrics():
    from fontTools.ttLib import TTFont

    from article.structure import theme

    assert theme.FONT_FAMILY in theme.CHART["font"].split(",")[0]
    licence = (theme.FONTS_DIR / "OFL.txt").read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE" in licence and "Arimo" in licence
    css = theme.css()
    for weight, web_name in theme.WEB_FONT_FILES.items():
        assert f'font-weight: {weight}; font-display: swap; src: url("fonts/{web_name}") format("woff")' in css
        full, web = TTFont(theme.FONTS_DIR / theme.FONT_FILES[weight]), TTFont(theme.FONTS_DIR / web_name)
        assert web.flavor == "woff" and (theme.FONTS_DIR / web_name).stat().st_size < 60_000
        full_cmap, web_cmap = full.getBestCmap(), web.getBestCmap()
        assert set(web_cmap) <= set(full_cmap) and {ord(c) for c in "Aa0−×·≥ℝ∑é"} <= set(web_cmap)
        # The page measures text as the static SVGs did: same advance width for every character it has.
        assert all(web["hmtx"][web_cmap[u]][0] == full["hmtx"][full_cmap[u]][0] for u in web_cmap)
        assert full["name"].getDebugName(1) == web["name"].getDebugName(1) == theme.FONT_FAMILY


def test_the_site_sends_the_web_fonts_and_licence_but_not_the_chart_fonts(tmp_path):
    from article.output.writer import write_assets
    from article.structure import theme

    write_assets(REPO, tmp_path, tmp_path / "cache", need_vega=False)
    fonts = sorted(p.name for p in (tmp_path / "assets" / "fonts").iterdir())
    assert fonts == sorted([*theme.WEB_FONT_FILES.values(), "OFL.txt"])
    assert (tmp_path / "assets" / "theme.css").read_text(encoding="utf-8") == theme.css()
    assert not (tmp_path / "assets" / "livereload.js").exists()
