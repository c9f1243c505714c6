"""Page weight and time-to-charts of the article pages, in headless Debian chromium from file://, offline.

Transfer size: the sum of the sizes of every distinct file the page requested (a request listener; file://
has no network, so the bytes are the files' sizes). Time: from navigation start (performance.timeOrigin)
until every chart has data-vw-drawn="true", recorded in the page by a MutationObserver; median of --runs
cold loads, each in a fresh browser context. Non-file requests are aborted and counted (must be 0).
Targets: <= 2.5 MB and <= 2 s per article page. Prints the commands used and a markdown table.

    python bench/page_load.py [--site site/] [--articles sample,...] [--runs 5] [--strict]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))

from site_fixture import build_test_site  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
MAX_BYTES, MAX_SECONDS = 2.5e6, 2.0

# Stamps the moment the last chart reports drawn (ms since navigation start) into window.__vwAllDrawn.
DRAWN_CLOCK = """
(function () {
  function check() {
    var charts = document.querySelectorAll('[data-vw-chart]');
    if (window.__vwAllDrawn === undefined && charts.length > 0 &&
        Array.prototype.every.call(charts, function (c) { return c.getAttribute('data-vw-drawn') === 'true'; })) {
      window.__vwAllDrawn = performance.now();
    }
  }
  new MutationObserver(check).observe(document, {subtree: true, attributes: true, childList: true,
                                                 attributeFilter: ['data-vw-drawn']});
})();
"""


def load_once(browser, page_path: Path, timeout_ms: int = 30_000) -> tuple[float, int, int, int]:
    """One cold load: (seconds to all charts drawn, bytes requested, files requested, blocked requests)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    requested: set[str] = set()
    blocked: list[str] = []

    def route(r) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort("blockedbyclient")

    try:
        context.route("**/*", route)
        context.add_init_script(DRAWN_CLOCK)
        page = context.new_page()
        page.on("request", lambda req: requested.add(req.url) if req.url.startswith("file://") else None)
        page.goto(page_path.as_uri(), wait_until="load")
        n_charts = page.evaluate("() => document.querySelectorAll('[data-vw-chart]').length")
        if n_charts:
            page.wait_for_function("() => window.__vwAllDrawn !== undefined", timeout=timeout_ms)
            ms = page.evaluate("() => window.__vwAllDrawn")
        else:  # no chart: the page is ready at the load event
            ms = page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
    finally:
        context.close()
    files = {Path(unquote(urlparse(u).path)) for u in requested}
    size = sum(f.stat().st_size for f in files if f.is_file())
    return ms / 1000, size, len(files), len(blocked)


def article_pages(site: Path, articles: list[str] | None) -> list[Path]:
    if articles:
        return [site / a / "index.html" for a in articles]
    return sorted(p for p in site.glob("*/index.html") if not p.parent.name.startswith("."))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", type=Path, help="an already built site (default: build one into a temp folder)")
    ap.add_argument("--articles", help="comma-separated slugs (default: site.yml's articles)")
    ap.add_argument("--cache-dir", type=Path, default=REPO / ".cache",
                    help="cache for the build (default: the repo's .cache, so analyses are reused)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--strict", action="store_true", help="exit 1 when a page misses a target")
    args = ap.parse_args(argv)
    articles = [a.strip() for a in args.articles.split(",")] if args.articles else None

    print(f"$ python {' '.join(sys.argv)}")
    tmp = None
    site = args.site
    if site is None:
        config = yaml.safe_load((REPO / "site.yml").read_text(encoding="utf-8")) or {}
        tmp = tempfile.TemporaryDirectory(prefix="vw-bench-")
        print(f"$ python build.py --site-dir {tmp.name}/site --cache-dir {args.cache_dir}"
              f"  # from a temp root (tests/browser/site_fixture.py), articles={articles or config['articles']}")
        site = build_test_site(Path(tmp.name), articles, config.get("analysis"), cache_dir=args.cache_dir)
    site = site.resolve()
    if not Path(CHROMIUM).is_file():
        sys.exit(f"{CHROMIUM} is missing: run tests/install.sh")
    print(f"$ {CHROMIUM} --headless {' '.join(CHROMIUM_ARGS)}  # via Playwright, {args.runs} cold loads per page\n")

    from playwright.sync_api import sync_playwright

    rows, ok = [], True
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for page_path in article_pages(site, articles):
            runs = [load_once(browser, page_path) for _ in range(args.runs)]
            seconds = statistics.median(r[0] for r in runs)
            size, n_files, n_blocked = runs[0][1], runs[0][2], max(r[3] for r in runs)
            good = size <= MAX_BYTES and seconds <= MAX_SECONDS and n_blocked == 0
            ok &= good
            rows.append(f"| {page_path.relative_to(site).as_posix()} | {n_files} | {size / 1e6:.2f} MB | "
                        f"{seconds:.2f} s (min {min(r[0] for r in runs):.2f}, max {max(r[0] for r in runs):.2f}) | "
                        f"{n_blocked} | {'ok' if good else 'OVER TARGET'} |")
        browser.close()
    print("| page | files | transfer | all charts drawn (median of %d) | blocked requests | "
          "target <= 2.5 MB, <= 2 s |" % args.runs)
    print("|---|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    if tmp is not None:
        tmp.cleanup()
    return 1 if (args.strict and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
