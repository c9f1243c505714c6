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

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path + (f":{self.line}" if self.line else "") + ": "
        # One line, always: messages from libraries may carry newlines.
        return where + " ".join(self.message.split())
