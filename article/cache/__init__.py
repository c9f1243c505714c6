"""The render side's one cache primitive: key parts -> value, kept as a file in ``<cache_dir>/render/``.

Used by every render cache (figures, bibliographies, social images, the Vega bundle). An entry's name is
``<kind>-<sha256 of the key parts>.<ext>``; it is written atomically (a killed build never leaves half an entry)
with a header and the sha256 of its value (a damaged or planted file fails the check: ~5 ms for all entries of a
build), and read back through the caller's ``decode``, so a missing, corrupt or wrongly shaped entry is simply a
miss and the value is computed again. The cache is only a speed-up: a failed write is ignored, and nothing read from
it is ever executed. ``pack``/``unpack`` hold several files in one entry (an uncompressed zip).

The package is this primitive, the lowest layer of the render side; fileset.py, beside it, is what every stage
keeps in it the same way: the files an article contributes, known by their digests before their bytes are read.
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Mapping, TypeVar

from analysis.core.jsonio import write_bytes_atomic  # stdlib only: the project's one atomic-write idiom

T = TypeVar("T")
HEADER = b"vw render cache 1\n"  # then the value's sha256 (32 bytes), then the value


def key(parts: Iterable[str | bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode("utf-8")
        h.update(len(data).to_bytes(8, "little") + data)  # length-prefixed: ("ab", "c") != ("a", "bc")
    return h.hexdigest()


def entry(cache_dir: Path, kind: str, parts: Iterable[str | bytes], ext: str = "json") -> Path:
    return Path(cache_dir) / "render" / f"{kind}-{key(parts)}.{ext}"


@functools.lru_cache(maxsize=None)  # per process: a build asks twice; a library changes with a new interpreter
def library_stamp(package: str) -> str:
    """A key part for an installed library, found by the import system without importing it (latex2mathml ~25 ms,
    vl_convert ~30 ms, importlib.metadata ~10 ms of every rebuild): its files' names and bytes, or for a file over
    1 MB (a compiled extension) its size and mtime, which a reinstall changes."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    h = hashlib.sha256(package.encode())
    if spec is not None and spec.origin and not spec.submodule_search_locations:  # a single-module library
        st = os.stat(spec.origin)
        h.update(f"{spec.origin}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        for f in sorted(Path(folder).rglob("*")):
            if f.is_file() and f.suffix != ".pyc":
                st = f.stat()
                content = f.read_bytes() if st.st_size < 2**20 else str(st.st_mtime_ns).encode()
                h.update(f"{f.relative_to(folder).as_posix()}\0{st.st_size}\0".encode() + content)
    return h.hexdigest()


def pack(files: Mapping[str, bytes]) -> bytes:
    """Several named byte strings as one entry value: an uncompressed zip with fixed dates (same bytes each time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for rel, data in sorted(files.items()):
            z.writestr(zipfile.ZipInfo(rel, (1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def unpack(raw: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        return {n: z.read(n) for n in z.namelist()}


def load(path: Path | None, decode: Callable[[bytes], T]) -> T | None:
    """The decoded entry, or None for a miss (no cache, no entry, or anything ``decode`` rejects)."""
    if path is None:
        return None
    try:
        raw = path.read_bytes()
        start = len(HEADER) + 32
        if not raw.startswith(HEADER) or hashlib.sha256(raw[start:]).digest() != raw[len(HEADER):start]:
            return None
        value = decode(raw[start:])
    except Exception:  # noqa: BLE001 - a corrupt entry of any shape (bad JSON, wrong types) is just a miss
        return None
    try:  # used now: the access time says so (evict() takes the longest unused first); the modification time stays
        os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))
    except OSError:
        pass
    return value


def store(path: Path | None, data: bytes) -> None:
    if path is None:
        return
    try:
        write_bytes_atomic(path, HEADER + hashlib.sha256(data).digest() + data, durable=False)  # checked on read
    except OSError:
        pass  # only a speed-up: a read-only or full cache folder must not fail the build


def cached(path: Path | None, decode: Callable[[bytes], T], compute: Callable[[], T],
           encode: Callable[[T], bytes]) -> T:
    """``load`` or else ``compute`` and ``store``: the whole pattern for a value with no extra validity check."""
    hit = load(path, decode)
    if hit is not None:
        return hit
    value = compute()
    store(path, encode(value))
    return value


def keep_only(path: Path | None, kind: str) -> None:
    """Delete the other entries of ``kind``: for large values with one live version each (a model's explorer
    files), so the cache does not grow with every analysis."""
    if path is None:
        return
    for old in path.parent.glob(f"{kind}-*"):
        if old != path and len(old.name) == len(path.name):  # same kind exactly, not a longer kind's entries
            old.unlink(missing_ok=True)


LIMIT_ENV = "VW_CACHE_LIMIT_MB"
DEFAULT_LIMIT_MB = 1024


def limit_bytes() -> int:
    """The render cache's size limit: $VW_CACHE_LIMIT_MB megabytes (default 1024); a bad value is the default."""
    try:
        return max(0, int(os.environ.get(LIMIT_ENV, DEFAULT_LIMIT_MB))) << 20
    except ValueError:
        return DEFAULT_LIMIT_MB << 20


def evict(cache_dir: Path, limit: int, used_since: float) -> list[Path]:
    """Delete the render cache's entries that no build has used for longest (the later of their access and
    modification times: ``load`` sets the access time of what it reads) until the folder holds at most ``limit``
    bytes; never one this build wrote or read (used at or after ``used_since``). An entry another one names (an
    article's or figure's packed files) may go: its reader makes the files again (fileset.from_entry). Returns what
    was deleted."""
    folder = Path(cache_dir) / "render"
    try:
        entries = []
        for e in os.scandir(folder):
            if e.is_file(follow_symlinks=False):
                st = e.stat(follow_symlinks=False)
                entries.append((max(st.st_atime, st.st_mtime), st.st_size, Path(e.path)))
    except OSError:
        return []
    total = sum(size for _, size, _ in entries)
    removed = []
    for mtime, size, path in sorted(entries):
        if total <= limit or mtime >= used_since:
            break
        try:
            path.unlink()
        except OSError:
            continue
        total -= size
        removed.append(path)
    return removed
