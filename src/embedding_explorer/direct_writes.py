"""Whole chunks written to a local disk around the page cache (``O_DIRECT``).

A run streams every layer's rows to disk once and reads them back once, for the scores. Through
the page cache each byte is first copied into a freshly allocated cache page, and that costs
more CPU than the copy itself: 2.3 ms per MiB on the 2-core benchmark machine (a virtual
machine whose fresh pages are slow to get), about 0.3 s of a 126 MB per-token run and 1.9 s of
bench_scale's 820 MB, on cores the forward pass wants. Written with ``O_DIRECT`` from a small
reused buffer the same chunk costs 0.08 ms of CPU per MiB (``README``, Performance). Readers
see the same bytes: only the way they reach the disk differs.

Only large values go this way (an activation chunk is about 8 MiB); metadata and small arrays
take Zarr's own path. A file system that refuses ``O_DIRECT`` (tmpfs on older kernels, some
network file systems) or a platform without it gets Zarr's own path too, and so does a disk
slower than the page cache's own cost (:class:`DirectLocalStore`). Each file is written
under a temporary name and renamed over the target, as Zarr's local store does, so a reader
never sees half a chunk.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import mmap
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from zarr.core.buffer import Buffer
from zarr.storage import LocalStore

DIRECT_MIN_BYTES = 1 << 20  # smaller values go through the page cache (Zarr's own path)
DIRECT_MIN_SPEED = 1 << 30  # bytes a second: a disk slower than this is left to the page cache
SLOW_WRITES = 3  # slow direct writes in a row that turn a store back to the page cache
BOUNCE_BYTES = 2 << 20  # the aligned buffer each writing thread copies a value through
ALIGN = 4096  # O_DIRECT's alignment of memory, file offset and length (the largest block size in use)
O_DIRECT: int | None = getattr(os, "O_DIRECT", None)

log = logging.getLogger(__name__)
_bounce = threading.local()


def write_direct(path: Path, data: Any) -> float | None:
    """Write the bytes of ``data`` (anything with the buffer protocol) to ``path`` whole: the
    aligned bulk with ``O_DIRECT``, the last partial block through the page cache, under a
    temporary name renamed over ``path``. Returns the seconds the ``O_DIRECT`` writes took (the
    disk's time, not the copies'), or None, with nothing written, where the file system or the
    platform refuses ``O_DIRECT``: the caller then writes the usual way."""
    if O_DIRECT is None:
        return None
    view = memoryview(data).cast("B")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | O_DIRECT, 0o644)
    except OSError as e:
        if e.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return None
        raise
    try:
        try:
            seconds = _write_aligned(fd, view)
        except OSError as e:
            if e.errno != errno.EINVAL:  # EINVAL: a block size above ALIGN; written again below
                raise
            os.close(fd)
            fd = -1
            tmp.unlink(missing_ok=True)
            return None
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return seconds


def _write_aligned(fd: int, view: memoryview) -> float:
    """The whole blocks of ``view`` with ``O_DIRECT``, through this thread's aligned buffer; the
    rest (under one block) with ``O_DIRECT`` cleared, at the end of the file. Returns the
    seconds spent in the ``O_DIRECT`` writes."""
    buffer = _buffer()
    whole = len(view) // ALIGN * ALIGN
    seconds = 0.0
    for start in range(0, whole, BOUNCE_BYTES):
        end = min(start + BOUNCE_BYTES, whole)
        buffer[: end - start] = view[start:end]
        began = time.perf_counter()
        _write_all(fd, memoryview(buffer)[: end - start])
        seconds += time.perf_counter() - began
    if whole < len(view):
        import fcntl  # here, not at the top: Windows has neither fcntl nor O_DIRECT

        assert O_DIRECT is not None
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~O_DIRECT)
        _write_all(fd, view[whole:])
    return seconds


def _write_all(fd: int, view: memoryview) -> None:
    while len(view):
        view = view[os.write(fd, view) :]


def _buffer() -> mmap.mmap:
    """This thread's page-aligned buffer of ``BOUNCE_BYTES`` (an anonymous map: page-aligned)."""
    buffer: mmap.mmap | None = getattr(_bounce, "buffer", None)
    if buffer is None:
        buffer = _bounce.buffer = mmap.mmap(-1, BOUNCE_BYTES)
    return buffer


class DirectLocalStore(LocalStore):
    """Zarr's local store, writing values of ``DIRECT_MIN_BYTES`` or more with :func:`write_direct`
    (whole activation and score chunks); everything else as Zarr does.

    A direct write waits for the disk, where the page cache would have taken the bytes at once
    and written them later: that pays only on a disk faster than the cache's own cost. So once
    ``SLOW_WRITES`` direct writes in a row run slower than ``DIRECT_MIN_SPEED`` (a network
    volume, a SATA disk, a busy device), and at the first that the file system refuses, the
    store writes the rest of the run through the page cache."""

    def __init__(self, root: Path | str, *, read_only: bool = False) -> None:
        super().__init__(root, read_only=read_only)
        self.direct = O_DIRECT is not None
        self._slow = 0  # direct writes in a row slower than DIRECT_MIN_SPEED

    async def set(self, key: str, value: Buffer) -> None:
        if not self.direct or len(value) < DIRECT_MIN_BYTES:
            return await super().set(key, value)
        if not self._is_open:
            await self._open()
        self._check_writable()
        seconds = await asyncio.to_thread(write_direct, self.root / key, value.as_buffer_like())
        if seconds is None:
            self._give_up("the file system refuses O_DIRECT")
            return await super().set(key, value)
        self._slow = self._slow + 1 if len(value) < DIRECT_MIN_SPEED * seconds else 0
        if self._slow >= SLOW_WRITES:
            self._give_up(f"{SLOW_WRITES} direct writes in a row ran below {DIRECT_MIN_SPEED >> 20} MiB/s")

    def _give_up(self, why: str) -> None:
        if self.direct:
            log.info("%s: %s; writing through the page cache from now on", self.root, why)
        self.direct = False


def local_store(path: Path, mode: str) -> LocalStore:
    """The store of a local Zarr hierarchy opened with ``mode``: direct writes where it writes."""
    return LocalStore(path, read_only=True) if mode == "r" else DirectLocalStore(path)
