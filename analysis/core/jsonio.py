"""The project's one JSON rule, plus atomic writing and verified reading (stdlib only: the render side uses it too).

The rule, for every JSON file the project writes (analysis cache, figure specs and data, render cache): sorted keys,
compact separators, UTF-8, NaN/inf -> null, -0.0 -> 0.0, and floats rounded to 7 significant digits. Significant
digits rather than fixed decimals because the numbers are float32 tensors of every magnitude: 7 digits is float32's
own precision (about 7.2 decimal digits), so a weight of 3e-7 keeps its value (6 decimals made it 0.0) and a large
value carries no digits the tensor never had. Identical analyses therefore give identical bytes on every machine.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

SIGNIFICANT_DIGITS = 7


def canonical(value: Any) -> Any:
    """``value`` as plain JSON types under the rule above (numpy arrays and scalars via ``tolist``, dates as ISO)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
        return 0.0 if rounded == 0 else rounded
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, without importing numpy
        return canonical(value.tolist())
    if hasattr(value, "isoformat"):  # dates in front matter
        return value.isoformat()
    return value


def dumps(obj: Any) -> str:
    return json.dumps(canonical(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def write_bytes_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write to a temporary sibling and rename, so a killed process never leaves a half-written file. ``durable``:
    fsync before the rename, so a power cut cannot leave the new name with lost bytes (not needed where every read
    checks a sha256, as the render cache does: ~0.5 ms a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; cache files are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> str:
    """Write obj as deterministic JSON atomically; return the sha256 of the bytes written."""
    data = (dumps(obj) + "\n").encode("utf-8")
    write_bytes_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def read_json(path: Path) -> Any | None:
    """Return parsed JSON, or None when the file is missing or corrupt (the caller recomputes)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))
