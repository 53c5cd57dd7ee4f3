"""Small Zarr v3 nodes written as files (store/zarr_files.py): the same files Zarr writes."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

import embedding_explorer as ee
from embedding_explorer.store import writer as writer_module
from embedding_explorer.store import zarr_files
from embedding_explorer.store.integrity import WRITE_ALL_CHUNKS
from embedding_explorer.store.zarr_files import (
    RowChunks,
    WriteQueue,
    create_array,
    create_groups,
    write_whole_array,
)


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes), metadata parsed so key order and
    spacing do not count."""
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        files[path.relative_to(root).as_posix()] = json.loads(data) if path.name == "zarr.json" else data
    return files


@pytest.mark.parametrize(
    "data",
    [
        np.arange(7, dtype=np.float64) / 3,
        np.random.default_rng(0).normal(size=(5, 9)),
        np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32),
        np.random.default_rng(2).normal(size=(6,)).astype(np.float16),
        np.arange(12, dtype=np.int64).reshape(3, 4) - 5,
        np.zeros((0, 4)),
        np.float64(2.5).reshape(()),
        np.arange(6, dtype=">f8"),  # big-endian values are stored little-endian, as Zarr does
    ],
    ids=["1d", "2d", "float32", "float16", "int64", "empty", "scalar", "big-endian"],
)
def test_a_whole_array_is_the_files_zarr_writes(tmp_path: Path, data: np.ndarray) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "zarr"
    zarr.open_group(ours, mode="w")
    write_whole_array(ours, "pca/l0/x", data)
    group = zarr.open_group(theirs, mode="w").require_group("pca/l0")
    group.create_array("x", data=data, chunks=data.shape, compressors=None, config=WRITE_ALL_CHUNKS)
    assert _tree(ours) == _tree(theirs)
    read = zarr.open_group(ours, mode="r")["pca/l0/x"]
    assert read.dtype == data.dtype.newbyteorder("=")
    np.testing.assert_array_equal(read[...], data)


def test_an_empty_array_is_the_metadata_zarr_writes(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "zarr"
    zarr.open_group(ours, mode="w")
    create_array(ours, "activations/00_a", (0, 5), (128, 5), "float16", ("sample", "feature"))
    zarr.open_group(theirs, mode="w").create_array(
        "activations/00_a",
        shape=(0, 5),
        chunks=(128, 5),
        dtype="float16",
        compressors=None,
        dimension_names=("sample", "feature"),
        config=WRITE_ALL_CHUNKS,
    )
    assert _tree(ours) == _tree(theirs)


def test_nodes_are_never_overwritten_and_arrays_hold_no_groups(tmp_path: Path) -> None:
    zarr.open_group(tmp_path, mode="w")
    write_whole_array(tmp_path, "pca/a", np.ones(3))
    with pytest.raises(FileExistsError, match="a Zarr node exists"):
        write_whole_array(tmp_path, "pca/a", np.zeros(3))
    with pytest.raises(FileExistsError, match="a Zarr array, not a group"):
        create_groups(tmp_path, "pca/a/inner")
    with pytest.raises(ValueError, match="not a path inside"):
        create_groups(tmp_path, "pca/../escape")
    with pytest.raises(ValueError, match="dtype 'complex128'"):
        create_array(tmp_path, "c", (2,), (2,), "complex128")
    np.testing.assert_array_equal(zarr.open_group(tmp_path, mode="r")["pca/a"][...], np.ones(3))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_row_chunks_are_the_files_zarr_writes_and_read_back(tmp_path: Path, dtype: str) -> None:
    """Whole chunks and a padded last one, byte-equal to Zarr's writes of the same rows."""
    rows = np.random.default_rng(3).normal(size=(70, 6)).astype(dtype)
    ours, theirs = tmp_path / "ours", tmp_path / "zarr"
    zarr.open_group(ours, mode="w")
    create_array(ours, "x", (0, 6), (16, 6), dtype)
    chunks = RowChunks(ours / "x", 16, 6, dtype)
    chunks.write(0, rows[:32])
    chunks.write(32, rows[32:])  # two whole chunks and 6 rows
    zarr.open_group(ours, mode="r+")["x"].resize((70, 6))
    array = zarr.open_group(theirs, mode="w").create_array(
        "x", shape=(70, 6), chunks=(16, 6), dtype=dtype, compressors=None, config=WRITE_ALL_CHUNKS
    )
    array[:] = rows
    assert _tree(ours) == _tree(theirs)
    np.testing.assert_array_equal(zarr.open_group(ours, mode="r")["x"][...], rows)
    np.testing.assert_array_equal(np.concatenate([chunks.read(i) for i in range(5)])[:70], rows)
    np.testing.assert_array_equal(chunks.read(4)[6:], 0)  # the padding: the fill value
    with pytest.raises(ValueError, match="not whole chunks"):
        chunks.write(8, rows[:8])


def test_a_missing_chunk_is_an_error_not_zeros(tmp_path: Path) -> None:
    create_array(tmp_path, "x", (32, 2), (16, 2), "float32")
    chunks = RowChunks(tmp_path / "x", 16, 2, "float32")
    chunks.write(0, np.ones((16, 2), np.float32))
    with pytest.raises(FileNotFoundError):
        chunks.read(1)


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(6, 5)
        self.b = torch.nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


@pytest.mark.parametrize(
    ("storage_dtype", "kept"), [("float32", True), ("float16", True), ("float32", False)]
)
def test_a_run_writes_the_same_arrays_as_zarr_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage_dtype: str, kept: bool
) -> None:
    """A whole run, its arrays written as files, against the same run through Zarr: the same
    files, byte for byte (rows over several chunks and a partial one, PCA, scores). Without
    rows ``kept`` in memory the scores come from the chunks read back (as files, or by Zarr)."""
    monkeypatch.setattr("embedding_explorer.store.format.CHUNK_BYTES", 4 * 5 * 256)  # 256 rows a chunk
    if not kept:
        monkeypatch.setattr(writer_module, "KEEP_BYTES", 0)
    torch.manual_seed(0)
    model, x = _Net().eval(), torch.randn(800, 6)
    data = torch.utils.data.TensorDataset(x, torch.arange(800) % 3)
    real_init = writer_module.RunWriter.__init__

    def through_zarr(self: writer_module.RunWriter, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]
        self._files = None

    opts = {"batch_size": 32, "storage_dtype": storage_dtype, "progress": False, "render": "none"}
    ee.explore(model, data, ["a", "b"], out=tmp_path / "files", **opts)
    monkeypatch.setattr(writer_module.RunWriter, "__init__", through_zarr)
    ee.explore(model, data, ["a", "b"], out=tmp_path / "zarr", **opts)
    ours, theirs = _tree(tmp_path / "files" / "arrays.zarr"), _tree(tmp_path / "zarr" / "arrays.zarr")
    assert sorted(ours) == sorted(theirs)
    assert len([k for k in ours if k.startswith("activations/") and "/c/" in k]) == 2 * 4  # 3 x 256 + 32
    assert ours == theirs
    run = ee.open_run(tmp_path / "files")
    with torch.inference_mode():
        rows = model.a(x).numpy().astype(storage_dtype).astype(np.float64)
    layer = run.layer("a")
    expected = (rows - layer.mean) @ layer.components.T  # the scores from the rows as stored
    np.testing.assert_allclose(layer.scores, expected, rtol=1e-4, atol=1e-4)


def test_queued_writes_land_in_order_and_errors_reach_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partial chunk then the same chunk whole (a checkpoint, then more rows): the whole one
    is what stays; a failed write is raised by the next write and by wait, not lost."""
    queue = WriteQueue()
    create_array(tmp_path, "x", (0, 3), (8, 3), "float32")
    chunks = RowChunks(tmp_path / "x", 8, 3, "float32", queue)
    rows = np.arange(24, dtype=np.float32).reshape(8, 3)
    chunks.write(0, rows[:5])
    chunks.write(0, rows)
    chunks.wait()
    np.testing.assert_array_equal(chunks.read(0), rows)

    def broken(path: Path, data: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zarr_files, "write_value", broken)
    chunks.write(8, rows)
    with pytest.raises(OSError, match="No space left"):
        chunks.write(16, rows)
    chunks.write(16, rows)
    with pytest.raises(OSError, match="No space left"):
        chunks.wait()
    chunks.wait()  # reported once by the array
    queue.close()
    with pytest.raises(OSError, match="No space left"):
        queue.check()  # and kept by the queue, for the commit


def test_a_failed_last_chunk_fails_the_run_before_it_is_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost chunk would read as zeros: its failed write stops the run."""

    def full_disk_for_chunk_1(path: Path) -> None:
        if path.parent.name == "1":
            raise OSError(28, "No space left on device")

    _before_each_write(monkeypatch, full_disk_for_chunk_1)
    writer = writer_module.RunWriter(tmp_path / "r", ["a"])
    writer.layout({"a": 4}, rows_per_chunk=256)
    writer.append_activations("a", np.ones((300, 4), np.float32))
    with pytest.raises(OSError, match="No space left"):
        writer.finish_activations()
    with pytest.raises(OSError, match="No space left"):
        writer.commit({"format": 1})
    assert not (tmp_path / "r").exists()
    writer.abort()


def test_a_forked_child_does_not_wait_for_its_parents_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    _before_each_write(monkeypatch, lambda _: release.wait(10))
    queue = WriteQueue()
    create_array(tmp_path, "x", (0, 2), (4, 2), "float32")
    chunks = RowChunks(tmp_path / "x", 4, 2, "float32", queue)
    chunks.write(0, np.ones((4, 2), np.float32))  # held in the parent's thread
    pid = os.fork()
    if pid == 0:  # the child: its own writes, on its own thread
        try:
            chunks.wait()
            chunks.write(4, np.zeros((4, 2), np.float32))
            os._exit(0)
        finally:
            os._exit(1)
    deadline = time.monotonic() + 20
    while (done := os.waitpid(pid, os.WNOHANG)) == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    if done == (0, 0):
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert done[1] == 0, "the child hung or failed"
    chunks.wait()
    queue.close()


def test_a_writer_closed_or_aborted_waits_for_its_queued_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is written after abort removed the staging folder, however slow the disk."""
    started = threading.Event()

    def slow(_: Path) -> None:
        started.set()
        time.sleep(0.3)

    _before_each_write(monkeypatch, slow)
    monkeypatch.setattr("embedding_explorer.store.format.CHUNK_BYTES", 4 * 4 * 256)
    writer = writer_module.RunWriter(tmp_path / "r", ["a"])
    writer.layout({"a": 4}, rows_per_chunk=256)
    writer.append_activations("a", np.ones((256, 4), np.float32))  # a whole chunk: queued
    assert started.wait(5)
    writer.abort()
    time.sleep(0.4)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def _before_each_write(monkeypatch: pytest.MonkeyPatch, before: Callable[[Path], object]) -> None:
    """Every chunk file written by zarr_files only after ``before(path)`` (which may wait or raise)."""
    real = zarr_files.write_value

    def write(path: Path, data: object) -> None:
        before(path)
        real(path, data)

    monkeypatch.setattr(zarr_files, "write_value", write)
