"""Give freed heap memory back to the operating system after a big computation in a worker (torch-free).

glibc keeps memory a process has freed (the temporaries of an expansion, hundreds of MB) in its heap. joblib's loky
workers read that as a leak: after each job a worker whose resident size grew more than 300 MB above its size after
its first job (often a small lab tensor) exits, and loky warns "A worker stopped while some jobs were given to the
executor" and starts a new one (a fresh torch import). Trimming the heap after each job keeps the resident size what
the worker really holds.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None  # glibc only (not musl, macOS)
    except OSError:
        return None


def release_free_heap() -> bool:
    """Return the heap's free pages to the OS (glibc's malloc_trim); False where there is no such call."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
