"""Site configuration: ``site.yml`` at the project root."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..structure.errors import BuildError
from ..structure.types import Author
from . import yamlcache
from .frontmatter import checked_url, parse_authors

SITE_URL_ENV = "VW_SITE_URL"
REPOSITORY_ENV = "VW_REPOSITORY_URL"  # the Pages workflow passes the repository the site is built from
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class SiteConfig:
    """Validated site.yml. ``raw`` keeps every section (e.g. ``analysis:``) for the lead's stages."""

    title: str
    description: str
    site_url: str  # always ends with "/"
    articles: tuple[str, ...]  # slugs: content/<slug>/index.md
    language: str = "en"
    authors: tuple[Author, ...] = ()  # the byline of an article whose front matter names none
    repository: str | None = None  # the source code's address, linked from every page
    raw: dict[str, Any] = field(default_factory=dict)

    def article_url(self, slug: str) -> str:
        return f"{self.site_url}{slug}/index.html"


def _parse_yaml(text: str, path: Path) -> Any:
    import yaml

    from . import yamlsafe

    try:
        return yamlsafe.load(text, path) or {}
    except yaml.YAMLError as exc:
        line = yamlsafe.mistake_line(exc)
        raise BuildError(f"malformed YAML: {getattr(exc, 'problem', exc)}", path,
                         line + 1 if line is not None else None) from None


def load_config(root: Path, cache_dir: Path | None = None) -> SiteConfig:
    """Read ``root/site.yml``; ``$VW_SITE_URL`` overrides ``site_url`` (CI passes the Pages URL). ``cache_dir``: keep
    the parsed YAML in the render cache (yamlcache.py)."""
    path = root / "site.yml"
    if not path.is_file():
        raise BuildError("site config not found", path)
    try:
        source = path.read_text(encoding="utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise BuildError(f"not valid UTF-8 ({exc.reason}); save the file as UTF-8", path) from None
    raw = yamlcache.parsed(cache_dir, "site", source, lambda: _parse_yaml(source, path))
    if not isinstance(raw, dict):
        raise BuildError("site config must be a mapping", path)

    def text(name: str, default: str | None = None) -> str:
        value = raw.get(name, default)
        if not isinstance(value, str) or not value.strip():
            raise BuildError(f"field '{name}' must be a non-empty string", path)
        return value.strip()

    site_url = os.environ.get(SITE_URL_ENV) or text("site_url")
    if not site_url.startswith(("http://", "https://")):
        raise BuildError(f"field 'site_url' must be an http(s) URL, got {site_url!r}", path)
    articles = raw.get("articles")
    if not isinstance(articles, list) or not all(isinstance(a, str) and a for a in articles):
        raise BuildError("field 'articles' must be a list of content folder names", path)
    for slug in articles:
        if not _SLUG.fullmatch(slug) or slug == "assets":
            raise BuildError(f"field 'articles': bad folder name {slug!r} (letters, digits, '-', '_' and '.', "
                             "not first)", path)
    twice = sorted({a for a in articles if articles.count(a) > 1})
    if twice:
        raise BuildError(f"field 'articles' lists {', '.join(map(repr, twice))} more than once", path)
    def fail(name: str, message: str) -> BuildError:
        return BuildError(f"field '{name}' {message}", path)

    authors = parse_authors(raw["authors"], fail) if raw.get("authors") is not None else ()
    repository = os.environ.get(REPOSITORY_ENV) or raw.get("repository")
    repository = checked_url(fail, "repository", repository) if repository else None
    if repository and not repository.startswith(("http://", "https://")):
        raise fail("repository", f"must be an http(s) URL, got {repository!r}")
    raw = dict(raw, site_url=site_url.rstrip("/") + "/", repository=repository)
    return SiteConfig(
        title=text("title"),
        description=text("description"),
        site_url=raw["site_url"],
        articles=tuple(articles),
        language=text("language", "en"),
        authors=authors,
        repository=repository,
        raw=raw,
    )
