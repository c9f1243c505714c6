"""Give freed heap memory back to the operating system after a big computation in a worker (torch-free).

glibc keeps memory a process has freed (the temporaries of an expansion, hundreds of MB) in its heap. joblib's loky
workers read that as a leak: after each job a worker whose resident size grew more than 300 MB above its size after
its first job (often a small lab tensor) exits, and loky warns "A worker stopped while some jobs were given to the
executor" and starts a new one (a fresh torch import). Two things keep the resident size what the worker really
holds: glibc's mmap threshold is fixed at 32 MiB, its largest dynamic value (left dynamic, it starts at 128 KiB and
moves with every big block freed, so where a block lands depends on the jobs before), and the heap is trimmed after
each job (malloc_trim gives back free pages anywhere in the heap, not only at its top). Blocks under 32 MiB come from
the heap and are reused from job to job: at 128 KiB every one of an expansion's many mid-sized temporaries was a
fresh mmap whose pages the kernel had to zero, and EfficientNet-Lite0's 18 tensors took 1.5x the time (bench/).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit; setting it turns off its growth


@functools.cache
def _libc_call(name: str):
    lib = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(lib), name, None) if lib else None  # glibc only (not musl, macOS)
    except OSError:
        return None


@functools.cache
def keep_large_blocks_mapped() -> bool:
    """Blocks of 32 MiB and more are mmapped and go back to the OS when freed, for the rest of this process; smaller
    ones are reused from the heap (release_free_heap gives back what is free after a job)."""
    mallopt = _libc_call("mallopt")
    return bool(mallopt and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def release_free_heap() -> bool:
    """Return the heap's free pages to the OS (glibc's malloc_trim); False where there is no such call."""
    trim = _libc_call("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True
