"""Fixtures for the real-browser tests: one built site per session, Debian's chromium driven by Playwright.

Which site is tested (edit the constants, or set the environment variables):
  ARTICLES / VW_TEST_ARTICLES=slug,slug   articles put into the test site.yml
  ANALYSIS / VW_TEST_ANALYSIS='<yaml>'      its analysis: section (None: no analysis, nothing is trained)
  VW_TEST_CACHE_DIR=path                    a persistent cache (reuse trained models between runs)
  VW_TEST_SITE=path                         test an already built site instead of building one
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from shared_site import SHARED_SITE, site_in
from site_fixture import build_test_site, html_pages

# Every article of the real site, on a tiny analysis configuration: the real figures, real (small) models, and
# InceptionV1's architecture with random weights (a file named after its own sha256, as torchvision names its files),
# so the sections the published site has about it are drawn here too.
ARTICLES: list[str] = ["visualizing-weights", "weight-report", "sample"]
ANALYSIS: dict[str, Any] | None = {
    "models": ["banding-lab", "efficientnet-lite0", "mobilenet-v2", "inceptionv1"],
    "n_jobs": 2,
    "featureviz": {"size": 32, "steps": 4},
    "lab": {"steps": 20, "seeds": [0, 1], "widths": [4, 8, 8, 8, 8, 8], "n_test": 64},
    "examples": {"count": 24},  # 24 of the 222 bundled photos (or digits): every figure's examples, a tenth the cost
    # The tensors the figures and the prose name, not every block: InceptionV1's analysis of all 31 tensors and its
    # dataset-examples pass over all 51 layers were half the suite's largest fixture; EfficientNet-Lite0's and
    # MobileNetV2's of every block cost 38 s of this build's 139 s (63 s of CPU). Each keeps its first layer, the
    # featured context pair and span, blocks with and without a skip, and the last (banding, the prose's numbers).
    "recipes": {
        "inceptionv1": {"layers": ["conv1.conv", "inception4d.branch3.1.conv", "inception5b.branch3.1.conv"],
                        "expansions": ["inception3a -> inception3b", "maxpool2 -> inception3b"]},
        "efficientnet-lite0": {"layers": ["_conv_stem"], "expansions": [
            "_conv_stem -> _blocks.0", "_blocks.1 -> _blocks.2", "_blocks.2 -> _blocks.3", "_blocks.2 -> _blocks.4",
            "_blocks.14 -> _blocks.15+_conv_head"]},
        "mobilenet-v2": {"layers": ["features.0.0"], "expansions": [
            "features.0 -> features.1", "features.2 -> features.3", "features.3 -> features.4",
            "features.2 -> features.4", "features.9 -> features.10", "features.13 -> features.14",
            "features.14 -> features.15",
            "features.16 -> features.17+features.18"]},
    },
}

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
DRAW_TIMEOUT_MS = 15_000
INSTALL_HINT = "run tests/install.sh (installs Debian's chromium and a Java runtime; never `playwright install`)"

# Records CSP violations before any page script runs (init scripts are not subject to the page's CSP).
CSP_LISTENER = """
window.__vwCsp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__vwCsp.push(e.violatedDirective + ' blocked ' + (e.blockedURI || '(inline)') + ' at '
                      + (e.sourceFile || '?') + ':' + e.lineNumber);
});
"""

ALL_CHARTS_SETTLED = """() => Array.from(document.querySelectorAll('[data-vw-chart]'))
                              .every(el => el.hasAttribute('data-vw-drawn'))"""


def _articles() -> list[str]:
    env = os.environ.get("VW_TEST_ARTICLES")
    return [s.strip() for s in env.split(",") if s.strip()] if env else ARTICLES


def _analysis() -> dict[str, Any] | None:
    env = os.environ.get("VW_TEST_ANALYSIS")
    return yaml.safe_load(env) if env else ANALYSIS


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site folder: one per run, shared by every pytest-xdist worker (tests/browser/shared_site.py)."""
    if os.environ.get("VW_TEST_SITE"):
        site = Path(os.environ["VW_TEST_SITE"]).resolve()
        assert (site / "index.html").is_file(), f"VW_TEST_SITE={site} holds no index.html"
        return site
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the controller's folder, above every worker's own
        folder = tmp_path_factory.getbasetemp().parent / SHARED_SITE
    else:
        folder = tmp_path_factory.mktemp("browser-site")
    return site_in(folder, build_default)


def build_default(tmp: Path) -> Path:
    """The test site (ARTICLES on ANALYSIS, InceptionV1 with random weights) built in `tmp`: `tmp/site`, `tmp/cache`."""
    cache = os.environ.get("VW_TEST_CACHE_DIR")
    return build_test_site(tmp, _articles(), _analysis(), cache_dir=Path(cache) if cache else None,
                           env={"VW_WEIGHTS_GOOGLENET": str(random_googlenet(tmp))})


def random_googlenet(folder: Path) -> Path:
    """InceptionV1's architecture (torchvision's GoogLeNet layout) with random weights, saved as
    googlenet-<its sha256 prefix>.pth: the loader checks a file against the prefix in its name."""
    import hashlib

    import torch

    from analysis.models import googlenet

    torch.manual_seed(0)
    tmp = folder / "googlenet-random.pth"
    torch.save(googlenet.GoogLeNet().state_dict(), tmp)
    path = folder / f"googlenet-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth"
    tmp.replace(path)
    return path


@pytest.fixture(scope="session")
def site_pages(built_site: Path) -> list[Path]:
    pages = html_pages(built_site)
    assert built_site / "index.html" in pages and built_site / "404.html" in pages, pages
    return pages


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: {INSTALL_HINT}", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class OpenedPage:
    """A page opened from file:// with every non-file request blocked, and what went wrong while loading it."""

    page: Any  # playwright.sync_api.Page
    path: Path
    blocked: list[str] = field(default_factory=list)  # non-file:// requests (aborted)
    failed: list[str] = field(default_factory=list)  # file:// requests that failed (missing files ...)
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    warnings: list[str] = field(default_factory=list)  # console warnings (Vega's "WARN ..." among them)

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("() => window.__vwCsp || []")

    def problems(self) -> list[str]:
        """Everything that must be empty on a healthy page."""
        return ([f"non-file request attempted: {u}" for u in self.blocked]
                + [f"request failed: {u}" for u in self.failed]
                + [f"console: {e}" for e in self.errors]
                + [f"console warning: {w}" for w in self.warnings]
                + [f"CSP violation: {v}" for v in self.csp_violations()])


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., OpenedPage]]:
    """open_page(path, color_scheme="light", width=1280, height=900, bypass_csp=False) -> OpenedPage.

    Each call gets a fresh browser context; it waits until every chart has settled (data-vw-drawn set).
    """
    contexts = []

    def _open(path: Path, *, color_scheme: str = "light", width: int = 1280, height: int = 900,
              bypass_csp: bool = False) -> OpenedPage:
        context = browser.new_context(color_scheme=color_scheme, viewport={"width": width, "height": height},
                                      bypass_csp=bypass_csp, service_workers="block")
        contexts.append(context)
        opened = OpenedPage(page=None, path=path)

        def route(r: Any) -> None:
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                opened.blocked.append(r.request.url)
                r.abort("blockedbyclient")

        context.route("**/*", route)
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        opened.page = page
        page.on("console", lambda m: opened.errors.append(f"{m.text} ({m.location.get('url', '')})")
                if m.type == "error" else opened.warnings.append(f"{m.text} ({m.location.get('url', '')})")
                if m.type == "warning" else None)
        page.on("pageerror", lambda exc: opened.errors.append(f"uncaught {exc}"))
        # net::ERR_ABORTED is a load the page cancelled itself by navigating away (a test following a link while lazy
        # images or the favicon still load); a missing file is ERR_FILE_NOT_FOUND, a blocked request ERR_FAILED.
        page.on("requestfailed", lambda r: opened.failed.append(f"{r.url} ({r.failure})")
                if r.url.startswith("file://") and r.failure != "net::ERR_ABORTED" else None)
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_function(ALL_CHARTS_SETTLED, timeout=DRAW_TIMEOUT_MS)
        return opened

    yield _open
    for c in contexts:
        c.close()

