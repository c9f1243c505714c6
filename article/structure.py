"""The data types every build stage shares: what a build reports, and an article as it moves through the stages.

Stages import these from here rather than from the pipeline that drives them, so no stage depends on the recipe above it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fileset import FileSet
from .frontmatter import Source


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
