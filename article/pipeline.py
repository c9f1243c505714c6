"""build_site: config -> read pages -> render -> assets -> site files -> link check -> atomic swap.

Everything renders into ``<site_dir.parent>/.site-tmp-<pid>`` which replaces ``site_dir`` only at the
end, so a failing build leaves the previous site untouched. Output is deterministic: sorted iteration,
no timestamps (dates come from front matter), no random ids, canonical JSON.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import jinja2

from . import cache, citation, figrender, limits, linkcheck, social, templating, theme
from .bibliography import Citations, load_bibliography
from .config import SiteConfig, load_config
from .errors import BuildError
from .figures import registry
from .frontmatter import Source, parse
from .markup import Renderer, TocEntry

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'")


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
    files: dict[str, bytes] = field(default_factory=dict)  # relative to <slug>/


class _Stages:
    """Times stages and prints one short line each."""

    def __init__(self, report: BuildReport, progress: bool):
        self.report, self.progress = report, progress

    @contextmanager
    def __call__(self, name: str) -> Iterator[dict[str, str]]:
        note: dict[str, str] = {}
        t0 = time.perf_counter()
        yield note
        took = time.perf_counter() - t0
        self.report.timings[name] = took
        if self.progress:
            print(f"  {name:<11}{took * 1000:7.0f} ms  {note.get('text', '')}".rstrip(), flush=True)


# ------------------------------------------------------------------ stages

def read_text(path: Path, what: str = "file") -> str:
    """A UTF-8 text file (regular, at most limits.MAX_TEXT_BYTES); other encodings fail with the line of the first
    bad byte."""
    limits.regular_file(path, what)
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise BuildError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8", path,
                         line) from None


def inside_project(root: Path, path: Path, what: str) -> None:
    """Files that get published must be inside the project or its content folder (content/ itself may be a link
    to where the articles live): a symlink *in* content/ must not publish e.g. ~/.ssh."""
    real = path.resolve()
    allowed = (root.resolve(), (root / "content").resolve())
    if not any(real == a or a in real.parents for a in allowed):
        raise BuildError(f"{what} resolves to {real}, outside the project {allowed[0]}; only files "
                         "inside the project are published", path)


def read_articles(root: Path, config: SiteConfig) -> list[Article]:
    articles = []
    for slug in config.articles:
        folder = root / "content" / slug
        path = folder / "index.md"
        if not path.exists() and not path.is_symlink():
            raise BuildError(f"article '{slug}' listed in site.yml has no index.md", path)
        inside_project(root, path, f"article '{slug}'")
        articles.append(Article(slug, parse(read_text(path, "article"), path), folder))
    return articles


def render_article(a: Article, config: SiteConfig, cache_dir: Path, use_cache: bool,
                   report: BuildReport, verified: Mapping[str, str] = {}) -> None:
    """Fill ``a.html``, ``a.toc``, ``a.appendix``, ``a.files``: templating, Markdown, figures, appendix."""
    meta, path = a.source.meta, a.source.path

    def context(fig_id: str | None = None, line: int | None = None) -> registry.FigureContext:
        return registry.FigureContext(article=meta.raw, site=config.raw, cache_dir=cache_dir,
                                      slug=a.slug, figure_id=fig_id, path=path, line=line)

    data = registry.collect_data(context())
    body = templating.render_body(a.source.body, data, path, a.source.body_line)

    refs, bib_path = {}, None
    if meta.bibliography:
        bib_path = a.folder / meta.bibliography
        if bib_path.exists():
            inside_project(a.folder.parent.parent, bib_path, "bibliography file")
        limits.regular_file(bib_path, "bibliography file")
        refs = load_bibliography(bib_path, cache_dir if use_cache else None)
    cites = Citations(refs, bib_path)

    def figure_hook(params: dict[str, str], number: int, caption: str, line: int) -> str:
        fid, kind = params["id"], params["kind"]
        fig_params = {k: v for k, v in params.items() if k not in ("id", "kind")}
        out, hit = figrender.cached_output(kind, fig_params, context(fid, line), use_cache, verified)
        report.figures += 1
        report.cache_hits += hit
        rendered = figrender.figure_html(out, fid, number, params["width"], caption, kind)
        a.files.update(rendered.files)
        a.scripts += rendered.scripts
        return rendered.html

    r = Renderer(path, a.source.body, a.source.body_line, cites, set(registry.FIGURES), figure_hook,
                 raw_html=meta.raw_html)
    out = r.render(body)
    a.html, a.toc = out.html, out.toc
    url = config.article_url(a.slug)

    def field_fragment(key: str, text: str, inline: bool = False) -> str:
        """Markdown of a front matter field; its errors point at the field's line, not into the body."""
        try:
            return r.fragment(text, inline=inline)
        except BuildError as exc:
            raise BuildError(f"front matter field '{key}': {exc.message}", path, meta.lines.get(key)) from None

    a.appendix = {
        "acknowledgements": field_fragment("acknowledgements", meta.acknowledgements) if meta.acknowledgements else "",
        "contributions": field_fragment("contributions", meta.contributions) if meta.contributions else "",
        "updates": [(u.date, field_fragment("updates", u.text, inline=True)) for u in meta.updates],
        "footnotes": out.footnotes_html,
        "bibtex": citation.bibtex(meta, config.title, url),
        "plain_citation": citation.plain(meta, config.title, url),
    }
    a.appendix["references"] = [(n, ref.key, ref.html()) for n, ref in cites.cited()]
    subtitle = ", ".join(x.name for x in meta.authors) + " · " + meta.date.isoformat()
    a.files["social.png"] = social.cached_preview_png(meta.title, subtitle, config.title,
                                                      cache_dir if use_cache else None)


def template_env(root: Path, cache_dir: Path | None = None) -> jinja2.Environment:
    """The page templates' environment. No bytecode cache: Jinja's FileSystemBytecodeCache unmarshals code objects
    from <cache>/jinja/, so a planted (or CI-restored) cache file would run on the next build. Nothing read from the
    cache may be executable; compiling the templates costs ~0.1 s (bench/README.md). ``cache_dir`` is unused."""
    folder = root / "templates" if (root / "templates" / "base.html").is_file() else PACKAGE_ROOT / "templates"
    bytecode = None
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        bytecode_cache=bytecode,
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.globals["csp"] = CSP
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


def write(site: Path, rel: str, data: bytes | str) -> None:
    target = site / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def write_pages(env: jinja2.Environment, site: Path, config: SiteConfig, articles: list[Article],
                report: BuildReport) -> None:
    common = {"site": config, "site_raw": config.raw}
    for a in articles:
        for rel, data in sorted(a.files.items()):
            write(site, f"{a.slug}/{rel}", data)
        page = render_template(
            env, "article.html", **common, root="../", page_url=config.article_url(a.slug), article=a, meta=a.source.meta,
            has_charts=bool(a.scripts))
        write(site, f"{a.slug}/index.html", page)
        report.pages.append(f"{a.slug}/index.html")
    ordered = sorted(articles, key=lambda a: (a.source.meta.date, a.slug), reverse=True)
    write(site, "index.html", render_template(
        env, "index.html", **common, root="", page_url=config.site_url + "index.html", articles=ordered))
    write(site, "404.html", render_template(
        env, "404.html", **common, root="", page_url=config.site_url + "404.html"))
    report.pages += ["index.html", "404.html"]


SERVE_ONLY_ASSETS = {"livereload.js"}  # sent by `python build.py serve` only (article/liveserver.py)


def write_assets(root: Path, site: Path, cache_dir: Path, need_vega: bool) -> int:
    """Copy templates/assets (sorted, less the serve-only client) and, when a page has charts, the shared offline
    Vega bundle."""
    src = root / "templates" / "assets"
    if not src.is_dir():
        src = PACKAGE_ROOT / "templates" / "assets"
    n = 0
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        if f.relative_to(src).as_posix() in SERVE_ONLY_ASSETS:
            continue
        write(site, "assets/" + f.relative_to(src).as_posix(), f.read_bytes())
        n += 1
    write(site, "assets/theme.css", theme.css().encode())  # colours and fonts: article/theme.py
    n += 1
    if need_vega:
        write(site, "assets/vega.js", vega_bundle(cache_dir))
        n += 1
    return n


def vega_bundle(cache_dir: Path) -> bytes:
    """vl_convert's Vega + Vega-Lite + vega-embed bundle (deterministic), cached per vl-convert version."""
    from importlib.metadata import version

    def make() -> bytes:
        import vl_convert

        return vl_convert.javascript_bundle().encode("utf-8")

    entry = cache.entry(cache_dir, "vega", [version("vl-convert-python")], "js")
    return cache.cached(entry, bytes, make, bytes)


def write_site_files(env: jinja2.Environment, site: Path, config: SiteConfig,
                     articles: list[Article]) -> None:
    ordered = sorted(articles, key=lambda a: (a.source.meta.date, a.slug), reverse=True)
    updated = max((a.source.meta.updated or a.source.meta.date for a in articles),
                  default=dt.date(1970, 1, 1))
    ctx = {"site": config, "articles": ordered, "updated": updated}
    write(site, "sitemap.xml", render_template(env, "sitemap.xml", **ctx))
    write(site, "feed.xml", render_template(env, "feed.xml", **ctx))
    write(site, ".nojekyll", b"")


SITE_MARKER = ".vw-site"  # written into every built site: only a folder holding it is ever replaced
MARKER_TEXT = b"Built by Visualizing Weights (build.py). The next build replaces this whole folder.\n"


def _inside(a: Path, b: Path) -> bool:
    """True when ``a`` is ``b`` or below it (both resolved)."""
    return a == b or b in a.parents


def check_site_dir(root: Path, site_dir: Path, cache_dir: Path | None = None) -> None:
    """Refuse an output folder that a build must never replace: one that is or contains the project, or is,
    contains or lies inside content/, templates/ or the cache, or any existing non-empty folder that does not
    hold the marker file a previous build wrote."""
    site = Path(os.path.abspath(site_dir)).resolve()
    root = Path(root).resolve()
    flag = "--site-dir"
    if _inside(root, site):
        raise BuildError(f"{flag}: refusing to replace a folder that is or contains the project {root}", site)
    guarded = [(root / "content", "content/"), (root / "templates", "templates/"), (root / "article", "article/"),
               (root / "analysis", "analysis/")]
    if cache_dir is not None:
        guarded.append((Path(os.path.abspath(cache_dir)).resolve(), "the cache folder"))
    for folder, what in guarded:
        folder = folder.resolve()
        if _inside(site, folder) or _inside(folder, site):
            raise BuildError(f"{flag}: refusing to build into {what} ({folder}): the build replaces its output "
                             "folder as a whole", site)
    if site.is_symlink() or (site.exists() and not site.is_dir()):
        raise BuildError(f"{flag}: exists and is not a folder; pick another --site-dir", site)
    if site.is_dir() and not (site / SITE_MARKER).is_file():
        try:
            empty = next(site.iterdir(), None) is None
        except OSError as exc:
            raise BuildError(f"{flag}: cannot read the folder ({exc.strerror or exc})", site) from None
        if not empty:
            raise BuildError(f"{flag}: not empty and not built by build.py (no {SITE_MARKER} file); refusing to "
                             "replace it: delete it yourself or pick another --site-dir", site)


def check_cache_dir(root: Path, cache_dir: Path) -> None:
    """Refuse a cache folder that is or contains the project, or lies in content/, templates/ or the code: the build
    writes render/, analysis/ ... into it and --clean deletes <cache>/render."""
    cache = Path(os.path.abspath(cache_dir)).resolve()
    root = Path(root).resolve()
    if _inside(root, cache):
        raise BuildError(f"--cache-dir: refusing a cache folder that is or contains the project {root}", cache)
    for name in ("content", "templates", "article", "analysis"):
        folder = (root / name).resolve()
        if _inside(cache, folder) or _inside(folder, cache):
            raise BuildError(f"--cache-dir: refusing to keep the cache in {name}/ ({folder}): the build writes and "
                             "deletes folders there", cache)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a folder named after this process is from a dead build whose pid was reused
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, owned by someone else
        return True
    return True


def _stale(folder: Path) -> bool:
    """A `.site-tmp-<pid>` / `.site-old-<pid>` folder whose build is no longer running."""
    pid = folder.name.rsplit("-", 1)[-1]
    return pid.isdigit() and not _pid_alive(int(pid))


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive flock on ``folder`` itself (no lock file to leave behind); released when the process dies."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def prepare_tmp(site_dir: Path) -> Path:
    """Remove temp folders of killed builds (never a running build's); return a fresh ``.site-tmp-<pid>``."""
    parent = site_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with _locked(parent):
            for stale in sorted(parent.glob(".site-tmp-*")) + sorted(parent.glob(".site-old-*")):
                if _stale(stale):
                    shutil.rmtree(stale, ignore_errors=True)
            tmp = parent / f".site-tmp-{os.getpid()}"
            tmp.mkdir()
    except OSError as exc:
        blocker = next((p for p in [parent, *parent.parents] if p.exists()), parent)
        why = "is a file, not a folder" if not blocker.is_dir() else f"cannot be written to ({exc.strerror or exc})"
        raise BuildError(f"cannot write the output folder {site_dir}: {blocker} {why}", blocker) from None
    (tmp / SITE_MARKER).write_bytes(MARKER_TEXT)
    return tmp


def swap(tmp: Path, site_dir: Path, root: Path | None = None, cache_dir: Path | None = None) -> None:
    """site -> .site-old-<pid>, tmp -> site, delete old: the window without a site/ is two renames. Builds into
    the same folder take turns (a lock on the parent folder), and the output folder is checked again under the
    lock: only a folder this program built is ever replaced."""
    old = site_dir.parent / f".site-old-{os.getpid()}"
    with _locked(site_dir.parent):
        if root is not None:
            check_site_dir(root, site_dir, cache_dir)
        if site_dir.exists():
            site_dir.rename(old)
        tmp.rename(site_dir)
    shutil.rmtree(old, ignore_errors=True)


def tree_digest(folder: Path) -> str:
    """One hash over all file names and bytes (for determinism checks)."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f.relative_to(folder).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


# ------------------------------------------------------------------ the pipeline

def build_site(root: Path, site_dir: Path, *, cache_dir: Path, config: SiteConfig | None = None,
               strict: bool = False, debug: bool = False, progress: bool = True,
               verified: Mapping[str, str] = {}) -> BuildReport:
    """Build the static site from ``root`` (site.yml, content/, templates/) into ``site_dir``.

    strict: link-check problems abort the build (BuildError) before the swap; otherwise warnings.
    debug: ignore the render cache and keep the temp folder of a failed build for inspection.
    config: the loaded site.yml (build.py loads it once for every stage); read from ``root`` when omitted.
    verified: analysis file -> sha256 that the freshness check verified in this build (not hashed again).
    """
    root, site_dir, cache_dir = Path(root), Path(site_dir), Path(cache_dir)
    report = BuildReport(site_dir=site_dir)
    stage = _Stages(report, progress)
    with stage("config") as note:
        config = config or load_config(root)
        registry.discover()
        note["text"] = f"{len(config.articles)} article(s), {len(registry.FIGURES)} figure kinds"
    with stage("read") as note:
        articles = read_articles(root, config)
        note["text"] = ", ".join(a.slug for a in articles)
    check_cache_dir(root, cache_dir)
    check_site_dir(root, site_dir, cache_dir)
    tmp = prepare_tmp(site_dir)
    try:
        with stage("render") as note:
            for a in articles:
                render_article(a, config, cache_dir, not debug, report, verified)
            env = template_env(root, cache_dir)
            write_pages(env, tmp, config, articles, report)
            note["text"] = (f"{len(report.pages)} pages, {report.figures} figures "
                            f"({report.cache_hits} cached)")
        with stage("assets") as note:
            n = write_assets(root, tmp, cache_dir, any(a.scripts for a in articles))
            note["text"] = f"{n} files"
        with stage("site files"):
            write_site_files(env, tmp, config, articles)
        with stage("links") as note:
            problems = linkcheck.check_links(tmp)
            note["text"] = f"{len(problems)} problem(s)"
            if problems and strict:
                where, line = _link_source(root, problems[0])
                raise BuildError(f"{len(problems)} broken link(s); first: {problems[0]}", where, line)
            for p in problems:
                report.warnings.append(p)
                if progress:
                    print(f"  warning: {p}", flush=True)
        with stage("swap"):
            swap(tmp, site_dir, root, cache_dir)
    except BaseException as exc:
        if not debug:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not debug:
            raise _os_error(exc, tmp, site_dir) from None
        raise
    return report


def _os_error(exc: OSError, tmp: Path, site_dir: Path) -> BuildError:
    """An OSError while writing the site, as one line naming the site folder (not the temp folder, which is gone),
    also when the error carries no file name (e.g. [Errno 28] No space left on device)."""
    what = exc.strerror or str(exc) or type(exc).__name__
    name = exc.filename
    if name is None:
        return BuildError(f"writing the site failed: {what} (the previous site is unchanged)", site_dir)
    name = str(name)
    if name.startswith(str(tmp)):
        name = str(site_dir) + name[len(str(tmp)):]
    return BuildError(f"writing the site failed: {what} (the previous site is unchanged)", name)


def _link_source(root: Path, problem: str) -> tuple[Path | None, int | None]:
    """The article (and line) behind a link-check problem ``slug/index.html: broken link X``."""
    page, _, rest = problem.partition(": broken link ")
    slug = page.split("/")[0] if page.count("/") == 1 and page.endswith("/index.html") else None
    if not slug:
        return None, None
    source = root / "content" / slug / "index.md"
    href = rest.split(" ")[0]
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return source, None
    hit = next((i + 1 for i, l in enumerate(lines) if href and href in l), None)
    return source, hit
