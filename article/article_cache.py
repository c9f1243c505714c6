"""A rendered article (HTML, contents, appendix, figure files) in the render cache, so editing one article does not
render the others again.

The key holds everything ``pipeline.render_article`` reads besides the analysis cache: every file of the article's
folder and its bibliography, the site config, and the code key of the render pipeline and of every figure module
(analysis/core/codekey.py: their import closures by content, with the versions of the Markdown, template, chart and image
libraries they import). What it read from the analysis cache is stored beside the value (path -> sha256, as the figure
cache does) and checked against this build's verified digests on every hit. Only data is stored (JSON + the files in
a zip), never code. The figure files (megabytes of chart data) live in an entry of their own named by their digests
(fileset.py), so an edit of the prose stores the record again, not the unchanged files, and a hit reads them only when
the article's folder in the previous site cannot be reused.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, Mapping

from analysis.core.fingerprint import DigestMemo  # stdlib only: no torch

from . import cache
from .cache import fileset
from .cache.fileset import FileSet
from .config import limits
from .structure.errors import BuildError
from .structure.types import TocEntry

def code(cache_dir: Path | None = None) -> list[str | bytes]:
    """The code and library part of every article's key, as one digest: computed once per build (``entry``'s
    ``code``). Figure modules are imported by name at build start (registry.discover), not by an import statement,
    so they are named here."""
    from analysis.core.codekey import code_key

    from .figures import registry

    figures = sorted({fn.__module__ for fn in [*registry.FIGURES.values(), *registry.DATA.values()]})
    return [code_key("article.pipeline", *figures, cache_dir=cache_dir)]


def entry(a: Any, config: Any, cache_dir: Path, code_parts: list[str | bytes] | None = None) -> Path:
    parts: list[str | bytes] = [*(code(cache_dir) if code_parts is None else code_parts), repr(config), a.slug]
    memo = DigestMemo(cache_dir / "render" / f"digests-{a.slug}.json")
    try:
        parts += folder_parts(a.folder, memo)
        bib = a.source.meta.bibliography
        if bib and (a.folder / bib).is_file():
            parts += ["bibliography", _digest(a.folder / bib, os.stat(a.folder / bib), memo)]
    finally:
        memo.save()
    return cache.entry(cache_dir, f"article-{a.slug}", parts, "zip")


def folder_parts(folder: Path, memo: DigestMemo) -> list[str]:
    """Every entry of an article's folder as key parts, without reading a file whole (a 2 GB file used to cost every
    rebuild 4 GB of memory and 5 s; a sparse 64 GB one, a MemoryError): a regular file by its sha256 (streamed, and
    remembered by its stat for large ones), at most limits.MAX_FOLDER_FILE_BYTES; a symbolic link by its target's
    name, and by its content only when that lies inside the project (nothing outside is read); anything else (a
    FIFO, a device) by its kind, never opened."""
    project = os.path.realpath(folder.parent.parent)
    parts: list[str] = []
    for top, dirs, files in os.walk(folder):  # never into linked folders
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(top, name)
            rel = os.path.relpath(path, folder).replace(os.sep, "/")
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(path)
                inside = real.startswith(project + os.sep) and os.path.isfile(real)
                parts += [rel, "link:" + os.readlink(path) + (":" + _digest(Path(real), os.stat(real), memo)
                                                              if inside else "")]
            elif stat.S_ISREG(st.st_mode):
                parts += [rel, _digest(Path(path), st, memo)]
            else:
                parts += [rel, f"special:{stat.S_IFMT(st.st_mode)}"]
    return parts


def _digest(path: Path, st: os.stat_result, memo: DigestMemo) -> str:
    if st.st_size > limits.MAX_FOLDER_FILE_BYTES:
        raise BuildError(f"the file is {st.st_size / 2**30:.1f} GB; a file in an article's folder may be at most "
                         f"{limits.MAX_FOLDER_FILE_BYTES / 2**30:.0f} GB (name a larger weights file by a path outside "
                         "content/)", path)
    if st.st_size < 1 << 20:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return memo.sha256(path) or "unreadable"


def _toc(entries: list[TocEntry]) -> list:
    return [[e.id, e.title, _toc(e.children)] for e in entries]


def _untoc(rows: list) -> list[TocEntry]:
    return [TocEntry(str(i), str(t), _untoc(c)) for i, t, c in rows]


def _files_entry(cache_dir: Path, slug: str, digest: str) -> Path:
    return cache.entry(cache_dir, f"files-{slug}", [digest], "zip")


def store_files(cache_dir: Path, slug: str, files: FileSet) -> dict[str, bytes]:
    """The article's files under their digest (the only live entry of its kind for this article); returns them."""
    data = files.load()  # may correct a digest (a figure made again): the entry is named after the bytes
    entry = _files_entry(cache_dir, slug, files.digest)
    cache.store(entry, cache.pack(data))
    cache.keep_only(entry, f"files-{slug}")
    return data


def store(path: Path | None, cache_dir: Path, a: Any, reads: Mapping[str, str], figures: int) -> None:
    """The article's record at ``path``; its files under their digest, read and written only when not there yet
    (a prose edit keeps the same files: nothing is read)."""
    if path is None:
        return
    appendix = {**a.appendix, "updates": [[d.isoformat(), text] for d, text in a.appendix["updates"]],
                "references": [list(r) for r in a.appendix["references"]]}
    if not _files_entry(cache_dir, a.slug, a.files.digest).is_file():
        store_files(cache_dir, a.slug, a.files)
    record = {"reads": dict(reads), "html": a.html, "toc": _toc(a.toc), "appendix": appendix,
              "scripts": a.scripts, "warnings": list(a.warnings), "figures": figures, "files": a.files.digest, "file_digests": a.files.digests}
    cache.store(path, json.dumps(record, sort_keys=True).encode())
    cache.keep_only(path, f"article-{a.slug}")


def load(raw: bytes, cache_dir: Path, slug: str) -> tuple[dict, dict[str, str], Path]:
    """``cache.load``'s decode for a record: (record, its files' digests, the entry holding their bytes); raises (a
    miss) when that entry is gone or the digests do not add up to the recorded key."""
    record = json.loads(raw)
    named = fileset.checked_names(record["file_digests"])
    entry = _files_entry(cache_dir, slug, str(record["files"]))
    if fileset.key(named) != record["files"] or not entry.is_file():
        raise ValueError("the article's files are not in the cache")
    record["toc"] = _untoc(record["toc"])
    if not (isinstance(record.get("warnings"), list) and all(isinstance(w, str) for w in record["warnings"])):
        raise ValueError("an article record without its warnings")
    ap = record["appendix"]
    ap["updates"] = [(dt.date.fromisoformat(d), str(text)) for d, text in ap["updates"]]
    ap["references"] = [tuple(r) for r in ap["references"]]
    return record, named, entry
