"""Which URLs an article may link to: http, https, mailto and relative ones (never javascript:, data:, vbscript:)."""
from __future__ import annotations

import html
import re

SAFE_SCHEMES = ("http", "https", "mailto")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_IGNORED = re.compile(r"[\x00-\x20\x7f]+")  # browsers drop these inside a scheme: "java\tscript:" is javascript:


def safe_url(url: str) -> bool:
    """True for a relative URL or one whose scheme is http, https or mailto (read as a browser would)."""
    cleaned = _IGNORED.sub("", html.unescape(url))
    m = _SCHEME.match(cleaned)
    return m is None or m.group(1).lower() in SAFE_SCHEMES
