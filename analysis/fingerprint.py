"""Torch-free freshness check for the analysis cache.

A content-only rebuild must not import torch (about 2 s). The build computes this fingerprint from everything the
analyses depend on (their source code, their config, the *content* (sha256) of every weights file and factory module
they read) and skips the whole analysis stage when the cache manifest carries the same fingerprint and all its files are
intact. No absolute paths and no mtimes: a copied or freshly cloned project is fresh, and a weights file replaced by
another of the same size and mtime is not.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from analysis import paths, tv_weights
from analysis.factories import top_module
from analysis.jsonio import read_json, sha256_file

PACKAGE_DIR = Path(__file__).resolve().parent


def source_hash() -> str:
    """Hash of every .py file of the analysis package: changing an algorithm invalidates the cache."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        h.update(str(path.relative_to(PACKAGE_DIR)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def factory_code(factory: str, search_path: str | None) -> list[Path]:
    """The source files a bring-your-own factory's results depend on: every .py file in and below the article's
    folder (a factory may be a package there), or, for a factory on the site's allow-list, the files of its
    installed top-level package. Found without importing anything."""
    if search_path:
        return sorted(Path(search_path).rglob("*.py"))
    import importlib.util

    try:
        found = importlib.util.find_spec(top_module(factory))
    except (ImportError, ValueError):
        return []
    if found is None:
        return []
    if found.submodule_search_locations:
        return sorted(p for loc in found.submodule_search_locations for p in Path(loc).rglob("*.py"))
    return [Path(found.origin)] if found.origin and found.origin.endswith(".py") else []


def _content(path: Path | None) -> str | None:
    """sha256 of a file's bytes, or None when it is absent (or not a regular file)."""
    if path is None or not path.is_file():
        return None
    return sha256_file(path)


def _portable(name: str, root: Path | None) -> str:
    """A path as the fingerprint records it: relative to the project when inside it (a moved copy matches)."""
    if root is None:
        return Path(name).name
    try:
        return Path(os.path.abspath(name)).relative_to(Path(os.path.abspath(root))).as_posix()
    except ValueError:
        return Path(name).name  # outside the project: its content decides, not where it lies


def fingerprint(config: dict, extra_files: Iterable[Path] = (), root: Path | None = None) -> str:
    """Everything the analysis output depends on, hashed. `config` is the JSON-able analysis config (without
    absolute paths: see article.analysis_stage); `extra_files` are hashed by content and named relative to `root`.
    The zoo's weights count only when a configured model reads them."""
    models = config.get("models") or []
    parts = {
        "source": source_hash(),
        "config": config,
        "efficientnet": _content(paths.efficientnet_lite0_file()) if "efficientnet-lite0" in models else None,
        # A torchvision-layout model's file counts only when a configured model reads it.
        "torchvision": {name: [_content(p) for p in tv_weights.candidates(w)]
                        for name, w in tv_weights.BY_MODEL.items() if name in models},
        "extra": sorted([_portable(str(p), root), _content(Path(p))] for p in extra_files),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def manifest_is_fresh(manifest_path: Path, expected: str) -> bool:
    """True when the manifest has the expected fingerprint and every file it lists is intact (by sha256)."""
    manifest = read_json(manifest_path)
    if not isinstance(manifest, dict) or manifest.get("fingerprint") != expected:
        return False
    files = manifest.get("files", [])
    if not isinstance(files, list):
        return False  # a damaged manifest: recompute (and rewrite it)
    root = manifest_path.parent.resolve()
    cache = root.parent  # entries are relative to the manifest; feature visualizations live in ../featureviz/
    for entry in files:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or \
                not isinstance(entry.get("sha256"), str) or "\0" in entry["path"]:
            return False
        path = (root / entry["path"]).resolve()
        if cache not in path.parents or not path.is_file() or sha256_file(path) != entry["sha256"]:
            return False
    return True
