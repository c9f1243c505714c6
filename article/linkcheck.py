"""Check that every internal href/src and #anchor in built HTML resolves inside the site folder."""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

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


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def check_links(site: Path) -> list[str]:
    """Return problems as ``page: broken link X`` (page relative to ``site``), sorted."""
    pages = {p: _parse(p) for p in sorted(site.rglob("*.html"))}
    problems = []
    for page_path, page in pages.items():
        rel_page = page_path.relative_to(site).as_posix()
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                continue  # external (http:, mailto:, data:, ...): not checked offline
            if parts.path.startswith("/"):
                problems.append(f"{rel_page}: broken link {link} (root-relative; use a relative URL)")
                continue
            if parts.path.endswith("/") or (parts.path and (site / _join(rel_page, parts.path)).is_dir()):
                problems.append(f"{rel_page}: broken link {link} (directory; name index.html explicitly "
                                "so file:// works)")
                continue
            target = page_path if not parts.path else (site / _join(rel_page, parts.path))
            try:
                target.resolve().relative_to(site.resolve())
            except ValueError:
                problems.append(f"{rel_page}: broken link {link} (outside the site)")
                continue
            if not target.is_file():
                problems.append(f"{rel_page}: broken link {link}")
                continue
            if parts.fragment and target.suffix == ".html":
                if not _has_anchor(pages[target] if target in pages else _parse(target), unquote(parts.fragment)):
                    problems.append(f"{rel_page}: broken link {link} (no such anchor)")
    return sorted(set(problems))


def _has_anchor(page: _Page, fragment: str) -> bool:
    """An element id, or a model page's `<layer>/<neuron>` with the neuron inside that layer's count."""
    if fragment in page.ids:
        return True
    layer, _, neuron = fragment.rpartition("/")
    return neuron.isdigit() and int(neuron) < page.neurons.get(layer, 0)


def _join(page: str, href: str) -> str:
    base = PurePosixPath(page).parent
    parts: list[str] = []
    for part in (base / unquote(href)).parts:
        if part == "..":
            if parts:
                parts.pop()
            else:
                parts.append("..")
        elif part != ".":
            parts.append(part)
    return "/".join(parts)
