"""What a published page says about who made it and where its code is comes from site.yml, never from a default
in the code; the style sample is built but not listed; what a build lacked goes to its output, not to a page."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from article.analysis_stage import missing_models
from article.structure.errors import BuildError
from test_render_helpers import FRONT, SITE, build, make_root, sample_root

NO_AUTHORS = "\n".join(line for line in FRONT.splitlines()
                       if not line.startswith(("authors:", "  - name:", "    affiliation:"))) + "\n"
SITE_BYLINE = SITE + """\
authors:
  - name: Site Author
    url: https://example.org/people/site-author
    affiliation: Site Lab
repository: https://example.org/code/site
"""


def _site_yml(root, text):
    (root / "site.yml").write_text(text.format(slugs="t"), encoding="utf-8")


def test_an_article_without_authors_gets_the_sites_byline_and_repository(tmp_path):
    root = make_root(tmp_path, front=NO_AUTHORS)
    _site_yml(root, SITE_BYLINE)
    site = build(root)
    html = (site / "t" / "index.html").read_text(encoding="utf-8")
    assert '<a href="https://example.org/people/site-author">Site Author</a>' in html
    assert "Site Lab" in html and '<meta name="citation_author" content="Site Author">' in html
    assert "author = {Author, Site}" in html  # the citation names the site's author
    assert 'href="https://example.org/code/site">Source code</a>' in html
    assert 'href="https://github.com/"' not in html
    feed = (site / "feed.xml").read_text(encoding="utf-8")
    assert "<name>Site Author</name>" in feed
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "Site Author" in index and 'href="https://example.org/code/site"' in index


def test_an_articles_own_authors_win_and_no_repository_means_no_link(tmp_path):
    root = make_root(tmp_path)  # FRONT names Ann Author; SITE has neither authors nor repository
    html = (build(root) / "t" / "index.html").read_text(encoding="utf-8")
    assert "Ann Author" in html and "Site Author" not in html and "Source code" not in html


def test_no_authors_anywhere_is_one_error_naming_the_article(tmp_path):
    root = make_root(tmp_path, front=NO_AUTHORS)
    with pytest.raises(BuildError, match=r"index\.md:2: front matter field 'authors' is required .*site\.yml"):
        build(root)


def test_repository_comes_from_the_environment_and_must_be_http(tmp_path, monkeypatch):
    root = make_root(tmp_path)
    _site_yml(root, SITE_BYLINE)
    monkeypatch.setenv("VW_REPOSITORY_URL", "https://example.org/code/from-ci")
    html = (build(root) / "t" / "index.html").read_text(encoding="utf-8")
    assert 'href="https://example.org/code/from-ci">Source code</a>' in html
    monkeypatch.setenv("VW_REPOSITORY_URL", "javascript:alert(1)")
    with pytest.raises(BuildError, match=r"site\.yml: field 'repository'"):
        build(root)


def test_site_authors_are_checked_like_front_matter(tmp_path):
    root = make_root(tmp_path, front=NO_AUTHORS)
    _site_yml(root, SITE + "authors:\n  - name: X\n    email: x@example.org\n")
    with pytest.raises(BuildError, match=r"site\.yml: field 'authors\[0\]' has unknown key\(s\) \['email'\]"):
        build(root)


def test_the_style_sample_is_built_but_not_listed(tmp_path):
    site = build(sample_root(tmp_path, listed=False))
    page = (site / "sample" / "index.html").read_text(encoding="utf-8")
    assert '<meta name="robots" content="noindex">' in page and "A Sample Article" in page
    assert "A Sample Article" not in (site / "index.html").read_text(encoding="utf-8")
    ns = {"a": "http://www.w3.org/2005/Atom", "s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    assert ET.parse(site / "feed.xml").getroot().findall("a:entry", ns) == []
    locs = [e.text for e in ET.parse(site / "sitemap.xml").getroot().findall("s:url/s:loc", ns)]
    assert not any("sample" in loc for loc in locs)


def test_the_repos_sample_says_listed_false():
    from test_render_helpers import REPO

    assert "\nlisted: false" in (REPO / "content" / "sample" / "index.md").read_text(encoding="utf-8")


def test_what_a_build_lacked_is_one_output_line_per_model(tmp_path):
    assert missing_models(tmp_path) == []  # no analysis at all: nothing to say
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "manifest.json").write_text(json.dumps(
        {"models": {}, "unavailable": {"inceptionv1": "weights file googlenet-1378be20.pth not found"}}))
    assert missing_models(tmp_path) == [
        "note: inceptionv1 is not in this build (the pages leave its sections out): weights file "
        "googlenet-1378be20.pth not found"]
