"""YAML front matter: split it off an article and validate it into a typed record (FrontMatter, Source: the types every
stage shares, structure/types.py)."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Callable

from ..structure.errors import BuildError
from ..structure.types import Author, FrontMatter, Source, Update
from ..structure.urls import SAFE_SCHEMES, safe_url
from . import yamlcache

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def split(text: str, path: Path) -> tuple[str, str, int]:
    """Return (yaml_text, body, body_line). The file must start with a ``---`` line."""
    if text.startswith("\ufeff"):
        text = text[1:]  # a UTF-8 byte order mark (Windows editors) before the first '---'
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise BuildError("missing front matter (file must start with a '---' line)", path, 1)
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "".join(lines[1:i]), "".join(lines[i + 1:]), i + 2
    raise BuildError("unterminated front matter (no closing '---' line)", path, 1)


def _key_lines(yaml_text: str) -> dict[str, int]:
    """Top-level key -> 1-based line within the YAML text (for error messages)."""
    import yaml

    from . import yamlsafe

    node = yaml.compose(yaml_text, Loader=yamlsafe.SAFE_LOADER)
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


def _bad_date(yaml_text: str) -> tuple[str, int] | None:
    """(key, line within the YAML) of the first date-looking scalar that is not a real date."""
    import yaml

    from . import yamlsafe

    stack: list[tuple[yaml.Node, str]] = [(yaml.compose(yaml_text, Loader=yamlsafe.SAFE_LOADER), "?")]
    while stack:
        node, key = stack.pop(0)
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":timestamp"):
            try:
                dt.date.fromisoformat(node.value[:10])
            except ValueError:
                return key, node.start_mark.line + 1
        elif isinstance(node, yaml.MappingNode):
            stack += [(v, getattr(k, "value", key)) for k, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(v, key) for v in node.value]
    return None


def parse(text: str, path: Path, cache_dir: Path | None = None) -> Source:
    """Split and validate an article file; errors are ``BuildError(path:line: message)``. ``cache_dir``: keep the
    parsed YAML in the render cache (yamlcache.py)."""
    yaml_text, body, body_line = split(text, path)
    lines, data = yamlcache.parsed(cache_dir, f"front-matter-{path.parent.name}", yaml_text,
                                   lambda: _parse_yaml(yaml_text, path))
    if not isinstance(data, dict):
        raise BuildError("front matter must be a YAML mapping", path, 2)
    return Source(path=path, meta=_validate(data, lines, path), body=body, body_line=body_line)


def _parse_yaml(yaml_text: str, path: Path) -> tuple[dict[str, int], Any]:
    """(top-level key -> line, the value) of the front matter."""
    import yaml

    from . import yamlsafe

    yamlsafe.check(yaml_text, path, 2)  # aliases, nesting: before anything walks the tree
    try:
        return _key_lines(yaml_text), yamlsafe.load(yaml_text, path, 2) or {}
    except ValueError as exc:  # PyYAML builds dates itself: 2024-13-45 raises a bare ValueError
        key, line = _bad_date(yaml_text) or ("?", None)
        raise BuildError(f"front matter field '{key}' is not a valid date: {exc}", path,
                         line + 1 if line else None) from None
    except yaml.YAMLError as exc:
        line = yamlsafe.mistake_line(exc)
        problem = getattr(exc, "problem", None) or str(exc)
        raise BuildError(f"malformed YAML front matter: {problem}", path,
                         line + 2 if line is not None else 1) from None


# Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): text that displays in another
# order than it reads ("Trojan Source"), in a title, an author's name or a model's factory alike. A right-to-left
# script needs none of them.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _bidi_control(value: Any, where: str, depth: int = 0) -> tuple[str, str] | None:
    """(field, character) of the first bidirectional control character in a front matter value, keys included."""
    if isinstance(value, str):
        found = _BIDI.search(value)
        return (where, found.group()) if found else None
    if depth > 60:
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        inner = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key)
        hit = (_bidi_control(key, inner, depth + 1) if isinstance(key, str) else None) or \
            _bidi_control(item, inner, depth + 1)
        if hit:
            return hit
    return None


def checked_text(fail: Callable[[str, str], Exception], name: str, value: Any, required: bool = True) -> str | None:
    """A non-empty string without control characters (None when optional and absent); else ``fail(name, why)``."""
    if value is None and not required:
        return None
    if value is None:
        raise fail(name, "is required")
    if not isinstance(value, str) or not value.strip():
        raise fail(name, f"must be a non-empty string, got {type(value).__name__}")
    bad = next((ch for ch in value if ord(ch) < 32 and ch not in "\t\n\r" or ch == "\x7f"), None)
    if bad is not None:
        raise fail(name, f"contains the control character U+{ord(bad):04X}")
    return value.strip()


def checked_url(fail: Callable[[str, str], Exception], name: str, value: Any) -> str | None:
    """An optional link: a safe scheme or a relative URL."""
    value = checked_text(fail, name, value, False)
    if value is not None and not safe_url(value):
        raise fail(name, f"must be an {', '.join(SAFE_SCHEMES)} or relative URL, got {value[:60]!r}")
    return value


def parse_authors(value: Any, fail: Callable[[str, str], Exception]) -> tuple[Author, ...]:
    """A non-empty list of {name, url?, affiliation?, affiliation_url?} (or plain names), checked; ``fail(field,
    message)`` makes the error (front matter or site.yml)."""
    def text(name: str, v: Any, required: bool = True) -> str | None:
        return checked_text(fail, name, v, required)

    def url(name: str, v: Any) -> str | None:
        return checked_url(fail, name, v)

    if not isinstance(value, list) or not value:
        raise fail("authors", "must be a non-empty list of {name, url?, affiliation?, affiliation_url?}")
    authors = []
    for i, a in enumerate(value):
        where = f"authors[{i}]"
        if isinstance(a, str):
            a = {"name": a}
        if not isinstance(a, dict):
            raise fail(where, "must be a mapping with a 'name'")
        unknown = set(a) - {"name", "url", "affiliation", "affiliation_url"}
        if unknown:
            raise fail(where, f"has unknown key(s) {sorted(unknown)}")
        authors.append(Author(name=text(f"{where}.name", a.get("name")), url=url(f"{where}.url", a.get("url")),
                              affiliation=text(f"{where}.affiliation", a.get("affiliation"), False),
                              affiliation_url=url(f"{where}.affiliation_url", a.get("affiliation_url"))))
    return tuple(authors)


def _validate(d: dict[str, Any], lines: dict[str, int], path: Path) -> FrontMatter:
    def fail(name: str, msg: str) -> BuildError:
        # +1: the YAML text starts on file line 2.
        return BuildError(f"front matter field '{name}' {msg}", path, lines.get(re.split(r"[.\[]", name)[0], 0) + 1)

    bidi = _bidi_control(d, "")
    if bidi:
        raise fail(bidi[0], f"contains the bidirectional control character U+{ord(bidi[1]):04X}, which makes text "
                            "display in another order than it reads; remove it")

    def text(name: str, value: Any, required: bool = True) -> str | None:
        return checked_text(fail, name, value, required)

    def date(name: str, value: Any, required: bool = True) -> dt.date | None:
        if value is None and not required:
            return None
        if value is None:
            raise fail(name, "is required")
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str) and _DATE.match(value):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise fail(name, f"must be a date YYYY-MM-DD, got {value!r}")

    def mapping(name: str) -> dict[str, Any]:
        value = d.get(name) or {}
        if not isinstance(value, dict):
            raise fail(name, f"must be a mapping, got {type(value).__name__}")
        return value

    # No authors: the site's (site.yml `authors:`), filled in by the pipeline.
    authors = parse_authors(d["authors"], fail) if "authors" in d else ()

    updates_raw = d.get("updates") or []
    if not isinstance(updates_raw, list):
        raise fail("updates", "must be a list of {date, text}")
    updates = []
    for i, u in enumerate(updates_raw):
        if not isinstance(u, dict):
            raise fail(f"updates[{i}]", "must be a mapping {date, text}")
        updates.append(Update(date(f"updates[{i}].date", u.get("date")),
                              text(f"updates[{i}].text", u.get("text"))))

    raw_html = d.get("raw_html", False)
    if not isinstance(raw_html, bool):
        raise fail("raw_html", f"must be true or false, got {raw_html!r}")
    listed = d.get("listed", True)
    if not isinstance(listed, bool):
        raise fail("listed", f"must be true or false, got {listed!r}")
    doi = d.get("doi")
    if doi is not None:
        doi = text("doi", str(doi))

    return FrontMatter(
        title=text("title", d.get("title")),
        description=text("description", d.get("description")),
        date=date("date", d.get("date")),
        authors=authors,
        bibliography=text("bibliography", d.get("bibliography"), False),
        updated=date("updated", d.get("updated"), False),
        doi=doi,
        acknowledgements=text("acknowledgements", d.get("acknowledgements"), False),
        contributions=text("contributions", d.get("contributions"), False),
        updates=tuple(sorted(updates, key=lambda u: u.date)),
        raw_html=raw_html,
        listed=listed,
        models=mapping("models"),
        analysis=mapping("analysis"),
        raw=d,
        lines={str(k): v + 1 for k, v in lines.items()},
    )
