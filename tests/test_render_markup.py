"""Article body rendering: data templating, citations, figures, math, footnotes, raw HTML."""
from __future__ import annotations

import re

import pytest

from article.structure.errors import BuildError
from test_render_helpers import FRONT, make_root, page

# File layout of make_root: line 1 "---", 7 front matter lines, line 9 "---", body from line 10.
BODY_LINE = 10


def error_of(tmp_path, body, **kw) -> BuildError:
    root = make_root(tmp_path, body, **kw)
    with pytest.raises(BuildError) as exc:
        page(root)
    return exc.value


def test_citations_numbered_by_first_use_with_references(tmp_path):
    html = page(make_root(tmp_path, "See [@beta2021; @alpha2020].\n\nAgain [@alpha2020].\n"))
    body = html.split('class="d-body"')[1]
    nums = re.findall(r'<a class="cite" href="#ref-(\w+)"[^>]*>(\d+)</a>', body)
    assert nums == [("beta2021", "1"), ("alpha2020", "2"), ("alpha2020", "2")]
    refs = re.findall(r'<li id="ref-(\w+)" value="(\d+)">([^<]*)', html)
    assert [(k, n) for k, n, _ in refs] == [("beta2021", "1"), ("alpha2020", "2")]
    assert "Ann Alpha and Bob Beta" in html
    assert "First Paper" in html and "<em>Journal A</em>" in html


def test_unknown_citation_key_names_key_file_and_line(tmp_path):
    err = error_of(tmp_path, "Intro.\n\nText [@alpha2020; @nobody99].\n")
    assert "nobody99" in str(err)
    assert err.path.endswith("index.md")
    assert err.line == BODY_LINE + 2


def test_malformed_bib_names_bib_file(tmp_path):
    err = error_of(tmp_path, "[@alpha2020]\n", bib="@article{x,\n  title = {oops\n")
    assert err.path.endswith("refs.bib")
    assert "malformed bibliography" in str(err)


def test_figures_numbered_and_referenced(tmp_path):
    body = """\
    Forward ref to @fig:second and @fig:first.

    ::: figure id=first kind=sample_tiles n=2
    First caption citing [@alpha2020].
    :::

    ::: figure id=second kind=sample_tiles n=3 width=l-page
    Second caption, see @fig:first.
    :::
    """
    html = page(make_root(tmp_path, body))
    assert re.findall(r'<a class="fig-ref" href="#fig-(\w+)">Figure (\d)</a>', html) == [
        ("second", "2"), ("first", "1"), ("first", "1")]
    assert '<figure id="fig-first" class="vw-figure l-body"' in html
    assert '<figure id="fig-second" class="vw-figure l-page"' in html
    assert re.search(r'<span class="fig-label">Figure 1:</span> First caption citing', html)
    assert re.search(r'<span class="fig-label">Figure 2:</span> Second caption', html)
    # assets of the html figure are written under the figure's data folder
    site = tmp_path / "site"
    assert (site / "t" / "data" / "second" / "tile-2.png").is_file()
    assert not (site / "t" / "data" / "second" / "tile-3.png").exists()


def test_unknown_figure_ref_kind_and_attrs(tmp_path):
    err = error_of(tmp_path, "One.\n\nSee @fig:missing here.\n")
    assert "@fig:missing" in str(err) and err.line == BODY_LINE + 2
    err = error_of(tmp_path, "One.\n\n::: figure id=a kind=no_such_kind\ncap\n:::\n")
    assert "no_such_kind" in str(err) and err.line == BODY_LINE + 2
    err = error_of(tmp_path, "::: figure kind=sample_tiles\ncap\n:::\n")
    assert "id=" in str(err) and err.line == BODY_LINE
    err = error_of(tmp_path, "::: figure id=a kind=sample_tiles\ncap\n")
    assert "never closed" in str(err)
    err = error_of(tmp_path, "::: figure id=a kind=sample_tiles width=huge\ncap\n:::\n")
    assert "width" in str(err)


def test_math_to_mathml_and_dollars_in_code(tmp_path):
    body = r"""
    Inline $\alpha^2$ and display:

    $$
    \sum_i w_i
    $$

    Costs $5 and $10. Code `$x$` stays. Escaped \$3.

    ```python
    s = "$y$ [@nokey] @fig:nofig"
    ```
    """
    html = page(make_root(tmp_path, body))
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow><msup><mi>&#x003B1;</mi>' in html
    assert 'display="block"' in html and "&#x02211;" in html
    assert "Costs $5 and $10." in html
    assert "<code>$x$</code>" in html
    assert "&#36;3" in html
    assert "$y$ [@nokey] @fig:nofig" in html.replace("&quot;", '"').replace('<span class="s2">', "").replace("</span>", "")
    assert "nokey" not in html.split("<pre>")[0]


def test_bad_tex_is_build_error_with_line(tmp_path):
    err = error_of(tmp_path, "ok\n\nbad $\\frac{$ here\n")
    assert err.line == BODY_LINE + 2 and "TeX" in str(err)


def test_footnotes_in_appendix(tmp_path):
    html = page(make_root(tmp_path, "Claim[^n] here.\n\n[^n]: The note, citing [@beta2021].\n"))
    assert '<sup id="fnref:n"><a class="footnote-ref" href="#fn:n">1</a></sup>' in html
    appendix = html.split('class="d-appendix')[1]
    assert '<li id="fn:n">' in appendix and "The note, citing" in appendix


def test_raw_html_escaped_unless_opted_in(tmp_path):
    body = "Text <b>bold</b>.\n\n<div class=\"x\">block</div>\n"
    html = page(make_root(tmp_path / "a", body))
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert '&lt;div class="x"&gt;' in html.replace("&quot;", '"')
    html = page(make_root(tmp_path / "b", body, front=FRONT + "raw_html: true\n"))
    assert "<b>bold</b>" in html and '<div class="x">block</div>' in html


def test_template_data_and_undefined_name(tmp_path):
    html = page(make_root(tmp_path / "a", "R is {{ data.sample.banding['VGG19 conv5'] | fmt(1) }}.\n"))
    assert "R is 0.9." in html
    err = error_of(tmp_path / "b", "One.\n\nTwo {{ data.sample.nope }}.\n")
    assert "nope" in str(err) and err.line == BODY_LINE + 2


def test_headings_toc_and_layout(tmp_path):
    body = """\
    ## First $x$ part

    ### Sub

    ::: aside
    A margin *note*.
    :::

    Wide paragraph.
    {: .l-page }
    """
    html = page(make_root(tmp_path, body))
    assert '<h2 id="first-x-part">' in html
    assert '<a href="#first-x-part">First x part</a>' in html  # TOC uses plain text for math
    assert '<aside class="l-gutter">\n<p>A margin <em>note</em>.</p>\n</aside>' in html
    assert '<p class="l-page">Wide paragraph.</p>' in html


def test_appendix_cite_block(tmp_path):
    front = FRONT + "doi: 10.1/xyz\nacknowledgements: Thanks *all*.\ncontributions: Ann did it.\n" \
        "updates:\n  - {date: 2024-05-02, text: Fixed a typo.}\n"
    html = page(make_root(tmp_path, "Hi.\n", front=front))
    assert "<em>all</em>" in html and "Ann did it." in html and "Fixed a typo." in html
    assert "@article{author2024test," in html
    assert "author = {Author, Ann}" in html
    assert "note = {https://example.org/repo/t/index.html}" in html
    assert "doi = {10.1/xyz}" in html
    assert "Author, &#34;Test Article&#34;, Test Site, 2024." in html


@pytest.mark.parametrize("text", [
    "Prose with `inline` code, a list:\n\n- one\n- two\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n",
    "Text\n\n```python\nx = 1\n```\n",
    "Text\n\n~~~\nplain\n~~~\n",
    "Text\n\n    indented = True\n",
    "Text\n\n\tindented_by_tab = True\n",
    "> quoted\n>\n>     indented_in_quote = True\n",
    "- item\n\n        code_in_item = True\n",
])
def test_code_extensions_left_out_only_where_they_change_nothing(text):
    """make_markdown(code=has_code(text)) gives what the full parser gives: code blocks keep their Pygments
    markup; prose skips loading the code extensions."""
    from article.markup.renderer import has_code, make_markdown

    full = make_markdown(False, True, code=True).convert(text)
    assert make_markdown(False, True, code=has_code(text)).convert(text) == full
    assert has_code(text) == ("highlight" in full)


def test_a_directive_registers_itself_and_the_renderer_finds_it(tmp_path):
    """A new `::: name` directive is one registered function (article/markup/directives.py), no edit of the renderer: it
    gets its default width, Markdown inside it is rendered, and it is listed among the known ones in errors."""
    from pathlib import Path

    from article.markup import directives
    from article.markup.bibliography import Citations
    from article.markup.renderer import Renderer

    @directives.register("note", width="l-page")
    def note(ctx, block, attrs, line):
        return ctx.block_html(f'<div class="note {attrs["width"]}" data-line="{line}">'
                              f'{ctx.fragment(block.text, block.line + 1)}</div>')

    try:
        body = "Intro.\n\n::: note\nSome *emphasis*.\n:::\n\nAfter.\n"
        renderer = Renderer(Path("index.md"), body, 10, Citations({}, None), set(), lambda *a: "")
        html = renderer.render(body).html
        assert re.search(r'<div class="note l-page" data-line="12"><p>Some <em>emphasis</em>.</p>\s*</div>', html), html
        with pytest.raises(BuildError, match=r"unknown directive '::: nope' \(aside, figure, layout, note\)"):
            Renderer(Path("index.md"), "::: nope\nx\n:::\n", 1, Citations({}, None), set(), lambda *a: "").render(
                "::: nope\nx\n:::\n")
    finally:
        directives.DIRECTIVES.pop("note")
