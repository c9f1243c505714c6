"""The render side's single exception type."""
from __future__ import annotations

from pathlib import Path


class BuildError(Exception):
    """A build problem the author can fix; ``str()`` is one line ``path:line: message``.

    ``path`` and ``line`` are optional so that site-wide problems (e.g. a missing
    template) can still be reported in the same shape.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line

    def __reduce__(self):  # keeps path and line when it comes back from a worker process (analysis.core.deadline)
        return type(self), (self.message, self.path, self.line)

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path + (f":{self.line}" if self.line else "") + ": "
        # One line, always: messages from libraries may carry newlines.
        return where + " ".join(self.message.split())


class AnalysisStale(Exception):
    """The analyses must run before this build can render (raised by build.py's recipe when asked not to run them,
    so that ``serve`` runs them in a fresh interpreter instead of importing torch itself)."""


def one_line(exc: BaseException) -> str:
    """A failed build as one line. BuildError and AnalysisError already name the file; an OSError (e.g. an
    unwritable output folder) names its path."""
    if isinstance(exc, OSError) and exc.filename is not None:
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        text = f"{where}: {exc.strerror or exc}"
    else:
        text = str(exc) or type(exc).__name__
    return shorten(" ".join(text.split()))


MAX_LINE = 2000  # characters of an error line: an author's value quoted in it (a 3 MB kwargs string) is cut


def shorten(text: str, limit: int = MAX_LINE) -> str:
    """``text`` of at most about ``limit`` characters: the start (where the file and line are) and the end, with how
    much was left out between them."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 3 // 4], text[-(limit // 4):]
    return f"{head} [... {len(text) - len(head) - len(tail)} characters left out ...] {tail}"
