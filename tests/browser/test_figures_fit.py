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

# On a phone: every control in the page's main part is a touch target at least 44 px tall (WCAG 2.5.5; a control
# inside or named by a label counts with its label), and no table box scrolls sideways (the layers table reflows).
TOUCH = """() => {
  const out = [];
  document.querySelectorAll('main select, main button, main input:not([type=hidden])').forEach(e => {
    const own = e.getBoundingClientRect();
    if (own.width === 0 || getComputedStyle(e).visibility === 'hidden') return;
    const label = e.closest('label') || (e.id && document.querySelector('label[for="' + CSS.escape(e.id) + '"]'));
    const h = Math.max(own.height, label ? label.getBoundingClientRect().height : 0);
    if (h < 43.5) out.push((e.closest('figure') || {}).id + ' ' + e.tagName.toLowerCase()
        + (e.id ? '#' + e.id : '') + ' "' + (e.textContent || e.value || '').trim().slice(0, 30) + '": a touch target '
        + h.toFixed(1) + ' px tall');
  });
  document.querySelectorAll('.vw-table-wrap').forEach(box => {
    if (box.scrollWidth > box.clientWidth + 1) out.push('a table scrolls sideways: ' + box.scrollWidth + ' px in '
        + box.clientWidth);
  });
  return out;
}"""

# Square cells: every rect of a Vega view named *_cells (the figure code names its kernel, neuron and filter grids
# so), every cell of an inline kernel SVG, every explorer kernel canvas (one canvas pixel per kernel position).
# Each heatmap figure has a colour legend. Chart text inside its SVG, axis labels not overlapping.
CELLS_LEGENDS_TEXT = """() => {
  const MIN_CELL = 4;  // px: a large grid pages or scrolls rather than shrink its cells below this
  const out = [];
  let cells = 0;
  const square = (what, w, h) => {
    cells++;
    if (Math.abs(w - h) > 0.5) out.push(what + ': cell ' + w.toFixed(2) + ' x ' + h.toFixed(2) + ' px');
    else if (w < MIN_CELL) out.push(what + ': cells of ' + w.toFixed(2) + ' px, below a legible ' + MIN_CELL + ' px');
  };
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
    const heatmap = grids.length || kernels.length;
    // a Vega legend, an inline legend, or a drawn key (the first-layer figure's per-channel colour key)
    const legend = f.querySelector('.vw-chart g.role-legend, svg.vw-legend, .vw-legend, '
                                   + '.vw-chart g[class*="colour_key"]');
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

# Watch a figure's drawing: any change to its SVG (a redraw, an attribute, a mark added or gone) sets a flag. Cheaper
# than comparing serialised drawings of thousands of marks on every animation frame.
WATCH = """(id) => {
  window.__vwChanged = false;
  if (window.__vwWatch) window.__vwWatch.disconnect();
  window.__vwWatch = new MutationObserver(() => { window.__vwChanged = true; });
  document.querySelectorAll('#' + id + ' .vw-chart svg.marks').forEach(svg =>
      window.__vwWatch.observe(svg, {subtree: true, childList: true, attributes: true, characterData: true}));
}"""
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
            links = page.evaluate(LINKS)
            kind, _, name = control.partition(":")
            if kind == "click":
                marks = page.locator(f'#{fig} .vw-chart g.mark-rect[class*="{name}"] path')
                if marks.count() == 0:
                    problems.append(f"{what}: no mark to click")
                    continue
                target = marks.nth(marks.count() - 1)  # the last cell: never the one selected at first
                target.scroll_into_view_if_needed()
                box = target.bounding_box()
                page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                page.evaluate(WATCH, fig)  # after the pointer is there: a hover is no click
                page.mouse.down()
                page.mouse.up()
            elif kind == "bind":
                control_el = page.locator(f'#{fig} .vega-bindings [name="{name}"]')
                if control_el.count() == 0:
                    problems.append(f"{what}: no control named {name!r}")
                    continue
                first = control_el.first
                first.scroll_into_view_if_needed()
                page.evaluate(WATCH, fig)
                tag = first.evaluate("e => e.tagName.toLowerCase() + ':' + (e.type || '')")
                if tag.startswith("select"):
                    options = first.evaluate("e => Array.from(e.options).map(o => o.value)")
                    current = first.evaluate("e => e.value")
                    others = [o for o in options if o != current]
                    if not others:
                        continue  # a menu of one entry: nothing to change to
                    first.select_option(others[-1])
                elif tag.endswith("radio"):
                    unchecked = [i for i in range(control_el.count())
                                 if not control_el.nth(i).evaluate("e => e.checked")]
                    control_el.nth(unchecked[-1]).check()
                else:
                    first.click()
            elif kind == "legend":
                entries = page.locator(f"#{fig} .vw-chart g.role-legend-symbol path")
                if entries.count() < 2:
                    continue  # a legend of one entry (one model): highlighting it leaves everything as it was
                entry = entries.last
                entry.scroll_into_view_if_needed()
                page.evaluate(WATCH, fig)
                entry.click(force=True)
            else:
                problems.append(f"{what}: unknown control kind")
                continue
            try:
                page.wait_for_function("() => window.__vwChanged", timeout=3000)
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


def _model_page(built_site: Path) -> Path:
    """The model page whose explorer the test opens on a neuron, so that it draws its kernel heatmaps."""
    pages = sorted((built_site / "models").glob("*/index.html"))
    assert pages, "the test site has no model page"
    return next((p for p in pages if p.parent.name == "mobilenet-v2"), pages[0])


# Every chart drawn again after a change of theme or width: in the theme asked for, in the variant that fits.
REDRAWN = """(scheme) => Array.from(document.querySelectorAll('[data-vw-chart]')).every(el => {
  const narrow = document.getElementById('spec-narrow-' + el.getAttribute('data-vw-chart'));
  const want = narrow && parseFloat(el.getAttribute('data-vw-width')) > el.clientWidth ? 'narrow' : 'wide';
  return el.getAttribute('data-vw-drawn') === 'true' && el.getAttribute('data-vw-scheme') === scheme
         && el.getAttribute('data-vw-variant') === want;
})"""


def _check(opened, width: int, interact: bool) -> tuple[list[str], int, int]:
    page = opened.page
    found = page.evaluate(FIT, width) + (page.evaluate(TOUCH) if width < 640 else [])
    report = page.evaluate(CELLS_LEGENDS_TEXT)
    found += report["problems"] + page.evaluate(LEGEND_COLOURS)
    done = 0
    if interact:
        acts, done = _interaction_problems(page)
        found += acts
    return found, report["cells"], done


def test_every_figure_fits_and_works_on_a_phone_and_a_desktop(built_site, site_pages, open_page):
    """Each page with figures (and the explorer) once: a 390 px phone in light, then dark, then a 1280 px desktop
    (dark), then a 360 px phone, switched in place (figures.js redraws on a change of theme or of the variant that
    fits). Every other page: a 360 px phone, where no page may scroll sideways."""
    failures, cells, done = {}, 0, 0
    explorer = _model_page(built_site)
    for path in site_pages:
        if path != explorer and 'class="vw-figure' not in path.read_text(encoding="utf-8"):
            opened = open_page(path, width=360, height=740)  # a page of text and tables: it fits a small phone
            wide = opened.page.evaluate("() => document.scrollingElement.scrollWidth")
            problems = ([f"360 px: the page scrolls sideways (scrollWidth {wide})"] if wide > 361 else []) \
                + opened.problems()
            if problems:
                failures[path.relative_to(built_site).as_posix()] = problems
            continue
        opened = open_page(path, color_scheme="light", width=PHONE[0], height=PHONE[1])
        page, problems = opened.page, []
        if path == explorer:  # the explorer's kernel heatmaps: open the first layer's first neuron
            page.locator("a.vw-cell").first.click()
            page.wait_for_selector("canvas.vw-kernel", timeout=5000)
        for screen, scheme, interact in ((PHONE, "light", True), (PHONE, "dark", False), (DESKTOP, "dark", True)):
            page.emulate_media(color_scheme=scheme)
            page.set_viewport_size({"width": screen[0], "height": screen[1]})
            page.wait_for_function(REDRAWN, arg=scheme, timeout=15_000)
            found, n_cells, n_done = _check(opened, screen[0], interact)
            problems += [f"{screen[0]} px, {scheme}: {p}" for p in found]
            cells, done = cells + n_cells, done + n_done
        page.set_viewport_size({"width": 360, "height": 740})
        page.wait_for_function(REDRAWN, arg="dark", timeout=15_000)
        if page.evaluate("() => document.scrollingElement.scrollWidth") > 361:
            problems.append("360 px: the page scrolls sideways")  # a figure may scroll inside itself there
        problems += opened.problems()
        if problems:
            failures[path.relative_to(built_site).as_posix()] = problems
    assert not failures, "\n".join(f"{p}:\n  " + "\n  ".join(v) for p, v in failures.items())
    assert cells > 100, f"only {cells} kernel cells measured: the cell check found nothing to check"
    assert done >= 16, f"only {done} declared interactions were exercised"


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
