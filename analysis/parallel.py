"""Where the per-tensor (and per-neuron) work runs: joblib's local processes, or a Dask cluster.

Every stage hands its independent pieces of work to `unordered()`; which machines do them is decided once, by the
`backend()` context around the whole analysis (site.yml `analysis: backend:` / `scheduler:`, or `--backend` /
`--scheduler` on build.py). Results come back to the machine running build.py, which alone writes the cache.
"""
from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from typing import Any

import joblib

from analysis.core.errors import AnalysisError
from analysis.core.spec import BACKENDS

_active: dict[str, Any] = {"name": "local"}

CONNECT_TIMEOUT = 30  # seconds a Dask client keeps retrying an unreachable scheduler before the build gives up


def check(name: str, scheduler: str | None) -> None:
    """A bad setting fails before any model is loaded, in one line."""
    if name not in BACKENDS:
        raise AnalysisError(f"analysis backend {name!r} is not one of {', '.join(BACKENDS)}")
    if name == "dask" and not scheduler:
        raise AnalysisError("analysis backend 'dask' needs the scheduler's address (site.yml analysis: scheduler: "
                            "tcp://host:8786, or --scheduler)")


@contextlib.contextmanager
def backend(name: str = "local", scheduler: str | None = None) -> Iterator[None]:
    """Run the analyses inside this context on `name`'s workers."""
    check(name, scheduler)
    if name == "local":
        try:
            yield
        finally:
            close_local()  # the workers go with the analysis, not with the render stage after it
        return
    try:
        from dask.distributed import Client
    except ImportError:
        raise AnalysisError("analysis backend 'dask' needs dask[distributed] (pip install -r requirements.txt)") from None
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise AnalysisError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        check_workers(client, scheduler)
    except BaseException:
        client.close()
        raise
    previous = dict(_active)
    _active.update(name="dask", client=client)
    try:
        with joblib.parallel_config(backend="dask", client=client):
            yield
    finally:
        _active.clear()
        _active.update(previous)
        client.close()


# Versions a worker must share with the machine running build.py (results are byte-identical only then).
CHECKED_DISTRIBUTIONS = ("torch", "numpy", "scikit-learn", "joblib", "cloudpickle")


def check_workers(client: Any, scheduler: str | None) -> None:
    """Every worker can import the analysis package and has the same versions, else one line: a worker without them
    fails to deserialize each task, which Dask only logs while the build waits for ever."""
    import importlib.metadata

    import cloudpickle

    from analysis import worker_check

    cloudpickle.register_pickle_by_value(worker_check)  # the probe must reach workers that lack the package
    expected = {}
    for name in CHECKED_DISTRIBUTIONS:
        try:
            expected[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        answers = client.run(worker_check.probe, expected)
    except Exception as exc:  # noqa: BLE001 - a worker that cannot even run the probe
        raise AnalysisError(f"the Dask workers of {scheduler} cannot run a check ({type(exc).__name__}: {exc})") from exc
    if not answers:
        raise AnalysisError(f"the Dask scheduler at {scheduler} has no workers: start some (see README, 'Where the "
                            "analysis runs')")
    bad = {worker: answer for worker, answer in answers.items() if answer}
    if bad:
        worker, answer = sorted(bad.items())[0]
        others = f" (and {len(bad) - 1} more of {len(answers)} workers)" if len(bad) > 1 else ""
        raise AnalysisError(f"Dask worker {worker} {answer}{others}: start workers from a checkout of this commit with "
                            "PYTHONPATH=<checkout> and pip install --require-hashes -r requirements.txt")


def active() -> str:
    return _active["name"]


def describe(n_jobs: int, n_tasks: int) -> str:
    """Where `n_tasks` tasks will run, for the build's output."""
    if active() != "local":
        return "the Dask cluster"
    return f"{min(n_jobs, n_tasks)} worker(s)"


def unordered(fn: Callable[..., Any], tasks: Iterable[tuple], n_jobs: int) -> Iterator[tuple[int, Any]]:
    """(index, fn(*task)) for every task, in the order they finish, so the caller can write (and drop) each result
    at once. Locally at most `n_jobs` processes (one task: in this process); on a cluster, every worker."""
    tasks = list(tasks)
    if active() == "local" and (n_jobs <= 1 or len(tasks) <= 1):
        for i, task in enumerate(tasks):
            yield i, fn(*task)
        return
    if active() == "local":
        yield from _local(fn, tasks, min(n_jobs, len(tasks)))
        return
    fn, tasks = _by_value(fn, tasks)
    yield from joblib.Parallel(n_jobs=-1, return_as="generator_unordered", pre_dispatch="n_jobs",
                               batch_size=1)(joblib.delayed(_indexed)(i, fn, task) for i, task in enumerate(tasks))


_pools: dict[tuple, Any] = {}  # (n_jobs, worker env) -> this build's own loky pool, reused by every stage


@atexit.register  # also for a caller outside backend(): an open pool leaves loky's semaphores to its resource tracker
def close_local() -> None:
    """Shut down the local worker pools (idle workers exit at once)."""
    while _pools:
        _pools.popitem()[1].shutdown(wait=True)


def _local(fn: Callable[..., Any], tasks: list[tuple], n_jobs: int) -> Iterator[tuple[int, Any]]:
    """`unordered` on this module's own pool of loky processes, one task ahead per worker (each queued task is a
    pickled network in this process's memory). Not joblib.Parallel: every Parallel call registers a temporary folder
    with loky's resource tracker that a reused executor never unregisters, and a build ended with "There appear to be
    12 leaked folder objects" (nothing here is memory-mapped, so the folder bought nothing). Not loky's one global
    reusable executor either: joblib (the lab's training) would pick it up as its own and fail on it."""
    from joblib._parallel_backends import LokyBackend  # joblib's thread limits for its workers (joblib is locked)
    from joblib.externals.loky import ProcessPoolExecutor

    from analysis.core.deadline import exit_with_parent

    env = LokyBackend()._prepare_worker_env(n_jobs)  # BLAS and OpenMP: cpu_count // n_jobs threads each
    key = (n_jobs, tuple(sorted(env.items())))
    if key not in _pools:
        # Workers leave with the build that started them (local_workers); idle ones after joblib's 300 s, not loky's
        # 10 s, so the feature visualizations and dataset examples between two models do not cost a new torch import.
        _pools[key] = ProcessPoolExecutor(max_workers=n_jobs, initializer=exit_with_parent, initargs=(os.getpid(),),
                                          env=env, timeout=300)
    executor = _pools[key]
    queue = iter(enumerate(tasks))
    running: dict[Any, int] = {}

    def submit_next() -> None:
        for i, task in queue:
            running[executor.submit(fn, *task)] = i
            return

    try:
        for _ in range(n_jobs):
            submit_next()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=running.get):
                i = running.pop(future)
                result = future.result()
                submit_next()
                yield i, result
    finally:
        if running:  # a task failed, or the caller stopped: do not wait for the others (joblib killed them too)
            _pools.pop(key, None)
            executor.shutdown(wait=False, kill_workers=True)


def local_workers() -> contextlib.AbstractContextManager:
    """joblib's local processes (loky), each leaving as soon as the build that started them is gone (a killed
    analysis used to leave two 270 MB workers idling for loky's five-minute timeout)."""
    from analysis.core.deadline import exit_with_parent

    return joblib.parallel_config(backend="loky", initializer=exit_with_parent, initargs=(os.getpid(),))


class _ByValue:
    """Pickles its object with cloudpickle even where Dask uses the standard pickle: a bring-your-own model's class
    lives in a module next to its article, which no worker can import (loading.ship_by_value registers those modules
    with cloudpickle). It stays bytes on the scheduler (which re-pickles tasks) and is opened only in the task."""

    def __init__(self, obj: Any = None, blob: bytes | None = None):
        self.obj, self.blob = obj, blob

    def __reduce__(self):
        import cloudpickle

        if self.blob is None:
            self.blob = cloudpickle.dumps(self.obj)
        return _ByValue, (None, self.blob)

    def open(self) -> Any:
        import cloudpickle

        return self.obj if self.blob is None else cloudpickle.loads(self.blob)


def _by_value(fn: Callable[..., Any], tasks: list[tuple]) -> tuple[Any, list[tuple]]:
    wrapped: dict[int, _ByValue] = {}

    def wrap(obj: Any) -> _ByValue:
        return wrapped.setdefault(id(obj), _ByValue(obj))

    return wrap(fn), [tuple(wrap(a) for a in task) for task in tasks]


def _indexed(i: int, fn: Callable[..., Any], task: tuple) -> tuple[int, Any]:
    if isinstance(fn, _ByValue):
        fn, task = fn.open(), tuple(a.open() for a in task)
    return i, fn(*task)
