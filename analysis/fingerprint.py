"""Torch-free freshness check for the analysis cache.

A content-only rebuild must not import torch (about 2 s). The build computes this fingerprint from everything the
analyses depend on (their source code, their config, the external weight files' size and mtime) and skips the whole
analysis stage when the cache manifest carries the same fingerprint and all its files are intact.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

from analysis import paths, tv_weights
from analysis.jsonio import read_json, sha256_file

PACKAGE_DIR = Path(__file__).resolve().parent


def source_hash() -> str:
    """Hash of every .py file of the analysis package: changing an algorithm invalidates the cache."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        h.update(str(path.relative_to(PACKAGE_DIR)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _stat(path: Path | None) -> Any:
    if path is None or not path.exists():
        return None
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def fingerprint(config: dict, extra_files: Iterable[Path] = ()) -> str:
    """Everything the analysis output depends on, hashed. `config` is the JSON-able analysis config."""
    parts = {
        "source": source_hash(),
        "config": config,
        "efficientnet": _stat(paths.efficientnet_lite0_file()),
        "torchvision": {arch: [_stat(p) for p in tv_weights.candidates(w)] for arch, w in tv_weights.ALL.items()},
        "extra": [_stat(Path(p)) for p in sorted(map(str, extra_files))],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def manifest_is_fresh(manifest_path: Path, expected: str) -> bool:
    """True when the manifest has the expected fingerprint and every file it lists is intact (by sha256)."""
    manifest = read_json(manifest_path)
    if not isinstance(manifest, dict) or manifest.get("fingerprint") != expected:
        return False
    root = manifest_path.parent
    for entry in manifest.get("files", []):
        path = root / entry["path"]
        if not path.exists() or sha256_file(path) != entry["sha256"]:
            return False
    return True
