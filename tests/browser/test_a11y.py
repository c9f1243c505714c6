"""axe-core (vendored, tests/vendor/axe-core) finds no serious or critical violation on any page, light or dark."""
from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}


def axe_violations(opened) -> list[dict]:
    """axe.run() on the loaded page (charts already drawn); the script is added as a file (the CSP is bypassed)."""
    page = opened.page
    page.add_script_tag(path=str(AXE))
    return page.evaluate("""async () => {
      const r = await axe.run(document, {resultTypes: ['violations']});
      return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))}));
    }""")


def describe(v: dict) -> str:
    nodes = "\n".join(f"      {n['target']}: {(n['summary'] or '').splitlines()[-1].strip()}" for n in v["nodes"][:5])
    return f"  [{v['impact']}] {v['id']}: {v['help']} ({len(v['nodes'])} node(s))\n{nodes}"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violations(built_site, site_pages, open_page, scheme):
    assert AXE.is_file(), f"{AXE} is missing (see tests/vendor/axe-core/README.md)"
    failures = {}
    for path in site_pages:
        found = [v for v in axe_violations(open_page(path, color_scheme=scheme, bypass_csp=True))
                 if v["impact"] in BLOCKING]
        if found:
            failures[path.relative_to(built_site).as_posix()] = found
    assert not failures, f"axe-core ({scheme}):\n" + "\n".join(
        f"{page}:\n" + "\n".join(map(describe, vs)) for page, vs in failures.items())


def test_axe_flags_a_known_violation(tmp_path, open_page):
    """The harness itself: an image without alt text and unreadable grey-on-white text must be reported."""
    (tmp_path / "bad.css").write_text("p { color: #eeeeee; background: #ffffff; }", encoding="utf-8")
    (tmp_path / "bad.html").write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>bad</title>'
        '<link rel="stylesheet" href="bad.css"></head><body><main><p>faint text</p>'
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="20" height="20"></main></body></html>',
        encoding="utf-8")
    ids = {v["id"] for v in axe_violations(open_page(tmp_path / "bad.html", bypass_csp=True))
           if v["impact"] in BLOCKING}
    assert {"image-alt", "color-contrast"} <= ids, ids
