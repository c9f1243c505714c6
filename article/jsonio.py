"""JSON for pages: the project's one JSON rule (analysis/jsonio.py, stdlib only) and script-safe embedding."""
from __future__ import annotations

from analysis.jsonio import dumps

__all__ = ["dumps", "script_safe"]


def script_safe(text: str) -> str:
    """JSON made safe inside ``<script type="application/json">`` (no ``</script>`` breakout)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
