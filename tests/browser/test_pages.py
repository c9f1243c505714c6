"""Every built page in Debian's chromium from file://, offline: charts draw, nothing errors, hovers work."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

pytestmark = pytest.mark.browser

# Per chart: how it settled, its SVG size, the drawn data marks (not axes/legends) and image-mark hrefs.
CHART_REPORT = """() => Array.from(document.querySelectorAll('[data-vw-chart]')).map(el => {
  const svg = el.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const marks = svg ? Array.from(svg.querySelectorAll('g.role-mark > *')).filter(m => {
    const tag = m.tagName.toLowerCase();
    if (tag === 'path') return (m.getAttribute('d') || '').length > 0;
    if (tag === 'image') return !!(m.getAttribute('href') || m.getAttribute('xlink:href'));
    if (tag === 'text') return m.textContent.trim().length > 0;
    return ['line', 'rect', 'circle'].includes(tag);
  }) : [];
  const images = svg ? Array.from(svg.querySelectorAll('g.role-mark image'))
    .map(i => i.getAttribute('href') || i.getAttribute('xlink:href') || '') : [];
  const labels = svg ? Array.from(svg.querySelectorAll('.role-axis-label text, .role-axis-title text'))
    .map(t => getComputedStyle(t).fill) : [];
  return {id: el.getAttribute('data-vw-chart'), drawn: el.getAttribute('data-vw-drawn'),
          width: box.width, height: box.height, marks: marks.length, images: images, labels: labels};
})"""

# <img> inside figures (lazy ones are scrolled to first); <noscript> content is not in the DOM.
# Static SVG fallbacks (img.vw-static) are lazy and hidden on screen: they load only for print or when a chart
# fails, so they are checked on disk (static_fallback_problems) instead of waiting for them in the page.
FIGURE_IMAGES = """() => Array.from(document.querySelectorAll('figure img:not(.vw-static)')).map(i => ({
  src: i.getAttribute('src'), complete: i.complete, naturalWidth: i.naturalWidth}))"""
LAZY_TO_VIEW = """() => document.querySelectorAll('figure img[loading=lazy]').forEach(i => i.scrollIntoView())"""
FIGURE_IMAGES_DONE = """() => Array.from(document.querySelectorAll('figure img:not(.vw-static)'))
                              .every(i => i.complete)"""


def luminance(css_color: str) -> float:
    """Relative luminance (WCAG) of an ``rgb()``/``rgba()`` computed colour; raises on anything else."""
    m = re.match(r"rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)(?:[,\s/]+([\d.]+))?", css_color)
    assert m, f"unexpected computed colour {css_color!r}"
    if m.group(4) is not None and float(m.group(4)) == 0:
        raise AssertionError(f"transparent colour {css_color!r}")

    def lin(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(float(m.group(i))) for i in (1, 2, 3))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def file_of(page_url: str, href: str) -> Path | None:
    """The file a relative/file:// href points to (None for data: URLs)."""
    url = urljoin(page_url, href)
    if url.startswith("data:"):
        return None
    assert url.startswith("file://"), f"non-file image href {href!r}"
    return Path(unquote(urlparse(url).path))


def chart_problems(opened, scheme: str) -> tuple[list[str], int]:
    page, problems = opened.page, []
    charts = page.evaluate(CHART_REPORT)
    for c in charts:
        name = f"chart {c['id']}"
        if c["drawn"] != "true":
            problems.append(f"{name}: data-vw-drawn={c['drawn']!r}")
            continue
        if c["marks"] == 0 or c["width"] <= 0 or c["height"] <= 0:
            problems.append(f"{name}: no drawn marks ({c['marks']} marks, svg {c['width']}x{c['height']})")
        for href in c["images"]:
            if not href:
                problems.append(f"{name}: image mark without href")
            elif (f := file_of(page.url, href)) is not None and not f.is_file():
                problems.append(f"{name}: image mark {href} -> missing file {f}")
        if scheme == "dark":
            dim = [col for col in c["labels"] if luminance(col) < 0.3]
            if dim:
                problems.append(f"{name}: axis text too dark for the dark theme: {dim[:3]}")
    return problems, len(charts)


def static_fallback_problems(page_path: Path) -> list[str]:
    """Every chart's static fallback exists next to the page and is an SVG with drawn content."""
    problems = []
    for src in re.findall(r'<img class="vw-static" src="([^"]+)"', page_path.read_text(encoding="utf-8")):
        svg = page_path.parent / src
        if not svg.is_file():
            problems.append(f"static fallback {src} is missing")
        elif not svg.read_text(encoding="utf-8").lstrip().startswith("<svg") or svg.stat().st_size < 500:
            problems.append(f"static fallback {src} is not a drawn SVG")
    return problems


def image_problems(opened) -> list[str]:
    page = opened.page
    page.evaluate(LAZY_TO_VIEW)
    page.wait_for_function(FIGURE_IMAGES_DONE, timeout=10_000)
    return [f"figure image {i['src']} did not load (naturalWidth {i['naturalWidth']})"
            for i in page.evaluate(FIGURE_IMAGES) if i["naturalWidth"] <= 0] + static_fallback_problems(opened.path)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_draws_offline_without_errors(built_site, site_pages, open_page, scheme):
    failures, n_charts = {}, 0
    for path in site_pages:
        opened = open_page(path, color_scheme=scheme)
        problems, n = chart_problems(opened, scheme)
        n_charts += n
        problems += image_problems(opened)
        problems += opened.problems()
        bg = luminance(opened.page.evaluate("() => getComputedStyle(document.body).backgroundColor"))
        if (scheme == "dark") != (bg < 0.05):
            problems.append(f"page background luminance {bg:.3f} does not match the {scheme} scheme")
        if problems:
            failures[path.relative_to(built_site).as_posix()] = problems
    assert not failures, "\n".join(f"{p}:\n  " + "\n  ".join(v) for p, v in failures.items())
    assert n_charts > 0, "the test site has no chart at all: nothing was checked"


# No page scrolls sideways at 360 px, and every figure fits 390 px: tests/browser/test_figures_fit.py.


# --------------------------------------------------------------------------- hover boxes

def pages_with(site_pages: list[Path], css_class: str) -> list[Path]:
    found = [p for p in site_pages if f'class="{css_class}"' in p.read_text(encoding="utf-8")]
    assert found, f"no built page has an a.{css_class} link: nothing to hover"
    return found


def expected_text(page, selector: str) -> str:
    """Normalized text of the note/reference a link points to, without the footnote's back-link."""
    return page.eval_on_selector(selector, """link => {
      const t = document.getElementById(decodeURIComponent(link.getAttribute('href').slice(1))).cloneNode(true);
      t.querySelectorAll('.footnote-backref').forEach(e => e.remove());
      return t.textContent.replace(/\\s+/g, ' ').trim(); }""")


def box_text(page) -> str:
    return page.eval_on_selector("#vw-hover-box", "b => b.textContent.replace(/\\s+/g, ' ').trim()")


def assert_box_beside(page, link) -> None:
    box = page.locator("#vw-hover-box").bounding_box()
    anchor = link.bounding_box()
    width = page.evaluate("() => document.documentElement.clientWidth")
    assert box["y"] >= anchor["y"] + anchor["height"] - 1, (box, anchor)
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (box, width)


def test_footnote_hover_shows_the_note(site_pages, open_page):
    for path in pages_with(site_pages, "footnote-ref"):
        page = open_page(path).page
        link = page.locator("a.footnote-ref").first
        note = expected_text(page, "a.footnote-ref")
        assert page.locator("#vw-hover-box:visible").count() == 0
        link.hover()
        page.locator("#vw-hover-box").wait_for(state="visible", timeout=2000)
        assert box_text(page) == note and len(note) > 10, (box_text(page), note)
        assert link.get_attribute("aria-describedby") == "vw-hover-box"
        assert_box_beside(page, link)
        page.mouse.move(1, 1)  # leaving the link hides the box after a short delay
        page.locator("#vw-hover-box").wait_for(state="hidden", timeout=2000)


def test_citation_hover_shows_the_reference(site_pages, open_page):
    for path in pages_with(site_pages, "cite"):
        page = open_page(path).page
        link = page.locator("a.cite").first
        title = page.eval_on_selector("a.cite", """l => document.getElementById(l.getAttribute('href').slice(1))
                                                         .querySelector('.ref-title').textContent.trim()""")
        link.hover()
        page.locator("#vw-hover-box").wait_for(state="visible", timeout=2000)
        assert title and title in box_text(page), (title, box_text(page))
        assert expected_text(page, "a.cite") == box_text(page)
        assert_box_beside(page, link)


@pytest.mark.parametrize("css_class", ["footnote-ref", "cite"])
def test_keyboard_focus_opens_and_escape_closes(site_pages, open_page, css_class):
    path = pages_with(site_pages, css_class)[0]
    page = open_page(path, width=360, height=740).page
    target = f"a.{css_class}"
    for _ in range(400):  # Tab through the page like a keyboard user until the first such link has focus
        page.keyboard.press("Tab")
        if page.evaluate(f"() => document.activeElement === document.querySelector('{target}')"):
            break
    else:
        pytest.fail(f"{target} never received keyboard focus on {path.name}")
    page.locator("#vw-hover-box").wait_for(state="visible", timeout=2000)
    assert box_text(page) == expected_text(page, target)
    assert_box_beside(page, page.locator(target).first)
    page.keyboard.press("Escape")
    page.locator("#vw-hover-box").wait_for(state="hidden", timeout=2000)


# --------------------------------------------------------------------------- the guards themselves

def test_guards_report_a_misbehaving_page(tmp_path, open_page):
    """The harness must see what it claims to block: CSP violations, network requests, missing files, errors."""
    csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:"
    (tmp_path / "boom.js").write_text("console.error('boom');", encoding="utf-8")
    (tmp_path / "bad.html").write_text(
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}"><title>bad</title>'
        f'<script src="boom.js"></script><script src="missing.js"></script></head><body>'
        f'<img src="https://example.org/x.png" alt="x"><script>document.title = "inline ran";</script>'
        f'</body></html>', encoding="utf-8")
    opened = open_page(tmp_path / "bad.html")
    assert opened.page.title() == "bad"  # the inline script was blocked by the CSP
    assert any("example.org" in u for u in opened.blocked), opened.blocked
    assert any("missing.js" in u for u in opened.failed), opened.failed
    assert any("boom" in e for e in opened.errors), opened.errors
    assert any("script-src" in v for v in opened.csp_violations()), opened.csp_violations()
