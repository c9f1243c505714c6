"""A rendered article (HTML, contents, appendix, figure files) in the render cache, so editing one article does not
render the others again.

The key holds everything ``pipeline.render_article`` reads besides the analysis cache: every file of the article's
folder and its bibliography, the site config, the code of article/ and analysis/ and the versions of the Markdown and
template libraries. What it read from the analysis cache is stored beside the value (path -> sha256, as the figure
cache does) and checked against this build's verified digests on every hit. Only data is stored (JSON + the files in
a zip), never code.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path
from typing import Any, Mapping

from . import cache
from .markup import TocEntry

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def _code() -> list[str | bytes]:
    parts: list[str | bytes] = []
    for package in ("article", "analysis"):
        for f in sorted((PACKAGE_ROOT / package).rglob("*.py")):
            parts += [f.relative_to(PACKAGE_ROOT).as_posix(), f.read_bytes()]
    import jinja2
    import markdown
    import pygments
    import pymdownx

    from .mathml import _library_stamp  # latex2mathml's sources: importing it just for a version costs ~25 ms

    parts += [str(getattr(m, "__version__", m.__file__)) for m in (jinja2, markdown, pygments, pymdownx)]
    parts.append(_library_stamp())
    return parts


def entry(a: Any, config: Any, cache_dir: Path) -> Path:
    parts: list[str | bytes] = [*_code(), repr(config), a.slug]
    for f in sorted(p for p in a.folder.rglob("*") if p.is_file()):
        parts += [f.relative_to(a.folder).as_posix(), f.read_bytes()]
    bib = a.source.meta.bibliography
    if bib and (a.folder / bib).is_file():
        parts += ["bibliography", (a.folder / bib).read_bytes()]
    return cache.entry(cache_dir, f"article-{a.slug}", parts, "zip")


def _toc(entries: list[TocEntry]) -> list:
    return [[e.id, e.title, _toc(e.children)] for e in entries]


def _untoc(rows: list) -> list[TocEntry]:
    return [TocEntry(str(i), str(t), _untoc(c)) for i, t, c in rows]


def pack(a: Any, reads: Mapping[str, str], figures: int) -> bytes:
    appendix = {**a.appendix, "updates": [[d.isoformat(), text] for d, text in a.appendix["updates"]],
                "references": [list(r) for r in a.appendix["references"]]}
    record = {"reads": dict(reads), "html": a.html, "toc": _toc(a.toc), "appendix": appendix,
              "scripts": a.scripts, "figures": figures}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for rel, data in sorted({**a.files, "article.json": json.dumps(record, sort_keys=True).encode()}.items()):
            z.writestr(zipfile.ZipInfo(rel, (1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def unpack(raw: bytes) -> tuple[dict, dict[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        record = json.loads(z.read("article.json"))
        files = {n: z.read(n) for n in z.namelist() if n != "article.json"}
    record["toc"] = _untoc(record["toc"])
    ap = record["appendix"]
    ap["updates"] = [(dt.date.fromisoformat(d), str(text)) for d, text in ap["updates"]]
    ap["references"] = [tuple(r) for r in ap["references"]]
    return record, files
