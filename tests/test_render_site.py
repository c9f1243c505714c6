"""Whole-site builds of the sample article: site files, CSP, determinism, atomic swap, link check."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from article.output.linkcheck import check_links
from article.output.sitedir import tree_digest
from article.pipeline import build_site
from article.structure.errors import BuildError
from test_render_helpers import REPO, make_root, page, sample_root


class Tags(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_bodies: list[tuple[dict, str]] = []
        self._in_script: dict | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.script_bodies.append((self._in_script, ""))

    def handle_data(self, data):
        if self._in_script is not None:
            attrs, body = self.script_bodies[-1]
            self.script_bodies[-1] = (attrs, body + data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The sample site built from a cold cache; returns (root, site, cache)."""
    tmp = tmp_path_factory.mktemp("sample")
    root = sample_root(tmp)
    site, cache = tmp / "site", tmp / "cache"
    report = build_site(root, site, cache_dir=cache, progress=False)
    assert report.figures == 3 and report.cache_hits == 0
    assert report.warnings == []
    return root, site, cache


def test_layout_and_site_files(built):
    _, site, _ = built
    for rel in ["index.html", "404.html", "sitemap.xml", "feed.xml", ".nojekyll", "sample/index.html",
                "sample/social.png", "assets/style.css", "assets/site.js", "assets/figures.js",
                "assets/favicon.svg", "assets/vega.js", "assets/vendor/vega-interpreter.js",
                "sample/data/banding.json", "sample/data/banding.data.js", "sample/data/banding.svg",
                "sample/data/tiles/tile-0.png", "sample/data/tiles/scale.csv"]:
        assert (site / rel).is_file(), rel
    assert (site / ".nojekyll").read_bytes() == b""
    ns = {"a": "http://www.w3.org/2005/Atom", "s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    feed = ET.parse(site / "feed.xml").getroot()
    assert feed.find("a:entry/a:title", ns).text == "A Sample Article"
    assert feed.find("a:entry/a:link", ns).get("href") == "https://example.org/repo/sample/index.html"
    locs = [e.text for e in ET.parse(site / "sitemap.xml").getroot().findall("s:url/s:loc", ns)]
    assert "https://example.org/repo/sample/index.html" in locs
    from PIL import Image
    with Image.open(site / "sample" / "social.png") as im:
        assert im.size == (1200, 630)


def test_index_lists_article(built):
    _, site, _ = built
    html = (site / "index.html").read_text()
    assert '<a href="sample/index.html">A Sample Article</a>' in html
    assert "Ada Example, Grace Sample" in html and 'datetime="2025-01-15"' in html


def test_head_meta_csp_and_scripts(built):
    _, site, _ = built
    for rel in ["index.html", "404.html", "sample/index.html"]:
        doc = Tags((site / rel).read_text())
        metas = [a for t, a in doc.tags if t == "meta"]
        csp = [m["content"] for m in metas if m.get("http-equiv") == "Content-Security-Policy"]
        assert csp and "script-src 'self'" in csp[0] and "style-src 'self'" in csp[0]
        assert "unsafe" not in csp[0]
        icon = [a for t, a in doc.tags if t == "link" and a.get("rel") == "icon"][0]
        assert not icon["href"].startswith(("/", "http")), "favicon link must be relative"
        for attrs, body in doc.script_bodies:
            if "src" not in attrs:
                assert attrs.get("type") == "application/json", f"inline script in {rel}"
                json.loads(body)
        assert not any("style" in a for t, a in doc.tags), f"inline style attribute in {rel}"
        assert not any(t == "style" for t, _ in doc.tags)
    doc = Tags((site / "sample/index.html").read_text())
    props = {a.get("property") or a.get("name"): a.get("content") for t, a in doc.tags if t == "meta"}
    assert props["og:image"] == "https://example.org/repo/sample/social.png"
    assert props["citation_title"] == "A Sample Article"
    assert props["citation_publication_date"] == "2025/01/15"
    assert props["twitter:card"] == "summary_large_image"
    hrefs = [a.get("href") or a.get("src") for t, a in doc.tags if t in ("a", "link", "script", "img")]
    internal = [h for h in hrefs if h and not h.startswith(("http", "#", "mailto:"))]
    assert internal and all(not h.startswith("/") and not h.endswith("/") for h in internal)


def test_chart_spec_and_data_files(built):
    _, site, _ = built
    doc = Tags((site / "sample/index.html").read_text())
    spec = json.loads(next(b for a, b in doc.script_bodies if a.get("id") == "spec-banding"))
    assert "datasets" not in spec and "values" not in json.dumps(spec)
    name = spec["data"]["name"]
    data = json.loads((site / "sample/data/banding.json").read_text())
    assert {row["network"] for row in data[name]} >= {"InceptionV1 mixed5b", "random 3x3"}
    twin = (site / "sample/data/banding.data.js").read_text()
    assert twin.startswith('(window.VW_DATA=window.VW_DATA||{})["banding"]=')
    assert json.loads(twin.split("=", 2)[2].rstrip(";\n")) == data
    assert (site / "sample/data/banding.svg").read_text().lstrip().startswith("<svg")
    scripts = [a["src"] for a, _ in doc.script_bodies if "src" in a]
    assert scripts.index("../assets/vega.js") < scripts.index("data/banding.data.js") \
        < scripts.index("../assets/figures.js")
    assert '<div class="vw-chart" id="chart-banding"' in (site / "sample/index.html").read_text()


def test_deterministic_builds(built, tmp_path):
    root, site, cache = built
    cold = tmp_path / "cache2"
    (cold / "render").mkdir(parents=True)
    for bundle in (cache / "render").glob("vega-*.js"):  # the bundle itself is cached; figures are not
        shutil.copy(bundle, cold / "render")
    site2 = tmp_path / "site2"
    r2 = build_site(root, site2, cache_dir=cold, progress=False)
    assert r2.cache_hits == 0
    site3 = tmp_path / "site3"
    r3 = build_site(root, site3, cache_dir=cache, progress=False)  # warm cache
    assert r3.cache_hits == 3
    files = sorted(p.relative_to(site) for p in site.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(site2) for p in site2.rglob("*") if p.is_file())
    for rel in files:
        assert (site / rel).read_bytes() == (site2 / rel).read_bytes(), rel
    assert tree_digest(site) == tree_digest(site2) == tree_digest(site3)


def test_failing_build_keeps_previous_site(tmp_path):
    root = make_root(tmp_path, "Cites [@alpha2020].\n")
    site = tmp_path / "site"
    build_site(root, site, cache_dir=tmp_path / "c", progress=False)
    before = tree_digest(site)
    stale = tmp_path / ".site-tmp-999999"
    (stale / "junk").mkdir(parents=True)
    (root / "content/t/index.md").write_text((root / "content/t/index.md").read_text() + "\n[@missing]\n")
    with pytest.raises(BuildError, match="missing"):
        build_site(root, site, cache_dir=tmp_path / "c", progress=False)
    assert tree_digest(site) == before
    assert not stale.exists(), "stale temp folder of a killed build is removed"
    assert not list(tmp_path.glob(".site-tmp-*")) and not list(tmp_path.glob(".site-old-*"))


def test_link_check(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.html").write_text(
        '<a href="b.html#ok">ok</a><a href="b.html#nope">x</a><a href="#self">s</a><p id="self"></p>'
        '<a href="missing.html">m</a><a href="sub/">d</a><img src="https://ext/x.png"><a href="/abs.html">r</a>')
    (tmp_path / "b.html").write_text('<h2 id="ok">B</h2>')
    assert check_links(tmp_path) == [
        "a.html: broken link /abs.html (root-relative; use a relative URL)",
        "a.html: broken link b.html#nope (no such anchor)",
        "a.html: broken link missing.html",
        "a.html: broken link sub/ (directory; name index.html explicitly so file:// works)",
    ]


def test_strict_build_fails_on_broken_anchor(tmp_path):
    root = make_root(tmp_path, "See [below](#nowhere).\n")
    report = build_site(root, tmp_path / "site", cache_dir=tmp_path / "c", progress=False)
    assert report.warnings == ["t/index.html: broken link #nowhere (no such anchor)"]
    before = tree_digest(tmp_path / "site")
    (root / "content/t/index.md").write_text((root / "content/t/index.md").read_text() + "\nMore.\n")
    with pytest.raises(BuildError, match="broken link #nowhere"):
        build_site(root, tmp_path / "site", cache_dir=tmp_path / "c", strict=True, progress=False)
    assert tree_digest(tmp_path / "site") == before


def test_build_py_help():
    out = subprocess.run([sys.executable, str(REPO / "build.py"), "--help"], capture_output=True, text=True,
                         check=True).stdout
    for flag in ["--strict", "--debug", "--site-dir", "--cache-dir", "--clean"]:
        assert flag in out


def test_render_side_never_imports_torch_and_cache_skips_altair(built, tmp_path):
    root, _, cache = built
    code = (
        "import sys; from pathlib import Path; from article.pipeline import build_site;"
        f"r = build_site(Path({str(root)!r}), Path({str(tmp_path / 's')!r}), cache_dir=Path({str(cache)!r}),"
        " progress=False);"
        "print(r.cache_hits, 'torch' in sys.modules, 'altair' in sys.modules, 'vl_convert' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split() == ["3", "False", "False", "False"]


def test_missing_article_and_template_env(tmp_path):
    root = make_root(tmp_path)
    (root / "site.yml").write_text((root / "site.yml").read_text().replace("[t]", "[t, ghost]"))
    with pytest.raises(BuildError, match="ghost"):
        page(root)


def test_link_check_follows_symlinks_out_of_the_site(tmp_path):
    """Links are resolved as Path.resolve does: a symlinked file or folder leading out of the site, or '..', is
    outside even though the text of the link stays inside."""
    site, away = tmp_path / "site", tmp_path / "away"
    (site / "in").mkdir(parents=True)
    (away / "d").mkdir(parents=True)
    (away / "x.html").write_text("x")
    (away / "d" / "y.html").write_text("y")
    (site / "in" / "ok.html").write_text("ok")
    (site / "file.html").symlink_to(away / "x.html")
    (site / "dir").symlink_to(away / "d")
    (site / "in" / "up").symlink_to(site / "in")  # a link that stays inside
    (site / "a.html").write_text('<a href="file.html">f</a><a href="dir/y.html">d</a><a href="../away/x.html">u</a>'
                                 '<a href="in/ok.html">o</a><a href="in/up/ok.html">i</a>')
    assert check_links(site) == [
        "a.html: broken link ../away/x.html (outside the site)",
        "a.html: broken link dir/y.html (outside the site)",
        "a.html: broken link file.html (outside the site)",
    ]
