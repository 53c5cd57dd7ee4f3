"""Whole chunks written around the page cache (direct_writes): the same bytes as Zarr's own
local store writes, the way back to the page cache where O_DIRECT is refused or slow, and
nothing half-written left behind."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import embedding_explorer as ee
from embedding_explorer import direct_writes
from embedding_explorer.direct_writes import (
    ALIGN,
    BOUNCE_BYTES,
    DirectLocalStore,
    local_store,
    read_direct,
    write_direct,
)
from embedding_explorer.locations import as_location, open_zarr_array
from embedding_explorer.store import writer as store_writer

needs_o_direct = pytest.mark.skipif(direct_writes.O_DIRECT is None, reason="no O_DIRECT on this platform")


@pytest.fixture(autouse=True)
def _fresh_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's devices start on trial (the choices are kept per process otherwise)."""
    monkeypatch.setattr(direct_writes, "_ways", {})


def _settle(path: Path, direct: bool) -> None:
    """Settle the way of the device ``path`` is on (as a trial would)."""
    path.mkdir(parents=True, exist_ok=True)
    direct_writes.write_way(path).direct = direct


def _refuses_o_direct(path: Path) -> bool:
    """Whether the file system under ``path`` refuses O_DIRECT (the tests then check the fallback)."""
    probe = path / "probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | (direct_writes.O_DIRECT or 0), 0o644))
    except OSError:
        return True
    probe.unlink()
    return False


@needs_o_direct
@pytest.mark.parametrize(
    "size",
    [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, BOUNCE_BYTES, BOUNCE_BYTES + 12_345, 2 * BOUNCE_BYTES + ALIGN],
)
def test_write_direct_writes_exactly_the_bytes(tmp_path: Path, size: int) -> None:
    """Aligned bulk, partial last block and several bounce-buffer passes: the file holds the
    bytes, from an unaligned source, and no temporary file is left."""
    if _refuses_o_direct(tmp_path):
        pytest.skip("this file system refuses O_DIRECT")
    data = np.random.default_rng(size).integers(0, 256, size + 3, dtype=np.uint8)[3:]  # unaligned
    target = tmp_path / "c" / "0" / "0"
    assert write_direct(target, data)
    assert target.read_bytes() == data.tobytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["0"]


@needs_o_direct
@pytest.mark.parametrize("size", [1 << 20, (1 << 20) + 1, BOUNCE_BYTES, 2 * BOUNCE_BYTES + ALIGN + 5])
def test_read_direct_reads_exactly_the_bytes(tmp_path: Path, size: int) -> None:
    """Whole bounce-buffer passes and a short last read: the file's bytes, from a file written
    the ordinary way."""
    if _refuses_o_direct(tmp_path):
        pytest.skip("this file system refuses O_DIRECT")
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8)
    (tmp_path / "chunk").write_bytes(data.tobytes())
    out = read_direct(tmp_path / "chunk")
    assert out is not None and out.dtype == np.uint8
    np.testing.assert_array_equal(out, data)


def test_read_direct_leaves_small_and_missing_files_to_the_caller(tmp_path: Path) -> None:
    (tmp_path / "small").write_bytes(b"x" * 1000)
    assert read_direct(tmp_path / "small") is None
    assert read_direct(tmp_path / "missing") is None
    assert read_direct(tmp_path) is None  # a folder


@needs_o_direct
def test_write_direct_replaces_a_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "chunk"
    target.write_bytes(b"x" * (3 * ALIGN))
    if _refuses_o_direct(tmp_path):
        pytest.skip("this file system refuses O_DIRECT")
    new = np.arange(ALIGN + 7, dtype=np.uint8)
    assert write_direct(target, new)
    assert target.read_bytes() == new.tobytes()


def test_a_refused_open_writes_nothing_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def refusing(path: Any, flags: int, *args: Any) -> int:
        if flags & (direct_writes.O_DIRECT or 0):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(direct_writes, "O_DIRECT", direct_writes.O_DIRECT or 0o40000)
    monkeypatch.setattr(os, "open", refusing)
    assert write_direct(tmp_path / "chunk", b"x" * (2 * ALIGN)) is False
    assert list(tmp_path.iterdir()) == []


@needs_o_direct
def test_a_refused_write_writes_nothing_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EINVAL on the write itself (a device block larger than ALIGN): the temporary file goes."""
    if _refuses_o_direct(tmp_path):
        pytest.skip("this file system refuses O_DIRECT")

    def einval(fd: int, data: Any) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "write", einval)
    assert write_direct(tmp_path / "chunk", b"x" * (2 * ALIGN)) is False
    assert list(tmp_path.iterdir()) == []


@needs_o_direct
def test_a_failed_write_raises_and_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk is an error, not a fallback: raised, and neither the target nor the
    temporary file is left."""
    if _refuses_o_direct(tmp_path):
        pytest.skip("this file system refuses O_DIRECT")

    def full(fd: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space"):
        write_direct(tmp_path / "chunk", b"x" * (2 * ALIGN))
    assert list(tmp_path.iterdir()) == []


def _chunk_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("rows", [4096, 3000])  # whole 2 MiB chunks, and a partial last chunk
def test_a_zarr_array_written_directly_is_byte_equal_to_zarrs_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    """The same array written through Zarr's LocalStore and through DirectLocalStore (every
    value direct, metadata included): the same files with the same bytes, read back equal,
    also when read back directly."""
    if direct_writes.O_DIRECT is None or _refuses_o_direct(tmp_path):
        pytest.skip("no O_DIRECT here")
    monkeypatch.setattr(direct_writes, "DIRECT_MIN_BYTES", 0)
    _settle(tmp_path, True)
    recorder = _Recorder(monkeypatch)
    data = np.random.default_rng(0).normal(size=(rows, 128)).astype(np.float32)
    for store in (zarr.storage.LocalStore(tmp_path / "zarr"), DirectLocalStore(tmp_path / "direct")):
        group = zarr.open_group(store, mode="w")
        array = group.create_array("x", shape=(0, 128), chunks=(1024, 128), dtype="float32", compressors=None)
        array.resize((rows, 128))
        array[:] = data
    assert len(recorder.sizes) >= 3  # the chunks (and the metadata) went directly
    assert _chunk_files(tmp_path / "direct") == _chunk_files(tmp_path / "zarr")
    np.testing.assert_array_equal(zarr.open_group(tmp_path / "direct", mode="r")["x"][...], data)
    read_back = zarr.open_group(DirectLocalStore(tmp_path / "zarr"), mode="r+")["x"]  # every value direct
    np.testing.assert_array_equal(read_back[...], data)
    np.testing.assert_array_equal(read_back[100:2900:7], data[100:2900:7])


class _Recorder:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        real = direct_writes.write_direct

        def recording(path: Path, data: Any) -> bool:
            written = real(path, data)
            if written:
                self.sizes.append(memoryview(data).nbytes)
            return written

        monkeypatch.setattr(direct_writes, "write_direct", recording)


def _write_in_chunks(store: DirectLocalStore, n_chunks: int) -> tuple[Any, np.ndarray]:
    array = zarr.open_group(store, mode="w").create_array(
        "x", shape=(n_chunks * 256, 256), chunks=(256, 256), dtype="float32", compressors=None
    )
    data = np.random.default_rng(1).normal(size=(n_chunks * 256, 256)).astype(np.float32)
    for start in range(0, len(data), 256):  # one chunk a write, in turn
        array[start : start + 256] = data[start : start + 256]
    return array, data


class _FakeDisk:
    """A disk whose direct writes advance a fake clock by ``seconds(n_bytes)`` (the store's
    timer), recording which way each large write went."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, seconds: Callable[[int], float]) -> None:
        self.ways: list[str] = []
        self.clock = 0.0
        real_cached = direct_writes.write_cached

        def direct(path: Path, data: Any) -> bool:
            self.ways.append("direct")
            self.clock += seconds(memoryview(data).nbytes)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes(memoryview(data)))
            return True

        def cached(path: Path, data: Any) -> None:
            if memoryview(data).nbytes >= direct_writes.DIRECT_MIN_BYTES:
                self.ways.append("page cache")
            real_cached(path, data)

        monkeypatch.setattr(direct_writes, "write_direct", direct)
        monkeypatch.setattr(direct_writes, "write_cached", cached)
        monkeypatch.setattr(direct_writes.time, "perf_counter", lambda: self.clock)


@pytest.mark.parametrize(("speed", "stays_direct"), [(4 << 30, True), (100 << 20, False)])
def test_a_device_slower_than_direct_min_speed_turns_to_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, speed: int, stays_direct: bool
) -> None:
    """The first TRIAL_BYTES go directly, timed (here by a clock the fake disk advances at
    ``speed``); then a fast disk keeps direct writes and a slow one gets the page cache. The
    array is whole either way."""
    monkeypatch.setattr(direct_writes, "DIRECT_MIN_BYTES", 1 << 16)
    monkeypatch.setattr(direct_writes, "TRIAL_BYTES", 4 << 20)
    chunk = 256 * 256 * 4
    disk = _FakeDisk(monkeypatch, lambda n_bytes: n_bytes / speed)
    trial = (4 << 20) // chunk
    array, data = _write_in_chunks(DirectLocalStore(tmp_path / "a"), trial + 4)
    assert disk.ways[:trial] == ["direct"] * trial
    assert disk.ways[trial:] == ["direct" if stays_direct else "page cache"] * 4
    assert direct_writes.write_way(tmp_path / "a").direct is stays_direct
    np.testing.assert_array_equal(array[...], data)


def test_writes_side_by_side_are_timed_by_the_time_any_was_under_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two 8 MiB writes under way together for 20 ms: 16 MiB in 20 ms (800 MiB/s, fast enough),
    not each 8 MiB in 20 ms (400 MiB/s, under DIRECT_MIN_SPEED)."""
    clock = [0.0]
    monkeypatch.setattr(direct_writes.time, "perf_counter", lambda: clock[0])
    way = direct_writes.WriteWay(0)
    for _ in range(2):  # 32 MiB in all: the trial's bytes
        way.started()
        way.started()
        clock[0] += 0.020
        way.finished(8 << 20)
        way.finished(8 << 20)
        clock[0] += 1.0  # a long pause between the pairs is not counted
    assert way.direct is True


def test_a_refusing_file_system_is_written_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct_writes, "DIRECT_MIN_BYTES", 1 << 16)
    calls: list[Path] = []

    def refused(path: Path, data: Any) -> bool:
        calls.append(path)
        return False

    monkeypatch.setattr(direct_writes, "write_direct", refused)
    array, data = _write_in_chunks(DirectLocalStore(tmp_path / "a"), 4)
    assert len(calls) == (1 if direct_writes.O_DIRECT is not None else 0)  # tried once, then never
    assert direct_writes.write_way(tmp_path / "a").direct is False
    np.testing.assert_array_equal(array[...], data)


def test_a_runs_chunks_go_direct_both_ways_and_its_scores_are_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of 8,192 x 384 rows in chunks of about 8 MiB, with no rows kept in memory: its whole
    chunks are written directly and read back directly for the scores (where the file system
    allows), the stored rows are the inputs exactly, and the scores are the stored rows
    projected by numpy on the run's own PCA."""
    if direct_writes.O_DIRECT is None or _refuses_o_direct(tmp_path):
        pytest.skip("no O_DIRECT here")
    _settle(tmp_path, True)
    monkeypatch.setattr(store_writer, "KEEP_BYTES", 0)  # the scores read the rows back
    recorder = _Recorder(monkeypatch)
    reads: list[int] = []
    real_read = direct_writes.read_direct

    def recording_read(path: Path) -> np.ndarray | None:
        out = real_read(path)
        if out is not None:
            reads.append(out.nbytes)
        return out

    monkeypatch.setattr(direct_writes, "read_direct", recording_read)
    x = np.random.default_rng(2).normal(size=(8192, 384)).astype(np.float32)
    run = ee.from_arrays({"rows": x}, out=tmp_path / "run", progress=False)
    assert recorder.sizes and min(recorder.sizes) >= direct_writes.DIRECT_MIN_BYTES
    assert sum(reads) >= x.nbytes // 2  # the whole chunks, read back once
    layer = run.layer("rows")
    np.testing.assert_array_equal(layer.activations[...], x)
    expected = (x.astype(np.float64) - layer.mean) @ layer.components.T
    np.testing.assert_allclose(layer.scores, expected, rtol=1e-5, atol=1e-4)


def test_writable_local_stores_write_directly_and_readers_do_not(tmp_path: Path) -> None:
    assert isinstance(local_store(tmp_path, "w"), DirectLocalStore)
    assert isinstance(local_store(tmp_path, "r+"), DirectLocalStore)
    reader = local_store(tmp_path, "r")
    assert not isinstance(reader, DirectLocalStore) and reader.read_only
    group = as_location(tmp_path / "g").zarr_group("w")
    assert isinstance(group.store, DirectLocalStore)


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_opening_a_missing_hierarchy_creates_nothing(tmp_path: Path, mode: str) -> None:
    """A late Dask task opening a deleted staging folder ("r+") must not bring it back."""
    with pytest.raises(FileNotFoundError):
        as_location(tmp_path / "gone" / "arrays").zarr_group(mode)
    with pytest.raises(FileNotFoundError):
        open_zarr_array(str(tmp_path / "gone" / "arrays" / "x"), None, mode)
    assert list(tmp_path.iterdir()) == []


def test_a_page_cache_device_reads_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the device's writes go through the page cache, so do the reads (the chunks are
    there): read_direct is not called, and the array reads back equal."""
    monkeypatch.setattr(direct_writes, "DIRECT_MIN_BYTES", 1 << 16)
    _settle(tmp_path, False)
    _, data = _write_in_chunks(DirectLocalStore(tmp_path / "a"), 3)
    reads: list[Path] = []
    monkeypatch.setattr(direct_writes, "read_direct", lambda path: reads.append(path))
    np.testing.assert_array_equal(
        zarr.open_group(DirectLocalStore(tmp_path / "a"), mode="r+")["x"][...], data
    )
    assert reads == []


def test_a_failed_direct_write_is_raised_and_not_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk: the error reaches the writer, and the trial neither counts the bytes nor is
    left believing a write is still under way."""
    monkeypatch.setattr(direct_writes, "DIRECT_MIN_BYTES", 1 << 16)

    def full(path: Path, data: Any) -> bool:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(direct_writes, "write_direct", full)
    array = zarr.open_group(DirectLocalStore(tmp_path / "a"), mode="w").create_array(
        "x", shape=(256, 256), chunks=(256, 256), dtype="float32", compressors=None
    )
    with pytest.raises(OSError, match="No space"):
        array[:] = np.ones((256, 256), dtype=np.float32)
    way = direct_writes.write_way(tmp_path / "a")
    assert (way._under_way, way._bytes, way.direct) == (0, 0, None)


def test_the_trial_ends_while_writes_keep_overlapping(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes that never all finish at once (one always under way) still end the trial once its
    bytes are in: 32 MiB in 16 ms of union time is 2 GiB/s."""
    clock = [0.0]
    monkeypatch.setattr(direct_writes.time, "perf_counter", lambda: clock[0])
    way = direct_writes.WriteWay(0)
    way.started()
    for _ in range(direct_writes.TRIAL_BYTES // (4 << 20)):
        way.started()  # the next write starts before the last one ends
        clock[0] += 0.002
        way.finished(4 << 20)
    assert way._under_way == 1 and way.direct is True


def test_a_slow_device_is_tried_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial that read slow (another thread held the GIL, the disk was busy) is not the last
    word: after RETRIAL_BYTES through the page cache the device is timed again, and a fast
    trial keeps it direct."""
    monkeypatch.setattr(direct_writes, "DIRECT_MIN_BYTES", 1 << 16)
    monkeypatch.setattr(direct_writes, "TRIAL_BYTES", 1 << 18)  # one chunk
    monkeypatch.setattr(direct_writes, "RETRIAL_BYTES", 1 << 19)  # two chunks
    times = iter([1.0])  # the first trial: 256 KiB in 1 s; the later writes fast
    disk = _FakeDisk(monkeypatch, lambda n_bytes: next(times, 1e-6))
    array, data = _write_in_chunks(DirectLocalStore(tmp_path / "a"), 6)
    # a slow trial, two chunks (RETRIAL_BYTES) through the page cache, a fast trial, direct on
    assert disk.ways == ["direct", "page cache", "page cache", "direct", "direct", "direct"]
    assert direct_writes.write_way(tmp_path / "a").direct is True
    np.testing.assert_array_equal(array[...], data)


def test_read_direct_of_a_file_that_shrank_leaves_it_to_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file shorter than its size said when opened: no half-filled array, None."""
    if direct_writes.O_DIRECT is None or _refuses_o_direct(tmp_path):
        pytest.skip("no O_DIRECT here")
    (tmp_path / "chunk").write_bytes(b"x" * (2 << 20))
    real_fstat = os.fstat

    class Larger:
        def __init__(self, st: os.stat_result) -> None:
            self.st_size = st.st_size + (1 << 20)

    monkeypatch.setattr(os, "fstat", lambda fd: Larger(real_fstat(fd)))
    assert read_direct(tmp_path / "chunk") is None


def test_exclusive_writes_and_type_checks_stay_zarrs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """set_if_not_exists keeps what is there; a value that is not a Buffer is refused."""
    monkeypatch.setattr(direct_writes, "DIRECT_MIN_BYTES", 1 << 16)
    store = DirectLocalStore(tmp_path / "a")
    big = zarr.core.buffer.default_buffer_prototype().buffer.from_bytes(b"a" * (1 << 17))
    other = zarr.core.buffer.default_buffer_prototype().buffer.from_bytes(b"b" * (1 << 17))
    zarr.core.sync.sync(store.set("k", big))
    zarr.core.sync.sync(store.set_if_not_exists("k", other))
    assert (tmp_path / "a" / "k").read_bytes() == b"a" * (1 << 17)
    with pytest.raises(TypeError):
        zarr.core.sync.sync(store.set("j", b"not a buffer"))  # type: ignore[arg-type]
