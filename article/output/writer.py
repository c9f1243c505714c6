"""Writing the rendered site into a folder: the pages through the Jinja2 templates, the assets (with the theme's
generated theme.css and the offline Vega bundle), the feed, the sitemap and the files GitHub Pages needs."""
from __future__ import annotations

import datetime as dt
import json
import os
import stat
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from .. import cache
from ..cache import fileset
from ..config.site import SiteConfig
from ..structure import theme
from ..structure.errors import BuildError
from ..structure.types import Article, BuildReport, FrontMatter
from . import sitedir

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'")


_ENV: dict[tuple, jinja2.Environment] = {}  # this process's last environment, by the templates' state


def template_env(root: Path, cache_dir: Path | None = None) -> jinja2.Environment:
    """The page templates' environment. No bytecode cache: Jinja's FileSystemBytecodeCache unmarshals code objects
    from <cache>/jinja/, so a planted (or CI-restored) cache file would run on the next build. Nothing read from the
    cache may be executable; compiling the templates costs ~0.02 s (bench/README.md). Within one process (``serve``)
    the environment, with the templates it compiled in memory, is reused while no template file changed (name,
    mtime_ns, size: what serve's watcher compares too). ``cache_dir`` is unused."""
    folder = root / "templates" if (root / "templates" / "base.html").is_file() else PACKAGE_ROOT / "templates"
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).parts[0] != "assets")
    state = (str(folder), tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files))
    if state in _ENV:
        return _ENV[state]
    bytecode = None
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        bytecode_cache=bytecode,
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.globals["csp"] = CSP
    _ENV.clear()
    _ENV[state] = env
    return env


def render_template(env: jinja2.Environment, name: str, **ctx: Any) -> str:
    """``env.get_template(name).render(**ctx)``; a missing or broken template is a BuildError at its file:line."""
    folder = Path(env.loader.searchpath[0]) if isinstance(env.loader, jinja2.FileSystemLoader) else Path(".")
    try:
        return env.get_template(name).render(**ctx)
    except jinja2.TemplateNotFound as exc:
        raise BuildError(f"template {exc.name!r} not found", folder) from None
    except jinja2.TemplateSyntaxError as exc:
        raise BuildError(f"template syntax error: {exc.message}", exc.filename or folder / name, exc.lineno) from None
    except Exception as exc:  # UndefinedError, TypeError, ...: Jinja maps the traceback to template lines
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(str(folder))]
        where = (frames[-1].filename, frames[-1].lineno) if frames else (folder / name, None)
        raise BuildError(f"template error: {type(exc).__name__}: {exc}", *where) from None


def page_parts(env: jinja2.Environment, config: SiteConfig) -> list[str | bytes]:
    """What every page's HTML depends on besides what it is given: the templates, the rendering code (this module:
    the CSP, the template settings) and the site config."""
    folder = Path(env.loader.searchpath[0]) if isinstance(env.loader, jinja2.FileSystemLoader) else None
    parts: list[str | bytes] = [jinja2.__version__, Path(__file__).read_bytes(), repr(config)]
    if folder is None:
        return parts + [os.urandom(16).hex()]  # templates not on disk: never reused
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.relative_to(folder).parts[0] != "assets":
            parts += [f.relative_to(folder).as_posix(), f.read_bytes()]
    return parts


@dataclass(frozen=True)
class Listed:
    """What the index, feed and sitemap see of an article: its slug and front matter, not its body (so an edit of the
    prose leaves those pages as they were, and ``Pages`` reuses them)."""

    slug: str
    meta: FrontMatter


class Pages:
    """Renders pages into the temp site, or hard-links one from the previous site when its key (``page_parts`` and
    everything the page is given) is the key that page was built from: its templates are then not even compiled.
    Keys and file stamps (size, inode, mtime) are noted per site through ``sitedir.record``, like the article and model
    folders."""

    def __init__(self, env: jinja2.Environment, config: SiteConfig, site: Path, previous: Path | None,
                 cache_dir: Path | None, site_dir: Path | None):
        self.env, self.site, self.previous, self.cache_dir, self.site_dir = env, site, previous, cache_dir, site_dir
        before = sitedir.recorded(cache_dir, previous, "pages") if cache_dir is not None else None
        self.before = before if isinstance(before, dict) else {}
        self.kept: dict[str, list] = {}
        self.common = cache.key(page_parts(env, config))

    def write(self, rel: str, template: str, given: list[str | bytes], **ctx: Any) -> None:
        """``rel`` from ``template`` with ``ctx``; ``given``: key parts that together determine all of ``ctx``."""
        key = cache.key([self.common, rel, template, *given])
        old = self.before.get(rel)
        if self.previous is not None and old == [key, _stamp(self.previous / rel)]:
            try:
                os.link(self.previous / rel, self.site / rel)
                self.kept[rel] = old
                return
            except OSError:
                pass  # no hard links here: render it
        write(self.site, rel, render_template(self.env, template, **ctx), self.previous)
        self.kept[rel] = [key, _stamp(self.site / rel)]

    def save(self) -> None:
        if self.cache_dir is not None and self.site_dir is not None and (self.site / sitedir.SITE_MARKER).is_file():
            sitedir.record(self.cache_dir, self.site_dir, self.site, "pages", self.kept)


def _stamp(path: Path) -> str | None:
    """sitedir.stamp of a regular file, else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return sitedir.stamp(st) if stat.S_ISREG(st.st_mode) else None


def write(site: Path, rel: str, data: bytes | str, previous: Path | None = None) -> None:
    """Write ``site/rel``. When the previous site holds the same bytes at ``rel``, hard-link that file instead: a
    content-only rebuild then writes one page, not megabytes of unchanged figure data. The previous site is only
    read, so a failed build still leaves it intact; a file of the same size is compared byte for byte."""
    if not fileset.safe_name(rel):  # never outside the site, whatever a cache entry names
        raise BuildError(f"refusing to write {rel!r}: not a path inside the site")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    target = site / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(target):  # a hard link into the previous site (sitedir.link_folder): replace, never write into
        os.unlink(target)
    if previous is not None:
        old = previous / rel
        try:
            if not old.is_symlink() and old.is_file() and old.stat().st_size == len(raw) and old.read_bytes() == raw:
                os.link(old, target)
                return
        except OSError:
            pass  # no such file, or no hard links on this file system: write it
    target.write_bytes(raw)


def write_pages(pages: Pages, config: SiteConfig, articles: list[Article], report: BuildReport,
                models: list[dict] | None = None) -> None:
    """Every article page and its files, the index and the 404 page. An article whose files are the ones its folder in
    the previous site was built from (by digest, as ``sitedir.record`` noted) gets that folder hard-linked, and its
    files are never read."""
    site, previous, cache_dir = pages.site, pages.previous, pages.cache_dir
    common = {"site": config, "site_raw": config.raw}
    before = sitedir.recorded(cache_dir, previous, "articles") if cache_dir is not None else None
    before = before if isinstance(before, dict) else {}
    kept = {}
    for a in articles:
        old, page_only = before.get(a.slug), frozenset({"index.html"})
        if previous is not None and isinstance(old, dict) and old.get("files") == a.files.digest \
                and sitedir.link_folder(previous / a.slug, site / a.slug, old.get("listing"), page_only):
            listing = old["listing"]
        else:
            for rel, data in a.files.load().items():
                write(site, f"{a.slug}/{rel}", data, previous)
            listing = sitedir.listing(site / a.slug, page_only)
        kept[a.slug] = {"files": a.files.digest, "listing": listing}
        url = config.article_url(a.slug)
        # sort_keys: a fresh render and a render-cache hit give the same key (the cache sorts the appendix's keys)
        given = [repr(a.source), a.html, json.dumps([a.toc, a.appendix, a.scripts], sort_keys=True, default=repr),
                 a.files.digest]
        pages.write(f"{a.slug}/index.html", "article.html", given, **common, root="../", page_url=url, article=a,
                    meta=a.source.meta, has_charts=bool(a.scripts))
        report.pages.append(f"{a.slug}/index.html")
    if cache_dir is not None and pages.site_dir is not None and (site / sitedir.SITE_MARKER).is_file():
        sitedir.record(cache_dir, pages.site_dir, site, "articles", kept)
    listed = _listed(articles)
    models = models or []
    pages.write("index.html", "index.html", [repr(listed), repr(models)], **common, root="",
                page_url=config.site_url + "index.html", articles=listed, models=models)
    pages.write("404.html", "404.html", [], **common, root="", page_url=config.site_url + "404.html")
    report.pages += ["index.html", "404.html"]


def _listed(articles: list[Article]) -> list[Listed]:
    """Newest first; an article whose front matter says `listed: false` (the style sample) is built but not listed."""
    return [Listed(a.slug, a.source.meta) for a in sorted(articles, key=lambda a: (a.source.meta.date, a.slug),
                                                          reverse=True) if a.source.meta.listed]


SERVE_ONLY_ASSETS = {"livereload.js"}  # sent by `python build.py serve` only (article/serve/liveserver.py)


def write_assets(root: Path, site: Path, cache_dir: Path, need_vega: bool, previous: Path | None = None) -> int:
    """Copy templates/assets (sorted, less the serve-only client) and, when a page has charts, the shared offline
    Vega bundle."""
    src = root / "templates" / "assets"
    if not src.is_dir():
        src = PACKAGE_ROOT / "templates" / "assets"
    n = 0
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        if f.relative_to(src).as_posix() in SERVE_ONLY_ASSETS | theme.CHART_ONLY_ASSETS:
            continue
        write(site, "assets/" + f.relative_to(src).as_posix(), f.read_bytes(), previous)
        n += 1
    write(site, "assets/theme.css", theme.css().encode(), previous)  # colours and fonts: article/structure/theme.py
    n += 1
    if need_vega:
        write(site, "assets/vega.js", vega_bundle(cache_dir), previous)
        n += 1
    return n


def vega_bundle(cache_dir: Path) -> bytes:
    """vl_convert's Vega + Vega-Lite + vega-embed bundle (deterministic), cached per installed vl-convert."""
    def make() -> bytes:
        import vl_convert

        return vl_convert.javascript_bundle().encode("utf-8")

    entry = cache.entry(cache_dir, "vega", [cache.library_stamp("vl_convert")], "js")
    return cache.cached(entry, bytes, make, bytes)


def write_site_files(pages: Pages, config: SiteConfig, articles: list[Article],
                     models: list[dict] | None = None) -> None:
    """sitemap.xml (the index, every article, every model page: `models` from model_pages.write_model_pages),
    feed.xml and .nojekyll."""
    listed, models = _listed(articles), models or []
    updated = max((a.meta.updated or a.meta.date for a in listed), default=dt.date(1970, 1, 1))
    ctx = {"site": config, "articles": listed, "updated": updated, "models": models}
    given = [repr(listed), repr(models), updated.isoformat()]
    pages.write("sitemap.xml", "sitemap.xml", given, **ctx)
    pages.write("feed.xml", "feed.xml", given, **ctx)
    write(pages.site, ".nojekyll", b"", pages.previous)
