"""The generated "Cite this article" block: BibTeX and a plain-text citation from the front matter."""
from __future__ import annotations

import re

from ..structure.types import FrontMatter


def _is_group(name: str) -> bool:
    """"The X authors" and the like name a group, not a person: never split into first/last name."""
    return name.startswith("The ") or name.split()[-1].lower() in {"authors", "contributors", "team", "project"}


def _last_first(name: str) -> tuple[str, str]:
    if _is_group(name):
        return name, ""
    parts = name.split()
    return (parts[-1], " ".join(parts[:-1])) if len(parts) > 1 else (name, "")


def _bibtex_escape(text: str) -> str:
    return re.sub(r"([&%$#_{}])", r"\\\1", text)


def bibtex_key(meta: FrontMatter) -> str:
    last = re.sub(r"\W", "", _last_first(meta.authors[0].name)[0]).lower() or "anon"
    word = next((w for w in re.findall(r"[A-Za-z]+", meta.title.lower())
                 if w not in {"a", "an", "the", "on", "of"}), "article")
    return f"{last}{meta.date.year}{word}"


def bibtex(meta: FrontMatter, site_title: str, url: str) -> str:
    authors = " and ".join(
        "{" + _bibtex_escape(a.name) + "}" if _is_group(a.name)
        else _bibtex_escape(", ".join(p for p in _last_first(a.name) if p)) for a in meta.authors)
    fields = [("author", authors), ("title", meta.title), ("journal", site_title),
              ("year", str(meta.date.year)), ("note", url)]
    if meta.doi:
        fields.append(("doi", meta.doi))
    body = ",\n".join(f"  {k} = {{{_bibtex_escape(v) if k not in ('note', 'author') else v}}}" for k, v in fields)
    return f"@article{{{bibtex_key(meta)},\n{body}\n}}"


def plain(meta: FrontMatter, site_title: str, url: str) -> str:
    lasts = [_last_first(a.name)[0] for a in meta.authors]
    who = lasts[0] if len(lasts) == 1 else " and ".join(lasts) if len(lasts) == 2 else f"{lasts[0]}, et al."
    return f'{who}, "{meta.title}", {site_title}, {meta.date.year}. {url}'
