"""Front matter and site config validation: one-line ``path:line: message`` errors."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from article.config import load_config
from article.errors import BuildError
from article.frontmatter import parse
from test_render_helpers import SITE

GOOD = """---
title: T
description: D
date: 2024-03-01
authors:
  - name: A B
    url: https://a.org
bibliography: refs.bib
updates:
  - {date: 2024-04-01, text: Fixed *typo*.}
---
Body line 1
"""


def test_valid_front_matter_is_typed():
    src = parse(GOOD, Path("a/index.md"))
    assert src.meta.title == "T"
    assert src.meta.date == dt.date(2024, 3, 1)
    assert src.meta.authors[0].url == "https://a.org"
    assert src.meta.updates[0].date == dt.date(2024, 4, 1)
    assert src.meta.raw_html is False
    assert src.body.startswith("Body line 1")
    assert src.body_line == 12  # the file line of the first body line


def test_build_error_is_one_line():
    err = BuildError("bad\nthing", "x.md", 3)
    assert str(err) == "x.md:3: bad thing"
    assert str(BuildError("plain")) == "plain"


def test_malformed_yaml_names_file_and_yaml_line():
    text = "---\ntitle: T\ndescription: [unclosed\ndate: 2024-01-01\n---\nbody\n"
    with pytest.raises(BuildError) as exc:
        parse(text, Path("c/index.md"))
    msg = str(exc.value)
    assert msg.startswith("c/index.md:")
    assert "malformed YAML" in msg
    line = int(msg.split(":")[1])
    assert 3 <= line <= 5  # the error is reported on or right after the bad line
    assert "\n" not in msg


@pytest.mark.parametrize("edit, field, line", [
    (("title: T\n", ""), "title", None),
    (("date: 2024-03-01", "date: March 1st"), "date", 4),
    (("date: 2024-03-01", "date: 2024-13-45"), "date", 4),
    (("{date: 2024-04-01", "{date: 2024-04-31"), "date", 10),
    (("description: D", "description: 42"), "description", 3),
    (("bibliography: refs.bib", "bibliography: [a, b]"), "bibliography", 8),
    (("authors:\n  - name: A B\n    url: https://a.org", "authors: nobody"), "authors", 5),
    (("bibliography: refs.bib", "bibliography: refs.bib\nraw_html: yes please"), "raw_html", 9),
    (("    url: https://a.org", "    email: a@b.c"), "authors[0]", 5),
])
def test_missing_or_ill_typed_field_is_named(edit, field, line):
    text = GOOD.replace(*edit)
    with pytest.raises(BuildError) as exc:
        parse(text, Path("a/index.md"))
    assert f"'{field}'" in str(exc.value)
    assert exc.value.path == "a/index.md"
    if line:
        assert exc.value.line == line


def test_missing_front_matter():
    with pytest.raises(BuildError, match="missing front matter"):
        parse("# no front matter\n", Path("x.md"))
    with pytest.raises(BuildError, match="unterminated"):
        parse("---\ntitle: x\n", Path("x.md"))


def test_site_config_and_env_override(tmp_path, monkeypatch):
    (tmp_path / "site.yml").write_text(SITE.format(slugs="a, b") + "analysis:\n  models: [x]\n")
    monkeypatch.delenv("VW_SITE_URL", raising=False)
    cfg = load_config(tmp_path)
    assert cfg.site_url == "https://example.org/repo/"
    assert cfg.articles == ("a", "b")
    assert cfg.raw["analysis"] == {"models": ["x"]}  # free-form sections pass through
    monkeypatch.setenv("VW_SITE_URL", "https://user.github.io/other")
    assert load_config(tmp_path).site_url == "https://user.github.io/other/"


def test_site_config_errors(tmp_path):
    (tmp_path / "site.yml").write_text("title: T\ndescription: D\nsite_url: ftp://x\narticles: [a]\n")
    with pytest.raises(BuildError, match="site_url"):
        load_config(tmp_path)
    (tmp_path / "site.yml").write_text("title: T\ndescription: D\nsite_url: https://x/\narticles: a\n")
    with pytest.raises(BuildError, match="articles"):
        load_config(tmp_path)
