"""The article body templated per segment through the render cache (article/markup/body_segments.py): the same text as
templating the whole body, one edited paragraph templated again, cached text tied to the data it read."""
from __future__ import annotations


import pytest

from article.markup import body_segments, templating
from article.structure.errors import BuildError

BODY = """{% set net = data.vw.net %}Intro with {{ net.top1 | pct(1) }} and {{ data.vw.count | thousands }}.

Plain paragraph, no template code.

{% if net.deep %}A deep net{% set depth = net.layers %} with {{ depth }} layers{% endif %}.

{% for x in range(3) %}
- item {{ x }} of {{ net.name }}
{% endfor %}

{## a comment

that spans a blank line ##}Closing {{ data.other.value | fmt(2) }}.
"""


class Data(dict):
    """``data`` as the pipeline gives it: a mapping of hook name -> dict, counting reads."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.reads = []

    def __getitem__(self, name):
        self.reads.append(name)
        return super().__getitem__(name)


def make_data(top1=0.5):
    return Data(vw={"net": {"top1": top1, "deep": True, "layers": 7, "name": "n"}, "count": 12345},
                other={"value": 3.14159})


@pytest.fixture
def templated(monkeypatch):
    """Calls to templating.render_body (what compiles Jinja), by text."""
    calls = []
    real = templating.render_body

    def spy(body, *a, **kw):
        calls.append(body)
        return real(body, *a, **kw)

    monkeypatch.setattr(templating, "render_body", spy)
    return calls


def test_segments_give_the_whole_body_text_and_an_edit_templates_one_segment_again(tmp_path, templated):
    path = tmp_path / "index.md"
    whole = templating.render_body(BODY, make_data(), path, 10)
    segments = body_segments.split(BODY, templating.make_env())
    assert segments is not None and len(segments) == 5  # the comment's two paragraphs stay one segment
    assert body_segments.render(BODY, make_data(), path, 10, tmp_path) == whole
    templated.clear()
    edited = BODY.replace("Plain paragraph", "Plain, edited paragraph")
    assert body_segments.render(edited, make_data(), path, 10, tmp_path) == whole.replace(
        "Plain paragraph", "Plain, edited paragraph")
    assert templated == ["{% set net = data.vw.net %}Plain, edited paragraph, no template code.\n\n"]
    templated.clear()
    data = make_data()
    assert body_segments.render(edited, data, path, 10, tmp_path) == whole.replace("Plain paragraph",
                                                                                   "Plain, edited paragraph")
    assert templated == [] and {"vw", "other"} <= set(data.reads)  # a hit evaluates the hooks it read


def test_cached_text_is_tied_to_the_data_it_read(tmp_path, templated):
    path = tmp_path / "index.md"
    body_segments.render(BODY, make_data(0.5), path, 10, tmp_path)
    templated.clear()
    out = body_segments.render(BODY, make_data(0.25), path, 10, tmp_path)
    assert "25.0%" in out and "50.0%" not in out
    assert len(templated) == 5  # every segment read data.vw (the set prelude)
    assert out == templating.render_body(BODY, make_data(0.25), path, 10)


@pytest.mark.parametrize("body", [
    "A {{- data.vw.count }}\n\nB\n",  # whitespace control strips across a segment's edge
    "{{ data.vw.items() }}\n\nB\n",  # a method call could change data for later text
    "{% if 1 %}{% set x = 2 %}{% endif %}\n\n{{ x }}\n",  # set inside if, used after it
    "{% set x %}block{% endset %}\n\nB\n",
    "{% macro m() %}M{% endmacro %}\n\n{{ m() }}\n",
])
def test_bodies_that_might_template_differently_in_parts_render_whole(body):
    assert body_segments.split(body, templating.make_env()) is None


def test_errors_name_the_file_line_as_the_whole_body_does(tmp_path):
    path = tmp_path / "index.md"
    body = BODY.replace("Plain paragraph", "Plain {{ nope }} paragraph")
    with pytest.raises(BuildError) as whole:
        templating.render_body(body, make_data(), path, 10)
    with pytest.raises(BuildError) as parts:
        body_segments.render(body, make_data(), path, 10, tmp_path)
    assert (parts.value.message, parts.value.line) == (whole.value.message, whole.value.line) == (
        "undefined name: 'nope' is undefined", 12)
    late_syntax = BODY.replace("Closing", "Closing {{ 1 + }}").replace("Plain paragraph", "{{ nope }}")
    with pytest.raises(BuildError) as parts:
        body_segments.render(late_syntax, make_data(), path, 10, tmp_path)
    assert parts.value.message.startswith("template syntax error")  # the first syntax error wins, as before
