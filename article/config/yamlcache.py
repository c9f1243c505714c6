"""Parsed YAML by its text, so a build whose site.yml and front matter did not change never imports PyYAML (~8 ms
of a content-only rebuild, more than parsing itself).

A value is kept in the render cache as tagged JSON (data only: nothing read back runs), keyed by the text, the code of
the modules that read YAML and PyYAML's own files; only values parsed without error are kept, so every mistake is
still reported from the text. ``cache_dir=None`` (--debug) parses every time.
"""
from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any, Callable

from .. import cache

_READERS = ("yamlcache.py", "yamlsafe.py", "frontmatter.py", "site.py", "recipe_spec.py", "byo_spec.py")
# This process: the analysis stage and the render stage read the same files.
_seen: dict[tuple[Path | None, str, str], Any] = {}


@functools.lru_cache(maxsize=None)
def _code() -> str:
    here = Path(__file__).parent
    return cache.key([(here / name).read_bytes() for name in _READERS] + [cache.library_stamp("yaml")])


def parsed(cache_dir: Path | None, name: str, text: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` (which parses ``text``), or what it returned for the same text before. ``name``: the file the
    text comes from (one live entry each, e.g. "site" or "front-matter-<slug>")."""
    seen = (cache_dir, name, text)
    if seen in _seen:
        return _decode(_seen[seen])
    entry = cache.entry(cache_dir, f"yaml-{name}", [_code(), text]) if cache_dir is not None else None
    kept = cache.load(entry, _valid)  # a damaged or planted entry of the wrong shape is a miss
    if kept is None:
        value = compute()
        try:
            kept = _encode(value)
        except TypeError:  # a type YAML can make but this file does not keep: parse it every time
            return value
        cache.store(entry, json.dumps(kept).encode())
        cache.keep_only(entry, f"yaml-{name}")
    if len(_seen) > 256:  # a long `serve` session: every front-matter edit is a new text
        _seen.clear()
    _seen[seen] = kept
    return _decode(kept)


def _valid(raw: bytes) -> list:
    kept = json.loads(raw)
    _decode(kept)
    return kept


# Every node is [tag, payload]: JSON alone cannot tell a date from a string, a tuple from a list or a non-string key.
def _encode(v: Any) -> list:
    if v is None or isinstance(v, (bool, str)):
        return ["v", v]
    if isinstance(v, int):
        return ["i", str(v)]
    if isinstance(v, float):
        return ["f", repr(v)]  # repr round-trips exactly, nan and inf included
    if isinstance(v, dt.datetime):
        return ["t", v.isoformat()]
    if isinstance(v, dt.date):
        return ["d", v.isoformat()]
    if isinstance(v, bytes):
        return ["x", base64.b64encode(v).decode()]
    if isinstance(v, list):
        return ["l", [_encode(x) for x in v]]
    if isinstance(v, tuple):
        return ["u", [_encode(x) for x in v]]
    if isinstance(v, dict):
        return ["m", [[_encode(k), _encode(x)] for k, x in v.items()]]
    if isinstance(v, (set, frozenset)):
        return ["s", [_encode(x) for x in sorted(v, key=repr)]]
    raise TypeError(type(v).__name__)


def _decode(node: list) -> Any:
    tag, p = node
    if tag == "v":
        if p is not None and not isinstance(p, (bool, str)):
            raise ValueError("not a plain value")
        return p
    return {"i": int, "f": float, "t": dt.datetime.fromisoformat, "d": dt.date.fromisoformat,
            "x": lambda s: base64.b64decode(s, validate=True),
            "l": lambda xs: [_decode(x) for x in xs], "u": lambda xs: tuple(_decode(x) for x in xs),
            "m": lambda kvs: {_decode(k): _decode(x) for k, x in kvs},
            "s": lambda xs: {_decode(x) for x in xs}}[tag](p)
