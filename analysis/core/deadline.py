"""Time limits for code that runs what an author wrote: one mechanism for the render side (Jinja compile and render,
Markdown, math, BibTeX) and the analysis side (a bring-your-own model's factory and its forward()). Torch-free.

The work runs in a ``Worker``: a child process forked from the build (so it starts in about a millisecond with every
module already imported) and, within a build, reused for every job (``session``). The build waits for its answer
with a deadline and kills the worker's whole process group when the deadline passes, which stops anything: a Python
loop, and a call stuck in C that no signal handler can interrupt (Jinja folding ``9 ** (9 ** 9)`` at compile time,
a regular expression gone quadratic). The wait releases the GIL and needs no signal, so it works on any thread
(``serve``'s HTTP thread keeps answering). Inside the worker, a job may also run under a SIGALRM (``time_limit``):
that stops pure-Python loops a little earlier with the line they were on; the kill is the backstop.

Code that runs inside a worker marks the stretches that run an author's code with ``begin``/``end`` (or ``step``),
each with its own limit: the analysis runs as one long job, and only a factory call or a forward() is timed. Outside
a worker (the analysis used as a library) a step falls back to the SIGALRM alone (main thread only).

A worker dies with the build: it asks the kernel for SIGKILL when its parent exits (Linux), and the processes it
starts (joblib's loky workers) watch their parent (``exit_with_parent``).
"""
from __future__ import annotations

import copyreg
import io
import json
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from analysis.core.errors import AnalysisError

GRACE = 1.0  # seconds past a limit before the worker is killed (its own SIGALRM reports the line first)
POLL = 0.25  # how often a waiting build looks at a deadline that a step inside the worker may have set
_SHARED = 4096  # bytes shared with the worker: its current deadline and what it is waiting for


class Overrun(AnalysisError):
    """Work ran past its time limit; ``model`` and ``field`` say whose code it was (analysis.core.errors)."""


@contextmanager
def time_limit(seconds: float, on_timeout: Callable[[], BaseException]) -> Iterator[None]:
    """Raise ``on_timeout()`` in this (main) thread when the block runs longer than ``seconds``. No-op off the main
    thread or when seconds <= 0. Python code is interrupted; a long call into C ends first (a worker's kill is what
    stops that). Nested limits: the inner one must be the shorter."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise on_timeout()

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------ messages: length-prefixed pickles on two pipes

class _Lost(Exception):
    """The other end of the channel is gone (or a pipe failed)."""


class _Channel:
    """One end of a two-way channel of pipes (cheaper to set up than a socket pair: no import of socket)."""

    def __init__(self, read_fd: int, write_fd: int):
        self.read_fd, self.write_fd = read_fd, write_fd

    def fileno(self) -> int:  # select.select waits on the read end
        return self.read_fd

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def _dumps(message: Any) -> bytes:
    """pickle.dumps, except that exceptions pickle by their own ``__reduce__``: a library may register reducers for
    every exception class in copyreg (tblib's pickling support, which dask.distributed installs), and those carry
    notes and tracebacks and lose what BuildError's reducer keeps."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {k: v for k, v in copyreg.dispatch_table.items()
                              if not (isinstance(k, type) and issubclass(k, BaseException))}
    pickler.dump(message)
    return buffer.getvalue()


def _send(channel: _Channel, message: Any) -> None:
    data = _dumps(message)
    view = memoryview(struct.pack("!Q", len(data)) + data)
    try:
        while view:
            view = view[os.write(channel.write_fd, view):]
    except OSError as exc:
        raise _Lost(str(exc)) from None


def _recv_exact(channel: _Channel, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        try:
            chunk = os.read(channel.read_fd, min(n - got, 1 << 20))
        except OSError:
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv(channel: _Channel) -> Any:
    """The next message, or _Lost when the other side is gone."""
    head = _recv_exact(channel, 8)
    body = None if head is None else _recv_exact(channel, struct.unpack("!Q", head)[0])
    if body is None:
        raise _Lost("the other side of the worker's channel closed")
    return pickle.loads(body)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError with its text (the worker's answer must arrive)."""
    try:
        pickle.loads(_dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any exception type a library raises
        return RuntimeError(f"{type(exc).__name__}: {exc}")


# ------------------------------------------------------------------ the shared deadline

def _write_deadline(shared: Any, deadline: float, info: dict | None = None) -> None:
    """Deadline (time.monotonic(), 0: none) and what is being waited for, as JSON (data, never code)."""
    text = json.dumps(info or {})[: _SHARED - 16].encode("utf-8", "replace")
    shared[8:16] = struct.pack("!Q", len(text))
    shared[16:16 + len(text)] = text
    shared[0:8] = struct.pack("!d", deadline)


def _read_deadline(shared: Any) -> tuple[float, dict]:
    deadline = struct.unpack("!d", shared[0:8])[0]
    size = min(struct.unpack("!Q", shared[8:16])[0], _SHARED - 16)
    try:
        info = json.loads(bytes(shared[16:16 + size]).decode("utf-8", "replace"))
    except ValueError:
        info = {}
    return deadline, info if isinstance(info, dict) else {}


# ------------------------------------------------------------------ the worker's side

_channel: dict[str, Any] = {}  # in a worker: {"pipe", "shared"}; empty in the build itself


def in_worker() -> bool:
    return bool(_channel)


def ask(*request: Any) -> Any:
    """Inside a job: ask the build for something (e.g. a data hook's value) and wait for the answer; the time the
    build takes to answer does not count against the job (its deadline moves, and so does the SIGALRM)."""
    left = signal.setitimer(signal.ITIMER_REAL, 0)[0] if threading.current_thread() is threading.main_thread() \
        else 0.0
    try:
        _send(_channel["pipe"], ("ask", request))
        ok, value = _recv(_channel["pipe"])
    finally:
        if left > 0:
            signal.setitimer(signal.ITIMER_REAL, left)
    if not ok:
        raise value
    return value


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def _release_pools() -> None:
    """Shut down joblib's reusable loky pool, if a job started one: os._exit skips the atexit hook that would, and
    loky's resource tracker then warns at the end of every build about leaked semaphores and memmapping folders."""
    reusable = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(reusable, "_executor", None)
    if executor is None:
        return
    try:
        if hasattr(executor, "terminate"):  # joblib's memmapping executor: its temporary folders go too
            executor.terminate(kill_workers=True)  # idle by now; killed, their memmaps are deleted outright
        else:
            executor.shutdown()
        # The pool's queues hold semaphores that loky's resource tracker forgets only when their finalizers run, at
        # garbage collection or in multiprocessing's exit hook, which os._exit skips: run that hook's finalizers now
        # (each runs only in the process that made it). Three loops of 20 exits at once: collecting alone warned 3 times, this 0.
        reusable._executor = None
        del executor
        import gc
        from multiprocessing import util

        gc.collect()
        util._run_finalizers(0)  # what multiprocessing's own exit function runs first
    except Exception:  # noqa: BLE001 - cleanup on the way out: the build has its answer already
        pass


def _die_with_parent() -> None:
    """The kernel kills this process when the build that forked it exits, even mid-way through a call into C."""
    if sys.platform.startswith("linux"):
        try:  # prctl(PR_SET_PDEATHSIG, SIGKILL) through _ctypes alone: the ctypes package costs ~2 ms to import
            import _ctypes

            _ctypes.call_function(_ctypes.dlsym(_ctypes.dlopen(None), "prctl"), (1, int(signal.SIGKILL)))
        except (ImportError, OSError, AttributeError, TypeError):
            try:
                import ctypes

                ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
            except (OSError, AttributeError):
                pass


def _serve(pipe: _Channel, shared: Any, parent: int) -> None:
    """The worker's loop: run each job it is sent and send back ("done", ok, value) until the build hangs up."""
    _channel.update(pipe=pipe, shared=shared)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)  # not the build's handlers (serve turns SIGTERM into KeyboardInterrupt)
    _die_with_parent()
    if os.getppid() != parent:  # the build died before the request above took effect
        return
    while True:
        try:
            kind, fn, args = _recv(pipe)
        except _Lost:
            return
        try:
            answer = (True, fn(*args))
        except BaseException as exc:  # noqa: BLE001 - the build decides what the job's failure means
            exc.add_note("in the worker process:\n" + "".join(traceback.format_exception(exc)))  # --debug shows it
            answer = (False, _portable(exc))
        _flush()  # the job's progress lines, before the build goes on (or exits)
        try:
            _send(pipe, ("done",) + answer)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            _send(pipe, ("done", False, RuntimeError(f"the worker's answer cannot be sent back: {exc}")))


# ------------------------------------------------------------------ the build's side

class Worker:
    """A forked child process that runs jobs (a module-level function and picklable arguments) one at a time, each
    under a deadline; a job past it gets the worker's process group killed, and the next job forks a new worker."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pipe: _Channel | None = None
        self.shared: Any = None

    def _start(self) -> None:
        import mmap

        self.shared = mmap.mmap(-1, _SHARED)  # MAP_SHARED | MAP_ANONYMOUS: the child sees the same bytes
        down, up = os.pipe(), os.pipe()  # build -> worker, worker -> build
        ours, theirs = _Channel(up[0], down[1]), _Channel(down[0], up[1])
        parent = os.getpid()
        _flush()  # what is buffered now must not be written twice
        # (gc.freeze() around the worker's life was tried: the full collection after gc.unfreeze() cost the build
        # ~15 ms of CPU, more than the copy-on-write faults it saved; bench/README.md)
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the build's code (nor runs its atexit handlers)
            status = 0
            try:
                ours.close()
                os.setpgid(0, 0)  # its own process group: a kill takes whatever it started along
                _serve(theirs, self.shared, parent)
                _release_pools()
            except BaseException:  # noqa: BLE001
                status = 1
            finally:
                os._exit(status)
        theirs.close()
        try:
            os.setpgid(pid, pid)  # also here: a kill right after the fork must find the group
        except OSError:
            pass
        self.pid, self.pipe = pid, ours

    def call(self, fn: Callable[..., Any], *args: Any, seconds: float = 0.0,
             on_timeout: Callable[[dict], BaseException] | None = None,
             answer: Callable[..., Any] | None = None) -> Any:
        """``fn(*args)`` in the worker. ``seconds`` (> 0): the job's limit, after which (plus GRACE) the worker is
        killed and ``on_timeout(info)`` raised (``info``: what a step inside said it was waiting for, if any);
        steps inside the job set their own limits either way. ``answer(*request)``: the build's side of ``ask``."""
        if self.pid is None:
            self._start()
        _write_deadline(self.shared, time.monotonic() + seconds + GRACE if seconds > 0 else 0.0)
        try:
            ok, value = self._converse(fn, args, on_timeout, answer)
        except _Lost as exc:  # the worker died on its own (killed, crashed, out of memory)
            status = self.stop()
            raise RuntimeError(f"the worker process ended unexpectedly ({status or exc})") from None
        except BaseException as exc:
            if not isinstance(exc, Exception):
                self.stop()  # KeyboardInterrupt: don't leave the job running
            raise
        if not ok:
            raise value
        return value

    def _converse(self, fn: Callable[..., Any], args: tuple, on_timeout: Callable[[dict], BaseException] | None,
                  answer: Callable[..., Any] | None) -> tuple[bool, Any]:
        _send(self.pipe, ("call", fn, args))
        while True:
            message = self._next(on_timeout)
            if message[0] == "done":
                _write_deadline(self.shared, 0.0)
                return message[1], message[2]
            started = time.monotonic()  # ("ask", request): the build's own time is not the job's
            try:
                reply = (True, answer(*message[1])) if answer is not None else \
                    (False, RuntimeError("nothing answers the worker's questions"))
            except Exception as exc:  # noqa: BLE001 - raised again inside the job, where it belongs
                reply = (False, _portable(exc))
            deadline, info = _read_deadline(self.shared)
            if deadline:
                _write_deadline(self.shared, deadline + time.monotonic() - started, info)
            _send(self.pipe, reply)

    def _next(self, on_timeout: Callable[[dict], BaseException] | None) -> Any:
        """The worker's next message; past the shared deadline, kill it and raise."""
        while True:
            deadline, info = _read_deadline(self.shared)
            wait = POLL if not deadline else min(POLL, deadline - time.monotonic())
            if deadline and wait <= 0:
                self.stop()
                if info.get("message"):
                    raise Overrun(info["message"], model=info.get("model"), field=info.get("field"))
                raise (on_timeout(info) if on_timeout else Overrun("the worker did not finish in time"))
            ready, _, _ = select.select([self.pipe], [], [], wait)
            if ready:
                return _recv(self.pipe)

    def stop(self) -> str:
        """Kill the worker and everything it started; returns how it ended."""
        pid, self.pid = self.pid, None
        if self.pipe is not None:
            self.pipe.close()
            self.pipe = None
        if pid is None:
            return ""
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return ""
        return f"exit status {os.waitstatus_to_exitcode(status)}"

    def close(self) -> None:
        """Hang up: an idle worker exits on its own (its loky workers' cleanup runs); one that does not is killed."""
        pid = self.pid
        if pid is None:
            return
        self.pipe.close()
        self.pipe = None
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    self.pid = None
                    return
            except ChildProcessError:
                self.pid = None
                return
            time.sleep(0.002)
        self.stop()


_local = threading.local()  # per thread: the worker of the build running on it (``session``)


@contextmanager
def session() -> Iterator[None]:
    """Every ``run`` inside shares one worker, forked on the first job and closed at the end (a build: one fork,
    and none at all when nothing needs it, as in a rebuild served wholly from the render cache)."""
    stack = _local.__dict__.setdefault("workers", [])
    worker = Worker()
    stack.append(worker)
    try:
        yield
    finally:
        stack.remove(worker)
        worker.close()


def run(fn: Callable[..., Any], *args: Any, seconds: float, on_timeout: Callable[[dict], BaseException],
        answer: Callable[..., Any] | None = None) -> Any:
    """``fn(*args)`` under a limit of ``seconds`` (0: none) in this thread's session worker (a worker of its own
    outside a session); inside a worker already, directly. See ``Worker.call``."""
    if in_worker():
        return fn(*args)
    stack = _local.__dict__.get("workers")
    if stack:
        return stack[-1].call(fn, *args, seconds=seconds, on_timeout=on_timeout, answer=answer)
    worker = Worker()
    try:
        return worker.call(fn, *args, seconds=seconds, on_timeout=on_timeout, answer=answer)
    finally:
        worker.close()


# ------------------------------------------------------------------ steps inside a job

_steps: list[dict] = []  # this process's open steps (only the outermost is timed)
_about: dict[str, Any] = {}  # what every step is about (e.g. which model), unless it says otherwise


@contextmanager
def about(**attrs: Any) -> Iterator[None]:
    """Steps inside say they are about ``attrs`` (``model=...``): an overrun names the model's front matter."""
    previous = dict(_about)
    _about.update(attrs)
    try:
        yield
    finally:
        _about.clear()
        _about.update(previous)


def begin(seconds: float, message: str, **attrs: Any) -> None:
    """From here until ``end()``, an author's code runs and may take at most ``seconds`` (0: no limit); past it the
    worker is killed (or, outside a worker, the SIGALRM raises Overrun(message, **attrs) in Python code). Nested steps
    share the outermost one's limit."""
    frame: dict[str, Any] = {}
    _steps.append(frame)
    if len(_steps) > 1 or seconds <= 0:
        return
    info = {"message": message, **{k: v for k, v in {**_about, **attrs}.items() if v is not None}}
    if _channel:
        frame["restore"] = _read_deadline(_channel["shared"])
        _write_deadline(_channel["shared"], time.monotonic() + seconds + GRACE, info)
    if threading.current_thread() is threading.main_thread():
        def handler(signum, _frame):
            raise Overrun(message, model=info.get("model"), field=info.get("field"))

        frame["handler"] = signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, seconds)


def end() -> None:
    if not _steps:
        return
    frame = _steps.pop()
    if "handler" in frame:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, frame["handler"])
    if "restore" in frame:
        _write_deadline(_channel["shared"], *frame["restore"])


@contextmanager
def step(seconds: float, message: str, **attrs: Any) -> Iterator[None]:
    begin(seconds, message, **attrs)
    try:
        yield
    finally:
        end()


# ------------------------------------------------------------------ processes a worker starts

def exit_with_parent(parent: int, interval: float = 0.5) -> None:
    """In a process that the analysis starts (a loky worker; ``parent``: the pid that started it): exit as soon as
    that process is gone, instead of idling for loky's five-minute timeout after a killed build (a thread looks every
    ``interval`` seconds; gone already when this runs: at once)."""
    if os.getppid() != parent:
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, name="vw-exit-with-parent", daemon=True).start()
