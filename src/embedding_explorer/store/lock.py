"""One writer per run: a lock beside the run, held from the reuse check to the commit.

A local run is locked with ``fcntl.flock`` on ``.NAME.lock`` beside it: the kernel releases the
lock when its process ends, however it ends, so the lock of a killed writer is simply taken
over (its staging folder then resumes, :mod:`embedding_explorer.resume`). The file holds the
owner's pid, host and start time, so a refused writer is told who holds it. The holder removes
the file when it is done; a process that opened the file before it was removed sees that it
locked a removed file and tries again.

A run at another fsspec URL is locked with an object ``.NAME.lock`` beside its prefix, created
only if absent (``mode="xb"``; object stores that cannot refuse an existing object fall back to
check-then-write, which two writers starting within the same moment can both pass). The object
of a process that is no longer alive on this host is taken over; an object left by a process on
another host stays until it is removed by hand (the error names it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ..exceptions import EmbeddingExplorerError, RunLockedError
from ..locations import Location, as_location

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often a waiting writer tries again
Wait = bool | float


def lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def lock_location(out: Location) -> Location:
    """The lock of the run at ``out``: beside it, so removing or renaming the run keeps it."""
    if out.local is not None:
        return as_location(lock_path(out.local))
    parent_url, name = out.url.rstrip("/").rsplit("/", 1)
    parent_path = out.fs_path.rstrip("/").rsplit("/", 1)[0]
    return Location(
        f"{parent_url}/.{name}.lock",
        fs=out.fs,
        path=f"{parent_path}/.{name}.lock",
        storage_options=out.storage_options,
    )


def owner_info() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def describe(owner: dict[str, Any] | None) -> str:
    if not owner:
        return "another process"
    return f"process {owner.get('pid')} on {owner.get('host')} (since {owner.get('started')})"


@contextlib.contextmanager
def run_lock(out: str | Path | Location, *, wait: Wait = False) -> Iterator[None]:
    """Hold the write lock of the run at ``out`` for the duration.

    Parameters
    ----------
    out : path or Location
    wait : bool or float, default=False
        False: raise :class:`~embedding_explorer.RunLockedError` naming the process that holds
        it; True: wait until it is free; a number: wait up to that many seconds, then raise.
    """
    location = as_location(out)
    lock = LocalLock(location) if location.local is not None else ObjectLock(location)
    deadline = _deadline(wait)
    waiting_logged = False
    while not lock.try_acquire():
        if deadline is not None and time.monotonic() >= deadline:
            how = "" if wait is False else f" after waiting {float(wait):g} s"
            raise RunLockedError(
                f"out={location.url!r} is being written by {describe(lock.owner())}{how} "
                f"(lock {lock.where}); wait for it with explore(..., wait=True), or write elsewhere"
            )
        if not waiting_logged:
            log.info("waiting for %s, which is writing %s", describe(lock.owner()), location.url)
            waiting_logged = True
        time.sleep(POLL_S)
    try:
        yield
    finally:
        lock.release()


def _deadline(wait: Wait) -> float | None:
    if wait is True:
        return None
    if wait is False:
        return time.monotonic()
    if isinstance(wait, int | float) and wait >= 0:
        return time.monotonic() + float(wait)
    raise EmbeddingExplorerError(f"wait={wait!r}: use True, False or a number of seconds >= 0")


class LocalLock:
    """``flock`` on a file beside a local run."""

    def __init__(self, out: Location) -> None:
        assert out.local is not None
        self.path = lock_path(out.local)
        self.where = str(self.path)
        self._file: IO[str] | None = None

    def try_acquire(self) -> bool:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")  # noqa: SIM115 - held until release
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        except BaseException:
            f.close()
            raise
        try:  # the file may have been removed by its last holder after we opened it
            same = os.fstat(f.fileno()).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        except BaseException:
            f.close()
            raise
        if not same:
            f.close()
            return False
        try:
            f.seek(0)
            f.truncate()
            f.write(json.dumps(owner_info()))
            f.flush()
        except BaseException:  # disk full...: remove and unlock the file, never keep it open and locked
            with contextlib.suppress(OSError):
                self.path.unlink()
            with contextlib.suppress(OSError):
                f.close()  # closes the file even when flushing what is left fails
            raise
        self._file = f
        return True

    def owner(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def release(self) -> None:
        if self._file is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # while still locked: a waiter that opened it tries again
        self._file.close()  # releases the flock
        self._file = None


class ObjectLock:
    """A lock object, created only if absent, beside a run on an object store."""

    def __init__(self, out: Location) -> None:
        self.location = lock_location(out)
        self.where = self.location.url
        self._mine: str | None = None

    def try_acquire(self) -> bool:
        text = json.dumps(owner_info())
        if self._create(text):
            self._mine = text
            return True
        owner = self.owner()
        if owner is not None and _dead_here(owner):
            # only processes of the owner's host take its lock over (_dead_here): one at a time,
            # under a lock file of this host, each only while the lock still names the ended
            # owner (else two that read it both remove and recreate it, and both hold it)
            with _host_lock(self.where):
                if self.owner() != owner:  # taken over, or released, meanwhile
                    return self._create(text) and self._took(text)
                log.warning("taking over the lock %s of %s, which has ended", self.where, describe(owner))
                with contextlib.suppress(FileNotFoundError):
                    self.location.remove()
                if self._create(text):
                    return self._took(text)
        return False

    def _took(self, text: str) -> bool:
        self._mine = text
        return True

    def _create(self, text: str) -> bool:
        fs, path = self.location.fs, self.location.fs_path
        try:
            with fs.open(path, "xb") as f:
                f.write(text.encode())
            return True
        except FileExistsError:
            return False
        except (ValueError, NotImplementedError, TypeError):  # no exclusive create: check, then write
            if fs.exists(path):
                return False
            with fs.open(path, "wb") as f:
                f.write(text.encode())
            return bool(self.location.read_text() == text)

    def owner(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.location.read_text())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def release(self) -> None:
        if self._mine is None:
            return
        try:
            if self.location.read_text() == self._mine:
                self.location.remove()
        except FileNotFoundError:
            pass
        self._mine = None


@contextlib.contextmanager
def _host_lock(where: str) -> Iterator[None]:
    """An exclusive lock of this host, for the lock object at ``where`` (a file in the temporary
    folder named by its hash), held for the duration (none where ``fcntl`` is missing: Windows)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    digest = hashlib.blake2b(where.encode(), digest_size=12).hexdigest()
    path = Path(tempfile.gettempdir()) / f"embedding-explorer-takeover-{digest}.lock"
    try:  # read-only: another user's file (0644) locks as well as one's own; created only where
        # missing (O_CREAT on another user's file in a sticky folder fails under protected_regular)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:  # a temporary folder this process cannot use: takeovers as before
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _dead_here(owner: dict[str, Any]) -> bool:
    """Whether the lock's process was on this host and has ended."""
    if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return False
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
