"""Whole chunks written around the page cache (direct_writes): the same bytes as Zarr's own
local store writes, the way back to the page cache where O_DIRECT is refused or slow, and
nothing half-written left behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import embedding_explorer as ee
from embedding_explorer import direct_writes
from embedding_explorer.direct_writes import ALIGN, BOUNCE_BYTES, DirectLocalStore, local_store, write_direct
from embedding_explorer.locations import as_location

needs_o_direct = pytest.mark.skipif(direct_writes.O_DIRECT is None, reason="no O_DIRECT on this platform")


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
    assert write_direct(target, data) is not None
    assert target.read_bytes() == data.tobytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["0"]


@needs_o_direct
def test_write_direct_replaces_a_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "chunk"
    target.write_bytes(b"x" * (3 * ALIGN))
    if _refuses_o_direct(tmp_path):
        pytest.skip("this file system refuses O_DIRECT")
    new = np.arange(ALIGN + 7, dtype=np.uint8)
    assert write_direct(target, new) is not None
    assert target.read_bytes() == new.tobytes()


def test_a_refused_open_writes_nothing_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def refusing(path: Any, flags: int, *args: Any) -> int:
        if flags & (direct_writes.O_DIRECT or 0):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(direct_writes, "O_DIRECT", direct_writes.O_DIRECT or 0o40000)
    monkeypatch.setattr(os, "open", refusing)
    assert write_direct(tmp_path / "chunk", b"x" * (2 * ALIGN)) is None
    assert list(tmp_path.iterdir()) == []


@needs_o_direct
def test_a_refused_write_writes_nothing_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EINVAL on the write itself (a device block larger than ALIGN): the temporary file goes."""
    if _refuses_o_direct(tmp_path):
        pytest.skip("this file system refuses O_DIRECT")

    def einval(fd: int, data: Any) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "write", einval)
    assert write_direct(tmp_path / "chunk", b"x" * (2 * ALIGN)) is None
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
    value direct, metadata included): the same files with the same bytes, read back equal."""
    monkeypatch.setattr(direct_writes, "DIRECT_MIN_BYTES", 0)
    monkeypatch.setattr(direct_writes, "DIRECT_MIN_SPEED", 0)
    data = np.random.default_rng(0).normal(size=(rows, 128)).astype(np.float32)
    stores = {
        "zarr": zarr.storage.LocalStore(tmp_path / "zarr"),
        "direct": DirectLocalStore(tmp_path / "direct"),
    }
    for store in stores.values():
        group = zarr.open_group(store, mode="w")
        array = group.create_array("x", shape=(0, 128), chunks=(1024, 128), dtype="float32", compressors=None)
        array.resize((rows, 128))
        array[:] = data
    assert _chunk_files(tmp_path / "direct") == _chunk_files(tmp_path / "zarr")
    np.testing.assert_array_equal(zarr.open_group(tmp_path / "direct", mode="r")["x"][...], data)


class _Recorder:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        real = direct_writes.write_direct

        def recording(path: Path, data: Any) -> float | None:
            seconds = real(path, data)
            if seconds is not None:
                self.sizes.append(memoryview(data).nbytes)
            return seconds

        monkeypatch.setattr(direct_writes, "write_direct", recording)


def test_a_store_turns_to_the_page_cache_after_slow_direct_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a disk slower than DIRECT_MIN_SPEED (here: every disk), SLOW_WRITES direct writes in
    a row, then the page cache; the array is whole either way."""
    if direct_writes.O_DIRECT is None or _refuses_o_direct(tmp_path):
        pytest.skip("no O_DIRECT here")
    monkeypatch.setattr(direct_writes, "DIRECT_MIN_BYTES", 1 << 16)
    monkeypatch.setattr(direct_writes, "DIRECT_MIN_SPEED", 1 << 62)
    recorder = _Recorder(monkeypatch)
    store = DirectLocalStore(tmp_path / "a")
    array = zarr.open_group(store, mode="w").create_array(
        "x", shape=(10 * 256, 256), chunks=(256, 256), dtype="float32", compressors=None
    )
    data = np.random.default_rng(1).normal(size=(10 * 256, 256)).astype(np.float32)
    for start in range(0, len(data), 256):
        array[start : start + 256] = data[start : start + 256]
    assert len(recorder.sizes) == direct_writes.SLOW_WRITES
    assert not store.direct
    np.testing.assert_array_equal(array[...], data)


def test_a_refusing_file_system_is_written_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct_writes, "DIRECT_MIN_BYTES", 1 << 16)
    calls: list[Path] = []

    def refused(path: Path, data: Any) -> float | None:
        calls.append(path)
        return None

    monkeypatch.setattr(direct_writes, "write_direct", refused)
    store = DirectLocalStore(tmp_path / "a")
    array = zarr.open_group(store, mode="w").create_array(
        "x", shape=(4 * 256, 256), chunks=(256, 256), dtype="float32", compressors=None
    )
    data = np.arange(4 * 256 * 256, dtype=np.float32).reshape(-1, 256)
    for start in range(0, len(data), 256):
        array[start : start + 256] = data[start : start + 256]
    assert len(calls) == 1  # tried once, then never again
    assert not store.direct
    np.testing.assert_array_equal(array[...], data)


def test_a_runs_activation_chunks_are_written_directly_and_read_back_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of 8,192 x 384 rows in chunks of about 8 MiB: its whole chunks go direct (where the
    file system allows), and the stored rows are the model's outputs exactly."""
    if direct_writes.O_DIRECT is None or _refuses_o_direct(tmp_path):
        pytest.skip("no O_DIRECT here")
    monkeypatch.setattr(direct_writes, "DIRECT_MIN_SPEED", 0)
    recorder = _Recorder(monkeypatch)
    x = np.random.default_rng(2).normal(size=(8192, 384)).astype(np.float32)
    run = ee.from_arrays({"rows": x}, out=tmp_path / "run", progress=False)
    assert recorder.sizes and min(recorder.sizes) >= direct_writes.DIRECT_MIN_BYTES
    np.testing.assert_array_equal(run.layer("rows").activations[...], x)


def test_writable_local_stores_write_directly_and_readers_do_not(tmp_path: Path) -> None:
    assert isinstance(local_store(tmp_path, "w"), DirectLocalStore)
    assert isinstance(local_store(tmp_path, "r+"), DirectLocalStore)
    reader = local_store(tmp_path, "r")
    assert not isinstance(reader, DirectLocalStore) and reader.read_only
    group = as_location(tmp_path / "g").zarr_group("w")
    assert isinstance(group.store, DirectLocalStore)
