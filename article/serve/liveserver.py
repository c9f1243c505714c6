"""The live-reload HTTP server of ``python build.py serve``: static files from the site folder, the client script
(``templates/assets/livereload.js``) and a status endpoint; HTML gets the client's script tag on the fly, so the
files on disk stay exactly what ``python build.py`` writes. The client polls ``/__livereload/status`` and reloads
when the site version moves, or shows the build error in an overlay while the last good site stays served."""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CLIENT_PATH = "/__livereload.js"
CLIENT_FILE = Path("templates") / "assets" / "livereload.js"  # relative to the project root; never in the site
STATUS_PATHS = ("/__livereload/status", "/__livereload")
POLL_MS = 400  # browser -> /__livereload/status

_BODY_END = re.compile(rb"</body\s*>", re.I)

NO_SITE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>No build yet</title></head>
<body><h1>No successful build yet</h1><p>Fix the error shown below (also printed in the terminal);
this page reloads by itself.</p></body></html>"""


def inject(html: bytes, version: int) -> bytes:
    """Add the live-reload script tag before the last ``</body>`` (or at the end)."""
    tag = f'<script src="{CLIENT_PATH}" data-version="{version}" data-poll="{POLL_MS}" defer></script>\n'.encode()
    ends = list(_BODY_END.finditer(html))
    if not ends:
        return html + tag
    at = ends[-1].start()
    return html[:at] + tag + html[at:]


@dataclass
class BuildState:
    """What the status endpoint reports. ``version`` counts successful builds: the page reloads when it moves."""

    version: int = 0
    error: str | None = None
    building: bool = False
    seconds: float | None = None  # duration of the last build
    changed: list[str] = field(default_factory=list)  # files that triggered the last build
    lock: threading.Condition = field(default_factory=threading.Condition)

    def as_json(self) -> dict[str, Any]:
        with self.lock:
            return {"version": self.version, "ok": self.error is None, "error": self.error,
                    "building": self.building, "seconds": self.seconds, "changed": list(self.changed)}

    def start(self, changed: list[str]) -> None:
        with self.lock:
            self.building, self.changed = True, changed

    def finish(self, error: str | None, seconds: float) -> None:
        with self.lock:
            self.building, self.error, self.seconds = False, error, round(seconds, 3)
            if error is None:
                self.version += 1
            self.lock.notify_all()

    def wait_idle(self, timeout: float) -> None:
        with self.lock:
            self.lock.wait_for(lambda: not self.building, timeout)



class LiveReloadHandler(SimpleHTTPRequestHandler):
    """Static files from the site folder + the live-reload endpoints; HTML gets the client tag on the fly."""

    state: BuildState
    client_js: bytes
    quiet = True

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            super().log_message(format, *args)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # every reload must see the fresh build
        super().end_headers()

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        """Any path the file system cannot even look up (a name over 255 bytes, a NUL) is not found: a 404, not a
        traceback on the terminal and an empty reply."""
        try:
            self._respond(send_body)
        except (OSError, ValueError) as exc:
            if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                return  # the browser went away
            self.send_error(404)

    def _send(self, status: int, ctype: str, body: bytes, send_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _html(self, status: int, html: bytes, send_body: bool) -> None:
        self._send(status, "text/html; charset=utf-8", inject(html, self.state.version), send_body)

    def _respond(self, send_body: bool) -> None:
        path = urlsplit(self.path).path
        if path == CLIENT_PATH:
            return self._send(200, "text/javascript; charset=utf-8", self.client_js, send_body)
        if path in STATUS_PATHS:
            body = json.dumps(self.state.as_json()).encode()
            return self._send(200, "application/json", body, send_body)
        site = Path(self.directory)
        if not site.is_dir():
            self.state.wait_idle(15)  # the two-rename swap window of a finishing build
            if not site.is_dir():
                return self._html(503, NO_SITE_PAGE.encode(), send_body)
        target = Path(self.translate_path(self.path))
        if target.is_dir() and path.endswith("/"):
            target = target / "index.html"
        if not target.exists() and self.state.building:
            self.state.wait_idle(15)
        if target.is_dir():
            return super().do_GET() if send_body else super().do_HEAD()  # adds the trailing-slash redirect
        if not target.is_file():
            missing = site / "404.html"
            if missing.is_file():
                return self._html(404, missing.read_bytes(), send_body)
            return self.send_error(404)
        if target.suffix == ".html":
            return self._html(200, target.read_bytes(), send_body)
        return super().do_GET() if send_body else super().do_HEAD()


def make_server(root: Path, site_dir: Path, state: BuildState, host: str, port: int,
                quiet: bool = True) -> ThreadingHTTPServer:
    client_js = (root / CLIENT_FILE).read_bytes()
    handler = type("Handler", (LiveReloadHandler,), {"state": state, "quiet": quiet, "client_js": client_js})
    return ThreadingHTTPServer((host, port), partial(handler, directory=str(site_dir)))
