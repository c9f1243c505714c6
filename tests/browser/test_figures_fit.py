"""Every figure on every screen: it fits a 390 px phone column and a desktop, light and dark; kernel cells are square;
every heatmap has a colour legend; no chart text is cut off or overlaps; each interaction a figure kind declares
(article/figures/registry.py, Interaction) changes what it declares, and only that figure's explorer link follows.

One pass per screen over the pages, each check on the page already loaded (the suite's time is spent on loads).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

PHONE, DESKTOP = (390, 844), (1280, 900)

# Figures whose drawing or their scroll box is wider than the viewport, the page's own scroll width, and controls
# (menus, radios, checkboxes, links) out of reach to the side.
FIT = """(width) => {
  const out = [];
  const right = (e) => e.getBoundingClientRect().right + window.scrollX;
  const left = (e) => e.getBoundingClientRect().left + window.scrollX;
  if (document.scrollingElement.scrollWidth > width) out.push('page scrolls sideways: scrollWidth '
      + document.scrollingElement.scrollWidth);
  document.querySelectorAll('figure.vw-figure').forEach(f => {
    const id = f.id;
    if (right(f) > width + 0.5) out.push(id + ': figure box ends at x = ' + Math.round(right(f)));
    f.querySelectorAll('.vw-chart, .vw-html').forEach(box => {
      if (box.scrollWidth > box.clientWidth + 1) out.push(id + ': scrolls sideways inside (' + box.scrollWidth
          + ' px of drawing in ' + box.clientWidth + ' px)');
    });
    f.querySelectorAll('.vw-chart svg, .vw-html > *, select, input, label, a').forEach(e => {
      const r = e.getBoundingClientRect();
      if (r.width > 0 && (right(e) > width + 0.5 || left(e) < -0.5))
        out.push(id + ': ' + e.tagName.toLowerCase() + ' spans x = ' + Math.round(left(e)) + ' to ' + Math.round(right(e)));
    });
  });
  return out;
}"""

# Square cells: every rect of a Vega view named *_cells (the figure code names its kernel, neuron and filter grids
# so), every cell of an inline kernel SVG, every explorer kernel canvas (one canvas pixel per kernel position).
# Each heatmap figure has a colour legend. Chart text inside its SVG, axis labels not overlapping.
CELLS_LEGENDS_TEXT = """() => {
  const out = [];
  let cells = 0;
  const square = (what, w, h) => { cells++; if (Math.abs(w - h) > 0.5) out.push(what + ': cell ' + w.toFixed(2)
                                                                             + ' x ' + h.toFixed(2) + ' px'); };
  document.querySelectorAll('figure.vw-figure').forEach(f => {
    const grids = f.querySelectorAll('g.mark-rect[class*="_cells"]');
    grids.forEach(g => {
      Array.from(g.querySelectorAll('path')).slice(0, 400).forEach(p => {
        const b = p.getBBox();  // in the view's own units: the drawn size, free of any page zoom
        if (b.width > 0 && b.height > 0) square(f.id + ' ' + g.getAttribute('class').split(' ')[2], b.width, b.height);
      });
    });
    const kernels = f.querySelectorAll('svg.vw-wkernel');
    kernels.forEach(s => Array.from(s.querySelectorAll('rect')).slice(0, 50).forEach(r =>
        square(f.id + ' kernel svg', r.width.baseVal.value, r.height.baseVal.value)));
    const heatmap = Array.from(grids).some(g => !/filter_cells/.test(g.getAttribute('class'))) || kernels.length;
    const legend = f.querySelector('.vw-chart g.role-legend, svg.vw-legend, .vw-legend');
    if (heatmap && !legend) out.push(f.id + ': a heatmap without a colour legend');
    f.querySelectorAll('.vw-chart svg.marks').forEach(svg => {
      const box = svg.getBoundingClientRect();
      svg.querySelectorAll('text').forEach(t => {
        if (!t.textContent.trim() || getComputedStyle(t).opacity === '0' || t.getAttribute('opacity') === '0') return;
        const r = t.getBoundingClientRect();
        if (r.width === 0) return;
        if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1)
          out.push(f.id + ': text "' + t.textContent.slice(0, 40) + '" is cut at the drawing\\'s edge');
      });
      svg.querySelectorAll('g.role-axis-label').forEach(axis => {
        const labels = Array.from(axis.querySelectorAll('text')).filter(t => t.getAttribute('opacity') !== '0'
                                                                           && t.textContent.trim())
                                 .map(t => [t.textContent, t.getBoundingClientRect()]);
        for (let i = 1; i < labels.length; i++) {
          const [ta, a] = labels[i - 1], [tb, b] = labels[i];
          if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5)
            out.push(f.id + ': axis labels "' + ta + '" and "' + tb + '" overlap');
        }
      });
    });
  });
  document.querySelectorAll('canvas.vw-kernel').forEach(c =>
      square('explorer kernel ' + (c.getAttribute('aria-label') || ''), c.clientWidth / c.width,
             c.clientHeight / c.height));
  return {problems: out, cells: cells};
}"""

# Legend entries of one legend in distinct colours (every model in a chart its own).
LEGEND_COLOURS = """() => {
  const out = [];
  document.querySelectorAll('figure.vw-figure .vw-chart g.role-legend').forEach(legend => {
    const fills = Array.from(legend.querySelectorAll('g.role-legend-symbol path'))
                       .map(p => p.getAttribute('fill')).filter(Boolean);
    if (new Set(fills).size < fills.length)
      out.push(legend.closest('figure').id + ': legend entries share a colour: ' + fills.join(' '));
  });
  return out;
}"""

SVG_OF = """(id) => Array.from(document.querySelectorAll('#' + id + ' .vw-chart svg.marks'))
                   .map(s => s.innerHTML).join('')"""
LINKS = """() => Object.fromEntries(Array.from(document.querySelectorAll('figure.vw-figure')).map(f =>
                  [f.id, Array.from(f.querySelectorAll('.vw-links a')).map(a => a.getAttribute('href')).join(' ')]))"""


def _interaction_problems(page) -> tuple[list[str], int]:
    """Do each declared interaction of each figure; what it declares must change, other figures' links must not."""
    problems, done = [], 0
    declared = page.evaluate("""() => Array.from(document.querySelectorAll('figure[data-vw-interactions]'))
                                  .map(f => [f.id, f.getAttribute('data-vw-interactions')])""")
    for fig, text in declared:
        for act in json.loads(text):
            control, what = act["control"], f"{fig} {act['control']}"
            before, links = page.evaluate(SVG_OF, fig), page.evaluate(LINKS)
            kind, _, name = control.partition(":")
            if kind == "click":
                marks = page.locator(f'#{fig} .vw-chart g.mark-rect[class*="{name}"] path')
                if marks.count() == 0:
                    problems.append(f"{what}: no mark to click")
                    continue
                target = marks.nth(marks.count() - 1)  # the last cell: never the one selected at first
                target.scroll_into_view_if_needed()
                box = target.bounding_box()
                page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            elif kind == "bind":
                control_el = page.locator(f'#{fig} .vega-bindings [name="{name}"]')
                if control_el.count() == 0:
                    problems.append(f"{what}: no control named {name!r}")
                    continue
                first = control_el.first
                first.scroll_into_view_if_needed()
                tag = first.evaluate("e => e.tagName.toLowerCase() + ':' + (e.type || '')")
                if tag.startswith("select"):
                    options = first.evaluate("e => Array.from(e.options).map(o => o.value)")
                    current = first.evaluate("e => e.value")
                    others = [o for o in options if o != current]
                    if not others:
                        continue  # a menu of one entry: nothing to change to
                    first.select_option(others[-1])
                elif tag.endswith("radio"):
                    control_el.locator("xpath=self::*[not(@checked) or @checked='false']").last.check()
                    if page.evaluate(SVG_OF, fig) == before:  # the DOM attribute lags the property
                        control_el.last.check()
                else:
                    first.click()
            elif kind == "legend":
                entries = page.locator(f"#{fig} .vw-chart g.role-legend-symbol path")
                if entries.count() < 2:
                    continue  # a legend of one entry (one model): highlighting it leaves everything as it was
                entry = entries.last
                entry.scroll_into_view_if_needed()
                entry.click(force=True)
            else:
                problems.append(f"{what}: unknown control kind")
                continue
            try:
                page.wait_for_function(f"(b) => ({SVG_OF})({json.dumps(fig)}) !== b", arg=before, timeout=3000)
            except Exception:
                problems.append(f"{what}: the drawing did not change (declared: {act['changes']})")
                continue
            done += 1
            after = page.evaluate(LINKS)
            if act.get("link") and after[fig] == links[fig]:
                problems.append(f"{what}: its explorer link did not follow ({links[fig]})")
            moved = [k for k in after if k != fig and after[k] != links[k]]
            if moved:
                problems.append(f"{what}: other figures' explorer links changed: {moved}")
    return problems, done


def _figure_pages(site_pages: list[Path]) -> list[Path]:
    return [p for p in site_pages if 'class="vw-figure' in p.read_text(encoding="utf-8")]


def _model_page(built_site: Path) -> Path:
    """A model page opened on one neuron, so that the explorer draws its kernel heatmaps."""
    pages = sorted((built_site / "models").glob("*/index.html"))
    assert pages, "the test site has no model page"
    return next((p for p in pages if p.parent.name == "mobilenet-v2"), pages[0])


def _check(opened, width: int, interact: bool) -> tuple[list[str], int, int]:
    page = opened.page
    found = page.evaluate(FIT, width)
    report = page.evaluate(CELLS_LEGENDS_TEXT)
    found += report["problems"] + page.evaluate(LEGEND_COLOURS)
    done = 0
    if interact:
        acts, done = _interaction_problems(page)
        found += acts
    return found + opened.problems(), report["cells"], done


@pytest.mark.parametrize("screen,scheme", [(PHONE, "light"), (PHONE, "dark"), (DESKTOP, "dark")])
def test_every_figure_fits_and_works(built_site, site_pages, open_page, screen, scheme):
    width, height = screen
    failures, cells, done = {}, 0, 0
    pages = _figure_pages(site_pages) + [_model_page(built_site)]
    for path in pages:
        opened = open_page(path, color_scheme=scheme, width=width, height=height)
        if path.parent.parent.name == "models":
            # The explorer's kernel heatmaps: open the first layer's neuron 0 (its canvases, legend).
            first = opened.page.locator("a.vw-cell").first
            if first.count():
                first.click()
                opened.page.wait_for_selector("canvas.vw-kernel", timeout=5000)
        problems, n_cells, n_done = _check(opened, width, interact=scheme == "light" or width == DESKTOP[0])
        cells, done = cells + n_cells, done + n_done
        if problems:
            failures[path.relative_to(built_site).as_posix()] = problems
    assert not failures, "\n".join(f"{p}:\n  " + "\n  ".join(v) for p, v in failures.items())
    assert cells > 100, f"only {cells} kernel cells measured: the cell check found nothing to check"
    if scheme == "light" or width == DESKTOP[0]:
        assert done >= 8, f"only {done} declared interactions were exercised"


def test_interactive_kinds_declare_what_a_reader_can_do():
    """Every figure kind with a control or a selection says what it is and what it changes."""
    from article.figures import registry

    registry.discover()
    interactive = {"first_layer", "context_explorer", "spatial_positions", "nmf_explorer", "expanded_explorer",
                   "banding_experiment", "banding_layers", "published_banding"}
    missing = sorted(k for k in interactive if not registry.INTERACTIONS.get(k))
    assert not missing, f"figure kinds with controls but no declared interactions: {missing}"
    for kind, acts in registry.INTERACTIONS.items():
        for act in acts:
            assert act.control.split(":")[0] in ("click", "bind", "legend") and act.changes, (kind, act)
