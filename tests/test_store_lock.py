"""One writer per run: the lock beside a local run (flock) and beside a run on an object store."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from embedding_explorer import RunLockedError
from embedding_explorer.locations import as_location
from embedding_explorer.store.lock import ObjectLock, lock_location, lock_path, run_lock

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from embedding_explorer.store.lock import run_lock

    with run_lock(sys.argv[1]):
        Path(sys.argv[2]).write_text("held")
        while not Path(sys.argv[3]).exists():
            time.sleep(0.05)
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    """Another process holding the lock of ``tmp_path/runs/r`` until ``release`` exists."""
    script, held, release = tmp_path / "holder.py", tmp_path / "held", tmp_path / "release"
    script.write_text(HOLDER)
    out = tmp_path / "runs" / "r"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([sys.executable, str(script), str(out), str(held), str(release)], env=env)
    try:
        _wait_for(held, process)
        yield process, out, release
    finally:
        release.touch()
        if process.poll() is None:
            process.wait(timeout=60)


def _take(out: object, **kwargs: object) -> None:
    """Take the lock of ``out`` and let it go."""
    with run_lock(out, **kwargs):  # type: ignore[arg-type]
        pass


def _wait_for(path: Path, process: subprocess.Popen[bytes]) -> None:
    for _ in range(1200):
        if path.exists():
            return
        assert process.poll() is None, "the holder process ended early"
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def test_a_second_writer_is_told_which_process_holds_the_run(holder: tuple) -> None:
    process, out, _ = holder
    with pytest.raises(RunLockedError, match=rf"process {process.pid} on {socket.gethostname()}") as info:
        _take(out)
    assert "wait=True" in str(info.value) and str(lock_path(out)) in str(info.value)


def test_waiting_a_number_of_seconds_gives_up_with_the_same_error(holder: tuple) -> None:
    process, out, _ = holder
    with pytest.raises(RunLockedError, match=rf"process {process.pid} .* after waiting 0.3 s"):
        _take(out, wait=0.3)


def test_waiting_gets_the_lock_once_the_holder_is_done(holder: tuple) -> None:
    _, out, release = holder
    release.touch()  # the holder lets go while we wait
    with run_lock(out, wait=True):
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    assert not lock_path(out).exists()  # released: no stray file beside the run


def test_the_lock_of_a_killed_process_is_taken_over(holder: tuple) -> None:
    process, out, _ = holder
    os.kill(process.pid, signal.SIGKILL)  # no cleanup at all
    process.wait(timeout=60)
    assert json.loads(lock_path(out).read_text())["pid"] == process.pid  # its file is still there
    with run_lock(out):
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()


def test_one_process_cannot_lock_a_run_twice(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with run_lock(out), pytest.raises(RunLockedError, match=str(os.getpid())):
        _take(out)


def test_a_failed_owner_write_leaves_the_run_unlocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk while writing the owner into the locked file: the file is closed and removed,
    so the same process (which keeps the error and its traceback, as a notebook does) takes the
    lock again once space is freed."""
    out = tmp_path / "r"

    def disk_full() -> dict[str, object]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("embedding_explorer.store.lock.owner_info", disk_full)
    with pytest.raises(OSError, match="No space left") as failed:
        _take(out)
    removed = not lock_path(out).exists()
    monkeypatch.undo()
    _take(out)  # not refused as if another process held it
    assert removed
    assert failed.value.errno == errno.ENOSPC and failed.tb is not None  # the error is still alive


@pytest.mark.parametrize("wait", [-1, "yes", None])
def test_a_bad_wait_is_refused(tmp_path: Path, wait: object) -> None:
    with pytest.raises(ValueError, match=r"wait="):
        _take(tmp_path / "r", wait=wait)


# ---- object stores -------------------------------------------------------------------------------
@pytest.fixture
def memory_out() -> Iterator[str]:
    root = f"lock-{uuid.uuid4().hex}"
    yield f"memory://{root}/run"
    with contextlib.suppress(FileNotFoundError):  # nothing left: the lock was removed
        fsspec.filesystem("memory").rm(f"/{root}", recursive=True)


def test_an_object_lock_is_created_only_if_absent(memory_out: str) -> None:
    with run_lock(memory_out):
        lock = lock_location(as_location(memory_out))
        assert lock.url.endswith("/.run.lock") and json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(RunLockedError, match=str(os.getpid())):
            _take(memory_out)
    assert not lock.exists()


def test_an_object_lock_of_an_ended_process_on_this_host_is_taken_over(memory_out: str) -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    lock = lock_location(as_location(memory_out))
    lock.write_json({"pid": ended.pid, "host": socket.gethostname(), "started": "earlier"})
    with run_lock(memory_out):
        assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_two_takers_of_an_ended_process_s_object_lock_cannot_both_hold_it(memory_out: str) -> None:
    """B reads the ended owner, then A takes the lock over before B goes on: B must not remove
    A's fresh lock and create its own (both would hold the run). Takeovers of one lock are one
    at a time on the host, each only while the lock still names the ended owner."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    out = as_location(memory_out)
    lock_location(out).write_json({"pid": ended.pid, "host": socket.gethostname(), "started": "earlier"})
    a, b = ObjectLock(out), ObjectLock(out)
    read_by_b = b.owner

    def owner_read_then_a_takes_over() -> dict | None:
        seen = read_by_b()
        if a._mine is None:  # A's takeover falls between B's read and B's removal
            assert a.try_acquire()
        return seen

    b.owner = owner_read_then_a_takes_over  # type: ignore[method-assign]
    assert not b.try_acquire()
    assert a._mine is not None and json.loads(lock_location(out).read_text()) == json.loads(a._mine)
    a.release()


def test_an_object_lock_of_another_host_is_kept(memory_out: str) -> None:
    lock = lock_location(as_location(memory_out))
    lock.write_json({"pid": 1, "host": "elsewhere", "started": "earlier"})
    with pytest.raises(RunLockedError, match="process 1 on elsewhere"):
        _take(memory_out)
    assert json.loads(lock.read_text())["host"] == "elsewhere"
