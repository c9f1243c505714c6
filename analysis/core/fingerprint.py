"""Torch-free freshness check for the analysis cache.

A content-only rebuild must not import torch (about 2 s). The build computes this fingerprint from everything the
analyses depend on (their code: the code key of analysis.pipeline, analysis/core/codekey.py; their config, the *content* (sha256) of every weights file and factory module
they read) and skips the whole analysis stage when the cache manifest carries the same fingerprint and all its files are
intact. No absolute paths and no mtimes in the fingerprint: a copied or freshly cloned project is fresh, and a weights
file replaced by another of the same size and mtime is not.

Checking "every file intact" hashes the whole cache (~650 files) on every build, so ``DigestMemo`` remembers each
file's sha256 under its (device, inode, size, mtime_ns, ctime_ns) in ``<cache>/stat-digests.json``. Both properties
above still hold: a copied project's files have other inodes (a miss: hashed again), and replacing or editing a file
gives it a new inode or ctime, which ``touch``, ``cp -p`` and ``os.utime`` cannot set back; only a changed system clock
defeats it. A file changed within the clock's granularity of being hashed would keep its stat, so files younger than
``RACY_S`` are never memoised (git's "racily clean" rule). The memo is data (JSON), read as a hint: corrupt = empty.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from pathlib import Path
from typing import Iterable

from analysis.core import paths
from analysis.core.factories import top_module
from analysis.core.jsonio import read_json, sha256_file, write_bytes_atomic
from analysis.models import registry  # torch-free: the families' declarations (a contract in pyproject.toml)



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


def _content(path: Path | None, memo: DigestMemo | None = None) -> str | None:
    """sha256 of a file's bytes, or None when it is absent (or not a regular file)."""
    if path is None or not path.is_file():
        return None
    return memo.sha256(path.resolve()) if memo is not None else sha256_file(path)


def _portable(name: str, root: Path | None) -> str:
    """A path as the fingerprint records it: relative to the project when inside it (a moved copy matches)."""
    if root is None:
        return Path(name).name
    try:
        return Path(os.path.abspath(name)).relative_to(Path(os.path.abspath(root))).as_posix()
    except ValueError:
        return Path(name).name  # outside the project: its content decides, not where it lies


def fingerprint(config: dict, extra_files: Iterable[Path] = (), root: Path | None = None,
                memo: DigestMemo | None = None) -> str:
    """Everything the analysis output depends on, hashed. `config` is the JSON-able analysis config (without
    absolute paths: see article.analysis_stage); `extra_files` are hashed by content and named relative to `root`.
    The zoo's weights count only when a configured model reads them."""
    models = config.get("models") or []
    from analysis import per_tensor
    from analysis.core.codekey import code_key

    parts = {
        # The pipeline's import closure: every module it runs, by content, and its libraries' versions.
        "source": code_key("analysis.pipeline", cache_dir=memo.path.parent if memo is not None else None),
        # and the per-tensor analyses, which the pipeline finds by name (analysis/per_tensor/)
        "per_tensor": per_tensor.code_keys(memo.path.parent if memo is not None else None),
        "config": config,
        # The weights of each configured zoo model, from the files its family declares (analysis.models.registry).
        "weights": {name: [_content(p, memo) for p in family.weight_files(name)]
                    for name in models if (family := registry.family_of(name)) is not None},
        "extra": sorted([_portable(str(p), root), _content(Path(p), memo)] for p in extra_files),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


MEMO_NAME = "stat-digests.json"
RACY_S = 2.0  # a file changed this recently may change again without its stat changing: hash it every time


class DigestMemo:
    """sha256 of files by their stat signature (see the module docstring), kept in one JSON file."""

    def __init__(self, path: Path):
        self.path = path
        loaded = read_json(path)
        self.entries: dict = loaded if isinstance(loaded, dict) else {}
        self.used: set[str] = set()
        self.dirty = False

    def sha256(self, path: Path | str) -> str | None:
        """The file's sha256, or None when it is absent or not a regular file (a str path: ~650 a build)."""
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        sig = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        name = str(path)
        self.used.add(name)
        hit = self.entries.get(name)
        if isinstance(hit, list) and len(hit) == 6 and hit[:5] == sig and isinstance(hit[5], str):
            return hit[5]
        digest = sha256_file(path)
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_S * 1e9:
            self.entries[name] = sig + [digest]
            self.dirty = True
        return digest

    def save(self) -> None:
        """Write the memo atomically, with only the files asked for since it was read, when it changed; a
        read-only cache just goes without."""
        if set(self.entries) - self.used:
            self.entries = {k: v for k, v in self.entries.items() if k in self.used}
            self.dirty = True
        if not self.dirty:
            return
        try:
            write_bytes_atomic(self.path, json.dumps(self.entries, sort_keys=True, separators=(",", ":")).encode(),
                               durable=False)  # a memo: torn by a power cut, it no longer parses and is rebuilt
        except OSError:
            pass
        self.dirty = False


def model_entry_ok(name: object, entry: object, listed: set[str]) -> bool:
    """A model's manifest entry points only at its own files, each of the kind the entry says (a tensor's `file` is
    that tensor's report, not the first-layer record), and each listed (so hash-checked) in the manifest's `files`:
    a damaged or planted entry makes the analysis stale (recomputed) instead of feeding the render side a record of
    the wrong shape on every build."""
    if not isinstance(name, str) or not isinstance(entry, dict):
        return False
    # Its live folder: <safe name>/<model key> (analysis.core.spec.Workspace.model_dir), never anyone else's.
    folder = entry.get("folder")
    if not isinstance(folder, str) or re.fullmatch(re.escape(paths.safe_component(name)) + r"/[0-9a-f]{16}",
                                                   folder) is None:
        return False
    expected: list[tuple[object, str]] = []
    tensors, context = entry.get("tensors"), entry.get("context") or []
    if not isinstance(tensors, list) or not isinstance(context, list):
        return False
    for t in tensors:
        if not isinstance(t, dict) or not isinstance(t.get("id"), str):
            return False
        expected.append((t.get("file"), f"{folder}/tensors/{paths.safe_component(t['id'])}.json"))
    for n, c in enumerate(context):
        if not isinstance(c, dict):
            return False
        expected.append((c.get("file"), f"{folder}/context-{n}.json"))
    # Optional parts: each names only its own files ({field in the part: the file it must be}).
    for part, files in (("first_layer", {"file": "first-layer.json", "image": "first-layer.png"}),
                        ("neuron_featureviz", {"file": "neurons-featureviz.json"}),
                        ("examples", {"file": "examples/index.json"})):
        ref = entry.get(part)
        if ref is None:
            continue
        if not isinstance(ref, dict):
            return False
        expected += [(ref.get(field), f"{folder}/{name}") for field, name in files.items()]
    return all(got == want and want in listed for got, want in expected)


def manifest_is_fresh(manifest_path: Path, expected: str, memo: DigestMemo | None = None) -> bool:
    """True when the manifest has the expected fingerprint and every file it lists is intact (by sha256, through
    ``memo``: by default the cache's own, saved here)."""
    manifest = read_json(manifest_path)
    if not isinstance(manifest, dict) or manifest.get("fingerprint") != expected:
        return False
    files, models = manifest.get("files", []), manifest.get("models", {})
    if not isinstance(files, list) or not isinstance(models, dict):
        return False  # a damaged manifest: recompute (and rewrite it)
    listed = {f.get("path") for f in files if isinstance(f, dict)}
    if not all(model_entry_ok(name, entry, listed) for name, entry in models.items()):
        return False
    root = manifest_path.parent.resolve()
    cache = root.parent  # entries are relative to the manifest; feature visualizations live in ../featureviz/
    inside = str(cache) + os.sep
    own = memo is None
    memo = memo or DigestMemo(cache / MEMO_NAME)
    folders: dict[str, str] = {}  # realpath per folder: ~30 folders, not ~650 files (string ops: pathlib is slow)
    try:
        for entry in files:
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or \
                    not isinstance(entry.get("sha256"), str) or "\0" in entry["path"]:
                return False
            folder, name = os.path.split(os.path.normpath(os.path.join(root, entry["path"])))
            real = folders.get(folder) or folders.setdefault(folder, os.path.realpath(folder))
            path = os.path.join(real, name)
            if os.path.islink(path):
                path = os.path.realpath(path)
            if not path.startswith(inside) or memo.sha256(path) != entry["sha256"]:
                return False
        return True
    finally:
        if own:
            memo.save()
