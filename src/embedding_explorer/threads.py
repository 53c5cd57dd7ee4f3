"""A batch's CPU-side work shared by threads, whole samples each.

Between two forward passes on the CPU the cores torch computes on are idle, and beside a GPU's
forward pass they are idle too; numpy releases the GIL for its arithmetic, so a batch split
along its first axis is done that many times faster. Each sample's values are computed alone,
so they are the same however the batch is split.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

from .cores import available_cores

T = TypeVar("T")
Item = TypeVar("Item")

MIN_SAMPLES_PER_PART = 4
MIN_VALUES_PER_PART = 1 << 18  # below this a thread costs more than it saves
BLOCK_PIXELS = 1 << 17  # per-pixel work on images goes a block of about this many pixels at a time


def by_parts(work: Callable[[np.ndarray], T], batch: np.ndarray, workers: int) -> list[T]:
    """``work`` of consecutive parts of ``batch`` (first axis), at most ``workers`` at once
    and in order: one part (no thread) when the batch is too small to be worth sharing, or when
    called from a task of the pool itself (it would wait on the threads it holds)."""
    parts = min(workers, len(batch) // MIN_SAMPLES_PER_PART, batch.size // MIN_VALUES_PER_PART)
    if parts <= 1 or _IN_POOL.flag:
        return [work(batch)]
    return list(_pool().map(work, np.array_split(batch, parts)))


def each_by_parts(work: Callable[[Item], T], items: Sequence[Item], workers: int) -> list[T]:
    """``work`` of each item, in order, the items split into at most ``workers`` consecutive
    parts done side by side (one after another on the calling thread for one worker or item,
    or inside a task of the pool): for work that lets go of the GIL, such as PIL decoding and
    resizing an image file. Torch ops in ``work`` run on one OpenMP thread each there (the
    pool's threads are the parallelism; each with a team of its own would oversubscribe)."""
    parts = min(workers, len(items))
    if parts <= 1 or _IN_POOL.flag:
        return [work(item) for item in items]
    bounds = np.linspace(0, len(items), parts + 1).astype(int)
    chunks = [items[a:b] for a, b in itertools.pairwise(bounds)]
    done = _pool().map(lambda chunk: [work(item) for item in chunk], chunks)
    return [result for part in done for result in part]


def images_per_block(height: int, width: int) -> int:
    """How many images of ``height`` x ``width`` make a block of about ``BLOCK_PIXELS`` (at least
    one): per-pixel work done a block at a time keeps its temporaries (a few bytes a pixel) in a
    core's cache across its passes, and in reused memory rather than fresh pages."""
    return max(1, BLOCK_PIXELS // max(1, height * width))


class _InPool(threading.local):
    flag = False  # set in the pool's own threads


_IN_POOL = _InPool()
_POOL_LOCK = threading.Lock()
_POOLS: list[ThreadPoolExecutor] = []


def _pool() -> ThreadPoolExecutor:
    """One pool for the process (made at the first shared batch, under a lock: the main thread
    and an overlapped consumer may ask at once), not one per batch."""
    with _POOL_LOCK:
        if not _POOLS:
            cores = available_cores()
            _POOLS.append(ThreadPoolExecutor(cores, thread_name_prefix="ee-batch", initializer=_pool_thread))
        return _POOLS[0]


def _pool_thread() -> None:
    """A pool thread: known as one (no nested sharing), and one OpenMP thread for what it runs
    (the limit is the thread's own: the caller's torch keeps its threads)."""
    _IN_POOL.flag = True
    # torch sets a new thread's OpenMP threads at its first call (to its process-wide number once
    # torch.set_num_threads was called): that first, then this thread's own limit on top
    torch.get_num_threads()
    _controller().limit(limits=1, user_api="openmp")


class Scratch(threading.local):
    """Working arrays reused from batch to batch, one set per thread (by name).

    A fresh array of megabytes comes from the OS page by page: a page fault per 4 KiB, which
    for a batch's per-pixel temporaries cost more than the arithmetic on them (measured: the
    input statistics of 64 RGB images of 112 x 112 took 12.5 ms with 3,650 page faults, 5.6 ms
    with none). Whoever owns the scratch owns its memory: it goes with the owner."""

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def __reduce__(self) -> tuple[type[Scratch], tuple[()]]:
        """Pickled (a renderer sent to a Dask worker) as a fresh, empty scratch."""
        return (Scratch, ())

    def array(self, name: str, shape: tuple[int, ...], dtype: type | np.dtype) -> np.ndarray:
        """An uninitialised C-contiguous array of ``shape`` and ``dtype``, the same memory as
        the last one of that name when it is large enough."""
        size = math.prod(shape)
        kind = np.dtype(dtype)
        buffer = self.buffers.get(name)
        if buffer is None or buffer.dtype != kind or buffer.size < size:
            buffer = self.buffers[name] = np.empty(size, dtype=kind)
        return buffer[:size].reshape(shape)


def blas_threads(limit: int | None) -> AbstractContextManager[Any]:
    """BLAS (numpy's and scipy's OpenBLAS) on at most ``limit`` threads for the duration (None:
    as configured). Through one controller made once per process: ``threadpool_limits`` scans
    every loaded library on each call (about 3 ms, measured), which a run paid once per layer."""
    return _controller().limit(limits=limit, user_api="blas")


@functools.cache
def _controller() -> ThreadpoolController:
    """The process's thread-pool controller (the libraries loaded when first asked for: numpy's
    and scipy's BLAS are loaded by then, as this package imports both)."""
    return ThreadpoolController()
