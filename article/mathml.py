"""TeX -> MathML at build time (no client-side math library)."""
from __future__ import annotations

from functools import lru_cache

from latex2mathml.converter import convert


@lru_cache(maxsize=4096)
def tex_to_mathml(tex: str, display: bool) -> str:
    """Return a ``<math>`` element; raises ``ValueError`` with latex2mathml's reason on bad TeX."""
    try:
        out = convert(tex.strip(), display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises a zoo of exception types
        raise ValueError(f"cannot convert TeX {tex.strip()!r}: {type(exc).__name__} {exc}") from None
    return out
