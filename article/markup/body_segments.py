"""The article body's data templating per top-level segment, through the render cache: a one-sentence edit
templates one paragraph again, not the whole body (compiling ~30 KB of Markdown as one Jinja template is ~25 ms).

A segment is a run of paragraphs, cut at blank lines where every ``{% if %}``/``{% for %}``/``{% filter %}`` is
closed. It renders as its own template, after the top-level one-line ``{% set name = ... %}`` statements that came
before it (placed on its first line, so error lines hold). Jinja's output is then the concatenation of the segments'
outputs. Where that might not hold the whole body renders at once (templating.render_body), as without a cache:
whitespace control (``{%-``), any other statement, a block ``set``, a call that is not a filter, test or ``range``
(a method call could change ``data`` for later text), or text the lexer rejects (its error comes from the whole body).

A cached segment is its output (text, which goes through Markdown like any) and the sha256 of the repr of each data
hook value it read; a hit evaluates those hooks again (so the analysis files they read are recorded as before) and
compares. Only plain values (dict, list, str, number, bool, None) are compared this way; a segment that touched
anything else, or iterated ``data``, is not cached. Nothing read from the cache is executed.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import jinja2

from .. import cache
from ..config import limits
from ..structure.errors import BuildError
from . import templating

_WHITESPACE_CONTROL = re.compile(r"\{(?:%|\{|##)[-+]|[-+](?:%|\}|##)\}")  # {%- -%} {{+ ...: strip across edges
_OPENERS = {"for": "endfor", "if": "endif", "filter": "endfilter"}
_MIDDLE = {"elif", "else"}
_PURE_CALLS = {"range"}
_PARAGRAPH = re.compile(r"(?<=\n\n)(?=[^\n])")  # before the first line of text after a blank line


def _scan(tokens: list[tuple[int, str, str]]) -> tuple[int, list[str], set[str], set[str]] | None:
    """(open if/for/filter statements at the end, top-level one-line ``set`` statements, names set inside if/for,
    every name used) of a lexed segment, or None where the segment must not render apart from the rest."""
    at = [i for i, tok in enumerate(tokens) if tok[1] != "whitespace"]
    sig = [(tokens[i][1], tokens[i][2]) for i in at]
    depth, sets, inner = 0, [], set()
    for i, (t, v) in enumerate(sig):
        if t == "block_begin":
            name = sig[i + 1] if i + 1 < len(sig) else ("", "")
            if name[0] != "name":
                return None
            if name[1] in _OPENERS:
                depth += 1
            elif name[1] in _OPENERS.values():
                depth -= 1
                if depth < 0:
                    return None
            elif name[1] == "set":
                end = next((j for j in range(i, len(sig)) if sig[j][0] == "block_end"), None)
                if end is None or ("operator", "=") not in sig[i:end]:
                    return None  # a block set ({% set x %}...{% endset %})
                statement = "".join(tok[2] for tok in tokens[at[i]:at[end] + 1])
                if depth:  # inside if/for: its segment only (a later use of the name makes the body render whole)
                    eq = sig.index(("operator", "="), i)
                    inner |= {n for kind, n in sig[i + 2:eq] if kind == "name"}
                elif "\n" in statement:
                    return None
                else:
                    sets.append(statement)
            elif name[1] not in _MIDDLE:
                return None
        elif (t, v) == ("operator", "("):
            prev = sig[i - 1] if i else ("", "")
            before = sig[i - 2] if i > 1 else ("", "")
            if prev[0] == "name":
                if not (before in (("operator", "|"), ("name", "is")) or
                        (prev[1] in _PURE_CALLS and before != ("operator", "."))):
                    return None
            elif prev in (("operator", ")"), ("operator", "]")) or prev[0] == "string":
                return None
    return depth, sets, inner, {v for t, v in sig if t == "name"}


def split(body: str, env: jinja2.Environment) -> list[tuple[str, str, int]] | None:
    """(prelude of ``set`` statements, segment text, its first line in the body) in order, or None."""
    if _WHITESPACE_CONTROL.search(body):
        return None
    segments: list[tuple[str, str, int]] = []
    sets: list[str] = []
    inner: set[str] = set()
    current, start, line = "", 1, 1
    for piece in _PARAGRAPH.split(body):
        if not current:
            start = line
        current += piece
        line += piece.count("\n")
        try:  # plain prose (no "{") needs no lexing
            scanned = _scan(list(env.lex(current))) if "{" in current else (0, [], set(), set())
        except jinja2.TemplateSyntaxError:
            continue  # cut inside a tag, comment or raw block: take the next paragraph too
        if scanned is None:
            return None
        depth, new_sets, new_inner, names = scanned
        if depth:
            continue
        if names & inner:
            return None
        inner |= new_inner
        segments.append(("".join(sets), current, start))
        sets += new_sets
        current = ""
    return None if current else segments


def _plain(value: Any, depth: int = 0) -> bool:
    if depth > 100:
        return False
    if value is None or type(value) in (str, int, float, bool):
        return True
    if type(value) in (list, tuple):
        return all(_plain(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    return False


class _Recorder(Mapping):
    """``data`` as one segment sees it: which hooks it read (name -> digest), or ``opaque`` if it did more."""

    def __init__(self, data: Mapping[str, Any], digest):
        self._data, self._digest = data, digest
        self.used: dict[str, str] = {}
        self.opaque = False

    def __getitem__(self, name: str) -> Any:
        value = self._data[name]
        d = self._digest(name, value)
        if d is None:
            self.opaque = True
        else:
            self.used[name] = d
        return value

    def __contains__(self, name: object) -> bool:
        self.opaque = True
        return name in self._data

    def __iter__(self) -> Iterator[str]:
        self.opaque = True
        return iter(self._data)

    def __len__(self) -> int:
        self.opaque = True
        return len(self._data)


def render(body: str, data: Mapping[str, Any], path: Path, first_line: int, cache_dir: Path | None) -> str:
    """templating.render_body, segment by segment through the render cache (``cache_dir`` None: whole, no cache)."""
    segments = split(body, templating.make_env()) if cache_dir is not None else None
    if segments is None:
        return templating.render_body(body, data, path, first_line)
    where = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    entry = cache.entry(cache_dir, f"body-{where}", [str(path), jinja2.__version__, Path(__file__).read_bytes(),
                                                      Path(templating.__file__).read_bytes()])
    kept = cache.load(entry, json.loads)
    kept = kept if isinstance(kept, dict) else {}
    digests: dict[str, str | None] = {}

    def digest(name: str, value: Any) -> str | None:
        if name not in digests:
            digests[name] = hashlib.sha256(repr(value).encode()).hexdigest() if _plain(value) else None
        return digests[name]

    def still_valid(record: Any) -> bool:
        if not (isinstance(record, dict) and isinstance(record.get("out"), str) and
                isinstance(record.get("used"), dict)):
            return False
        for name, d in record["used"].items():
            try:
                if digest(name, data[name]) != d:
                    return False
            except KeyError:
                return False
        return True

    seconds, started = limits.render_timeout(60.0), time.monotonic()
    out, now, size = [], {}, 0
    for prelude, text, line in segments:
        key = hashlib.sha256((prelude + "\0" + text).encode()).hexdigest()
        record = kept.get(key)
        if not still_valid(record) and not prelude and "{" not in text and "\r" not in text:
            record = {"out": text, "used": {}}  # no template code: Jinja would copy the text (no worker needed)
        if not still_valid(record):
            recorder = _Recorder(data, digest)
            left = seconds - (time.monotonic() - started)
            try:
                rendered = templating.render_body(prelude + text, recorder, path, first_line + line - 1,
                                                  max(left, 0.001), templating.MAX_OUTPUT_CHARS - size, seconds)
            except templating.TemplateTimeout:
                raise  # the whole body would only take as long again
            except BuildError:  # the error as the whole body gives it (the first syntax error comes first)
                left = seconds - (time.monotonic() - started)
                return templating.render_body(body, data, path, first_line, max(left, 0.001), limit=seconds)
            record = None if recorder.opaque else {"out": rendered, "used": recorder.used}
            out.append(rendered)
        else:
            out.append(record["out"])
        size += len(out[-1])
        if size > templating.MAX_OUTPUT_CHARS:  # only cached parts can get here: the limit holds across parts
            return templating.render_body(body, data, path, first_line)
        if record is not None:
            now[key] = record
    if now != kept:
        cache.store(entry, json.dumps(now, sort_keys=True).encode())
        cache.keep_only(entry, f"body-{where}")
    return "".join(out)
