"""Article Markdown -> HTML: math, citations, figure directives and cross-references around python-markdown.

Pipeline for one body (after the Jinja data stage):
  1. ``scan_blocks`` splits lines into text, fenced code (left alone) and ``::: name attrs`` directives.
  2. ``_inline`` rewrites text (skipping inline code spans) with one regex: ``$$tex$$``, ``$tex$``,
     ``@fig:id``, ``[@key; @key2]``. Each result is parked as an opaque placeholder token.
  3. python-markdown converts the result (raw HTML escaped unless ``raw_html``), placeholders are restored.
Directives: ``::: figure id=.. kind=.. [width=l-page] [k=v ...]`` (body = caption), ``::: aside``
(margin note) and ``::: layout width=l-page`` (wrap any Markdown, e.g. a table, in a layout width).

Longer than most modules (~410 lines) on purpose: the three steps share one numbering and placeholder state
(``Renderer``), and splitting them would pass that state between modules for no gain in reading.
"""
from __future__ import annotations

import html
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from xml.etree.ElementTree import SubElement

import markdown
from markdown.extensions.toc import slugify
from markdown.treeprocessors import Treeprocessor

from ..config import limits
from ..structure.errors import BuildError
from ..structure.theme import WIDTHS  # the figure widths style.css lays out
from ..structure.types import TocEntry
from ..structure.urls import safe_url
from . import directives
from .bibliography import Citations
from .mathml import tex_to_mathml

MAX_NESTING = 50  # list / block quote levels

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
_OPEN = re.compile(r"^:::[ \t]*([A-Za-z][\w-]*)[ \t]*(.*?)\s*$")
_CLOSE = re.compile(r"^:::\s*$")
_ID = re.compile(r"^[A-Za-z][\w-]*$")
# Placeholders use private-use characters that an article may not contain (checked), so no text can forge one.
_OPEN_TOKEN, _CLOSE_TOKEN = "\ue000", "\ue001"
_TOKEN = re.compile(_OPEN_TOKEN + r"(\d+)" + _CLOSE_TOKEN)
_ALIGN = re.compile(r'<(th|td) align="(left|right|center)">')  # align= is obsolete HTML; style= breaks the CSP
_CODE_SPAN = re.compile(r"(?<!\\)(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
_INLINE = re.compile(
    r"(?P<dollar>\\\$)"
    r"|\$\$(?P<display>[^\x00]+?)\$\$"
    r"|(?<![\\$])\$(?![\s$])(?P<math>(?:[^$\\\n\x00]|\\[^\x00])+?)(?<![\s\\])\$(?![\d$])"
    r"|(?<![\w@/])@fig:(?P<ref>[A-Za-z][\w-]*[A-Za-z0-9_])"
    r"|\[(?P<cite>\s*@[^\s;\]\[\x00]+(?:\s*;\s*@[^\s;\]\[\x00]+)*\s*)\]",
    re.DOTALL,
)


def _mask_code(text: str) -> str:
    """Same-length copy of ``text`` with inline code spans blanked to NULs, so nothing matches inside."""
    return _CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", "\x00", m.group(0)), text)


@dataclass
class Block:
    kind: str  # "text" | "code" | "directive"
    text: str
    line: int  # 1-based line within the body
    name: str = ""
    attrs: str = ""


def scan_blocks(text: str, path: Path, line_of: Callable[[int], int]) -> list[Block]:
    """Split Markdown into text, fenced code and directive blocks (directives do not nest)."""
    lines = text.splitlines(keepends=True)
    blocks: list[Block] = []
    buf: list[str] = []
    buf_start = 1

    def flush(next_line: int) -> None:
        nonlocal buf, buf_start
        if buf:
            blocks.append(Block("text", "".join(buf), buf_start))
        buf, buf_start = [], next_line

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        opened = _OPEN.match(line)
        if fence:
            flush(i + 1)
            mark = fence.group(1)
            close = re.compile(r"^[ \t]*" + re.escape(mark[0]) + "{" + str(len(mark)) + r",}\s*$")
            j = i + 1
            while j < len(lines) and not close.match(lines[j]):
                j += 1
            blocks.append(Block("code", "".join(lines[i:j + 1]), i + 1))
            i = j + 1
            buf_start = i + 1
            continue
        if opened:
            flush(i + 1)
            j = i + 1
            while j < len(lines) and not _CLOSE.match(lines[j]):
                if _OPEN.match(lines[j]):
                    raise BuildError(f"directive '::: {opened.group(1)}' is not closed before the next "
                                     "directive (directives do not nest)", path, line_of(i + 1))
                j += 1
            if j == len(lines):
                raise BuildError(f"directive '::: {opened.group(1)}' is never closed with ':::'",
                                 path, line_of(i + 1))
            blocks.append(Block("directive", "".join(lines[i + 1:j]), i + 1,
                                opened.group(1), opened.group(2)))
            i = j + 1
            buf_start = i + 1
            continue
        if not buf:
            buf_start = i + 1
        buf.append(line)
        i += 1
    flush(len(lines) + 1)
    return blocks


def parse_attrs(attrs: str, path: Path, line: int) -> dict[str, str]:
    try:
        words = shlex.split(attrs)
    except ValueError as exc:
        raise BuildError(f"bad directive attributes: {exc}", path, line) from None
    out: dict[str, str] = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise BuildError(f"directive attribute {word!r} is not key=value", path, line)
        if key in out:
            raise BuildError(f"directive attribute '{key}' given twice", path, line)
        out[key] = value
    return out


# Attributes Markdown (and `{: ...}` attribute lists) may put on an element: no event handlers, no style.
SAFE_ATTRIBUTES = frozenset({"id", "class", "href", "src", "alt", "title", "align", "colspan", "rowspan", "start",
                             "lang", "dir", "width", "height", "rel", "role"})
URL_ATTRIBUTES = ("href", "src")


class _SafeAttributes(Treeprocessor):
    """Runs last: drops attributes outside SAFE_ATTRIBUTES (``{: onclick=...}``) and URLs whose scheme is not
    http, https or mailto (``[x](javascript:...)``). Raw HTML is not in the tree: it is escaped unless raw_html."""

    def run(self, root):
        for el in root.iter():
            for key in list(el.attrib):
                low = key.lower()
                if (low not in SAFE_ATTRIBUTES and not low.startswith("aria-")) or (
                        low in URL_ATTRIBUTES and not safe_url(el.attrib[key])):
                    del el.attrib[key]
        return None


# Ids the page itself gives elements around the article (templates/base.html, templates/article.html) and that a
# heading or an attribute list in the article must not take (the skip link, the appendix anchors, a citation's
# target); per article also fig-<id>... of its figures and ref-<key> of its bibliography (Renderer.reserved_ids).
PAGE_IDS = frozenset({"main", "acknowledgements", "citation", "contributions", "footnotes", "references",
                      "toc-heading", "updates"})


class _ReserveIds(Treeprocessor):
    """Before the table of contents names the headings: an author's own id (``{#main}``) that the page uses gets a
    suffix, and the page's ids are put in the tree (removed again by _ReleaseIds), so the TOC extension's own
    de-duplication suffixes a heading whose name would take one (``## Main`` -> ``main_1``)."""

    def run(self, root):
        reserved = self.md.vw_reserved
        taken = {el.get("id") for el in root.iter() if el.get("id")} | reserved
        for el in root.iter():
            own = el.get("id")
            if own in reserved:
                n = 1
                while f"{own}_{n}" in taken:
                    n += 1
                el.set("id", f"{own}_{n}")
                taken.add(el.get("id"))
                self.md.vw_renamed.append((own, el.get("id")))
        for rid in sorted(reserved):
            placeholder = SubElement(root, "span")
            placeholder.set("id", rid)
            placeholder.set("data-vw-reserved", "")
        return None


class _ReleaseIds(Treeprocessor):
    """After the table of contents: drop _ReserveIds' placeholders and note the headings it renamed."""

    def run(self, root):
        reserved = self.md.vw_reserved
        for el in [el for el in root if el.get("data-vw-reserved") is not None]:
            root.remove(el)
        for token in _walk_toc(getattr(self.md, "toc_tokens", [])):
            base, _, n = token["id"].rpartition("_")
            if base in reserved and n.isdigit() and (base, token["id"]) not in self.md.vw_renamed:
                self.md.vw_renamed.append((base, token["id"]))
        return None


def _walk_toc(tokens: list[dict]):
    for t in tokens:
        yield t
        yield from _walk_toc(t.get("children", []))


def make_markdown(raw_html: bool, full: bool, plain: Callable[[str], str] = str, code: bool = True) -> markdown.Markdown:
    """full: the article body (TOC + footnotes); otherwise a fragment (caption, aside, front matter text).
    code: with Pygments highlighting and fenced code (pymdownx); only text that has code needs them (``has_code``).
    Extensions are passed as instances: a name makes python-markdown scan every installed package's entry points
    (~10 ms a build)."""
    from markdown.extensions.attr_list import AttrListExtension
    from markdown.extensions.tables import TableExtension

    exts: list = [TableExtension(use_align_attribute=True),  # align= not style=: the CSP forbids inline styles
                  AttrListExtension()]
    if code:
        from pymdownx.highlight import HighlightExtension
        from pymdownx.superfences import SuperFencesCodeExtension

        exts += [HighlightExtension(use_pygments=True, css_class="highlight", guess_lang=False),
                 SuperFencesCodeExtension()]
    if full:
        from markdown.extensions.footnotes import FootnoteExtension
        from markdown.extensions.toc import TocExtension

        exts += [TocExtension(permalink="#", permalink_class="anchor", permalink_title="Link to this section",
                              toc_depth="2-3", slugify=lambda value, sep: slugify(plain(value), sep)),
                 FootnoteExtension(BACKLINK_TITLE="Back to text (footnote %d)")]
    md = markdown.Markdown(extensions=exts, output_format="html")
    md.treeprocessors.register(_SafeAttributes(md), "vw_safe_attributes", 0.5)
    md.vw_reserved, md.vw_renamed = frozenset(), []  # the page's own ids; (author id, the id it got instead)
    md.treeprocessors.register(_ReserveIds(md), "vw_reserve_ids", 6)  # after attr_list (8), before toc (5)
    md.treeprocessors.register(_ReleaseIds(md), "vw_release_ids", 4)
    if not raw_html:  # escape raw HTML instead of passing it through
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
    return md


_CODE_HINT = re.compile(r"```|~~~|^[ >]*(?: {4}|\t)", re.MULTILINE)


def has_code(text: str) -> bool:
    """Could python-markdown find a code block here (a fence, or a line indented by a tab or four spaces, also
    after '>')? If
    not, the code extensions change nothing and are not loaded (importing and building them is ~15 ms)."""
    return _CODE_HINT.search(text) is not None


class _TooDeep(Exception):
    """python-markdown ran out of recursion; args[0]: the 0-based line of the most deeply nested text."""


_FRAGMENT_PARSERS: dict[tuple[bool, bool], markdown.Markdown] = {}  # in the worker: one per (raw_html, code)


def _convert_here(text: str, raw_html: bool, full: bool, code: bool, plain: list[str] | None,
                  reserved: frozenset[str]) -> tuple[str, list[dict], list[tuple[str, str]]]:
    """Renderer._convert's work, in the worker: (html, TOC tokens, ids renamed away from the page's own). A
    fragment's parser is kept for the next fragment (building one costs ~2 ms); an article body gets a new one."""
    if full:
        md = make_markdown(raw_html, full=True, plain=lambda t: _TOKEN.sub(lambda m: plain[int(m.group(1))], t),
                           code=code)
        md.vw_reserved = reserved
    else:
        md = _FRAGMENT_PARSERS.get((raw_html, code))
        if md is None:
            md = _FRAGMENT_PARSERS[(raw_html, code)] = make_markdown(raw_html, full=False, code=code)
        md.reset()  # forget the previous fragment's stash and state
        md.vw_renamed = []
    try:
        html_text = md.convert(text)
    except RecursionError:
        lines = text.splitlines() or [""]
        raise _TooDeep(max(range(len(lines)), key=lambda i: len(lines[i]) - len(lines[i].lstrip(" >\t-*+"))))
    return html_text, getattr(md, "toc_tokens", []) if full else [], list(md.vw_renamed)


FigureHook = Callable[[dict[str, str], int, str, int], str]
"""(params incl. id/kind/width, number, caption_html, body line) -> <figure> HTML."""


@dataclass
class Rendered:
    html: str
    toc: list[TocEntry]
    footnotes_html: str  # the <ol> of footnotes, or ""
    warnings: list[str] = field(default_factory=list)  # "file:line: ..." (an id the page uses, renamed)


class Renderer:
    """Renders one article; holds numbering state shared by the body, captions and front matter text."""

    def __init__(self, path: Path, source: str, line_offset: int, citations: Citations,
                 figure_kinds: set[str], figure_hook: FigureHook, raw_html: bool = False):
        self.path = path
        self.source_lines = source.splitlines()  # the untemplated body, to locate tokens
        self.line_offset = line_offset  # file line of body line 1
        self.citations = citations
        self.figure_kinds = figure_kinds
        self.figure_hook = figure_hook
        self.raw_html = raw_html
        self.tokens: list[tuple[str, str]] = []  # (html, plain text)
        self.block_tokens: set[str] = set()
        self.figures: dict[str, int] = {}  # id -> number

    # -------------------------------------------------------------- helpers
    def file_line(self, body_line: int, needle: str | None = None) -> int:
        """Map a line of the templated body to the file; prefer where ``needle`` occurs in the source."""
        if needle:
            hits = [i + 1 for i, l in enumerate(self.source_lines) if needle in l]
            if hits:
                body_line = min(hits, key=lambda h: abs(h - body_line))
        return self.line_offset + body_line - 1

    def _park(self, html_text: str, plain: str, block: bool = False) -> str:
        self.tokens.append((html_text, plain))
        token = f"{_OPEN_TOKEN}{len(self.tokens) - 1}{_CLOSE_TOKEN}"
        if block:
            self.block_tokens.add(token)
        return f"\n\n{token}\n\n" if block else token

    def restore(self, text: str) -> str:
        for _ in range(4):  # tokens may contain tokens (captions inside figures)
            text = re.sub(r"<p>\s*(" + _TOKEN.pattern + r")\s*</p>",
                          lambda m: m.group(1) if m.group(1) in self.block_tokens else m.group(0), text)
            new = _TOKEN.sub(lambda m: self.tokens[int(m.group(1))][0], text)
            if new == text:
                break
            text = new
        return text

    def plain(self, text: str) -> str:
        return _TOKEN.sub(lambda m: self.tokens[int(m.group(1))][1], text)

    # -------------------------------------------------------------- stages
    def number_figures(self, blocks: list[Block]) -> None:
        """First pass: figure numbers in document order, so @fig refs may point forward."""
        for b in blocks:
            if b.kind == "directive" and b.name == "figure":
                line = self.file_line(b.line)
                attrs = parse_attrs(b.attrs, self.path, line)
                fid = attrs.get("id")
                if not fid:
                    raise BuildError("figure directive needs id=...", self.path, line)
                if not _ID.match(fid):
                    raise BuildError(f"figure id {fid!r} must be letters, digits, '-' or '_'",
                                     self.path, line)
                if fid in self.figures:
                    raise BuildError(f"figure id '{fid}' used twice", self.path, line)
                self.figures[fid] = len(self.figures) + 1

    def _inline(self, text: str, start: int) -> str:
        """Rewrite math, figure refs and citations; positions match on a code-masked shadow copy."""
        out, pos = [], 0
        for m in _INLINE.finditer(_mask_code(text)):
            out.append(text[pos:m.start()])
            out.append(self._inline_one(m, start + text.count("\n", 0, m.start())))
            pos = m.end()
        out.append(text[pos:])
        return "".join(out)

    def _inline_one(self, m: re.Match, body_line: int) -> str:
        if m.group("dollar"):
            return "&#36;"
        if m.group("display") is not None or m.group("math") is not None:
            display = m.group("display") is not None
            tex = m.group("display") if display else m.group("math")
            try:
                mathml = tex_to_mathml(tex, display)
            except ValueError as exc:
                raise BuildError(str(exc), self.path, self.file_line(body_line, tex.strip())) from None
            return self._park(mathml, tex.strip())
        if m.group("ref"):
            fid = m.group("ref")
            if fid not in self.figures:
                raise BuildError(f"reference to unknown figure '@fig:{fid}'", self.path,
                                 self.file_line(body_line, f"@fig:{fid}"))
            n = self.figures[fid]
            return self._park(f'<a class="fig-ref" href="#fig-{fid}">Figure {n}</a>', f"Figure {n}")
        keys = [k.strip()[1:] for k in m.group("cite").split(";")]
        nums = [self.citations.cite(k, self.path, self.file_line(body_line, "@" + k)) for k in keys]
        links = ", ".join(
            f'<a class="cite" href="#ref-{html.escape(k)}" data-ref="ref-{html.escape(k)}">{n}</a>'
            for k, n in zip(keys, nums))
        return self._park(f'<span class="citation">[{links}]</span>',
                          "[" + ", ".join(map(str, nums)) + "]")

    def _directive(self, b: Block) -> str:
        line = self.file_line(b.line)
        attrs = parse_attrs(b.attrs, self.path, line)
        found = directives.DIRECTIVES.get(b.name)
        if found is None:
            raise BuildError(f"unknown directive '::: {b.name}' ({', '.join(sorted(directives.DIRECTIVES))})",
                             self.path, line)
        width = attrs.get("width", found.width)
        if width not in WIDTHS:
            raise BuildError(f"width {width!r} is not one of {', '.join(WIDTHS)}", self.path, line)
        return found.render(self, b, dict(attrs, width=width), line)

    def block_html(self, html_text: str, plain: str = "") -> str:
        """A directive's HTML, kept out of Markdown's way and put back as a block of its own."""
        return self._park(html_text, plain, block=True)

    def _prepare(self, text: str, start: int) -> str:
        for ch in (_OPEN_TOKEN, _CLOSE_TOKEN):
            if ch in text:
                line = start + text[:text.index(ch)].count("\n")
                raise BuildError(f"the text contains the character U+{ord(ch):04X}, which the renderer reserves "
                                 "for its own use; remove it", self.path, self.file_line(line))
        blocks = scan_blocks(text, self.path, lambda l: self.file_line(start + l - 1))
        out = []
        for b in blocks:
            b.line += start - 1
            if b.kind == "code":
                out.append(b.text)
            elif b.kind == "text":
                self._check_nesting(b.text, b.line)
                out.append(self._inline(b.text, b.line))
            else:
                out.append(self._directive(b))
        return "".join(out)

    def _check_nesting(self, text: str, start: int) -> None:
        """Fail fast on absurd nesting: python-markdown takes seconds per hundred levels, then hits the recursion
        limit."""
        for i, line in enumerate(text.splitlines()):
            lead = line[:len(line) - len(line.lstrip(" \t>"))]
            if lead.count(">") > MAX_NESTING or len(lead.expandtabs(4)) > 4 * MAX_NESTING:
                raise BuildError(f"Markdown nested more than {MAX_NESTING} levels deep (lists or block quotes): "
                                 "flatten it", self.path, self.file_line(start + i))

    def _convert(self, text: str, start: int, full: bool = False) -> tuple[str, list[dict], list[tuple[str, str]]]:
        """python-markdown on prepared text, in the build's worker under the render time limit (some inputs take
        time quadratic in their length, e.g. thousands of unclosed '['): (html, TOC tokens, renamed ids)."""
        seconds = limits.render_timeout(60.0)
        plain = [p for _, p in self.tokens] if full else None
        reserved = self.reserved_ids() if full else frozenset()

        def too_slow(info: dict) -> BuildError:
            return BuildError(f"the Markdown did not finish converting within {seconds:g} s (a construct that "
                              f"takes time quadratic in its length, such as thousands of unclosed '['? "
                              f"${limits.TIMEOUT_ENV} raises the limit)", self.path, self.file_line(start))

        try:
            return limits.run_author_text(_convert_here, text, self.raw_html, full, has_code(text), plain, reserved,
                                          seconds=seconds, on_timeout=too_slow)
        except _TooDeep as exc:  # python-markdown recurses per nesting level (lists, quotes)
            raise BuildError("Markdown nested too deeply (lists or block quotes): flatten it", self.path,
                             self.file_line(start + exc.args[0])) from None

    def reserved_ids(self) -> frozenset[str]:
        """Ids the page gives elements of its own, which an author's heading or attribute list must not take."""
        figures = {f"{prefix}-{fid}{suffix}" for fid in self.figures
                   for prefix, suffix in (("fig", ""), ("fig", "-desc"), ("chart", ""), ("spec", ""))}
        return PAGE_IDS | figures | {f"ref-{key}" for key in self.citations.refs}

    def fragment(self, text: str, start: int = 1, inline: bool = False) -> str:
        """Markdown of a caption / aside / front matter field -> HTML (same numbering state)."""
        prepared = self._prepare(text, start)
        out = self.restore(self._convert(prepared, start)[0])
        if inline:
            m = re.fullmatch(r"\s*<p>(.*)</p>\s*", out, re.DOTALL)
            if m and "<p>" not in m.group(1):
                out = m.group(1)
        return _ALIGN.sub(r'<\1 class="align-\2">', out).strip()

    def render(self, body: str) -> Rendered:
        """Render the article body. Call once; front matter fragments may follow (for numbering)."""
        blocks = scan_blocks(body, self.path, self.file_line)
        self.number_figures(blocks)
        prepared = self._prepare(body, 1)
        converted, toc_tokens, renamed = self._convert(prepared, 1, full=True)
        footnotes = ""
        m = re.search(r'<div class="footnote">\s*(?:<hr\s*/?>)?\s*(.*?)</div>\s*$', converted, re.DOTALL)
        if m:
            footnotes = self.restore(m.group(1).strip())
            converted = converted[:m.start()]
        toc = [self._toc(t) for t in toc_tokens]
        converted = _ALIGN.sub(r'<\1 class="align-\2">', converted)
        warnings = [f"{self.path}:{self._id_line(old)}: the id '{old}' is one the page gives an element of its own; "
                    f"the article's element gets '{new}' instead (rename the heading, or give it another "
                    "{#id})" for old, new in renamed]
        return Rendered(html=self.restore(converted).strip(), toc=toc, footnotes_html=footnotes, warnings=warnings)

    def _id_line(self, ident: str) -> int:
        """The file line of the heading (or ``{#id}``) that asked for ``ident``, as well as can be told."""
        words = ident.replace("-", " ").replace("_", " ").lower()
        for i, line in enumerate(self.source_lines):
            low = line.lower()
            if f"#{ident}" in line or (line.lstrip().startswith("#") and words in low.replace("-", " ")):
                return self.line_offset + i
        return self.line_offset

    def _toc(self, token: dict) -> TocEntry:
        title = self.plain(html.unescape(token["name"]))
        return TocEntry(token["id"], title, [self._toc(c) for c in token.get("children", [])])


# -------------------------------------------------------- the built-in directives (article/markup/directives.py)

@directives.register("figure")
def _figure(ctx: Renderer, b: Block, attrs: dict[str, str], line: int) -> str:
    kind = attrs.get("kind")
    if not kind:
        raise BuildError("figure directive needs kind=...", ctx.path, line)
    if kind not in ctx.figure_kinds:
        raise BuildError(f"unknown figure kind '{kind}' (known: {', '.join(sorted(ctx.figure_kinds))})", ctx.path, line)
    if attrs.get("id") not in ctx.figures:
        raise BuildError("a figure directive may only appear in the article body (not in a caption, an "
                         "aside or front matter text such as acknowledgements)", ctx.path, line)
    caption = ctx.fragment(b.text, b.line + 1, inline=True)
    number = ctx.figures[attrs["id"]]
    return ctx.block_html(ctx.figure_hook(attrs, number, caption, line), f"Figure {number}")


@directives.register("aside", width="l-gutter")
def _aside(ctx: Renderer, b: Block, attrs: dict[str, str], line: int) -> str:
    return ctx.block_html(f'<aside class="{attrs["width"]}">\n{ctx.fragment(b.text, b.line + 1)}\n</aside>')


@directives.register("layout")
def _layout(ctx: Renderer, b: Block, attrs: dict[str, str], line: int) -> str:
    return ctx.block_html(f'<div class="{attrs["width"]}">\n{ctx.fragment(b.text, b.line + 1)}\n</div>')
