"""BibTeX references: parse with pybtex, number citations by first use, format entries as HTML."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pybtex.errors
from pybtex.database import BibliographyData, parse_string
from pybtex.backends.plaintext import Backend as PlainText
from pybtex.richtext import Text

from .errors import BuildError

pybtex.errors.set_strict_mode(True)  # duplicates etc. are errors, not stderr warnings


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
        if self.url:
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


_TEXT = PlainText()  # one backend: render_as("text") looks it up through entry points every call (slow)


def _plain(latex: str) -> str:
    return Text.from_latex(latex).render(_TEXT).strip() if latex else ""


def load_bibliography(path: Path) -> dict[str, Reference]:
    """Parse a .bib file into key -> Reference. Malformed files raise BuildError(path:line)."""
    try:
        data: BibliographyData = parse_string(path.read_text(encoding="utf-8"), "bibtex")
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
