"""Per-article social preview image (1200x630 PNG, OpenGraph size), deterministic bytes."""
from __future__ import annotations

import io
import textwrap
from pathlib import Path

from .. import cache
from ..structure.theme import DIVERGING, LIGHT

SIZE = (1200, 630)
_BG, _FG, _MUTED, _ACCENT = LIGHT["bg"], LIGHT["fg"], LIGHT["muted"], LIGHT["accent"]


def cached_preview_png(title: str, subtitle: str, site_title: str, cache_dir: Path | None) -> bytes:
    """preview_png, reused from the render cache while its inputs and its code are unchanged: the code key holds
    this module's import closure, so the theme colours it draws with (theme.py) and Pillow's version."""
    from analysis.core.codekey import code_key

    entry = None if cache_dir is None else cache.entry(
        cache_dir, "social", [title, subtitle, site_title, code_key(__name__, cache_dir=cache_dir)], "png")
    return cache.cached(entry, bytes, lambda: preview_png(title, subtitle, site_title), bytes)


def preview_png(title: str, subtitle: str, site_title: str) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    """Title (wrapped), a subtitle line (authors, date) and the site name; Pillow's bundled font."""
    img = Image.new("RGB", SIZE, _BG)
    draw = ImageDraw.Draw(img)
    big = ImageFont.load_default(size=72)
    small = ImageFont.load_default(size=34)
    draw.rectangle((0, 0, SIZE[0], 14), fill=_ACCENT)
    # A strip of the diverging weight scale as a visual signature.
    for i, col in enumerate(DIVERGING):
        draw.rectangle((80 + i * 60, 520, 80 + (i + 1) * 60, 550), fill=col, outline="#cccccc")
    y = 90
    for line in textwrap.wrap(title, width=28)[:4]:
        draw.text((80, y), line, font=big, fill=_FG)
        y += 88
    draw.text((80, y + 20), textwrap.shorten(subtitle, 70), font=small, fill=_MUTED)
    draw.text((420, 515), site_title[:40], font=small, fill=_MUTED)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)  # no timestamps/metadata chunks are written
    return buf.getvalue()
