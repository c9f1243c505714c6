"""Per-article social preview image (1200x630 PNG, OpenGraph size), deterministic bytes."""
from __future__ import annotations

import io
import textwrap

import hashlib
from pathlib import Path

SIZE = (1200, 630)
_BG, _FG, _MUTED, _ACCENT = "#ffffff", "#1a1a1a", "#555555", "#ca0020"


def cached_preview_png(title: str, subtitle: str, site_title: str, cache_dir: Path | None) -> bytes:
    """preview_png, reused from `<cache_dir>/render/` while its inputs and this module are unchanged."""
    if cache_dir is None:
        return preview_png(title, subtitle, site_title)
    key = hashlib.sha256("\0".join([title, subtitle, site_title]).encode() + Path(__file__).read_bytes()).hexdigest()
    entry = cache_dir / "render" / f"social-{key}.png"
    try:
        return entry.read_bytes()
    except OSError:
        pass
    png = preview_png(title, subtitle, site_title)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(".tmp")
        tmp.write_bytes(png)
        tmp.replace(entry)
    except OSError:
        pass  # only a speed-up
    return png


def preview_png(title: str, subtitle: str, site_title: str) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    """Title (wrapped), a subtitle line (authors, date) and the site name; Pillow's bundled font."""
    img = Image.new("RGB", SIZE, _BG)
    draw = ImageDraw.Draw(img)
    big = ImageFont.load_default(size=72)
    small = ImageFont.load_default(size=34)
    draw.rectangle((0, 0, SIZE[0], 14), fill=_ACCENT)
    # A strip of the diverging weight scale as a visual signature.
    for i, col in enumerate(["#0571b0", "#92c5de", "#f7f7f7", "#f4a582", "#ca0020"]):
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
