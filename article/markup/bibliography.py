"""BibTeX references: parse with pybtex, number citations by first use, format entries as HTML."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dataclasses
import json

from .. import cache
from ..config import limits
from ..structure.errors import BuildError
from ..structure.urls import safe_url


@dataclass(frozen=True)
class Reference:
    key: str
    authors: tuple[str, ...]  # "First Last"
    title: str
    venue: str
    year: str
    url: str | None
    doi: str | None

    def html(self) -> str:
        """One reference as escaped HTML (no links to other pages; url/doi are external)."""
        e = html.escape
        parts = []
        if self.authors:
            parts.append(e(_join_names(self.authors)) + ".")
        title = e(self.title)
        if self.url and safe_url(self.url):  # a javascript: (or data:) url stays plain text
            title = f'<a href="{e(self.url)}">{title}</a>'
        parts.append(f'<span class="ref-title">{title}</span>.')
        if self.venue:
            parts.append(f"<em>{e(self.venue)}</em>" + ("," if self.year else "."))
        if self.year:
            parts.append(e(self.year) + ".")
        if self.doi:
            parts.append(f'DOI: <a href="https://doi.org/{e(self.doi)}">{e(self.doi)}</a>')
        return " ".join(parts)


def _join_names(names: tuple[str, ...]) -> str:
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + ", and " + names[-1]


_TEXT = []  # one plain-text backend, made on first use: render_as("text") looks it up every call (slow)


def _plain(latex: str) -> str:
    from pybtex.backends.plaintext import Backend as PlainText
    from pybtex.richtext import Text

    if not _TEXT:
        _TEXT.append(PlainText())
    return Text.from_latex(latex).render(_TEXT[0]).strip() if latex else ""


def _from_cache(data: Any) -> dict[str, Reference]:
    """Parsed references from the render cache; anything of the wrong shape or type raises (then: parse again)."""
    out = {}
    for k, v in data.items():
        ok = (isinstance(k, str) and isinstance(v, dict) and set(v) == {f.name for f in dataclasses.fields(Reference)}
              and isinstance(v["authors"], list) and all(isinstance(a, str) for a in v["authors"])
              and all(isinstance(v[f], str) for f in ("key", "title", "venue", "year"))
              and all(v[f] is None or isinstance(v[f], str) for f in ("url", "doi")))
        if not ok:
            raise ValueError(f"bibliography cache entry {k!r} of the wrong shape")
        out[k] = Reference(**{**v, "authors": tuple(v["authors"])})
    return out


def load_bibliography(path: Path, cache_dir: Path | None = None) -> dict[str, Reference]:
    """Parse a .bib file into key -> Reference. Malformed files raise BuildError(path:line).

    The parsed references are cached by the file's sha256 (pybtex costs ~0.1 s of a content-only rebuild)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BuildError("bibliography file not found", path) from None
    entry = None if cache_dir is None else cache.entry(cache_dir, "bib", [raw, Path(__file__).read_bytes()])
    seconds = limits.render_timeout(60.0)

    def parse() -> dict[str, Reference]:  # pybtex on the author's text: in the build's worker, time-limited
        return limits.run_author_text(_parse, path, raw, seconds=seconds, on_timeout=lambda info: BuildError(
            f"the bibliography did not parse within {seconds:g} s (${limits.TIMEOUT_ENV} raises the limit)", path))

    return cache.cached(entry, lambda data: _from_cache(json.loads(data)), parse,
                        lambda refs: json.dumps({k: dataclasses.asdict(r) for k, r in refs.items()}).encode())


def _parse(path: Path, raw: bytes) -> dict[str, Reference]:
    import pybtex.errors
    from pybtex.database import parse_string

    pybtex.errors.set_strict_mode(True)  # duplicates etc. are errors, not stderr warnings
    try:
        data = parse_string(raw.decode("utf-8"), "bibtex")
    except FileNotFoundError:
        raise BuildError("bibliography file not found", path) from None
    except Exception as exc:  # PybtexSyntaxError has .lineno, BibliographyDataError has not
        raise BuildError(f"malformed bibliography: {exc}", path, getattr(exc, "lineno", None)) from None
    refs = {}
    for key, entry in data.entries.items():
        f = entry.fields
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        authors = tuple(" ".join(_plain(n) for n in (p.first_names + p.middle_names +
                                                     p.prelast_names + p.last_names + p.lineage_names))
                        for p in people)
        venue = next((_plain(f[k]) for k in ("journal", "booktitle", "howpublished", "publisher",
                                             "school", "institution", "archiveprefix") if k in f), "")
        refs[key] = Reference(
            key=key, authors=authors, title=_plain(f.get("title", key)), venue=venue,
            year=_plain(f.get("year", "")), url=f.get("url"), doi=f.get("doi"))
    return refs


@dataclass
class Citations:
    """Numbers citations in order of first use; shared by prose, captions, footnotes and asides."""

    refs: dict[str, Reference]
    bib_path: Path | None
    order: list[str] = field(default_factory=list)

    def cite(self, key: str, path: Path, line: int | None) -> int:
        if key not in self.refs:
            where = f" in {self.bib_path.name}" if self.bib_path else " (no bibliography in front matter)"
            raise BuildError(f"unknown citation key '{key}'{where}", path, line)
        if key not in self.order:
            self.order.append(key)
        return self.order.index(key) + 1

    def cited(self) -> list[tuple[int, Reference]]:
        return [(i + 1, self.refs[k]) for i, k in enumerate(self.order)]
