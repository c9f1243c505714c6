"""A figure through the render cache: what the page shows of it (small) in one entry, its files (megabytes, named by
their digests, fileset.py) in another, so a hit reads the files only when the article's folder in the previous site
cannot be reused. What the figure read from the analysis cache is stored beside it (path -> sha256) and checked on
every hit, against this build's verified digests when it has them. The key hashes the code key of the figure module
and of this one (analysis/core/codekey.py: their import closures, so the figure helpers, the explorer links it embeds
(explorer_links.py), figrender.py and the versions of altair, vl-convert and Pillow), the kind, params, article front
matter and theme."""
from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Mapping
from typing import Any
from pathlib import Path

from analysis.core.codekey import code_key

from .. import cache
from ..cache import fileset
from ..cache.fileset import FileSet
from ..structure import jsonio
from . import reads as parts
from . import registry
from .figrender import FigureOutput, figure_files, make_output
from .registry import FigureContext

def figure_code(kind: str, cache_dir: Path | None = None) -> str:
    """The code key of a figure kind: the import closure of the module that registers it and of this module."""
    return code_key(registry.FIGURES[kind].__module__, __name__, cache_dir=cache_dir)


def _cache_parts(kind: str, params: dict[str, str], ctx: FigureContext) -> list[str]:
    # Not the front matter or site.yml: what the figure reads of them is in its reads (article/figures/reads.py), so an edit
    # of another model's entry, or of the title, does not draw it again.
    return [figure_code(kind, ctx.cache_dir), kind, ctx.slug, str(ctx.figure_id),
            jsonio.dumps(params), jsonio.dumps(ctx.theme)]


FRONT_MATTER, SITE = "front-matter", "site"  # the sources of reads that are not analysis files


def _tracking(ctx: FigureContext) -> FigureContext:
    """The context with its front matter and site.yml read through views that record what the figure reads."""
    for source, attr in ((FRONT_MATTER, "article"), (SITE, "site")):
        raw = getattr(ctx, attr)
        if isinstance(raw, dict):
            ctx.reads.setdefault(source + "@", parts.digest(raw))
            setattr(ctx, attr, parts.Parts(raw, source, ctx.reads))
    return ctx


class _Sources:
    """The current digest and data of each source a figure may have read: analysis files (``verified`` digests,
    else hashed), the front matter and site.yml (``given``). A parsed analysis file is kept for the build."""

    _parsed: dict[tuple[str, str], Any] = {}  # (path, sha256) -> data: the manifest is parsed once, not per figure

    def __init__(self, cache_dir: Path, verified: Mapping[str, str], given: Mapping[str, Any]):
        self.cache_dir, self.verified, self.given = cache_dir, verified, given
        self.digests: dict[str, str | None] = {}

    def whole(self, source: str) -> str | None:
        if source not in self.digests:
            if source in self.given:
                self.digests[source] = parts.digest(self.given[source])
            elif source in self.verified:
                self.digests[source] = self.verified[source]
            else:
                try:
                    self.digests[source] = hashlib.sha256((self.cache_dir / source).read_bytes()).hexdigest()
                except OSError:
                    self.digests[source] = None
        return self.digests[source]

    def parsed(self, source: str) -> Any:
        if source in self.given:
            return self.given[source]
        key = (str(self.cache_dir / source), self.whole(source) or "")
        if key not in self._parsed:
            type(self)._parsed = {key: json.loads((self.cache_dir / source).read_bytes())}  # one at a time
        return self._parsed[key]


def manifest_digests(cache_dir: Path) -> dict[str, str]:
    """The sha256 of every analysis file (relative to ``cache_dir``) as the analysis manifest records them. Trust
    them only right after the freshness check verified every one of them (build.py's recipe), so a figure's cache
    entry is checked without hashing the same files a second time."""
    path = cache_dir / "analysis" / "manifest.json"
    try:
        raw = path.read_bytes()
        manifest = json.loads(raw)
    except (OSError, ValueError):
        return {}
    files = manifest.get("files") if isinstance(manifest, dict) else None
    out = {"analysis/manifest.json": hashlib.sha256(raw).hexdigest()}  # most figures read it: hash it once
    for entry in files if isinstance(files, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("sha256"), str):
            out[posixpath.normpath(posixpath.join("analysis", entry["path"]))] = entry["sha256"]
    return out


def sources(cache_dir: Path, verified: Mapping[str, str], front_matter: Any, site: Any) -> _Sources:
    """What an article's cached reads are checked against (its front matter and site.yml as this build has them)."""
    return _Sources(cache_dir, verified, {FRONT_MATTER: front_matter, SITE: site})


def still_valid(reads: dict[str, str], cache_dir: Path, verified: Mapping[str, str],
                sources: Mapping[str, Any] | _Sources = {}) -> bool:
    """Every analysis file the figure read whole still has the bytes it had then (``verified``: digests known this
    build), and every part it read of one (article/figures/reads.py) is unchanged. ``sources``: the front matter and site.yml
    as this build has them (``FRONT_MATTER``, ``SITE``)."""
    sources = sources if isinstance(sources, _Sources) else _Sources(cache_dir, verified, sources)
    try:
        if parts.still_valid(reads, sources.whole, sources.parsed) is False:
            return False
    except (OSError, ValueError):
        return False
    for rel, digest in reads.items():
        if "#" in rel or rel.endswith("@"):
            continue
        if rel in verified:
            if verified[rel] != digest:
                return False
            continue
        try:
            if hashlib.sha256((cache_dir / rel).read_bytes()).hexdigest() != digest:
                return False
        except OSError:
            return False
    return True


def _files_entry(cache_dir: Path, named: Mapping[str, str]) -> Path:
    return cache.entry(cache_dir, "figfiles", [json.dumps(named, sort_keys=True)], "zip")


KEPT = 3  # results kept per figure: the live one and the two before it (figure_cache's "older.json")


def _variant_entry(entry: Path, reads: Mapping[str, str]) -> Path:
    return cache.entry(entry.parent.parent, "figvariant", [entry.name, json.dumps(reads, sort_keys=True)], "zip")


def cached_output(kind: str, params: dict[str, str], ctx: FigureContext, use_cache: bool = True,
                  verified: Mapping[str, str] = {}) -> tuple[FigureOutput, FileSet, bool]:
    """(what the page shows of the figure, its files, was_cache_hit). ``verified``: analysis file -> sha256 already
    checked in this build. The cache keeps the page part (small) apart from the files (megabytes, by digest), so a
    hit reads the files only when the article's folder cannot be reused from the previous site.

    An entry keeps the results the figure had for its last ``KEPT`` different reads (the live one inline, the others
    in entries of their own, listed with their reads in ``older.json``), so going back to an earlier setting of a
    model (an image size) draws nothing again."""
    fig_id = ctx.figure_id or ""
    entry = cache.entry(ctx.cache_dir, "figure", _cache_parts(kind, params, ctx), "zip") if use_cache else None
    files = FileSet()
    given = sources(ctx.cache_dir, verified, ctx.article, ctx.site)

    def usable(members: dict[str, bytes]) -> tuple[FigureOutput, dict[str, str], Path, dict[str, str]] | None:
        reads = json.loads(members["reads.json"])
        named = fileset.checked_names(json.loads(members["files.json"]))
        if not (isinstance(reads, dict) and isinstance(named, dict) and still_valid(reads, ctx.cache_dir, verified,
                                                                                     given)):
            return None  # an analysis file, or a part of one, that the figure read has changed
        stored = _files_entry(ctx.cache_dir, named)
        if not stored.is_file():
            return None  # the figure's files are not in the cache
        page = {k: v for k, v in members.items() if k not in ("reads.json", "files.json", "older.json")}
        return FigureOutput.from_files(page), named, stored, parts.rebased(reads, given.whole)

    def older(members: dict[str, bytes] | None) -> list[dict]:
        listed = json.loads(members.get("older.json", b"[]")) if members else []
        return [reads for reads in listed if isinstance(reads, dict)]

    def keep(live: dict[str, bytes], before: dict[str, bytes] | None, rest: list[dict]) -> None:
        """Store ``live`` as the entry; ``before`` (the entry it replaces) joins the older results."""
        live_reads, kept = json.loads(live["reads.json"]), list(rest)
        if before is not None and json.loads(before["reads.json"]) != live_reads:
            kept.insert(0, json.loads(before["reads.json"]))
            cache.store(_variant_entry(entry, kept[0]),
                        cache.pack({k: v for k, v in before.items() if k != "older.json"}))
        _variant_entry(entry, live_reads).unlink(missing_ok=True)  # live: kept inline
        kept = [reads for reads in kept if reads != live_reads]
        for reads in kept[KEPT - 1:]:
            _variant_entry(entry, reads).unlink(missing_ok=True)
        cache.store(entry, cache.pack({**live, "older.json": json.dumps(kept[:KEPT - 1]).encode()}))

    current = cache.load(entry, cache.unpack)
    found = None
    try:
        if current is not None:
            found = usable(current)
            if found is None:  # an earlier result whose reads hold again
                for reads in older(current):
                    if still_valid(reads, ctx.cache_dir, verified, given):
                        variant = cache.load(_variant_entry(entry, reads), cache.unpack)
                        found = usable(variant) if variant is not None else None
                        if found is not None:
                            _variant_entry(entry, reads).unlink(missing_ok=True)  # it becomes the live one
                            keep({**variant, "reads.json": json.dumps(found[3]).encode()}, current,
                                 [o for o in older(current) if o != reads])
                            break
            elif found[3] != json.loads(current["reads.json"]):  # valid part by part: today's digests, so that
                keep({**current, "reads.json": json.dumps(found[3]).encode()}, None, older(current))  # quick next
    except (KeyError, ValueError, TypeError):
        found = None  # an entry of the wrong shape is a miss
    if found is not None:
        out, named, stored, now = found
        ctx.reads.update(now)  # what the article's own cache entry depends on (article_cache.py)

        def remake() -> dict[str, bytes]:  # the same bytes: figures are deterministic
            made = figure_files(make_output(kind, params, _tracking(ctx)), fig_id)
            cache.store(_files_entry(ctx.cache_dir, fileset.digests(made)), cache.pack(made))
            return made

        files.add_lazy(named, fileset.from_entry(stored, named, remake))
        return out, files, True
    out = make_output(kind, params, _tracking(ctx))
    made = figure_files(out, fig_id)
    files.add(made)
    if entry is not None:
        cache.store(_files_entry(ctx.cache_dir, files.digests), cache.pack(made))
        page_part = FigureOutput(description=out.description, spec_text=out.spec_text, html=out.html,
                                 narrow_text=out.narrow_text, width=out.width, links=list(out.links))
        live = {"reads.json": json.dumps(ctx.reads).encode(),
                "files.json": json.dumps(files.digests, sort_keys=True).encode(), **page_part.to_files()}
        try:
            keep(live, current if current is not None and "reads.json" in current else None, older(current))
        except (KeyError, ValueError, TypeError):
            keep(live, None, [])
    return out, files, False
