"""The output folders: which site and cache folders the build may write, and the atomic replacement of the site.

A build renders into a temporary sibling of the site folder (``prepare_tmp``) and swaps it in only at the end
(``swap``), so a failed build leaves the previous site byte-for-byte intact. A part of the previous site whose
inputs are unchanged (a model page's folder, an article's figure files) is hard-linked into the new one
(``link_folder``), checked against the listing (name, size, inode, mtime) ``record`` noted when it was built.
Only a folder the build itself made (it holds ``SITE_MARKER``) is ever replaced, and never the project, content/,
templates/ or the cache.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..structure.errors import BuildError


SITE_MARKER = ".vw-site"  # written into every built site: only a folder holding it is ever replaced
MARKER_TEXT = b"Built by Visualizing Weights (build.py). The next build replaces this whole folder.\n"


def _record_entry(cache_dir: Path, site_dir: Path, name: str) -> Path:
    from .. import cache

    return cache.entry(cache_dir, f"site-{name}", [os.path.abspath(site_dir)])


def _marker_id(site: Path) -> list[int] | None:
    """Which build made this site: its marker file's (device, inode, ctime_ns); every build writes a new marker."""
    try:
        st = os.lstat(site / SITE_MARKER)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_ctime_ns]


def record(cache_dir: Path, site_dir: Path, tmp: Path, name: str, value: object) -> None:
    """Note in the cache what part of the site being built in ``tmp`` (to become ``site_dir``) was made from, so the
    next build can reuse that part without reading it (article/explorer/model_pages.py). Tied to this build's marker file,
    so a site replaced by any other build (another cache folder, --debug) is never taken for this one. Kept out of
    the site itself: the site's bytes do not depend on where it was built."""
    import json

    from .. import cache

    data = {"marker": _marker_id(tmp), "value": value}
    cache.store(_record_entry(cache_dir, site_dir, name), json.dumps(data, sort_keys=True).encode())


def recorded(cache_dir: Path, site_dir: Path | None, name: str) -> object | None:
    """What ``record`` noted for the site now in ``site_dir``; None when absent, unreadable (data only) or noted
    for a site that has been replaced since."""
    import json

    if site_dir is None:
        return None
    from .. import cache

    data = cache.load(_record_entry(cache_dir, site_dir, name), json.loads)
    marker = _marker_id(site_dir)
    if not isinstance(data, dict) or marker is None or data.get("marker") != marker:
        return None
    return data.get("value")


def _inside(a: Path, b: Path) -> bool:
    """True when ``a`` is ``b`` or below it (both resolved)."""
    return a == b or b in a.parents


def output_folder(site_dir: Path) -> Path:
    """The folder a build replaces: ``site_dir``, or where it points when it is a symbolic link (site/ -> /srv/www/vw):
    the link stays a link and its target gets the new site. Replacing the link itself used to leave the target stale
    and a ``.site-old-<pid>`` link behind."""
    return Path(os.path.realpath(site_dir)) if os.path.islink(site_dir) else Path(site_dir)


def check_site_dir(root: Path, site_dir: Path, cache_dir: Path | None = None) -> None:
    """Refuse an output folder that a build must never replace: one that is or contains the project, or is,
    contains or lies inside content/, templates/ or the cache, or any existing non-empty folder that does not
    hold the marker file a previous build wrote."""
    site = Path(os.path.abspath(site_dir)).resolve()
    root = Path(root).resolve()
    flag = "--site-dir"
    if _inside(root, site):
        raise BuildError(f"{flag}: refusing to replace a folder that is or contains the project {root}", site)
    guarded = [(root / "content", "content/"), (root / "templates", "templates/"), (root / "article", "article/"),
               (root / "analysis", "analysis/")]
    if cache_dir is not None:
        guarded.append((Path(os.path.abspath(cache_dir)).resolve(), "the cache folder"))
    for folder, what in guarded:
        folder = folder.resolve()
        if _inside(site, folder) or _inside(folder, site):
            raise BuildError(f"{flag}: refusing to build into {what} ({folder}): the build replaces its output "
                             "folder as a whole", site)
    if site.is_symlink() or (site.exists() and not site.is_dir()):
        raise BuildError(f"{flag}: exists and is not a folder; pick another --site-dir", site)
    if site.is_dir() and not (site / SITE_MARKER).is_file():
        try:
            empty = next(site.iterdir(), None) is None
        except OSError as exc:
            raise BuildError(f"{flag}: cannot read the folder ({exc.strerror or exc})", site) from None
        if not empty:
            raise BuildError(f"{flag}: not empty and not built by build.py (no {SITE_MARKER} file); refusing to "
                             "replace it: delete it yourself or pick another --site-dir", site)


def check_cache_dir(root: Path, cache_dir: Path) -> None:
    """Refuse a cache folder that is or contains the project, or lies in content/, templates/ or the code: the build
    writes render/, analysis/ ... into it and --clean deletes <cache>/render."""
    cache = Path(os.path.abspath(cache_dir)).resolve()
    root = Path(root).resolve()
    if _inside(root, cache):
        raise BuildError(f"--cache-dir: refusing a cache folder that is or contains the project {root}", cache)
    for name in ("content", "templates", "article", "analysis"):
        folder = (root / name).resolve()
        if _inside(cache, folder) or _inside(folder, cache):
            raise BuildError(f"--cache-dir: refusing to keep the cache in {name}/ ({folder}): the build writes and "
                             "deletes folders there", cache)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a folder named after this process is from a dead build whose pid was reused
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, owned by someone else
        return True
    return True


def _stale(folder: Path) -> bool:
    """A `.site-tmp-<pid>` / `.site-old-<pid>` folder whose build is no longer running."""
    pid = folder.name.rsplit("-", 1)[-1]
    return pid.isdigit() and not _pid_alive(int(pid))


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive flock on ``folder`` itself (no lock file to leave behind); released when the process dies."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def prepare_tmp(site_dir: Path) -> Path:
    """Remove temp folders of killed builds (never a running build's); return a fresh ``.site-tmp-<pid>``."""
    parent = site_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with _locked(parent):
            for stale in sorted(parent.glob(".site-tmp-*")) + sorted(parent.glob(".site-old-*")):
                if _stale(stale):
                    shutil.rmtree(stale, ignore_errors=True)
            tmp = parent / f".site-tmp-{os.getpid()}"
            tmp.mkdir()
    except OSError as exc:
        blocker = next((p for p in [parent, *parent.parents] if p.exists()), parent)
        why = "is a file, not a folder" if not blocker.is_dir() else f"cannot be written to ({exc.strerror or exc})"
        raise BuildError(f"cannot write the output folder {site_dir}: {blocker} {why}", blocker) from None
    (tmp / SITE_MARKER).write_bytes(MARKER_TEXT)
    return tmp


def swap(tmp: Path, site_dir: Path, root: Path | None = None, cache_dir: Path | None = None) -> None:
    """site -> .site-old-<pid>, tmp -> site, delete old: the window without a site/ is two renames. Builds into
    the same folder take turns (a lock on the parent folder), and the output folder is checked again under the
    lock: only a folder this program built is ever replaced."""
    old = site_dir.parent / f".site-old-{os.getpid()}"
    with _locked(site_dir.parent):
        if root is not None:
            check_site_dir(root, site_dir, cache_dir)
        if site_dir.exists():
            site_dir.rename(old)
        tmp.rename(site_dir)
    shutil.rmtree(old, ignore_errors=True)


def tree_digest(folder: Path) -> str:
    """One hash over all file names and bytes (for determinism checks)."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f.relative_to(folder).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


# ---------------------------------------------------------------- reusing a folder of the previous site

def _regular_files(folder: Path, skip: frozenset[str] = frozenset(), rel: str = ""):
    """(path relative to ``folder``, absolute path, lstat) of every file below it but the top-level names in
    ``skip``; OSError when it holds anything but folders and regular files (a symlink, a device). os.scandir: the
    entry's type comes with the listing, so a file costs one lstat."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from _regular_files(Path(entry.path), frozenset(), f"{rel}{entry.name}/")
            elif not rel and entry.name in skip:
                continue
            elif entry.is_file(follow_symlinks=False):
                yield rel + entry.name, entry.path, entry.stat(follow_symlinks=False)
            else:
                raise OSError(f"not a folder or regular file: {entry.path}")


def stamp(st: os.stat_result) -> str:
    """What a file's listing records: size, inode and mtime. A hard link into the next site keeps all three; a file
    edited by hand inside site/ gets a new inode (an editor's save) or mtime (a write in place)."""
    return f"{st.st_size}:{st.st_ino}:{st.st_mtime_ns}"


def _names_digest(found: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(found)).encode()).hexdigest()


def listing(folder: Path, skip: frozenset[str] = frozenset()) -> str | None:
    """sha256 of a folder's sorted (name, ``stamp``) list (less the top-level names in ``skip``); None when it holds
    anything but folders and regular files, or is absent."""
    try:
        return _names_digest([f"{rel}\0{stamp(st)}" for rel, _, st in _regular_files(folder, skip)])
    except OSError:
        return None


def link_folder(old: Path, new: Path, recorded: object, skip: frozenset[str] = frozenset()) -> bool:
    """Hard-link every file of ``old`` (less ``skip``) into ``new`` when ``old`` is a real folder whose listing is
    ``recorded``: one walk that links as it lists (``new`` is in the unpublished temp site and is removed again if
    the listing differs). The previous site is only read: its files are never written through these links, since
    ``writer.write`` replaces a file rather than writing into it."""
    try:
        if not isinstance(recorded, str) or any(not stat.S_ISDIR(os.lstat(p).st_mode) for p in (old.parent, old)):
            return False
        found, made = [], set()
        for rel, path, st in _regular_files(old, skip):
            found.append(f"{rel}\0{stamp(st)}")  # as listing()
            target = os.path.join(new, rel)
            parent = os.path.dirname(target)
            if parent not in made:  # one mkdir per folder, not per file (~450 files per model)
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            os.link(path, target, follow_symlinks=False)
        if _names_digest(found) != recorded:
            raise OSError("the folder changed")
        return True
    except OSError:  # no hard links here, or the folder is not what was recorded: write it anew
        shutil.rmtree(new, ignore_errors=True)
        return False
