"""Bounds on what one author's input may cost: file sizes and wall time of user-controlled rendering.

A build must end with an answer, never hang silently: sizes are checked before reading, work on the author's text
runs in a worker process that is killed past its time limit (``run_author_text``, analysis/core/deadline.py), and the
project's figure code runs under a wall-clock alarm that names what was being waited for.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from analysis.core import deadline
from analysis.core.deadline import time_limit  # noqa: F401  (torch-free; figures and templating use it from here)

from ..structure.errors import BuildError

# An article or site.yml: the largest real one is ~60 KB. Markdown has inputs that take time quadratic in their
# length (40 KB of '[' took 166 s before the time limit); 1 MB leaves room for any real article.
MAX_TEXT_BYTES = 1024 * 1024
MAX_BIB_BYTES = 5 * 1024 * 1024  # a .bib exported from a reference manager can be a few MB
MAX_FOLDER_FILE_BYTES = 1024 ** 3  # any other file in an article's folder (weights included): 1 GB
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


def run_author_text(fn: Callable[..., Any], *args: Any, seconds: float, on_timeout: Callable[[dict], BaseException],
                    answer: Callable[..., Any] | None = None) -> Any:
    """``fn(*args)``, work on an author's text (Jinja, Markdown, math, BibTeX), in the build's worker process under a
    limit of ``seconds`` (analysis.core.deadline: stopped even when stuck in C, and on any thread)."""
    return deadline.run(fn, *args, seconds=seconds, on_timeout=on_timeout, answer=answer)


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
