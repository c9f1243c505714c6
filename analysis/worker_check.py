"""What a Dask worker must have before it is sent work: this module travels to workers by value (cloudpickle), so it
imports nothing of the project at the top, and tells what is missing instead of the worker failing to deserialize
every task (which Dask only logs, while the build waits)."""
from __future__ import annotations


def probe(expected: dict[str, str]) -> str:
    """'' when this process can import the analysis package and has the `expected` {distribution: version}; else
    what is wrong, in words."""
    import importlib
    import importlib.metadata

    try:
        importlib.import_module("analysis.parallel")
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"cannot import the project's analysis package ({type(exc).__name__}: {exc})"
    for name, want in expected.items():
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            have = "nothing"
        if have != want:
            return f"has {name} {have}, the machine running build.py {want}"
    return ""
