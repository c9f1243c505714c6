"""Check that every internal href/src and #anchor in built HTML resolves inside the site folder.

Parsing is most of the cost and most pages (the model pages) are unchanged between content edits, so with a cache
folder each page's parse (its ids, links and neuron counts: data) is kept in the render cache under its bytes."""
from __future__ import annotations

import json
import os
import posixpath
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .. import cache

_LINK_ATTRS = {"href", "src", "poster", "data"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.neurons: dict[str, int] = {}  # weight explorer: layer anchor -> neuron count (#<layer>/<neuron>)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name") and (name == "id" or tag == "a"):
                self.ids.add(value)
            elif name == "data-vw-neurons" and value.isdigit() and dict(attrs).get("id"):
                self.neurons[dict(attrs)["id"]] = int(value)
            elif name in _LINK_ATTRS and not (tag == "link" and ("rel", "canonical") in attrs) \
                    and not (tag == "meta"):
                self.links.append(value)
            elif name == "srcset":
                self.links += [part.split()[0] for part in value.split(",") if part.strip()]


def _parse(path: Path, cache_dir: Path | None = None, used: set[Path] | None = None) -> _Page:
    raw = path.read_bytes()
    entry = cache.entry(cache_dir, "links", [Path(__file__).read_bytes(), raw]) if cache_dir is not None else None
    if used is not None and entry is not None:
        used.add(entry)
    page = cache.load(entry, _decode)
    if page is None:
        page = _Page()
        page.feed(raw.decode("utf-8"))
        page.close()
        cache.store(entry, json.dumps({"ids": sorted(page.ids), "links": page.links, "neurons": page.neurons},
                                      sort_keys=True).encode())
    return page


def _decode(raw: bytes) -> _Page:
    value = json.loads(raw)
    page = _Page()
    page.ids = {str(i) for i in value["ids"]}
    page.links = [str(link) for link in value["links"]]
    page.neurons = {str(k): int(v) for k, v in value["neurons"].items()}
    return page


def check_links(site: Path, cache_dir: Path | None = None) -> list[str]:
    """Return problems as ``page: broken link X`` (page relative to ``site``), sorted. ``cache_dir``: keep each
    page's parse in its render cache."""
    used: set[Path] = set()
    pages = {p: _parse(p, cache_dir, used) for p in sorted(site.rglob("*.html"))}
    if cache_dir is not None:  # only this site's pages stay: the cache does not grow with every edit
        for old in (Path(cache_dir) / "render").glob("links-*.json"):
            if old not in used:
                old.unlink(missing_ok=True)
    real_site = site.resolve()
    folders: dict[str, str] = {}  # folder -> its real path: ~500 links resolve a handful of folders
    targets: dict[tuple[str, bool, bool], tuple[str | None, Path | None]] = {}
    problems = []
    for page_path, page in pages.items():
        rel_page = page_path.relative_to(site).as_posix()
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                continue  # external (http:, mailto:, data:, ...): not checked offline
            if not parts.path:
                problem, target = None, page_path
            else:  # each target is resolved once (every model page links the same assets)
                joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel_page), unquote(parts.path)))
                where = (joined, parts.path[:1] == "/", parts.path[-1:] == "/")
                if where not in targets:
                    targets[where] = _resolve(site, joined, parts.path, str(real_site), folders)
                problem, target = targets[where]
            if problem is not None:
                problems.append(f"{rel_page}: broken link {link}{problem}")
                continue
            if parts.fragment and target.suffix == ".html":
                if not _has_anchor(pages[target] if target in pages else _parse(target), unquote(parts.fragment)):
                    problems.append(f"{rel_page}: broken link {link} (no such anchor)")
    return sorted(set(problems))


def _resolve(site: Path, joined: str, href: str, real_site: str,
             folders: dict[str, str]) -> tuple[str | None, Path | None]:
    """(what is wrong with a link's path, "" for a missing file, or None; the file it names). ``joined``: the path
    relative to the site, '..' resolved lexically (as a browser does with a URL)."""
    if href.startswith("/"):
        return " (root-relative; use a relative URL)", None
    target = site / joined
    if href.endswith("/") or target.is_dir():
        return " (directory; name index.html explicitly so file:// works)", None
    if not _inside(str(target), real_site, folders):
        return " (outside the site)", None
    if not target.is_file():
        return "", None
    return None, target


def _inside(target: str, real_site: str, folders: dict[str, str]) -> bool:
    """Whether ``target`` resolves (symlinks followed, as Path.resolve) inside ``real_site``. realpath(a/b) is
    realpath(realpath(a)/b), and the last step is plain unless b is a link or '..', so folders are resolved once."""
    folder, name = os.path.split(target)
    if folder not in folders:
        folders[folder] = os.path.realpath(folder)
    real = os.path.join(folders[folder], name)
    if name in ("", ".", "..") or os.path.islink(real):
        real = os.path.realpath(real)
    return real == real_site or real.startswith(real_site.rstrip("/") + "/")


def _has_anchor(page: _Page, fragment: str) -> bool:
    """An element id, or a model page's `<layer>/<neuron>` with the neuron inside that layer's count."""
    if fragment in page.ids:
        return True
    layer, _, neuron = fragment.rpartition("/")
    return neuron.isdigit() and int(neuron) < page.neurons.get(layer, 0)
