"""``python build.py serve``: build, serve site/ on 127.0.0.1 and rebuild + live-reload on every source change.

Rebuilds run build.py's own ``main()`` inside the server process: libraries, compiled regexes and Pygments
lexers stay warm, so a content-only rebuild takes ~0.2 s instead of ~1 s for a fresh interpreter (see
bench/README.md). Two things need care:

* Figure modules are Python the author edits while serving, and the render cache keys on their *source on
  disk*; running stale imported code under the new key would poison the cache. So when any watched ``.py``
  file changes, every ``article.*`` / ``analysis.*`` module is dropped from ``sys.modules`` first.
* Analyses import torch and may run for minutes: when ``ensure_analysis`` decides they must run, the in-process
  build is stopped at the ``analysis.pipeline`` import and the whole build runs as ``python build.py`` in a
  subprocess instead (fresh code, torch stays out of the server, progress streams to the terminal).

Either way the served files are exactly what ``python build.py`` writes. The live-reload client exists only
in HTTP responses: HTML is rewritten on the fly to load the same-origin ``/__livereload.js`` (CSP
``script-src 'self'`` allows it), which polls ``/__livereload/status`` and reloads when the site version
changes, or shows the build error in an overlay while the last good site stays served.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .watch import Poller

CLIENT_PATH = "/__livereload.js"
STATUS_PATHS = ("/__livereload/status", "/__livereload")
POLL_MS = 400  # browser -> /__livereload/status

CLIENT_JS = """\
// Live reload for `python build.py serve` only; never part of the built site.
(function () {
  "use strict";
  var me = document.currentScript;
  var version = me ? me.getAttribute("data-version") : null;
  var box = null;
  function show(text) {
    if (!box) {
      box = document.createElement("pre");
      box.id = "vw-livereload-error";
      box.setAttribute("role", "alert");
      // CSSOM assignments are allowed under CSP style-src 'self' (style attributes are not).
      Object.assign(box.style, {position: "fixed", left: "0", right: "0", bottom: "0", zIndex: "2147483647",
        margin: "0", padding: "12px 16px", maxHeight: "40vh", overflow: "auto", whiteSpace: "pre-wrap",
        font: "13px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace", color: "#fff",
        background: "rgba(160, 20, 20, 0.95)", boxShadow: "0 -2px 8px rgba(0,0,0,0.3)"});
      document.body.appendChild(box);
    }
    box.textContent = "Build failed (still showing the last good build):\\n" + text;
  }
  function hide() { if (box) { box.remove(); box = null; } }
  function poll() {
    fetch("/__livereload/status", {cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (version !== null && String(s.version) !== version) { location.reload(); return; }
        if (s.error) { show(s.error); } else { hide(); }
        setTimeout(poll, %(poll)d);
      })
      .catch(function () { setTimeout(poll, 1500); });  // server restarting: keep trying
  }
  poll();
})();
""" % {"poll": POLL_MS}

_BODY_END = re.compile(rb"</body\s*>", re.I)

NO_SITE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>No build yet</title></head>
<body><h1>No successful build yet</h1><p>Fix the error shown below (also printed in the terminal);
this page reloads by itself.</p></body></html>"""


def inject(html: bytes, version: int) -> bytes:
    """Add the live-reload script tag before the last ``</body>`` (or at the end)."""
    tag = f'<script src="{CLIENT_PATH}" data-version="{version}" defer></script>\n'.encode()
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


# ------------------------------------------------------------------ building

def build_command(root: Path, site_dir: Path, cache_dir: Path, *, strict: bool = False, debug: bool = False,
                  clean: bool = False, jobs: int | None = None) -> list[str]:
    cmd = [sys.executable, str(root / "build.py"), "build", "--site-dir", str(site_dir), "--cache-dir", str(cache_dir)]
    cmd += ["--strict"] * strict + ["--debug"] * debug + ["--clean"] * clean
    return cmd + (["--jobs", str(jobs)] if jobs else [])


def error_line(output: list[str], returncode: int) -> str:
    """The build's one-line error: its ``error: ...`` line, else a traceback's last line."""
    for line in reversed(output):
        if line.startswith("error: "):
            return line[len("error: "):]
    tail = [line for line in output if line.strip()]
    return tail[-1].strip() if tail else f"build exited with status {returncode}"


def run_build(cmd: list[str], root: Path, echo_all: bool) -> tuple[str | None, float]:
    """Run one build; return (one-line error or None, seconds). Streams analysis progress to the terminal."""
    t0 = time.perf_counter()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            output.append(line)
            # Long analysis runs must not look like a hang; stage timings only on the first build.
            if echo_all or line.startswith(("analysis", "  warning")):
                print(line, flush=True)
        proc.wait()
    finally:
        if proc.poll() is None:  # interrupted (Ctrl-C / SIGTERM): don't leave our build running
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
    seconds = time.perf_counter() - t0
    if proc.returncode == 0:
        return None, seconds
    return error_line(output, proc.returncode).replace(str(root) + os.sep, ""), seconds


_ANALYSIS_RUN = "analysis.pipeline"  # the torch-importing module ensure_analysis loads only when stale
_KEEP = {__name__, "article.watch"}


class NeedsSubprocess(Exception):
    """The analyses must run: do the whole build in a fresh ``python build.py``."""


def purge_project_modules() -> list[str]:
    """Forget every imported ``article`` / ``analysis`` module so the next build imports the edited source.

    The packages themselves go too: ``from . import x`` would otherwise find the stale attribute ``x``.
    """
    names = [n for n in sys.modules if n.split(".")[0] in ("article", "analysis") and n not in _KEEP]
    for n in names:
        del sys.modules[n]
    return names


def build_in_process(root: Path, argv: list[str], echo: bool) -> str | None:
    """Run ``build.py``'s ``main(argv)`` here; return the one-line error or None.

    Raises NeedsSubprocess when the analysis stage wants to run (its ``analysis.pipeline`` import is blocked).
    """
    spec = importlib.util.spec_from_file_location("_vw_build", root / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    blocked = _ANALYSIS_RUN not in sys.modules
    if blocked:
        sys.modules[_ANALYSIS_RUN] = None  # type: ignore[assignment]  # makes its import raise ImportError
    out, err = io.StringIO(), io.StringIO()
    try:
        spec.loader.exec_module(module)  # build.py may have changed too: read it every time
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = module.main(argv)
    except ImportError as exc:
        if _ANALYSIS_RUN in str(exc):
            raise NeedsSubprocess from None
        return f"{type(exc).__name__}: {exc}"
    except SystemExit as exc:  # argparse
        status = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # a bug in figure code must not take the server down
        return " ".join(f"{type(exc).__name__}: {exc}".split())
    finally:
        if blocked and sys.modules.get(_ANALYSIS_RUN, 0) is None:
            del sys.modules[_ANALYSIS_RUN]
        if echo:
            print(out.getvalue(), end="", flush=True)
    if status == 0:
        return None
    lines = (out.getvalue() + err.getvalue()).splitlines()
    return error_line(lines, int(status or 1)).replace(str(root) + os.sep, "")


class Builder:
    """Runs builds the fastest safe way: in process, or as ``python build.py`` when analyses must run."""

    def __init__(self, root: Path, site_dir: Path, cache_dir: Path, *, strict: bool = False,
                 debug: bool = False, jobs: int | None = None):
        self.root = root
        self.kwargs = dict(strict=strict, debug=debug, jobs=jobs)
        self.site_dir, self.cache_dir = site_dir, cache_dir
        self.last_mode = ""

    def __call__(self, changed: list[str], *, first: bool = False, clean: bool = False) -> tuple[str | None, float]:
        """One build; returns (one-line error or None, seconds)."""
        t0 = time.perf_counter()
        cmd = build_command(self.root, self.site_dir, self.cache_dir, clean=clean, **self.kwargs)
        if any(p.endswith(".py") for p in changed):
            purge_project_modules()
        if not clean:  # --clean recomputes analyses: always a subprocess
            try:
                error = build_in_process(self.root, cmd[2:], echo=first or bool(self.kwargs["debug"]))
                self.last_mode = "in process"
                return error, time.perf_counter() - t0
            except NeedsSubprocess:
                purge_project_modules()  # the analysis run may change what figure code reads
        self.last_mode = "subprocess"
        error, _ = run_build(cmd, self.root, echo_all=True)
        return error, time.perf_counter() - t0


# ------------------------------------------------------------------ HTTP

class LiveReloadHandler(SimpleHTTPRequestHandler):
    """Static files from the site folder + the live-reload endpoints; HTML gets the client tag on the fly."""

    state: BuildState
    quiet = True

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            super().log_message(format, *args)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # every reload must see the fresh build
        super().end_headers()

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

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
            return self._send(200, "text/javascript; charset=utf-8", CLIENT_JS.encode(), send_body)
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


def make_server(site_dir: Path, state: BuildState, host: str, port: int, quiet: bool = True) -> ThreadingHTTPServer:
    handler = type("Handler", (LiveReloadHandler,), {"state": state, "quiet": quiet})
    return ThreadingHTTPServer((host, port), partial(handler, directory=str(site_dir)))


# ------------------------------------------------------------------ the command

def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def serve(root: Path, site_dir: Path, cache_dir: Path, *, host: str = "127.0.0.1", port: int = 8000,
          strict: bool = False, debug: bool = False, clean: bool = False, jobs: int | None = None,
          interval: float = 0.3) -> int:
    """Build once, serve ``site_dir`` at http://host:port/ and rebuild when sources change, until Ctrl-C.

    ``port=0`` picks a free port. ``clean`` applies to the first build only. Returns the exit status.
    """
    root, site_dir, cache_dir = Path(root).resolve(), Path(site_dir).resolve(), Path(cache_dir).resolve()
    signal.signal(signal.SIGTERM, _stop)
    state = BuildState()
    poller = Poller(root)
    try:
        server = make_server(site_dir, state, host, port, quiet=not debug)
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    builder = Builder(root, site_dir, cache_dir, strict=strict, debug=debug, jobs=jobs)

    def build(changed: list[str], first: bool = False) -> None:
        state.start(changed)
        error, seconds = builder(changed, first=first, clean=clean and first)
        state.finish(error, seconds)
        if error:
            kept = "serving the last good build" if state.version else "no good build yet"
            print(f"error: {error} ({kept})", file=sys.stderr, flush=True)
        elif not first:
            names = ", ".join(os.path.relpath(p, root) for p in changed[:3]) + (" ..." if len(changed) > 3 else "")
            print(f"rebuilt in {seconds:.2f} s, {builder.last_mode} ({names})", flush=True)

    try:
        build([], first=True)
        thread.start()
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
        print(f"serving http://{shown}:{server.server_address[1]}/ with live reload (Ctrl-C to stop)", flush=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            print(f"warning: listening on {host}: other machines can reach this server", flush=True)
        while True:
            time.sleep(interval)
            changed = poller.poll()
            if not changed:
                continue
            # Editors save in several steps (temp file, rename, chmod): wait until the tree is quiet.
            for _ in range(10):
                time.sleep(0.05)
                more = poller.poll()
                if not more:
                    break
                changed = sorted(set(changed) | set(more))
            build(changed)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        if thread.is_alive():
            server.shutdown()
        server.server_close()
    return 0
