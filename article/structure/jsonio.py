"""JSON for pages: the project's one JSON rule (analysis/core/jsonio.py, stdlib only), script-safe embedding, and reading
analysis records with one clear error."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analysis.core.jsonio import dumps

from .errors import BuildError

__all__ = ["dumps", "read_record", "script_safe"]


def read_record(path: Path) -> Any:
    """An analysis record (JSON) the render side needs; a missing or broken one is a BuildError naming it."""
    try:
        return json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise BuildError("analysis result not found (run `python build.py --clean`)", path) from None
    except ValueError as exc:
        raise BuildError(f"analysis result is not valid JSON: {exc}", path) from None


def script_safe(text: str) -> str:
    """JSON made safe inside ``<script type="application/json">`` (no ``</script>`` breakout)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
