"""Deterministic JSON: sorted keys, compact separators, floats at 7 significant digits (float32 precision)."""
from __future__ import annotations

import json
import math
from typing import Any


def _normalize(obj: Any) -> Any:
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        return float(f"{obj:.7g}")
    if isinstance(obj, dict):
        return {str(k): _normalize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_normalize(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, without importing numpy
        return _normalize(obj.tolist())
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(_normalize(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def script_safe(text: str) -> str:
    """JSON made safe inside ``<script type="application/json">`` (no ``</script>`` breakout)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
