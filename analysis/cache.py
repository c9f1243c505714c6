"""Keys and lookups of the analysis cache's JSON entries."""
from __future__ import annotations

import hashlib
from pathlib import Path

from analysis import jsonio
from analysis.spec import ANALYSIS_VERSION
from analysis.tensor_report import SCHEMA


def entry_key(weights_sha: str, *parts) -> str:
    return hashlib.sha256("|".join([ANALYSIS_VERSION, weights_sha, *map(str, parts)]).encode()).hexdigest()


def cached(path: Path, key: str) -> dict | None:
    data = jsonio.read_json(path)
    if isinstance(data, dict) and data.get("key") == key and data.get("schema") == SCHEMA:
        return data
    return None
