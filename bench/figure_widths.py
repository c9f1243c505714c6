"""How wide each figure draws on a phone: every article of a built site opened from file:// in headless Debian
chromium at a 390x844 viewport (and optionally another width), each figure's drawn width (its widest element), the
widest inner sideways scroller, and the page's own scroll width.

    python bench/figure_widths.py --site site [--width 390]
"""
from __future__ import annotations

import argparse
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SETTLED = "() => Array.from(document.querySelectorAll('[data-vw-chart]')).every(el => el.hasAttribute('data-vw-drawn'))"
MEASURE = """() => ({page: document.scrollingElement.scrollWidth, figures: Array.from(
  document.querySelectorAll('figure.vw-figure')).map(f => ({id: f.id,
    drawn: Math.round(Math.max(0, ...Array.from(f.querySelectorAll('.vw-chart svg, .vw-html > *, select, label'))
                              .map(e => e.getBoundingClientRect().width))),
    column: Math.round((f.querySelector('.vw-chart, .vw-html') || f).clientWidth)}))})"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", type=Path, default=Path("site"))
    ap.add_argument("--width", type=int, default=390)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    pages = sorted(p for p in a.site.resolve().glob("*/index.html") if 'class="vw-figure' in p.read_text("utf-8"))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        print(f"| page | figure | drawn px | column px | fits |")
        print("|---|---|---:|---:|---|")
        for path in pages:
            page = browser.new_page(viewport={"width": a.width, "height": 844})
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_function(SETTLED, timeout=30_000)
            found = page.evaluate(MEASURE)
            for f in found["figures"]:
                print(f"| {path.parent.name} | {f['id']} | {f['drawn']} | {f['column']} | "
                      f"{'yes' if f['drawn'] <= f['column'] else 'no'} |")
            print(f"| {path.parent.name} | (page scrollWidth) | {found['page']} | {a.width} | "
                  f"{'yes' if found['page'] <= a.width else 'no'} |")
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
