"""A residual block's identity skip, one click away (issue 20, item 5): the weight explorer and the expanded-weights
figure show a block's own contribution by default, say so in words, and a checkbox switches their kernels to the
total (the identity included). Clicked in a real browser; the kernels drawn are checked against the records."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from site_fixture import build_test_site


from explorer_cache import FOLDER, relist

pytestmark = pytest.mark.browser
C = 12  # channels of the tiny residual blocks
AT = [1, 1]


def _make_cache(cache: Path) -> dict[str, dict]:
    """tinynet: a stem kernel and two residual blocks whose identity skips were removed (real tensor_report records;
    small own weights, so that with the skip every neuron's strongest input is itself)."""
    from analysis.core import jsonio
    from analysis.per_tensor import tensor_report
    from analysis.tensor_report import link_next, summary

    rng = np.random.default_rng(3)
    root = cache / "analysis"
    specs = [("stem", None, "stem", "kernel", [C, 3, 3, 3], None),
             ("stem->b1", "stem", "b1", "block", [C, C, 3, 3], {"identity": "removed", "identity_at": AT}),
             ("b1->b2", "b1", "b2", "block", [C, C, 3, 3], {"identity": "removed", "identity_at": AT})]
    records, entries = {}, []
    for tid, source, layer, kind, shape, skip in specs:
        record = {"schema": "vw-analysis/1", "model": "tinynet", "id": tid, "layer": layer, "source": source,
                  "label": tid, **tensor_report(rng.normal(0, 0.1, size=shape).astype(np.float32), skip=skip)}
        rel = f"{FOLDER}/tensors/{tid.replace('->', '__')}.json"
        jsonio.write_json(root / rel, record)
        records[tid] = json.loads((root / rel).read_text())
        entries.append({"id": tid, "layer": layer, "source": source, "label": tid, "kind": kind, "file": rel,
                        **summary(records[tid])})
    link_next(entries)
    jsonio.write_json(root / "manifest.json", {
        "schema": "vw-analysis-manifest/1", "code": "test", "unavailable": {},
        "models": {"tinynet": {"label": "TinyNet", "family": "test", "color": "#333333", "notes": [],
                               "info": {"parameters": 1, "source": "random weights"}, "tensors": entries,
                               "blocks": [], "context": [], "featured_nmf": [], "featured_banding": None,
                               "first_layer": None, "folder": FOLDER}}})
    (cache / "featureviz").mkdir(parents=True, exist_ok=True)
    (cache / "featureviz" / "manifest.json").write_text("[]", encoding="utf-8")
    relist(cache)
    return records


@pytest.fixture(scope="module")
def skip_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("skip-site")
    records = _make_cache(tmp / "cache")
    return build_test_site(tmp, ["sample"], None, cache_dir=tmp / "cache"), records


def _inputs(page) -> list[int]:
    return [int(t.split()[1]) for t in page.locator(".vw-inputs .vw-cap a, .vw-inputs .vw-cap > span:first-child")
            .all_inner_texts()]


def _pixel(page, k: int, x: int, y: int) -> list[int]:
    return page.evaluate("([k, x, y]) => Array.from(document.querySelectorAll('.vw-inputs canvas.vw-kernel')[k]"
                         ".getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3))", [k, x, y])


def test_the_explorer_shows_a_blocks_own_weights_and_the_total_one_click_away(skip_site, open_page):
    site, records = skip_site
    n = 5
    own, total = records["stem->b1"], records["stem->b1"]["total"]
    opened = open_page(site / "models" / "tinynet" / "index.html")
    page = opened.page
    assert "skip removed" in page.locator("table.vw-layers tr[data-id='stem->b1']").inner_text()
    assert "skip removed" not in page.locator("table.vw-layers tr[data-id='stem']").inner_text()
    page.wait_for_selector("#vw-grid a.vw-cell")
    assert page.locator("#vw-skip-box").is_hidden()  # the stem kernel has no skip, and feeds no block's total
    page.evaluate("() => { location.hash = 'stem->b1/%d'; }" % n)
    page.wait_for_function("n => document.querySelector('#vw-status').textContent.includes('Neuron ' + n)", arg=n)
    assert page.locator("#vw-skip-box").is_visible() and not page.locator("#vw-skip").is_checked()
    note = page.locator("#vw-layer-note").inner_text()
    assert "weight 1 from each channel to itself at the centre" in note and "own contribution" in note
    # Own weights by default: the strongest inputs, their norms and kernels are the record's own.
    assert _inputs(page) == own["top_inputs"]["index"][n]
    assert n not in _inputs(page)[:1]
    own_scale = page.locator(".vw-legend span").first.inner_text()
    before = _pixel(page, 0, *AT[::-1])
    outputs_own = page.locator(".vw-outputs li").all_inner_texts()

    page.locator("#vw-skip").check()
    page.wait_for_function("() => /skip included/.test(document.querySelector('.vw-skip-note').textContent)")
    # The total: the neuron itself is now its strongest input, its kernel with +1 at the centre, on a new scale.
    assert _inputs(page) == total["top_inputs"]["index"][n] and _inputs(page)[0] == n
    expected = np.asarray(own["weight"])[n, n].copy()
    expected[AT[0], AT[1]] += 1
    np.testing.assert_allclose(total["top_inputs"]["kernel"][n][0], expected, atol=1e-6)
    scale = np.abs(total["top_inputs"]["kernel"][n]).max()
    assert page.locator(".vw-legend span").first.inner_text() == f"−{scale:.3g}"
    assert page.locator(".vw-legend span").first.inner_text() != own_scale
    after = _pixel(page, 0, *AT[::-1])
    r, g, b = after
    assert after != before and r > 150 and b < 100  # the identity's +1: the reddest cell of the scale
    assert "include that skip" in page.locator("#vw-layer-note").inner_text()
    assert re.search(r"neuron \d+", " ".join(outputs_own))
    # Its outputs into the next residual block follow the same choice.
    outputs_total = page.locator(".vw-outputs li").all_inner_texts()
    want = [f"neuron {j}" for j in records["b1->b2"]["total"]["top_outputs"]["index"][n]]
    assert [t.split()[0] + " " + t.split()[1] for t in outputs_total] == want
    page.locator("#vw-skip").uncheck()
    page.wait_for_function("() => /own weights/.test(document.querySelector('.vw-skip-note').textContent)")
    assert _inputs(page) == own["top_inputs"]["index"][n] and _pixel(page, 0, *AT[::-1]) == before
    assert not opened.problems(), opened.problems()


def _texts(figure) -> str:
    """The figure's chart text; a note wrapped over several lines (tspans) reads as one, its lines joined by spaces."""
    return " ".join(figure.locator("svg text").evaluate_all("""els => els.map(e => {
        const lines = Array.from(e.querySelectorAll('tspan'));
        return lines.length ? lines.map(t => t.textContent).join(' ') : e.textContent; })"""))


def _cells(figure) -> dict[tuple[int, int, int, int], float]:
    """The figure's drawn kernel cells: (output channel, input channel, x, y) -> expanded weight (its tooltip)."""
    out = {}
    for label in figure.locator("svg [aria-roledescription='rect mark']").evaluate_all(
            "els => els.map(e => e.getAttribute('aria-label'))"):
        f = dict(part.split(": ", 1) for part in label.split("; "))
        if "output channel" in f:
            key = (int(f["output channel"]), int(f["input channel"]), int(f["x"]), int(f["y"]))
            out[key] = float(f["expanded weight"].replace("\u2212", "-"))
    return out


def _expected(pairs: dict) -> dict[tuple[int, int, int, int], float]:
    w = np.asarray(pairs["weight"])
    return {(o, i, x, y): float(f"{w[a, b, y, x]:.3g}") for a, o in enumerate(pairs["outs"][:6])
            for b, i in enumerate(pairs["ins"][:6]) for y in range(w.shape[2]) for x in range(w.shape[3])}


def test_the_expanded_weights_figure_toggles_the_skip(built_site, open_page):
    opened = open_page(built_site / "visualizing-weights" / "index.html")
    page = opened.page
    figure = page.locator("#fig-expanded-mnv2")
    figure.scroll_into_view_if_needed()
    menu = figure.locator("select")
    options = menu.locator("option").all_inner_texts()
    menu.select_option(label=next(o for o in options if o.startswith("features.15 (")))
    title = lambda: figure.locator("svg .role-title").first.text_content()  # noqa: E731
    page.wait_for_function("el => /own weights/.test(el.textContent)", arg=figure.element_handle())
    assert "identity skip removed" in title()
    own = _cells(figure)
    assert "passes its input through unchanged" in _texts(figure)
    box = figure.locator("input[type=checkbox]")
    box.check()
    page.wait_for_function("el => /identity skip included/.test(el.textContent)", arg=figure.element_handle())
    total = _cells(figure)
    assert own and total and own != total
    # With the skip, every drawn self-connection (output channel = input channel) peaks at the centre with the +1.
    diagonal = {(o, x, y): w for (o, i, x, y), w in total.items() if o == i}
    assert diagonal, "the total's strongest pairs hold no self-connection"
    for o in {o for o, _, _ in diagonal}:
        kernel = {(x, y): w for (p, x, y), w in diagonal.items() if p == o}
        assert max(kernel, key=kernel.get) == (1, 1) and kernel[(1, 1)] > 0.5
    assert not any(o == i and w > 0.5 for (o, i, x, y), w in own.items())
    cache = built_site.parent / "cache" / "analysis"
    if (cache / "manifest.json").is_file():  # the test site built here (not VW_TEST_SITE): the records themselves
        manifest = json.loads((cache / "manifest.json").read_text())
        entry = next(t for t in manifest["models"]["mobilenet-v2"]["tensors"] if t["id"] == "features.14->features.15")
        record = json.loads((cache / entry["file"]).read_text())
        assert record["identity"] == "removed" and record["identity_at"] == [1, 1]
        assert own == pytest.approx(_expected(record["top_pairs"]), abs=6e-4)
        assert total == pytest.approx(_expected(record["total"]["top_pairs"]), abs=6e-4)
    # A block without a skip (stride 2) is the same either way, and says so.
    menu.select_option(label=next(o for o in options if o.startswith("features.14 (")))
    page.wait_for_function("el => !/skip (removed|included)/.test(el.querySelector('svg .role-title').textContent)",
                           arg=figure.element_handle())
    with_box = _cells(figure)
    box.uncheck()
    page.wait_for_timeout(300)
    assert _cells(figure) == with_box
    assert "skip: none" in _texts(figure)
    assert not opened.problems(), opened.problems()
