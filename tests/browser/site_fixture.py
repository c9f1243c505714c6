"""Build a throw-away copy of the site for the browser tests and the page-load benchmark.

`build.py` resolves ROOT from its own location, so the build runs from a temporary root that holds a copy
of build.py, its own site.yml, and symlinks to the repo's templates/, content/, article/ and analysis/
(so the code under test is the repo's, and nothing in the repo is written to).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
LINKED = ("templates", "content", "article", "analysis")


class SiteBuildError(RuntimeError):
    """`python build.py` failed; the message carries its output."""


def write_root(tmp: Path, articles: list[str] | None = None, analysis: dict[str, Any] | None = None) -> Path:
    """Make ``tmp/root`` (build.py copy, symlinks, site.yml with overrides) and return it.

    articles: slugs for site.yml's ``articles:`` (None keeps the repo's list).
    analysis: the ``analysis:`` section (None drops it, so no model is trained; pass a tiny config to test
    an article whose figures need analysis results).
    """
    root = tmp / "root"
    root.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = root / name
        if not link.exists():
            link.symlink_to(REPO / name, target_is_directory=True)
    (root / "build.py").write_bytes((REPO / "build.py").read_bytes())
    config = yaml.safe_load((REPO / "site.yml").read_text(encoding="utf-8")) or {}
    if articles is not None:
        config["articles"] = list(articles)
    config.pop("analysis", None)
    if analysis is not None:
        config["analysis"] = analysis
    (root / "site.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return root


def build_test_site(tmp: Path, articles: list[str] | None = None, analysis: dict[str, Any] | None = None,
                    *, cache_dir: Path | None = None, timeout: float = 1800.0,
                    env: dict[str, str] | None = None) -> Path:
    """Build the site from a temporary root in ``tmp``; return the site folder ``tmp/site``.

    cache_dir: analysis results and render cache (default ``tmp/cache``; pass a persistent folder to reuse
    trained models across runs). env: extra environment variables for the build (a weights file's path).
    Raises SiteBuildError with build.py's output when the build fails; its output is kept in ``tmp/build.log``.
    """
    tmp = Path(tmp).resolve()
    root = write_root(tmp, articles, analysis)
    site, cache = tmp / "site", Path(cache_dir or tmp / "cache").resolve()
    cmd = [sys.executable, "build.py", "--site-dir", str(site), "--cache-dir", str(cache)]
    env = dict(os.environ, VW_CACHE_DIR=str(cache), **(env or {}))
    env.pop("VW_SITE_URL", None)  # tests check the pages, not the deploy URL
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    (tmp / "build.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0 or not (site / "index.html").is_file():
        raise SiteBuildError(f"`{' '.join(cmd)}` (cwd {root}) failed with exit code {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return site


def html_pages(site: Path) -> list[Path]:
    """Every .html page of a built site, sorted (hidden folders such as a stale .site-tmp are skipped)."""
    return sorted(p for p in Path(site).rglob("*.html")
                  if not any(part.startswith(".") for part in p.relative_to(site).parts))
