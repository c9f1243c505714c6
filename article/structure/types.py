"""The data types every build stage shares: an article as read (its front matter record, validated by
config/frontmatter.py), as it moves through the stages, and what a build reports.

Stages import these from here rather than from the pipeline that drives them, so no stage depends on the recipe above it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cache.fileset import FileSet


@dataclass(frozen=True)
class Author:
    name: str
    url: str | None = None
    affiliation: str | None = None
    affiliation_url: str | None = None


@dataclass(frozen=True)
class Update:
    date: dt.date
    text: str  # Markdown


@dataclass(frozen=True)
class FrontMatter:
    title: str
    description: str
    date: dt.date
    authors: tuple[Author, ...]
    bibliography: str | None = None
    updated: dt.date | None = None
    doi: str | None = None
    acknowledgements: str | None = None  # Markdown
    contributions: str | None = None  # Markdown
    updates: tuple[Update, ...] = ()
    raw_html: bool = False
    listed: bool = True  # false: built, but not on the home page, in the feed or in the sitemap (e.g. a style sample)
    models: dict[str, Any] = field(default_factory=dict)
    analysis: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)  # everything, for figure code
    lines: dict[str, int] = field(default_factory=dict)  # top-level key -> file line (for error messages)


@dataclass(frozen=True)
class Source:
    """An article file split into front matter and body; ``body_line`` is the file line of body line 1."""

    path: Path
    meta: FrontMatter
    body: str
    body_line: int


@dataclass
class TocEntry:
    """A heading of an article's table of contents, with the headings below it."""

    id: str
    title: str
    children: list["TocEntry"] = field(default_factory=list)


@dataclass
class BuildReport:
    site_dir: Path
    pages: list[str] = field(default_factory=list)  # built HTML pages, relative to site_dir
    figures: int = 0
    cache_hits: int = 0
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds


@dataclass
class Article:
    slug: str
    source: Source
    folder: Path
    html: str = ""
    toc: list[TocEntry] = field(default_factory=list)
    appendix: dict[str, Any] = field(default_factory=dict)
    scripts: list[str] = field(default_factory=list)  # chart data twins, relative to the page
    warnings: list[str] = field(default_factory=list)  # "file:line: ..." (--strict: errors)
    files: FileSet = field(default_factory=FileSet)  # relative to <slug>/, read only when written
