"""The C heap around extraction: freed blocks kept for the next batch, then handed back.

glibc's malloc gives large blocks back to the OS as soon as they are freed: a block above the
mmap threshold (128 KiB at first, raised as such blocks are freed, to 32 MiB at most) is
unmapped, and the top of the heap is trimmed once more than the trim threshold is free there.
A forward pass on the CPU allocates its activations and frees them every batch, so every batch
pages them in again, each page zeroed by the kernel: a hand-written ResNet-18 at 112 x 112 took
1.3 million page faults per 1,536 images, 19% of its CPU time in the kernel, and the issue's
small CNN 2 million (bare forward loops, measured; `README`, Performance). jemalloc and TCMalloc,
which PyTorch's CPU tuning guide recommends, keep such blocks; :func:`reused_heap` has glibc
keep them while a run extracts, so its forward passes reuse the same pages.

Only glibc, and only where nothing chose otherwise: a process started with malloc's thresholds
set (``MALLOC_*_``, ``GLIBC_TUNABLES``, as Dask starts its workers) or with another allocator
preloaded is left as it is.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import sys
import threading
from collections.abc import Iterator
from typing import Any

M_TRIM_THRESHOLD = -1  # mallopt's parameters (malloc.h)
M_MMAP_THRESHOLD = -3
KEPT = 1 << 30  # while extracting: blocks up to 1 GiB come from the heap, 1 GiB of free top kept
DYNAMIC_MMAP_MAX = 4 * 1024 * 1024 * ctypes.sizeof(ctypes.c_long)  # glibc's DEFAULT_MMAP_THRESHOLD_MAX
TRIM_GROWTH = 64 * 2**20  # bytes of resident memory a spill lets pile up before it trims
ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")

_lock = threading.Lock()
_depth = [0]  # reused_heap contexts open (runs extracting in threads side by side)
_trimmed_at: list[int | None] = [0]  # the resident bytes the growth is measured from (see below)


def _glibc() -> Any | None:
    """glibc's functions, or None where the process's malloc is not glibc's or is configured."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    environment = startup_environment()
    if any(name in environment for name in ENVIRONMENT):
        return None
    if "glibc.malloc." in environment.get("GLIBC_TUNABLES", ""):
        return None
    if any(name in environment.get("LD_PRELOAD", "") for name in OTHER_ALLOCATORS):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def startup_environment() -> dict[str, str]:
    """The environment the process started with, as glibc and the loader read it
    (``/proc/self/environ``), not as changed since: Dask's ``LocalCluster`` sets
    ``MALLOC_TRIM_THRESHOLD_`` in ``os.environ`` for the workers it starts, which leaves this
    process's malloc as it was. ``os.environ`` where that file cannot be read."""
    try:
        with open("/proc/self/environ", "rb") as f:
            entries = f.read().split(b"\0")
    except OSError:
        return dict(os.environ)
    pairs = (entry.decode(errors="replace").partition("=") for entry in entries if b"=" in entry)
    return {name: value for name, _, value in pairs}


@contextlib.contextmanager
def reused_heap() -> Iterator[None]:
    """For the duration, freed blocks of up to 1 GiB stay in glibc's heap for the next
    allocation (``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` raised); then the thresholds are
    set where glibc's own adjustment ends (32 MiB, and twice that for the trim) and the free
    memory is handed back (``malloc_trim``). The resident memory meanwhile stays near the peak
    the forward pass reaches anyway (ResNet-18 at 112 x 112: 835-851 MiB against 800-842 MiB)."""
    libc = _glibc()
    if libc is None:
        yield
        return
    with _lock:
        _depth[0] += 1
        if _depth[0] == 1:
            if not libc.mallopt(M_MMAP_THRESHOLD, KEPT):
                libc.mallopt(M_MMAP_THRESHOLD, DYNAMIC_MMAP_MAX)  # a glibc that caps it
            libc.mallopt(M_TRIM_THRESHOLD, KEPT)
            _trimmed_at[0] = None  # spills measure their growth from the first one on
    try:
        yield
    finally:
        with _lock:
            _depth[0] -= 1
            if _depth[0] == 0:
                libc.mallopt(M_MMAP_THRESHOLD, DYNAMIC_MMAP_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, 2 * DYNAMIC_MMAP_MAX)
                release_freed_memory()


def release_freed_memory(*, grown: int = 0) -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise), when the resident
    memory grew by more than ``grown`` bytes since the last time (0: always).

    Each batch allocates and frees rows of every layer; glibc's allocator keeps much of that freed
    memory, so without this a long run's resident memory creeps up with N although nothing is held
    (measured: 1.6 GiB instead of 0.8 GiB at 1M samples with float16 storage). Dask sets
    ``MALLOC_TRIM_THRESHOLD_`` on its workers for the same reason. A trim walks the whole heap
    (about 10 ms here), so spills trim only once the memory grew by ``TRIM_GROWTH``: the creep
    stays bounded by that, without a trim at every spill. Inside :func:`reused_heap` the growth
    is measured from the first call after a trim, once the forward pass has its pages back.
    """
    if not sys.platform.startswith("linux"):
        return
    rss = resident_bytes()
    if grown and rss is not None:
        if _trimmed_at[0] is None:  # the first time since a trim in a kept heap: the baseline
            _trimmed_at[0] = rss
            return
        if rss - _trimmed_at[0] <= grown:
            return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    # in a kept heap (reused_heap) the next batch pages its activations back in at once, so the
    # growth is measured from the next call on, not from just after the trim (which would make
    # every spill trim, and every batch after one page its activations in again)
    _trimmed_at[0] = None if _depth[0] > 0 else resident_bytes() or 0


def resident_bytes() -> int | None:
    """This process's resident memory (Linux's ``/proc/self/statm``), or None where unknown."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
