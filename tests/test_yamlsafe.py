"""YAML as authors write it (article/config/yamlsafe.py): a syntax error names the line of the mistake, not the line where
the parser gave up, and the nesting limit is this project's own, in its own words, whatever the PyYAML version."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from article.config import yamlsafe
from article.config.frontmatter import parse
from article.config.site import load_config
from article.structure.errors import BuildError

MISTAKES = {  # YAML text -> 1-based line of the mistake
    "title: [A Sample Article\ndescription: x\ndate: 2020-01-01\n": 1,  # unclosed flow sequence
    "title: {a: 1\ndescription: x\n": 1,  # unclosed flow mapping
    'title: "abc\ndescription: x\n': 1,  # unclosed quote
    "title: x\ndescription\ndate: 1\n": 2,  # a key without its colon
    "title: x\n  description: y\ndate: 1\n": 2,  # over-indented
    "models:\n  a:\n    x: 1\n   y: 2\n": 4,  # under-indented
    "authors:\n  - a\n  b: c\n": 3,  # a mapping key among list items
}


@pytest.mark.parametrize("text,line", MISTAKES.items(), ids=range(len(MISTAKES)))
def test_a_syntax_error_names_the_line_of_the_mistake(text, line, tmp_path):
    article = tmp_path / "index.md"
    article.write_text(f"---\n{text}---\n\nBody.\n", encoding="utf-8")
    with pytest.raises(BuildError) as info:
        parse(article.read_text(), article)
    assert str(info.value).startswith(f"{article}:{line + 1}: malformed YAML front matter: ")  # +1: the --- line
    (tmp_path / "site.yml").write_text(text, encoding="utf-8")
    with pytest.raises(BuildError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'site.yml'}:{line}: malformed YAML: ")


def test_nesting_is_limited_in_the_projects_words_even_when_the_parser_gives_up_first(monkeypatch):
    """PyYAML 6.0.4's libyaml stops at deep flow nesting before any event reaches the check, with its own message
    ("exceeded maximum nesting depth"); the project counts the depth itself."""
    text = "title: x\ndeep: " + "[" * 1000 + "]" * 1000 + "\n"
    with pytest.raises(BuildError, match=r"^f.md:3: YAML nested more than 40 levels deep$"):
        yamlsafe.check(text, Path("f.md"), 2)  # whatever the installed parser does

    def gives_up(*args, **kwargs):
        raise yaml.YAMLError("exceeded maximum nesting depth")
        yield  # a generator, like yaml.parse

    monkeypatch.setattr(yamlsafe.yaml, "parse", gives_up)
    with pytest.raises(BuildError, match=r"^f.md:3: YAML nested more than 40 levels deep$"):
        yamlsafe.check(text, Path("f.md"), 2)


def test_brackets_in_quotes_and_comments_are_not_nesting():
    many = "[" * 50
    text = f"a: '{many}'\nb: \"{many}\\\" {many}\"\nc: x  # {many}\nd: it's [fine]\n"
    assert yamlsafe._too_deep_flow(text) is None
    assert yamlsafe._too_deep_flow("a: " + "{b: " * 41 + "1" + "}" * 41) == 0
