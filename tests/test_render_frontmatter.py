"""Front matter and site config validation: one-line ``path:line: message`` errors."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from article.config.frontmatter import parse
from article.config.site import load_config
from article.structure.errors import BuildError
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


def test_parsed_yaml_is_kept_by_its_text_and_errors_are_never_kept(tmp_path):
    """yamlcache: the same front matter parsed through the render cache (in this process, then from the entry alone)
    equals a plain parse, dates and all; a damaged or wrongly shaped entry is parsed again; a YAML mistake is reported
    at its line every time."""
    import json

    from article.config import yamlcache

    cache = tmp_path / "cache"
    text = GOOD.replace("bibliography", "extra: {1: [2.5, .inf, 2024-01-02, !!binary aGk=]}\nbibliography")
    plain = parse(text, Path("a/index.md"))
    assert parse(text, Path("a/index.md"), cache) == plain
    yamlcache._seen.clear()
    entry, = (cache / "render").glob("yaml-front-matter-a-*")
    assert parse(text, Path("a/index.md"), cache) == plain  # from the entry: no PyYAML needed
    assert plain.meta.raw["extra"] == {1: [2.5, float("inf"), dt.date(2024, 1, 2), b"hi"]}

    from article import cache as render_cache
    yamlcache._seen.clear()
    render_cache.store(entry, json.dumps(["l", [["d", "not a date"]]]).encode())  # planted: the wrong shape
    assert parse(text, Path("a/index.md"), cache) == plain
    bad = text.replace("title: T", "title: [unclosed")
    with pytest.raises(BuildError) as plain_err:
        parse(bad, Path("a/index.md"))
    for _ in range(2):
        with pytest.raises(BuildError) as err:
            parse(bad, Path("a/index.md"), cache)
        assert (err.value.message, err.value.line) == (plain_err.value.message, plain_err.value.line) \
            and err.value.line in (2, 3)


@pytest.mark.slow
def test_an_unchanged_site_builds_without_importing_pyyaml(tmp_path):
    """site.yml and front matter unchanged: the build reads them parsed from the render cache (PyYAML costs ~8 ms to
    import); an edited front matter is parsed again."""
    import subprocess
    import sys

    from test_render_helpers import REPO, sample_root

    root = sample_root(tmp_path)
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; import build; "
              "build.build(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), progress=False); "
              "print('yaml' in sys.modules)")
    args = [sys.executable, "-c", script, str(REPO), str(root), str(tmp_path / "site"), str(tmp_path / "cache")]
    runs = [subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()[-1] for _ in range(2)]
    assert runs == ["True", "False"]
    index = root / "content" / "sample" / "index.md"
    index.write_text(index.read_text(encoding="utf-8").replace("title: ", "title: New ", 1), encoding="utf-8")
    assert subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()[-1] == "True"
