"""One browser-test site for every pytest-xdist worker, built once and, in a full run, from its first seconds.

The site takes minutes to build (a small analysis of every model the articles show). Built inside one worker's
fixture, it made that worker the suite's critical path: the browser tests had to share that worker, one after
another. Now the controller starts `python tests/browser/shared_site.py FOLDER` as soon as the workers report
browser tests collected (the root conftest.py), so the build overlaps the other tests, and the browser test files
spread over every worker: each worker's `built_site` fixture takes the folder's lock and finds the site done. Without
a background build (`-n 0`, or a worker first to the lock) the fixture builds it itself, under the same lock.
"""
from __future__ import annotations

import fcntl
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

SHARED_SITE = "browser-site"  # the run's one site: this folder in the controller's temporary folder
DONE = "done.json"  # {"site": path} or {"error": message}, written by whoever built (or failed to build) the site


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, also if the holder dies
        yield


def site_in(folder: Path, build: Callable[[Path], Path]) -> Path:
    """The site built in `folder`: a finished build's result (its failure raised again in every worker that asks),
    else `build(folder)` now, under the folder's lock."""
    with locked(folder):
        done = folder / DONE
        if not done.is_file():
            try:
                result = {"site": str(build(folder))}
            except Exception as exc:  # every worker's fixture reports the one failure, with the build's output
                result = {"error": f"{type(exc).__name__}: {exc}"}
            done.write_text(json.dumps(result), encoding="utf-8")
        result = json.loads(done.read_text(encoding="utf-8"))
    if "error" in result:
        raise RuntimeError(f"the browser tests' site did not build: {result['error']}")
    return Path(result["site"])


def stop_with(parent: int) -> None:
    """End this process group (this build and everything it started) as soon as `parent`, the test run that started
    it, is gone: killed or stopped, its own clean-up never runs, and the build would go on for minutes."""
    import os
    import signal
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.killpg(0, signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":  # the controller's background build, in a process group of its own
    import os

    stop_with(os.getppid())
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from conftest import build_default  # noqa: E402  (tests/browser/conftest.py: what the fixture builds)

    site_in(Path(sys.argv[1]), build_default)
