"""What a figure read, part by part: a figure's cache entry holds what it read, not the whole file it read it from.

Most figures read the analysis manifest, which changes whenever any model is analysed again; keyed by the whole
file, editing one model's front matter entry re-rendered 17 of 20 figures when only 5 show that model. A figure
reads the manifest (and its article's front matter, and site.yml) through ``Parts``, a read-only view that records,
in the figure's ``reads``, the digest of every value it took (a model's ``tensors``, its ``label``), of every key
list it walked (the models, in order) and whether a key it asked for was there. ``still_valid`` checks those parts
against the current file. Each record is named ``<source>#<kind>:<JSON path>``; ``<source>@`` keeps the digest of the
whole source when the parts were taken: while it is unchanged, every part is (the fast path of every build).

Lists are values (taken whole); a view is not JSON (``json.dumps`` fails loudly rather than reading untracked).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any, Callable

VALUE, KEYS, HAS = "value", "keys", "has"


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def name(source: str, kind: str, path: tuple[str, ...]) -> str:
    return f"{source}#{kind}:{json.dumps(list(path), separators=(',', ':'))}"


class Parts(Mapping):
    """A JSON object (``data``, from ``source``) that records in ``reads`` what is read of it."""

    __slots__ = ("_data", "_source", "_reads", "_path")

    def __init__(self, data: dict, source: str, reads: dict[str, str], path: tuple[str, ...] = ()):
        self._data, self._source, self._reads, self._path = data, source, reads, path

    def _note(self, kind: str, path: tuple[str, ...], value: str) -> None:
        self._reads.setdefault(name(self._source, kind, path), value)

    def __getitem__(self, key: str) -> Any:
        path = self._path + (key,)
        if key not in self._data:
            self._note(HAS, path, "absent")
            raise KeyError(key)
        value = self._data[key]
        if isinstance(value, dict):
            return Parts(value, self._source, self._reads, path)
        record = name(self._source, VALUE, path)
        if record not in self._reads:
            self._reads[record] = digest(value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def __contains__(self, key: object) -> bool:
        found = key in self._data
        if isinstance(key, str):
            self._note(HAS, self._path + (key,), "present" if found else "absent")
        return found

    def __iter__(self) -> Iterator[str]:
        keys = list(self._data)
        self._note(KEYS, self._path, digest(keys))  # in order: a figure lists models in the manifest's order
        return iter(keys)

    def __len__(self) -> int:
        self._note(KEYS, self._path, digest(list(self._data)))
        return len(self._data)


def part(data: Any, record: str) -> str | None:
    """The current digest of one recorded part of ``data`` (None: not a part record)."""
    _, sep, rest = record.partition("#")
    kind, colon, path_text = rest.partition(":")
    if not sep or not colon:
        return None
    path = json.loads(path_text)
    node = data
    for key in path[:-1] if kind == HAS else path:
        if not isinstance(node, dict) or key not in node:
            return "missing"
        node = node[key]
    if kind == HAS:
        return "present" if isinstance(node, dict) and path[-1] in node else "absent"
    if kind == KEYS:
        return digest(list(node)) if isinstance(node, dict) else "missing"
    return "missing" if isinstance(node, dict) else digest(node)


def still_valid(reads: Mapping[str, str], whole: Callable[[str], str | None],
                parsed: Callable[[str], Any]) -> bool | None:
    """Whether every part record in ``reads`` still holds (None when there are none). ``whole(source)``: the
    source's current digest (None: gone); ``parsed(source)``: its current data, asked only when that digest differs
    from the one the parts were taken at."""
    checked: dict[str, bool] = {}
    any_part = False
    for record, expected in reads.items():
        source, sep, _ = record.partition("#")
        if not sep:
            continue
        any_part = True
        if source not in checked:
            now = whole(source)
            if now is None:
                return False
            checked[source] = now == reads.get(source + "@")
        if not checked[source] and part(parsed(source), record) != expected:
            return False
    return True if any_part else None


def rebased(reads: Mapping[str, str], whole: Callable[[str], str | None]) -> dict[str, str]:
    """``reads`` (just checked by ``still_valid``) with each source's digest brought up to date, so that the next
    check takes the fast path."""
    out = dict(reads)
    for record in reads:
        if record.endswith("@"):
            now = whole(record[:-1])
            if now is not None:
                out[record] = now
    return out
