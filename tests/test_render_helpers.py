"""Shared helpers (no tests) for tests/test_render_*.py: tiny project roots built in a temp folder."""
from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

from article.pipeline import build_site

REPO = Path(__file__).resolve().parent.parent

FRONT = """\
title: Test Article
description: A test.
date: 2024-03-01
authors:
  - name: Ann Author
    affiliation: Lab
bibliography: refs.bib
"""

BIB = """\
@article{alpha2020,
  author = {Alpha, Ann and Beta, Bob},
  title = {First Paper},
  journal = {Journal A},
  year = {2020}
}

@article{beta2021,
  author = {Gamma, Gil},
  title = {Second Paper},
  journal = {Journal B},
  year = {2021}
}
"""

SITE = """\
title: Test Site
description: Tests.
site_url: https://example.org/repo/
articles: [{slugs}]
"""


def make_root(tmp: Path, body: str = "Hello.\n", front: str = FRONT, bib: str | None = BIB,
              slug: str = "t") -> Path:
    """A project root with site.yml and one article ``content/<slug>``; templates come from the repo."""
    root = tmp / "root"
    (root / "content" / slug).mkdir(parents=True, exist_ok=True)
    (root / "site.yml").write_text(SITE.format(slugs=slug))
    (root / "content" / slug / "index.md").write_text("---\n" + front + "---\n" + textwrap.dedent(body))
    if bib is not None:
        (root / "content" / slug / "refs.bib").write_text(bib)
    return root


def sample_root(tmp: Path, listed: bool = True) -> Path:
    """A root holding only the repo's sample article (independent of the real site.yml). listed: the sample as an
    article of one's own would be, on the index, feed and sitemap (the repo's copy says `listed: false`)."""
    root = tmp / "sample-root"
    shutil.copytree(REPO / "content" / "sample", root / "content" / "sample")
    if listed:
        index = root / "content" / "sample" / "index.md"
        text = index.read_text(encoding="utf-8")
        assert "\nlisted: false" in text
        index.write_text(text.replace("\nlisted: false", "\nlisted: true", 1), encoding="utf-8")
    (root / "site.yml").write_text(SITE.format(slugs="sample").replace("Test Site", "Sample Site"))
    return root


def build(root: Path, cache: Path | None = None, **kw) -> Path:
    site = root.parent / "site"
    build_site(root, site, cache_dir=cache or root.parent / "cache", progress=False, **kw)
    return site


def page(root: Path, slug: str = "t", **kw) -> str:
    return (build(root, **kw) / slug / "index.html").read_text()


def test_a_narrow_spec_names_what_it_shares_with_the_wide_one_and_expands_back():
    from article.figures.figrender import REF, expand_shared, shared_parts

    view = {"mark": "rect", "transform": [{"calculate": f"datum.x + {i}", "as": f"x{i}"} for i in range(6)]}
    wide = {"hconcat": [dict(view, width=430), {"vconcat": [{"title": "t" * 80}, {"title": "u" * 80}]}],
            "config": {"font": "Arimo, sans-serif" * 5}}
    narrow = {"vconcat": [dict(view, width=300), {"title": "t" * 80}, {"title": "u" * 80}],
              "config": {"font": "Arimo, sans-serif" * 5}}
    shared = shared_parts(narrow, wide)
    assert shared["vconcat"][0]["width"] == 300 and shared["vconcat"][0]["transform"] == {
        REF: ["hconcat", 0, "transform"]}
    assert shared["vconcat"][1] == {REF: ["hconcat", 1, "vconcat", 0]} and shared["config"] == {REF: ["config"]}
    assert len(json.dumps(shared)) < len(json.dumps(narrow)) / 2
    assert expand_shared(shared, wide) == narrow


def test_rows_kept_out_of_altair_give_the_spec_altair_gives_with_them_inline():
    """A figure's rows go to Altair by name while it is drawn (chart_data.py: Altair copies and validates inline rows
    at every step); figrender puts them back, and the spec and datasets are those of the rows given inline."""
    import altair as alt

    from article.figures import chart_data
    from article.figures.figrender import split_data
    from article.figures.registry import FigureContext

    rows = [{"x": i, "y": (i * 7) % 5, "label": f"n{i}"} for i in range(50)]
    marks = [{"x": 10.5}]

    def compose():
        base = alt.Chart(chart_data.inline(rows)).mark_point().encode(x="x:Q", y="y:Q", tooltip=["label:N"])
        rule = alt.Chart(chart_data.inline(marks)).mark_rule().encode(x="x:Q")
        return alt.layer(base, rule).properties(width=300)

    ctx = FigureContext(article={}, site={}, cache_dir=Path("."), slug="s", figure_id="f")
    inline_spec, inline_data = split_data(compose().to_dict(), "f", ctx)
    with chart_data.collecting() as kept:
        chart = compose()
    assert "values" not in json.dumps(chart.to_dict())  # Altair saw names only
    assert len(kept) == 2
    named_spec, named_data = split_data(chart.to_dict(), "f", ctx, kept)
    assert named_data == inline_data and sorted(named_data) == sorted(kept)
    assert named_data[chart_data.dataset_name(rows)] == rows
    assert json.dumps(named_spec, sort_keys=True) == json.dumps(inline_spec, sort_keys=True)
