"""build_site: config -> read pages -> render -> assets -> site files -> link check -> atomic swap.

Everything renders into ``<site_dir.parent>/.site-tmp-<pid>`` which replaces ``site_dir`` only at the
end, so a failing build leaves the previous site untouched. Output is deterministic: sorted iteration,
no timestamps (dates come from front matter), no random ids, canonical JSON.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from analysis.core import deadline

from . import article_cache, cache
from .cache import fileset
from .config import limits
from .config.frontmatter import parse
from .config.site import SiteConfig, load_config
from .explorer import model_pages
from .figures import figrender, figure_cache, registry
from .figures import reads as reads_module
from .markup import body_segments, citation, mathml
from .markup.bibliography import Citations, load_bibliography
from .markup.renderer import Renderer
from .output import linkcheck, social
from .output.sitedir import check_cache_dir, check_site_dir, output_folder, prepare_tmp, swap
from .output.writer import Pages, template_env, write_assets, write_pages, write_site_files
from .structure.errors import BuildError
from .structure.types import Article, BuildReport


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


def read_articles(root: Path, config: SiteConfig, yaml_cache: Path | None = None) -> list[Article]:
    articles = []
    for slug in config.articles:
        folder = root / "content" / slug
        path = folder / "index.md"
        if not path.exists() and not path.is_symlink():
            raise BuildError(f"article '{slug}' listed in site.yml has no index.md", path)
        inside_project(root, path, f"article '{slug}'")
        source = parse(read_text(path, "article"), path, yaml_cache)
        if not source.meta.authors:  # the site's byline (site.yml), so no article invents one
            if not config.authors:
                raise BuildError("front matter field 'authors' is required (or set authors: in site.yml)", path, 2)
            source = dataclasses.replace(source, meta=dataclasses.replace(source.meta, authors=config.authors))
        articles.append(Article(slug, source, folder))
    return articles


def render_article(a: Article, config: SiteConfig, cache_dir: Path, use_cache: bool,
                   report: BuildReport, verified: Mapping[str, str] = {}, code: list | None = None) -> None:
    """``render_fresh`` through the render cache (article_cache.py): an unchanged article is not rendered again.
    What it read from the analysis cache is checked as for a figure (``verified`` digests, else hashed)."""
    entry = article_cache.entry(a, config, cache_dir, code) if use_cache else None

    def decode(raw: bytes) -> tuple[dict, dict[str, str], Path]:
        record, named, stored = article_cache.load(raw, cache_dir, a.slug)
        sources = figure_cache.sources(cache_dir, verified, a.source.meta.raw, config.raw)
        if not figure_cache.still_valid(record["reads"], cache_dir, verified, sources):
            raise ValueError("an analysis file the article read has changed")
        now = reads_module.rebased(record["reads"], sources.whole)
        if now != record["reads"]:  # valid part by part: stored with today's digests (the quick check next time)
            cache.store(entry, json.dumps({**json.loads(raw), "reads": now}, sort_keys=True).encode())
        return record, named, stored

    hit = cache.load(entry, decode)
    if hit is not None:
        record, named, stored = hit

        def remake() -> dict[str, bytes]:  # render the article again for its files
            stored.unlink(missing_ok=True)
            again = Article(a.slug, a.source, a.folder)
            render_fresh(again, config, cache_dir, use_cache, BuildReport(report.site_dir), verified)
            return article_cache.store_files(cache_dir, a.slug, again.files)

        a.files.add_lazy(named, fileset.from_entry(stored, named, remake))
        a.html, a.toc, a.appendix, a.scripts = record["html"], record["toc"], record["appendix"], record["scripts"]
        a.warnings = record["warnings"]
        report.figures += record["figures"]
        report.cache_hits += record["figures"]
        return
    figures, reads = report.figures, render_fresh(a, config, cache_dir, use_cache, report, verified)
    article_cache.store(entry, cache_dir, a, reads, report.figures - figures)


def render_fresh(a: Article, config: SiteConfig, cache_dir: Path, use_cache: bool,
                 report: BuildReport, verified: Mapping[str, str] = {}) -> dict[str, str]:
    """Fill ``a.html``, ``a.toc``, ``a.appendix``, ``a.files``: templating, Markdown, figures, appendix. Returns
    what it read from the analysis cache (path -> sha256)."""
    meta, path = a.source.meta, a.source.path
    reads: dict[str, str] = {}
    contexts: list[registry.FigureContext] = []

    def context(fig_id: str | None = None, line: int | None = None) -> registry.FigureContext:
        ctx = registry.FigureContext(article=meta.raw, site=config.raw, cache_dir=cache_dir,
                                     slug=a.slug, figure_id=fig_id, path=path, line=line)
        contexts.append(ctx)
        return ctx

    data = registry.collect_data(context())
    body = body_segments.render(a.source.body, data, path, a.source.body_line, cache_dir if use_cache else None)

    refs, bib_path = {}, None
    if meta.bibliography:
        bib_path = a.folder / meta.bibliography
        if bib_path.exists():
            inside_project(a.folder.parent.parent, bib_path, "bibliography file")
        limits.regular_file(bib_path, "bibliography file", limits.MAX_BIB_BYTES)
        refs = load_bibliography(bib_path, cache_dir if use_cache else None)
    cites = Citations(refs, bib_path)

    def figure_hook(params: dict[str, str], number: int, caption: str, line: int) -> str:
        fid, kind = params["id"], params["kind"]
        fig_params = {k: v for k, v in params.items() if k not in ("id", "kind")}
        out, files, hit = figure_cache.cached_output(kind, fig_params, context(fid, line), use_cache, verified)
        report.figures += 1
        report.cache_hits += hit
        rendered = figrender.figure_html(out, fid, number, params["width"], caption, kind)
        a.files.update(files)
        a.scripts += rendered.scripts
        return rendered.html

    r = Renderer(path, a.source.body, a.source.body_line, cites, set(registry.FIGURES), figure_hook,
                 raw_html=meta.raw_html)
    out = r.render(body)
    a.html, a.toc, a.warnings = out.html, out.toc, out.warnings
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
    a.files.add({"social.png": social.cached_preview_png(meta.title, subtitle, config.title,
                                                         cache_dir if use_cache else None)})
    for ctx in contexts:
        reads.update(ctx.reads)
    return reads


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
    started = time.time()  # render-cache entries this build reads or writes are touched after it (cache.evict)
    root, cache_dir = Path(root), Path(cache_dir)
    report = BuildReport(site_dir=Path(site_dir))
    site_dir = output_folder(Path(site_dir))  # a link to the site: its target is what gets replaced
    stage = _Stages(report, progress)
    check_cache_dir(root, cache_dir)  # before anything is kept in it (parsed YAML, below)
    check_site_dir(root, site_dir, cache_dir)
    with stage("config") as note:
        config = config or load_config(root, None if debug else cache_dir)
        registry.discover()
        note["text"] = f"{len(config.articles)} article(s), {len(registry.FIGURES)} figure kinds"
    with stage("read") as note:
        articles = read_articles(root, config, None if debug else cache_dir)
        note["text"] = ", ".join(a.slug for a in articles)
    tmp = prepare_tmp(site_dir)
    # Unchanged files are hard-linked from the site being replaced; only one the build made itself (the guard above).
    previous = site_dir if site_dir.is_dir() else None
    try:
        with stage("render") as note:
            mathml.use_cache(None if debug else cache_dir)
            code = article_cache.code(cache_dir) if not debug else None  # the same for every article's key
            # One worker process for the author's text, if any; closed before the rest of the build, so the pages
            # it shares with this process stop being copied on every write (~5 ms of a content-only rebuild).
            with deadline.session():
                for a in articles:
                    render_article(a, config, cache_dir, not debug, report, verified, code)
                    _warn(report, a.warnings, strict, progress)
            mathml.save()
            env = template_env(root, cache_dir)
            models = model_pages.write_model_pages(env, tmp, config, cache_dir, articles, report, previous, not debug,
                                                   site_dir)
            pages = Pages(env, config, tmp, previous, None if debug else cache_dir, site_dir)
            write_pages(pages, config, articles, report, models)
            note["text"] = (f"{len(report.pages)} pages, {report.figures} figures "
                            f"({report.cache_hits} cached)")
        with stage("assets") as note:
            n = write_assets(root, tmp, cache_dir, any(a.scripts for a in articles), previous)
            note["text"] = f"{n} files"
        with stage("site files"):
            write_site_files(pages, config, articles, models)
            pages.save()
        with stage("links") as note:
            problems = linkcheck.check_links(tmp, None if debug else cache_dir)
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
        if not debug:  # the render cache stays under its limit: what no build has used for longest goes first
            removed = cache.evict(cache_dir, cache.limit_bytes(), started)
            if removed and progress:
                print(f"  cache: {len(removed)} render-cache entries no recent build used removed "
                      f"(limit {cache.limit_bytes() >> 20} MB, ${cache.LIMIT_ENV})", flush=True)
    except BaseException as exc:
        if not debug:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not debug:
            raise _os_error(exc, tmp, site_dir) from None
        raise
    return report


def _warn(report: BuildReport, warnings: list[str], strict: bool, progress: bool) -> None:
    """An article's warnings ("file:line: ..."): printed, or with --strict the first fails the build."""
    if warnings and strict:
        where, _, rest = warnings[0].partition(": ")
        path, _, line = where.rpartition(":")
        raise BuildError(rest, path or where, int(line) if line.isdigit() else None)
    for w in warnings:
        report.warnings.append(w)
        if progress:
            print(f"  warning: {w}", flush=True)


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
