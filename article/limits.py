"""Bounds on what one author's input may cost: file sizes and wall time of user-controlled rendering.

A build must end with an answer, never hang silently: sizes are checked before reading, and template/figure code
runs under a wall-clock alarm that names what was being waited for.
"""
from __future__ import annotations

import os
from pathlib import Path

from analysis.deadline import time_limit  # noqa: F401  (torch-free; figures and templating use it from here)

from .errors import BuildError

MAX_TEXT_BYTES = 5 * 1024 * 1024  # an article, site.yml or .bib: the largest real one is ~60 KB
TIMEOUT_ENV = "VW_RENDER_TIMEOUT"


def render_timeout(default: float = 120.0) -> float:
    """Seconds a body template or one figure may take ($VW_RENDER_TIMEOUT; 0 turns the limit off)."""
    raw = os.environ.get(TIMEOUT_ENV)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BuildError(f"environment variable {TIMEOUT_ENV}={raw!r} must be a number of seconds") from None
    if value < 0:
        raise BuildError(f"environment variable {TIMEOUT_ENV}={raw!r} must be >= 0")
    return value


def regular_file(path: Path, what: str, limit: int = MAX_TEXT_BYTES) -> None:
    """A BuildError unless ``path`` is a regular file of at most ``limit`` bytes (a FIFO or /dev/zero would hang
    the read; a directory is not "not found")."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise BuildError(f"{what} not found", path) from None
    except OSError as exc:
        raise BuildError(f"{what} cannot be read ({exc.strerror or exc})", path) from None
    import stat

    if not stat.S_ISREG(st.st_mode):
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise BuildError(f"{what} is {kind}, not a regular file", path)
    if st.st_size > limit:
        raise BuildError(f"{what} is {st.st_size / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB", path)
