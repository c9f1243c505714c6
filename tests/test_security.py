"""Security properties of the built site: a strict CSP on every page, autoescaping, raw HTML escaped by default.

Two render-only builds of the sample article (no analysis, about a second each): the sample as it is, and a
hostile copy whose front matter and body try to inject script.
"""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hardening_util import check_ok, make_root, run_build

INJECT = "</script><script>alert('pwned')</script>"
HOSTILE_TITLE = f'Weights {INJECT} & "quotes"'


class Page(HTMLParser):
    """Tags of one page, with the text of each <script> element."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self.scripts.append((dict(attrs), ""))

    def handle_data(self, data):
        if self.lasttag == "script" and self.scripts:
            attrs, body = self.scripts[-1]
            self.scripts[-1] = (attrs, body + data)


def build(tmp: Path, hostile: bool = False) -> Path:
    root = make_root(tmp / "root", ["sample"])
    if hostile:
        index = root / "content" / "sample" / "index.md"
        text = index.read_text(encoding="utf-8")
        text = text.replace("title: A Sample Article", f"title: {json.dumps(HOSTILE_TITLE)}")
        text = text.replace("  - name: Grace Sample", f"  - name: {json.dumps('Grace ' + INJECT)}")
        text = text.replace("\n---\n", "\nraw_html: true\n---\n", 1)
        text += "\nTrusted markup: <b class=\"raw-ok\">bold</b>.\n"
        index.write_text(text, encoding="utf-8")
    check_ok(run_build(root, tmp / "site", tmp / "cache"))
    return tmp / "site"


# Hostile Markdown with raw_html OFF (the default): every line tries to get markup, an event handler or a
# javascript:/data: URL onto the page. Each is a case of its own: CASES_SANITIZED counts them.
HOSTILE_BODY = r"""
Math text: $\text{<script>alert('pwned')</script>}$ and $\text{<meta http-equiv="refresh" content="0;url=https://evil.example/">}$.

Display: $$\mbox{<img src=x onerror=alert(1)>}$$

Math link: $\href{javascript:alert(1)}{x}$ and style $\style{background:url(https://evil.example/)}{y}$; plain x&y: $\mathrm{x&y}$.

Click me.
{: onclick="alert(1)" style="color:red" class="ok-class" id="ok-id" }

## A heading {: onmouseover="alert(1)" }

[inline](javascript:alert(1)) [upper](JAVASCRIPT:alert(1)) [tab](java&#x09;script:alert(1))
[spaced]( javascript:alert(1)) [data](data:text/html;base64,PHNjcmlwdD4=) [vb](vbscript:msgbox)
[reference][evil] ![image](javascript:alert(1)) <javascript:alert(1)>

[fine](https://example.org/fine) [mail](mailto:someone@example.org) [anchor](#weights-as-pictures)
[relative](../index.html)

A bad reference [@evilurl].

[evil]: javascript:alert(1)
"""
CASES_SANITIZED = 21  # hostile constructs above (math x6, attribute lists x3, URLs x12), each checked below
EVIL_BIB = "\n@misc{evilurl,\n  title = {Evil link},\n  url = {javascript:alert(1)},\n  year = {2020}\n}\n"


def build_sanitized(tmp: Path) -> Path:
    root = make_root(tmp / "root", ["sample"])
    index = root / "content" / "sample" / "index.md"
    index.write_text(index.read_text(encoding="utf-8") + HOSTILE_BODY, encoding="utf-8")
    bib = root / "content" / "sample" / "refs.bib"
    bib.write_text(bib.read_text(encoding="utf-8") + EVIL_BIB, encoding="utf-8")
    check_ok(run_build(root, tmp / "site", tmp / "cache"))
    return tmp / "site"


@pytest.fixture(scope="module")
def sanitized_site(tmp_path_factory) -> Path:
    return build_sanitized(tmp_path_factory.mktemp("sanitized"))


def test_math_text_is_escaped(sanitized_site):
    article = (sanitized_site / "sample" / "index.html").read_text(encoding="utf-8")
    page = Page(article)
    tags = {t for t, _ in page.tags}
    assert "script" not in {t for t, a in page.tags if not a.get("src") and a.get("type") != "application/json"}
    assert not [a for t, a in page.tags if t == "meta" and (a.get("http-equiv") or "").lower() == "refresh"]
    assert "img" not in tags or all(a.get("src") != "x" for t, a in page.tags if t == "img")
    assert "<mtext>&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;</mtext>" in article  # shown, as text
    assert "&lt;meta&#x000A0;http-equiv" in article and "&lt;img&#x000A0;src=x" in article
    assert "<mi mathvariant=\"normal\">&amp;</mi>" in article  # a bare & in math is escaped too
    maths = [a for t, a in page.tags if t in ("mrow", "mstyle", "mi", "mtext", "math")]
    assert not [a for a in maths if "href" in a or "style" in a], "\\href / \\style reached the page"


def test_attribute_lists_keep_only_safe_attributes(sanitized_site):
    page = Page((sanitized_site / "sample" / "index.html").read_text(encoding="utf-8"))
    handlers = [(t, k) for t, a in page.tags for k in a if k.lower().startswith("on")]
    assert not handlers, handlers
    styles = [(t, a) for t, a in page.tags if "style" in a]
    assert not styles, styles
    assert any(t == "p" and a.get("class") == "ok-class" and a.get("id") == "ok-id" for t, a in page.tags)


def test_only_safe_url_schemes(sanitized_site):
    page = Page((sanitized_site / "sample" / "index.html").read_text(encoding="utf-8"))
    urls = [a.get("href") or a.get("src") or "" for t, a in page.tags if t in ("a", "img", "area")]
    bad = [u for u in urls if re.sub(r"[\x00-\x20]", "", u).lower().startswith(("javascript:", "data:", "vbscript:"))
           or "script:" in u.lower()]
    assert not bad, bad
    for good in ("https://example.org/fine", "mailto:someone@example.org", "#weights-as-pictures", "../index.html"):
        assert good in urls, (good, "a safe link was dropped")
    article = (sanitized_site / "sample" / "index.html").read_text(encoding="utf-8")
    assert "Evil link" in article  # the reference is listed, just not linked


def test_planted_jinja_bytecode_never_runs(tmp_path):
    """The render cache is restored by CI from actions/cache: a file planted where Jinja's bytecode cache would look
    must not run. (Jinja's FileSystemBytecodeCache unmarshals code objects; the build no longer uses it.)"""
    import jinja2

    root = make_root(tmp_path / "root", ["sample"])
    cache = tmp_path / "cache"
    marker = tmp_path / "PWNED"
    (cache / "jinja").mkdir(parents=True)
    bcc = jinja2.FileSystemBytecodeCache(str(cache / "jinja"))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(root / "templates")))
    for name in env.list_templates(extensions=["html", "xml"]):
        source, filename, _ = env.loader.get_source(env, name)
        bucket = bcc.get_bucket(env, name, filename, source)
        bucket.code = compile(f"import pathlib; pathlib.Path({str(marker)!r}).touch()", filename, "exec")
        bcc.set_bucket(bucket)
    assert list((cache / "jinja").glob("*.cache"))
    run_build(root, tmp_path / "site", cache)
    assert not marker.exists(), "a file planted in the cache ran code during the build"


@pytest.fixture(scope="module")
def sample_site(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("hostile"), hostile=True)


def pages(site: Path) -> list[Path]:
    found = sorted(p for p in site.rglob("*.html") if not any(x.startswith(".") for x in p.relative_to(site).parts))
    assert len(found) >= 3, found  # index, 404, the article
    return found


def csp_of(page: Page) -> dict[str, list[str]]:
    metas = [a for t, a in page.tags if t == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy"]
    assert len(metas) == 1, "expected exactly one CSP meta"
    policy: dict[str, list[str]] = {}
    for directive in (metas[0].get("content") or "").split(";"):
        if directive.strip():
            name, *values = directive.split()
            policy[name] = values
    return policy


@pytest.mark.parametrize("which", ["sample_site", "hostile_site"])
def test_every_page_has_a_strict_csp(which, request):
    for path in pages(request.getfixturevalue(which)):
        page = Page(path.read_text(encoding="utf-8"))
        policy = csp_of(page)
        assert policy.get("default-src") == ["'self'"], (path, policy)
        script_src = policy.get("script-src", policy["default-src"])
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, (path, policy)
        assert not any(v.startswith("http") or v in ("*", "data:") for v in script_src), (path, policy)
        # The CSP meta must come before anything it governs.
        first_script = next((i for i, (t, _) in enumerate(page.tags) if t in ("script", "link", "img")), len(page.tags))
        csp_at = next(i for i, (t, a) in enumerate(page.tags) if t == "meta" and a.get("http-equiv"))
        assert csp_at < first_script, path
        # Inline code would be blocked by the CSP anyway; the build must not rely on it.
        for attrs, body in page.scripts:
            assert attrs.get("src") or attrs.get("type") == "application/json", (path, attrs, body[:80])
        handlers = [(t, k) for t, a in page.tags for k in a if k.lower().startswith("on")]
        assert not handlers, (path, handlers)


def test_front_matter_is_autoescaped(hostile_site):
    """A title or author name with markup appears as text everywhere: pages, JSON data, feed, sitemap."""
    for path in sorted(p for p in hostile_site.rglob("*") if p.is_file() and p.suffix in (".html", ".xml", ".json", ".js")):
        text = path.read_text(encoding="utf-8", errors="replace")
        assert "<script>alert(" not in text, f"unescaped injection in {path}"
    article = (hostile_site / "sample" / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(" in article  # shown as text, not dropped
    page = Page(article)
    titles = [a.get("content") for t, a in page.tags if t == "meta" and a.get("property") == "og:title"]
    assert titles == [HOSTILE_TITLE]  # the attribute round-trips exactly: escaped, not mangled


def test_raw_html_is_escaped_by_default(sample_site):
    article = (sample_site / "sample" / "index.html").read_text(encoding="utf-8")
    assert "&lt;b&gt;this is not bold&lt;/b&gt;" in article
    assert "<b>this is not bold</b>" not in article


def test_raw_html_passes_when_the_article_opts_in(hostile_site):
    article = (hostile_site / "sample" / "index.html").read_text(encoding="utf-8")
    assert '<b class="raw-ok">bold</b>' in article
    assert "<b>this is not bold</b>" in article


def test_no_external_resources(sample_site):
    """Nothing is loaded from another origin (no CDNs): every src/href to a resource is relative."""
    for path in pages(sample_site):
        page = Page(path.read_text(encoding="utf-8"))
        for tag, attrs in page.tags:
            url = attrs.get("src") if tag in ("script", "img", "iframe") else (
                attrs.get("href") if tag == "link" and attrs.get("rel") in ("stylesheet", "preload", "icon") else None)
            assert url is None or not re.match(r"^(https?:)?//", url), (path, tag, url)
