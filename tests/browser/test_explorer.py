"""The weight explorer in a real browser, on a tiny analysis cache (tests/explorer_cache.py: 8-, 16- and 2,048-neuron
convs): the page opens from file:// with the network blocked, draws, loads only the layer it shows, a deep link
selects its neuron, sorting reorders, back/forward walk the neurons, 2,048 neurons stay responsive, axe is clean."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

from site_fixture import build_test_site
from test_a11y import BLOCKING, axe_violations, describe

from explorer_cache import BIG_FIELD_CHANNEL, EXAMPLES_K, FV_CHANNELS, example_rect, make_cache

pytestmark = pytest.mark.browser
PAGE_BUDGET = 2_500_000


@pytest.fixture(scope="module")
def explorer_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explorer-site")
    records = make_cache(tmp / "cache")
    site = build_test_site(tmp, ["sample"], None, cache_dir=tmp / "cache")
    return site, records


def _open(open_page, site: Path, fragment: str = "", **kw):
    opened = open_page(site / "models" / "tinynet" / "index.html", **kw)
    if fragment:
        opened.page.evaluate("f => { location.hash = f; }", fragment)
    opened.page.wait_for_selector("#vw-grid a.vw-cell", timeout=10_000)
    return opened


def _selected(page) -> str:
    return " ".join(page.locator("#vw-status").inner_text().split())  # the heading breaks after "Neuron n"


def test_opens_offline_draws_and_loads_one_layer(explorer_site, open_page, browser):
    site, _ = explorer_site
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="models/tinynet/index.html"' in index
    opened = _open(open_page, site)
    page = opened.page
    assert page.locator("table.vw-layers tbody tr").count() == 3
    assert page.locator("#vw-grid a.vw-cell").count() == 8  # conv1 opens by default
    assert page.locator("#vw-layer-title").inner_text() == "conv1"
    pic = page.locator("#vw-grid a.vw-cell .vw-pic").nth(3)
    assert "conv1.png" in pic.evaluate("e => getComputedStyle(e).backgroundImage")
    assert not opened.problems(), opened.problems()


def test_transfers_only_the_layer_it_shows(explorer_site, browser):
    """Every file the page requests before the reader clicks: within the budget, and no other layer's data."""
    site, _ = explorer_site
    context = browser.new_context(service_workers="block")
    requested, blocked = [], []
    context.route("**/*", lambda r: (requested.append(r.request.url), r.continue_()) if r.request.url.startswith(
        "file://") else (blocked.append(r.request.url), r.abort()))
    try:
        page = context.new_page()
        page.goto((site / "models" / "tinynet" / "index.html").as_uri())
        page.wait_for_selector("#vw-grid a.vw-cell")
        page.wait_for_load_state("networkidle")
        files = [Path(unquote(urlsplit(u).path)) for u in requested]
        layers = sorted(f.name for f in files if f.parent.name == "layers")
        assert layers == ["conv1.js", "conv1.png"] and not blocked
        total = sum(f.stat().st_size for f in set(files))
        assert total < PAGE_BUDGET
        page.evaluate("() => { location.hash = 'conv3'; }")
        page.wait_for_function("() => document.querySelector('#vw-layer-title').textContent === 'conv3'")
        assert any(u.endswith("/layers/conv3.js") for u in requested)  # loaded when asked for
    finally:
        context.close()


def test_deep_link_selects_the_neuron(explorer_site, open_page):
    site, records = explorer_site
    opened = open_page(site / "models" / "tinynet" / "index.html")
    page = opened.page
    page.goto(page.url.split("#")[0] + "#conv3/1500")
    page.wait_for_function("() => document.querySelector('#vw-status').textContent.includes('1500')")
    assert _selected(page).startswith("Neuron 1500 of conv3")
    current = page.locator("#vw-grid a[aria-current='true']")
    assert current.count() == 1 and current.get_attribute("data-neuron") == "1500"  # on its page of the grid
    ins = page.locator(".vw-inputs li")
    assert ins.count() == 8 and page.locator(".vw-inputs canvas.vw-kernel").count() == 8
    want = records["conv3"]["top_inputs"]["index"][1500]
    got = [int(t.split()[1]) for t in page.locator(".vw-inputs .vw-cap a").all_inner_texts()]
    assert got == want
    # one shared scale: the legend's bound is the largest |w| of the eight kernels
    scale = np.abs(np.asarray(records["conv3"]["top_inputs"]["kernel"][1500])).max()
    assert page.locator(".vw-legend span").first.inner_text() == f"−{scale:.3g}"
    # a red pixel where the kernel is most positive (the theme's diverging scale, red positive)
    k = np.asarray(records["conv3"]["top_inputs"]["kernel"][1500][0])
    y, x = np.unravel_index(np.argmax(k), k.shape)
    r, g, b = page.evaluate("([x, y]) => Array.from(document.querySelector('.vw-kernel').getContext('2d')"
                            ".getImageData(x, y, 1, 1).data.slice(0, 3))", [int(x), int(y)])
    assert (r > b) == (k.max() > 0.2 * scale)
    assert not opened.problems(), opened.problems()


def test_a_link_to_a_layer_that_does_not_exist_says_so(explorer_site, open_page):
    """`#conv9/3` on a model without conv9: the page says "No layer conv9" and shows the first layer, not it silently."""
    site, _ = explorer_site
    page = open_page(site / "models" / "tinynet" / "index.html").page
    page.goto(page.url.split("#")[0] + "#conv9/3")
    page.wait_for_function("() => document.querySelector('#vw-layer-note').textContent.startsWith('No layer')")
    assert page.locator("#vw-layer-note").inner_text().startswith("No layer conv9 in this model; showing conv1. 8 neurons")
    assert page.locator("#vw-layer-title").inner_text() == "conv1"
    page.evaluate("() => { location.hash = 'conv3'; }")  # a layer that exists: the notice goes
    page.wait_for_function("() => document.querySelector('#vw-layer-title').textContent === 'conv3'")
    assert "No layer" not in page.locator("#vw-layer-note").inner_text()
    page.evaluate("() => { location.hash = 'nope'; }")
    page.wait_for_function("() => document.querySelector('#vw-layer-note').textContent.startsWith('No layer nope')")
    assert page.locator("#vw-layer-title").inner_text() == "conv1"


VISIBLE = """sel => { const r = document.querySelector(sel).getBoundingClientRect();
  return r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth; }"""


@pytest.mark.parametrize("width", [1400, 390])
def test_deep_link_shows_the_neuron_once_and_in_view(explorer_site, open_page, width):
    """Opened from a link, a neuron deep in a 2,048-neuron layer is in view: its cell in the grid (wide screens: next
    to the panel), its panel's heading; the heading says "Neuron 1500" once; a phone never scrolls sideways."""
    site, _ = explorer_site
    page = open_page(site / "models" / "tinynet" / "index.html", width=width, height=900 if width > 500 else 844).page
    url = page.url.split("#")[0] + "#conv3/1500"
    page.goto("about:blank")
    page.goto(url)  # a fresh page, as when the link is followed from an article (a reload would restore the scroll)
    page.wait_for_function("() => document.querySelector('#vw-status').textContent.startsWith('Neuron 1500 of conv3')")
    page.wait_for_timeout(100)
    assert page.evaluate(VISIBLE, "#vw-status")
    assert page.locator("#vw-neuron").inner_text().count("Neuron 1500") == 1
    cell = "#vw-grid a[aria-current='true']"
    in_grid = page.evaluate("""sel => { const c = document.querySelector(sel).getBoundingClientRect(),
      g = document.querySelector('#vw-grid').getBoundingClientRect(); return c.top >= g.top && c.bottom <= g.bottom; }""",
                            cell)
    assert in_grid  # the grid scrolled itself to the neuron
    if width > 860:
        assert page.evaluate(VISIBLE, cell) and page.evaluate(VISIBLE, "#vw-layer-title")
    else:
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width


def test_feature_visualization_and_examples(explorer_site, open_page):
    site, _ = explorer_site
    page = _open(open_page, site, f"conv2/{FV_CHANNELS[0]}").page
    page.wait_for_selector(".vw-fv img")
    assert page.locator(".vw-fv img").evaluate("i => i.complete && i.naturalWidth > 0")
    page.wait_for_selector(".vw-examples .vw-ex")
    assert page.locator(".vw-examples .vw-ex").count() == EXAMPLES_K


EXAMPLE_BOXES = """el => { const r = el.getBoundingClientRect(), f = el.querySelector('.vw-rf').getBoundingClientRect(),
  s = getComputedStyle(el);
  return {w: r.width, h: r.height, rf: [f.left - r.left, f.top - r.top, f.width, f.height],
          image: s.backgroundImage, size: s.backgroundSize, pos: s.backgroundPosition,
          label: el.getAttribute('aria-label')}; }"""


def test_a_neuron_shows_its_examples_and_its_inputs_and_outputs_examples(explorer_site, browser):
    """conv2/3: its 4 examples at 72 px, each the context square of its picture with the receptive field boxed; each
    of its 8 strongest inputs (neurons of conv1) and outputs (neurons of conv3) with 3 thumbnails; and only the three
    example scripts it needs are loaded (its own layer's, the layer before, the next one)."""
    site, records = explorer_site
    context = browser.new_context(service_workers="block")
    requested = []
    context.route("**/*", lambda r: (requested.append(r.request.url), r.continue_()))
    try:
        page = context.new_page()
        page.goto((site / "models" / "tinynet" / "index.html").as_uri() + "#conv2/3")
        page.wait_for_selector(".vw-examples .vw-ex")
        page.wait_for_function("() => document.querySelectorAll('.vw-inputs .vw-ex').length === 24 && "
                               "document.querySelectorAll('.vw-outputs .vw-ex').length === 24")
        own = page.locator(".vw-examples .vw-ex")
        assert own.count() == EXAMPLES_K
        for rank in range(EXAMPLES_K):
            box = own.nth(rank).evaluate(EXAMPLE_BOXES)
            (x, y, w, _), (rx, ry, rw, rh) = example_rect(3, rank)
            f = 72 / w
            assert box["w"] == 72 and box["h"] == 72 and "examples/pics/photo.png" in box["image"]
            size = [float(v.removesuffix("px")) for v in box["size"].split()]
            pos = [float(v.removesuffix("px")) for v in box["pos"].split()]
            assert size == pytest.approx([96 * f, 64 * f]) and pos == pytest.approx([-x * f, -y * f])
            assert box["rf"] == pytest.approx([(rx - x) * f, (ry - y) * f, rw * f, rh * f], abs=0.6)
            assert box["label"].startswith(f"Dataset example {rank + 1} of neuron 3: test photo, activation")
        # a field wider than its context square is outlined at the square's edges (a box beyond them would not show)
        page.evaluate("location.hash = '#conv2/%d'" % BIG_FIELD_CHANNEL)
        page.wait_for_function("() => (document.querySelector('.vw-examples .vw-ex') || {}).getAttribute && "
                               "document.querySelector('.vw-examples .vw-ex').getAttribute('aria-label')"
                               ".includes('of neuron %d:')" % BIG_FIELD_CHANNEL)
        big = page.locator(".vw-examples .vw-ex").first.evaluate(EXAMPLE_BOXES)
        assert big["rf"] == pytest.approx([0, 0, 72, 72], abs=0.6)
        page.evaluate("location.hash = '#conv2/3'")
        page.wait_for_function("() => document.querySelector('.vw-examples .vw-ex')"
                               ".getAttribute('aria-label').includes('of neuron 3:')")
        assert "test photo" in page.locator(".vw-ex-note").inner_text() or "folder" in page.locator(
            ".vw-ex-note").inner_text()
        # inputs: the strongest one large, two more small; each is that conv1 neuron's own strongest examples
        first_in = records["conv2"]["top_inputs"]["index"][3][0]
        thumbs = page.locator(".vw-inputs li").first.locator(".vw-ex")
        assert [round(t["w"]) for t in thumbs.evaluate_all(f"els => els.map({EXAMPLE_BOXES})")] == [64, 30, 30]
        assert thumbs.first.get_attribute("aria-label").startswith(f"Dataset example 1 of neuron {first_in}:")
        first_out = records["conv3"]["top_outputs"]["index"][3][0]
        assert page.locator(".vw-outputs li").first.locator(".vw-ex").first.get_attribute(
            "aria-label").startswith(f"Dataset example 1 of neuron {first_out}:")
        page.wait_for_load_state("networkidle")
        loaded = sorted(Path(unquote(urlsplit(u).path)).name for u in requested
                        if Path(unquote(urlsplit(u).path)).parent.name == "examples")
        assert loaded == ["conv1.js", "conv2.js", "conv3.js"]
        pictures = [u for u in requested if u.endswith("/examples/pics/photo.png")]
        assert len(pictures) == 1  # one picture for every example on the page
    finally:
        context.close()


def test_sorting_reorders(explorer_site, open_page):
    site, records = explorer_site
    page = _open(open_page, site, "conv3").page
    page.wait_for_function("() => document.querySelector('#vw-layer-title').textContent === 'conv3'")
    ids = lambda: [int(x) for x in page.locator("#vw-grid a.vw-cell").evaluate_all(  # noqa: E731
        "els => els.slice(0, 5).map(e => e.getAttribute('data-neuron'))")]
    assert ids() == [0, 1, 2, 3, 4]
    page.select_option("#vw-sort", "norm")
    norm = np.asarray(records["conv3"]["norm"])
    assert ids() == np.argsort(-norm, kind="stable")[:5].tolist()
    page.select_option("#vw-dir", "asc")
    assert ids() == np.argsort(norm, kind="stable")[:5].tolist()
    page.fill("#vw-filter", "100-109")
    assert page.locator("#vw-grid a.vw-cell").count() == 10
    # the table of layers sorts too
    page.click("button[data-sort='parameters']")
    page.click("button[data-sort='parameters']")
    assert page.locator("table.vw-layers tbody tr").first.get_attribute("id") == "conv3"


def test_back_and_forward(explorer_site, open_page):
    site, records = explorer_site
    page = _open(open_page, site, "conv2/4").page
    page.wait_for_function("() => document.querySelector('#vw-status').textContent.startsWith('Neuron 4 of conv2')")
    target = records["conv3"]["top_outputs"]["index"][4][0]
    page.locator(".vw-outputs a").first.click()  # the strongest output: a neuron of conv3
    page.wait_for_function(f"() => document.querySelector('#vw-status').textContent.startsWith('Neuron {target} of conv3')")
    cell = page.locator("#vw-grid a.vw-cell").nth(2)
    other = cell.get_attribute("data-neuron")
    cell.click()
    page.wait_for_function(f"() => location.hash === '#conv3/{other}'")
    page.go_back()
    page.wait_for_function(f"() => document.querySelector('#vw-status').textContent.startsWith('Neuron {target} of conv3')")
    page.go_back()
    page.wait_for_function("() => document.querySelector('#vw-status').textContent.startsWith('Neuron 4 of conv2')")
    assert page.locator("#vw-layer-title").inner_text() == "conv2"
    page.go_forward()
    page.wait_for_function(f"() => document.querySelector('#vw-status').textContent.startsWith('Neuron {target} of conv3')")


def test_two_thousand_neurons_stay_responsive(explorer_site, open_page):
    site, _ = explorer_site
    page = _open(open_page, site, "conv3/7").page
    page.wait_for_function("() => document.querySelector('#vw-layer-title').textContent === 'conv3'")
    ms = page.evaluate("""() => {
      const t = performance.now(), s = document.querySelector('#vw-per-page');
      s.value = '0'; s.dispatchEvent(new Event('change'));
      const sort = document.querySelector('#vw-sort');
      sort.value = 'R'; sort.dispatchEvent(new Event('change'));
      document.querySelector('#vw-grid').getBoundingClientRect();  // force layout
      return performance.now() - t; }""")
    assert page.locator("#vw-grid a.vw-cell").count() == 2048
    assert ms < 1000, f"sorting and drawing 2,048 neurons took {ms:.0f} ms"
    page.locator("#vw-grid a.vw-cell").first.focus()  # the grid is made of links: usable by keyboard
    page.keyboard.press("Enter")
    first = page.locator("#vw-grid a.vw-cell").first.get_attribute("data-neuron")
    page.wait_for_function(f"() => location.hash.endsWith('/{first}')")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violations(explorer_site, open_page, scheme):
    site, _ = explorer_site
    opened = _open(open_page, site, f"conv2/{FV_CHANNELS[0]}", color_scheme=scheme, bypass_csp=True)
    opened.page.wait_for_selector(".vw-inputs canvas")
    found = [v for v in axe_violations(opened) if v["impact"] in BLOCKING]
    assert not found, "\n".join(map(describe, found))


def test_article_figures_open_their_neuron(built_site, site_pages, open_page):
    """On the real test site: every "in the weight explorer" link of an article opens the model page on the neuron it
    names, and the model page links back to the article."""
    checked = 0
    for path in site_pages:
        html = path.read_text(encoding="utf-8")
        if "in the weight explorer" not in html or "/models/" in path.as_posix():
            continue
        opened = open_page(path)
        page = opened.page
        hrefs = page.locator("a", has_text="in the weight explorer").evaluate_all(
            "els => els.map(e => e.getAttribute('href'))")
        for i, href in enumerate(hrefs):
            layer, _, neuron = unquote(href.split("#", 1)[1]).rpartition("/")
            page.goto(path.as_uri())
            page.locator("a", has_text="in the weight explorer").nth(i).click()
            page.wait_for_function("s => document.querySelector('#vw-status') && "
                                   "document.querySelector('#vw-status').textContent.startsWith(s)",
                                   arg=f"Neuron {neuron} of {layer} (")
            assert page.locator("#vw-grid a[aria-current='true']").get_attribute("data-neuron") == neuron
            back = page.locator(".vw-facts a").evaluate_all("els => els.map(e => e.href)")
            assert path.as_uri() in back, back
            checked += 1
        assert not opened.problems(), opened.problems()
    assert checked >= 2, "no article links into the weight explorer"


FOLLOWING = "figure[data-kind='nmf_explorer'], figure[data-kind='context_explorer']"


def _explorer_link(figure):
    return figure.locator(".vw-links a[href*='/models/']").first


def _click_mark(page, mark) -> None:
    """A reader's click on a chart mark (Vega's voronoi layer above the marks takes it: click where it is)."""
    mark.scroll_into_view_if_needed()
    box = mark.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def _mark_neuron(mark) -> int:
    """The neuron a mark stands for, from its accessible label ("neuron: 5", or a context kernel's output neuron)."""
    return int(re.search(r"(?:^|; )(?:output )?neuron: (\d+)", mark.get_attribute("aria-label")).group(1))


def _opens(page, href_page: Path, href: str, fig_link) -> None:
    layer, _, neuron = unquote(href.split("#", 1)[1]).rpartition("/")
    fig_link.click()
    page.wait_for_function("s => document.querySelector('#vw-status') && "
                           "document.querySelector('#vw-status').textContent.startsWith(s)",
                           arg=f"Neuron {neuron} of {layer} (")
    assert page.locator("#vw-grid a[aria-current='true']").get_attribute("data-neuron") == neuron
    page.goto(href_page.as_uri())


def test_figure_links_follow_the_selected_neuron(built_site, site_pages, open_page):
    """Picking another neuron (NMF explorer) or kernel (weights in context) in a figure moves its "in the weight
    explorer" link to that neuron, and following the link opens it; the NMF explorer's layer menu moves it too."""
    kinds = set()
    for path in site_pages:
        if "vwExplorer" not in path.read_text(encoding="utf-8") or "/models/" in path.as_posix():
            continue
        opened = open_page(path)
        page = opened.page
        for i in range(page.locator(FOLLOWING).count()):
            figure = page.locator(FOLLOWING).nth(i)
            kind = figure.get_attribute("data-kind")
            if kind in kinds:
                continue
            kinds.add(kind)
            link = _explorer_link(figure)
            before = link.get_attribute("href")
            marks = figure.locator("svg g.mark-rect path[aria-label]")
            mark = next(m for m in (marks.nth(k) for k in range(marks.count() // 2, marks.count()))
                        if _mark_neuron(m) != int(before.rpartition("/")[2]))
            picked = _mark_neuron(mark)
            _click_mark(page, mark)
            page.wait_for_function("([a, h]) => a.getAttribute('href') !== h", arg=[link.element_handle(), before])
            after = link.get_attribute("href")
            assert after.split("#")[0] == before.split("#")[0] and after.endswith(f"/{picked}"), (before, after)
            assert link.inner_text().count(str(picked)) >= 1
            if kind == "nmf_explorer" and figure.locator("select").count():
                menu = figure.locator("select").first
                options = menu.locator("option").all_inner_texts()
                same_model = [o for o in options[1:] if o.split(" — ")[0] == options[0].split(" — ")[0]]
                if same_model:
                    menu.select_option(label=same_model[0])
                    page.wait_for_function("([a, h]) => a.getAttribute('href') !== h", arg=[link.element_handle(), after])
                    moved = link.get_attribute("href")
                    assert moved.endswith(f"/{picked}") and unquote(moved) != unquote(after), (after, moved)
                    after = moved
            _opens(page, path, after, link)
        assert not opened.problems(), opened.problems()
    assert kinds == {"nmf_explorer", "context_explorer"}, kinds
