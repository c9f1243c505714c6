"""``python build.py serve``: build, serve site/ on 127.0.0.1 and rebuild + live-reload on every source change.

``serve`` is handed build.py's recipe, ``build(root, site_dir, cache_dir, ...)``, and calls it for every rebuild,
in this process with ``run_analysis=False``: the recipe then asks the torch-free freshness check
(``article.analysis_stage.analysis_state``) whether the analyses must run, and raises AnalysisStale if so.

* fresh (every content-only edit): the rebuild completes here; libraries, compiled regexes and Pygments lexers stay
  warm, so it costs about half a fresh ``python build.py`` (bench/README.md).
* stale, or ``--clean``: the recipe runs again in a fresh interpreter (multiprocessing ``spawn``), so torch and
  minutes of analysis stay out of the server; its progress goes straight to the terminal.

Figure modules are Python the author edits while serving, and the render cache keys on their *source on disk*;
running stale imported code under the new key would poison the cache. So when any watched ``.py`` file changes,
every ``article.*`` / ``analysis.*`` module is dropped from ``sys.modules`` first (the recipe imports its stages
inside the function, so the next call gets the edited code). The HTTP side lives in ``article/serve/liveserver.py``.
"""
from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .liveserver import BuildState, make_server
from .watch import Poller

Recipe = Callable[..., Any]  # build.py's build(root, site_dir, cache_dir, *, strict, debug, clean, jobs, progress)

_KEEP = {__name__, __package__, "article.serve.watch", "article.serve.liveserver"}


def purge_project_modules() -> list[str]:
    """Forget every imported ``article`` / ``analysis`` module so the next build imports the edited source.

    The packages themselves go too: ``from . import x`` would otherwise find the stale attribute ``x``.
    """
    names = [n for n in sys.modules if n.split(".")[0] in ("article", "analysis") and n not in _KEEP]
    for n in names:
        del sys.modules[n]
    return names


def _failure(exc: BaseException, root: Path) -> str:
    """The build's one-line error (paths relative to the project); a bug in figure code gets its type named."""
    from analysis.core.errors import AnalysisError
    from article.structure.errors import BuildError, one_line

    text = one_line(exc)
    if not isinstance(exc, (BuildError, AnalysisError, OSError)):
        text = f"{type(exc).__name__}: {text}"
    return text.replace(str(root) + os.sep, "")


def _in_child(build: Recipe, root: Path, kwargs: dict[str, Any], conn: Any) -> None:
    """The recipe in a spawned interpreter; sends back None or the one-line error."""
    os.environ["PYTHONUNBUFFERED"] = "1"  # this child's own stdout: progress lines show up as they happen
    try:
        build(root, **kwargs)
        conn.send(None)
    except BaseException as exc:  # noqa: BLE001 - user code may even call sys.exit(): report, never hang
        conn.send(_failure(exc, root))


def build_in_child(build: Recipe, root: Path, kwargs: dict[str, Any]) -> str | None:
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no fork of the server's threads
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_in_child, args=(build, root, kwargs, send), name="vw-build")
    proc.start()
    send.close()
    finished = False
    try:
        try:
            error = receive.recv()
        except EOFError:  # the child died without a word (killed, crashed)
            proc.join()
            error = f"the build process exited with status {proc.exitcode}"
        finished = True
        return error
    finally:
        proc.join(None if finished else 0)
        if proc.is_alive():  # interrupted (Ctrl-C / SIGTERM): don't leave our build running
            proc.terminate()
            proc.join(5)


def build_in_process(build: Recipe, root: Path, kwargs: dict[str, Any], echo: bool) -> str | None:
    """The recipe here, told not to run the analyses (AnalysisStale propagates); returns the one-line error."""
    from article.structure.errors import AnalysisStale

    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(sys.stdout if echo else out):
            build(root, **kwargs)
    except AnalysisStale:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug in figure code must not take the server down
        return _failure(exc, root)
    return None


class Builder:
    """Runs builds the fastest safe way: the recipe in this process, or in a fresh one when analyses must run."""

    def __init__(self, build: Recipe, root: Path, site_dir: Path, cache_dir: Path, *, strict: bool = False,
                 debug: bool = False, jobs: int | None = None, **runtime: str | None):
        self.build, self.root = build, root
        self.kwargs = dict(site_dir=site_dir, cache_dir=cache_dir, strict=strict, debug=debug, jobs=jobs, **runtime)
        self.last_mode = ""

    def __call__(self, changed: list[str], *, first: bool = False, clean: bool = False) -> tuple[str | None, float]:
        """One build; returns (one-line error or None, seconds)."""
        from article.structure.errors import AnalysisStale

        t0 = time.perf_counter()
        if any(p.endswith(".py") for p in changed):
            purge_project_modules()
        if not clean:  # --clean recomputes the analyses: always in a fresh interpreter
            try:
                self.last_mode = "in process"
                error = build_in_process(self.build, self.root, dict(self.kwargs, run_analysis=False),
                                         echo=first or bool(self.kwargs["debug"]))
                return error, time.perf_counter() - t0
            except AnalysisStale:
                pass
        self.last_mode = "subprocess"
        error = build_in_child(self.build, self.root, dict(self.kwargs, clean=clean))
        purge_project_modules()  # the analysis run may change what figure code reads
        return error, time.perf_counter() - t0


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def serve(build: Recipe, root: Path, site_dir: Path, cache_dir: Path, *, host: str = "127.0.0.1", port: int = 8000,
          strict: bool = False, debug: bool = False, clean: bool = False, jobs: int | None = None,
          interval: float = 0.3, **runtime: str | None) -> int:
    """Build once with ``build``, serve ``site_dir`` at http://host:port/ and rebuild when sources change, until
    Ctrl-C. ``port=0`` picks a free port. ``clean`` applies to the first build only. Returns the exit status.
    """
    root, site_dir, cache_dir = Path(root).resolve(), Path(site_dir).resolve(), Path(cache_dir).resolve()
    signal.signal(signal.SIGTERM, _stop)
    state = BuildState()
    poller = Poller(root)
    try:
        server = make_server(root, site_dir, state, host, port, quiet=not debug)
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    builder = Builder(build, root, site_dir, cache_dir, strict=strict, debug=debug, jobs=jobs, **runtime)

    def rebuild(changed: list[str], first: bool = False) -> None:
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
        rebuild([], first=True)
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
            rebuild(changed)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        if thread.is_alive():
            server.shutdown()
        server.server_close()
    return 0
