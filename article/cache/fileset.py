"""The files an article contributes to its folder (figure data, images, its social preview), known by name and sha256
before their bytes are read.

A cached figure or article names its files' digests in its small render-cache record and keeps the bytes in an entry
of their own. When the digests match what the previous site's folder was built from, the build hard-links that
folder (sitedir.link_folder) and never loads the megabytes; otherwise ``load`` reads them, checked against their
digests.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Mapping

from .. import cache

Loader = Callable[[], Mapping[str, bytes]]


def safe_name(rel: object) -> bool:
    """A path that stays inside the folder it is joined to: relative, no empty, '.' or '..' part, no backslash or NUL.
    Names read from the render cache are checked, so a planted entry cannot write outside the site."""
    return (isinstance(rel, str) and not rel.startswith("/") and "\\" not in rel and "\0" not in rel
            and all(part not in ("", ".", "..") for part in rel.split("/")))


def checked_names(named: object) -> dict[str, str]:
    """A record's name -> sha256 map, or ValueError (a miss) when it has the wrong shape or an unsafe name."""
    if not isinstance(named, dict) or not all(safe_name(k) and isinstance(v, str) for k, v in named.items()):
        raise ValueError("file names of the wrong shape")
    return named


def digests(files: Mapping[str, bytes]) -> dict[str, str]:
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}


def from_entry(stored: Path, named: Mapping[str, str], remake: Loader) -> Loader:
    """A loader for the files ``named`` packed in a render-cache entry (cache.pack), each checked against its
    digest; when the entry was damaged, planted or removed after it was checked, ``remake`` makes the files again
    (and stores them)."""
    def matching(raw: bytes) -> Mapping[str, bytes]:
        files = cache.unpack(raw)
        if digests({rel: files[rel] for rel in named}) != dict(named):  # a missing name is a KeyError: a miss too
            raise ValueError("packed files do not have their recorded digests")
        return files

    def load() -> Mapping[str, bytes]:
        got = cache.load(stored, matching)
        return got if got is not None else remake()
    return load


def key(named: Mapping[str, str]) -> str:
    """One key over every name and digest: equal keys, equal files."""
    return cache.key(x for rel in sorted(named) for x in (rel, named[rel]))


class FileSet:
    """name -> sha256, plus how to get the bytes: held in memory or loaded on first use."""

    def __init__(self) -> None:
        self.digests: dict[str, str] = {}
        self._parts: list[tuple[dict[str, str], Loader]] = []

    def add(self, files: Mapping[str, bytes]) -> None:
        """Files whose bytes are at hand."""
        held = dict(files)
        self.add_lazy(digests(held), lambda: held)

    def add_lazy(self, named: Mapping[str, str], load: Loader) -> None:
        """Files known by digest; ``load`` returns their bytes (read from a cache entry, or made again)."""
        self.digests.update(named)
        self._parts.append((dict(named), load))

    def update(self, other: "FileSet") -> None:
        self.digests.update(other.digests)
        self._parts += other._parts

    @property
    def digest(self) -> str:
        return key(self.digests)

    def load(self) -> dict[str, bytes]:
        """Every file's bytes. A loader's bytes win over its recorded digests (a figure made again after its
        cache entry was lost): ``digests`` is brought up to date, so the site record names what was written."""
        out: dict[str, bytes] = {}
        for named, load in self._parts:
            files = load()
            out.update({rel: files[rel] for rel in named if rel in files})
        self.digests = digests(out)
        return {rel: out[rel] for rel in sorted(out)}
