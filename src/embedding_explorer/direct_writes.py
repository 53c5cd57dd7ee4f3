"""Whole chunks written to a local disk around the page cache (``O_DIRECT``), where that is faster.

A run streams every layer's rows to disk once and reads them back once, for the scores. Through
the page cache each byte is first copied into a freshly allocated cache page, and that can cost
more CPU than everything else a chunk costs: 2.3 ms per MiB on the 2-core benchmark machine (a
virtual machine whose fresh pages are slow to get), about 1.9 s of bench_scale's 820 MB, on
cores the forward pass wants. Written with ``O_DIRECT`` from a small reused buffer the same
chunk costs 0.08 ms of CPU per MiB (``README``, Performance). Readers see the same bytes: only
the way they reach the disk differs.

A direct write waits for the disk, though, where the page cache takes a burst at once and
writes it later: on a slow disk (a network volume, a SATA drive) the cache is the better deal.
So the first large writes to each device are timed, and a device slower than
``DIRECT_MIN_SPEED`` gets the page cache, with a new trial now and then (:class:`WriteWay`).
Only large values go either way (an activation chunk is about 8 MiB); metadata and small arrays
take Zarr's own path, and so does everything on a file system that refuses ``O_DIRECT`` (tmpfs
on older kernels, some network file systems) or a platform without it (macOS, Windows). Each
file is written under a temporary name and renamed over the target, as Zarr's local store
does, so a reader never sees half a chunk.
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

import numpy as np
from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype
from zarr.storage import LocalStore

DIRECT_MIN_BYTES = 1 << 20  # smaller values go through the page cache (Zarr's own path)
TRIAL_BYTES = 32 << 20  # the direct writes timed on each device before its way is chosen
RETRIAL_BYTES = 512 << 20  # written through the page cache before a slow device is tried again
DIRECT_MIN_SPEED = 512 << 20  # bytes a second: a device slower than this is left to the page cache
BOUNCE_BYTES = 2 << 20  # the aligned buffer each writing thread copies a value through
ALIGN = 4096  # O_DIRECT's alignment of memory, file offset and length (covers 512 B and 4 KiB sectors)
O_DIRECT: int | None = getattr(os, "O_DIRECT", None)

log = logging.getLogger(__name__)
_bounce = threading.local()


def write_direct(path: Path, data: Any) -> bool:
    """Write the bytes of ``data`` (anything with the buffer protocol) to ``path`` whole: the
    aligned bulk with ``O_DIRECT``, the last partial block through the page cache, under a
    temporary name renamed over ``path``. False, with nothing written, where the file system or
    the platform refuses ``O_DIRECT``: the caller then writes the usual way."""
    if O_DIRECT is None:
        return False
    view = memoryview(data).cast("B")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | O_DIRECT, 0o644)
    except OSError as e:
        if e.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return False
        raise
    try:
        written = _write_aligned(fd, view)
        os.close(fd)
        fd = -1
        if written:
            os.replace(tmp, path)
        else:
            tmp.unlink()
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return written


def _write_aligned(fd: int, view: memoryview) -> bool:
    """The whole blocks of ``view`` with ``O_DIRECT``, through this thread's aligned buffer; the
    rest (under one block) with ``O_DIRECT`` cleared, at the end of the file. False where a
    direct write is refused (EINVAL: a device block larger than ``ALIGN``)."""
    buffer = _buffer()
    whole = len(view) // ALIGN * ALIGN
    for start in range(0, whole, BOUNCE_BYTES):
        end = min(start + BOUNCE_BYTES, whole)
        buffer[: end - start] = view[start:end]
        try:
            _write_all(fd, memoryview(buffer)[: end - start])
        except OSError as e:
            if e.errno == errno.EINVAL:
                return False
            raise
    if whole < len(view):
        import fcntl  # here, not at the top: Windows has neither fcntl nor O_DIRECT

        assert O_DIRECT is not None
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~O_DIRECT)
        _write_all(fd, view[whole:])
    return True


def _write_all(fd: int, view: memoryview) -> None:
    while len(view):
        view = view[os.write(fd, view) :]


def _buffer() -> mmap.mmap:
    """This thread's page-aligned buffer of ``BOUNCE_BYTES`` (an anonymous map: page-aligned)."""
    buffer: mmap.mmap | None = getattr(_bounce, "buffer", None)
    if buffer is None:
        buffer = _bounce.buffer = mmap.mmap(-1, BOUNCE_BYTES)
    return buffer


def read_direct(path: Path) -> np.ndarray | None:
    """The bytes of the file at ``path`` read with ``O_DIRECT`` (through this thread's aligned
    buffer), as a new uint8 array; None where the file is missing, under ``DIRECT_MIN_BYTES``,
    or the file system refuses ``O_DIRECT``: the caller then reads the usual way. A chunk just
    written directly is not in the page cache, and reading it through the cache would take a
    fresh page for every 4 KiB all over again."""
    if O_DIRECT is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | O_DIRECT)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return None
        raise
    try:
        size = os.fstat(fd).st_size
        if size < DIRECT_MIN_BYTES:
            return None
        out = np.empty(size, dtype=np.uint8)
        buffer, done = _buffer(), 0
        while done < size:
            try:
                n = os.readv(fd, [buffer])
            except OSError as e:
                if e.errno == errno.EINVAL:  # a block size above ALIGN
                    return None
                raise
            if n == 0:  # the file shrank meanwhile: read it the usual way
                return None
            n = min(n, size - done)
            out[done : done + n] = np.frombuffer(buffer, dtype=np.uint8, count=n)
            done += n
        return out
    finally:
        os.close(fd)


def write_value(path: Path, data: Any) -> None:
    """The bytes of ``data`` at ``path``, whole or not at all (under a temporary name, renamed):
    directly when there are ``DIRECT_MIN_BYTES`` or more and the device's :class:`WriteWay` says
    so, else through the page cache (also where the file system refuses ``O_DIRECT``)."""
    view = memoryview(data).cast("B")
    if O_DIRECT is not None and view.nbytes >= DIRECT_MIN_BYTES:
        way = write_way(path.parent)
        if way.next(view.nbytes):
            way.started()
            written = False
            try:
                written = write_direct(path, view)
            finally:
                way.finished(view.nbytes if written else 0)
            if written:
                return
            way.refused()
    write_cached(path, view)


def write_cached(path: Path, data: Any) -> None:
    """The bytes of ``data`` at ``path`` through the page cache, whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_large(path: Path) -> np.ndarray | None:
    """A file of ``DIRECT_MIN_BYTES`` or more read directly (unless its device's writes go
    through the page cache), as a uint8 array; None for the caller to read the usual way
    (small, missing, or refused)."""
    if O_DIRECT is None or write_way(path).direct is False:
        return None
    return read_direct(path)


class WriteWay:
    """Whether one device's large writes go directly or through the page cache.

    A trial sends ``TRIAL_BYTES`` of large writes directly and times them: their bytes over the
    time at least one of them was under way, so writes side by side are not each charged for
    the others. A device that took them at ``DIRECT_MIN_SPEED`` or faster keeps direct writes.
    A slower one (a network volume, a SATA drive, where the page cache's taking a burst at once
    and writing it later is the better deal) writes through the page cache, and is tried again
    after every ``RETRIAL_BYTES`` written that way: a trial can also read slow because other
    threads held the GIL (a write waits for it after the disk is done), and those waits only
    ever make a disk look slower, so one fast trial settles it. A file system that refuses
    ``O_DIRECT`` gets the page cache for good. (Timing the page cache's writes instead says
    little: what they cost comes later too, in the kernel's writeback and in fresh pages.)"""

    def __init__(self, device: int) -> None:
        self.device = device
        self.direct: bool | None = None if O_DIRECT is not None else False  # None: on trial
        self.refused_direct = O_DIRECT is None
        self._bytes = 0  # bytes of this trial's direct writes done
        self._busy = 0.0  # seconds with at least one of them under way
        self._under_way = 0
        self._last = 0.0  # when _under_way last changed
        self._cached = 0  # bytes written through the page cache since the last trial

    def next(self, n_bytes: int) -> bool:
        """Whether the next large write, of ``n_bytes``, goes directly."""
        if self.direct is False and not self.refused_direct:
            if self._cached < RETRIAL_BYTES:
                self._cached += n_bytes
                return False
            self.direct, self._bytes, self._busy, self._cached = None, 0, 0.0, 0  # a new trial
        return self.direct is not False

    def started(self) -> None:
        """Note a direct write starting."""
        self._tick()
        self._under_way += 1

    def finished(self, n_bytes: int) -> None:
        """Note a direct write done (``n_bytes``: 0 for one that failed or was refused); once
        this trial's bytes are in, choose."""
        self._tick()
        self._under_way -= 1
        if self.direct is not None:
            return
        self._bytes += n_bytes
        if self._bytes >= TRIAL_BYTES:
            speed = self._bytes / max(self._busy, 1e-9)
            self.direct = speed >= DIRECT_MIN_SPEED
            log.info(
                "device %#x took %d MiB of direct writes at %.0f MiB/s: large writes %s",
                self.device,
                self._bytes >> 20,
                speed / 2**20,
                "stay direct"
                if self.direct
                else f"go through the page cache, tried again after {RETRIAL_BYTES >> 20} MiB",
            )

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._under_way:
            self._busy += now - self._last
        self._last = now

    def refused(self) -> None:
        """The file system refused ``O_DIRECT``: the page cache for good."""
        if not self.refused_direct:
            log.info("device %#x refuses O_DIRECT: large writes go through the page cache", self.device)
        self.direct, self.refused_direct = False, True


_ways: dict[int, WriteWay] = {}  # by device (st_dev), for the process: a property of the disk


def write_way(path: Path) -> WriteWay:
    """The :class:`WriteWay` of the device ``path`` is on (``path``, or the nearest folder above
    it that exists: a store's root is made at its first write)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    device = os.stat(path).st_dev
    way = _ways.get(device)
    if way is None:
        way = _ways[device] = WriteWay(device)
    return way


class DirectLocalStore(LocalStore):
    """Zarr's local store, writing whole values of ``DIRECT_MIN_BYTES`` or more directly where
    its device's :class:`WriteWay` says so, and reading them back directly (the rows read for
    the scores; a chunk written directly is not in the page cache); everything else as Zarr does."""

    async def set(self, key: str, value: Buffer) -> None:
        if not isinstance(value, Buffer) or len(value) < DIRECT_MIN_BYTES or O_DIRECT is None:
            return await super().set(key, value)  # Zarr's own checks and path
        if not self._is_open:
            await self._open()
        self._check_writable()
        await asyncio.to_thread(write_value, self.root / key, value.as_buffer_like())

    async def get(
        self, key: str, prototype: BufferPrototype | None = None, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        """A whole value of ``DIRECT_MIN_BYTES`` or more read with :func:`read_direct` (unless its
        device's writes go through the page cache); the rest as Zarr does."""
        if byte_range is None and O_DIRECT is not None:
            if not self._is_open:
                await self._open()
            data = await asyncio.to_thread(read_large, self.root / key)
            if data is not None:
                return (prototype or default_buffer_prototype()).buffer.from_array_like(data)
        return await super().get(key, prototype, byte_range)


def local_store(path: Path, mode: str) -> LocalStore:
    """The store of a local Zarr hierarchy opened with ``mode``: direct writes where it writes.
    ``"r+"`` opens only what exists (a writable store would create the folder, and a late Dask
    task would bring back a run's deleted staging folder)."""
    if mode == "r":
        return LocalStore(path, read_only=True)
    if mode == "r+" and not path.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no Zarr hierarchy here", str(path))
    return DirectLocalStore(path)
