"""Small Zarr v3 nodes of a local run written as their files, without Zarr's machinery.

Zarr's ``create_array`` costs 3-4 ms on the benchmark machine: it checks that nothing exists at
the array and at each parent, then writes every file through its event loop and a worker thread.
A run creates six arrays a layer (its rows, the four PCA arrays, the scores), so a 4-layer CNN
over 10,000 images spent 75 ms of its 0.35 s of overhead there (``README``, Performance). The
files themselves are few and fixed by the Zarr v3 specification: a node's ``zarr.json`` and, for
an array written whole, its one chunk (C order, little-endian: the ``bytes`` codec, no
compressor). Written here they cost a tenth of that; Zarr reads them like its own (the tests
compare both trees, file by file). Each file is written under a temporary name and renamed into
place, as Zarr's local store does.

Only what a run writes goes this way: float and integer arrays of one regular chunk grid,
fill value 0, in a folder of this machine. Everything else (object stores, resumed runs) is left
to Zarr.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..direct_writes import read_large, write_value

METADATA = "zarr.json"
ARRAY_DTYPES = ("float64", "float32", "float16", "int64", "int32")  # Zarr v3's names, numpy's too
_GROUP = {"attributes": {}, "zarr_format": 3, "node_type": "group"}


def array_metadata(
    shape: Sequence[int],
    chunks: Sequence[int],
    dtype: str,
    dimension_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """An array's ``zarr.json`` as Zarr writes it: a regular chunk grid, ``/``-separated chunk
    keys, fill value 0, the ``bytes`` codec (little-endian) and nothing else."""
    if dtype not in ARRAY_DTYPES:
        raise ValueError(
            f"dtype {dtype!r}: Zarr arrays written directly are one of {', '.join(ARRAY_DTYPES)}"
        )
    if len(chunks) != len(shape):
        raise ValueError(f"chunks {tuple(chunks)} do not match shape {tuple(shape)}")
    metadata: dict[str, Any] = {
        "shape": [int(n) for n in shape],
        "data_type": dtype,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [int(n) for n in chunks]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0.0 if dtype.startswith("float") else 0,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "attributes": {},
    }
    if dimension_names is not None:
        metadata["dimension_names"] = list(dimension_names)
    return {**metadata, "zarr_format": 3, "node_type": "array", "storage_transformers": []}


def create_groups(root: Path, path: str) -> None:
    """The groups along ``path`` under the hierarchy at ``root`` (``"pca/l0"``: ``pca`` and
    ``pca/l0``), each given its ``zarr.json`` where it has none; an array on the way is refused."""
    folder = root
    for part in _parts(path):
        folder = folder / part
        node = _node_type(folder)
        if node == "array":
            raise FileExistsError(f"{folder}: a Zarr array, not a group")
        if node is None:
            write_value(folder / METADATA, _json(_GROUP))


def create_array(
    root: Path,
    path: str,
    shape: Sequence[int],
    chunks: Sequence[int],
    dtype: str,
    dimension_names: Sequence[str] | None = None,
) -> None:
    """An empty array at ``path`` (its metadata only; its parents made groups where needed).
    Refuses a path where a node exists, as Zarr does without ``overwrite``."""
    metadata = _json(array_metadata(shape, chunks, dtype, dimension_names))
    parent, _, _ = path.rpartition("/")
    create_groups(root, parent)
    folder = root / path
    if _node_type(folder) is not None:
        raise FileExistsError(f"{folder}: a Zarr node exists there")
    write_value(folder / METADATA, metadata)


def write_whole_array(root: Path, path: str, data: np.ndarray) -> None:
    """``data`` as an array of one chunk at ``path`` (refused where a node exists)."""
    values = np.asarray(data, order="C")  # (ascontiguousarray would make a scalar 1-d)
    dtype = values.dtype.newbyteorder("=").name
    create_array(root, path, values.shape, values.shape, dtype)
    if values.size:  # a chunk of zero elements is never written (a dimension of length 0: no chunks)
        little = values.astype(values.dtype.newbyteorder("<"), copy=False)
        key = "/".join(["c", *["0"] * values.ndim])  # the one chunk's key ("c" for a scalar)
        write_value(root / path / key, little.reshape(-1).view(np.uint8))


class WriteQueue:
    """Chunk writes done in order on one background thread, so that the caller goes on to the
    next forward pass while the disk takes them: a direct write of an 8 MiB chunk waits 3-6 ms
    for the disk, with the GIL released. One per run writer. The first error of any write is
    kept (:meth:`check`), besides being raised to the array that handed it over. A forked child
    (a DataLoader's worker) that writes gets a thread of its own."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    def submit(self, work: Callable[[], None]) -> Future[None]:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool, self._pid = ThreadPoolExecutor(1, thread_name_prefix="ee-chunks"), os.getpid()
                self.error = None
            return self._pool.submit(self._noted, work)

    def _noted(self, work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as e:
            self.error = self.error or e
            raise

    def close(self) -> None:
        """Wait for the writes handed over, and let the thread go."""
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.shutdown(wait=True)
            self._pool = None

    def check(self) -> None:
        """Raise the first error of a write, if one failed (before a run is committed)."""
        if self.error is not None:
            raise self.error


class RowChunks:
    """The chunks of a ``(rows, width)`` array's rows, full width (keys ``c/<i>/0``), written and
    read as files: Zarr's array writes cost 2-3 ms of its own a chunk on top of the bytes, and a
    resize of the metadata whenever the rows grow. Written here, a chunk's bytes go straight to
    disk (:func:`~embedding_explorer.direct_writes.write_value`), the shape is the caller's to set
    once (with Zarr), and a partial last chunk is padded with the fill value (zeros) to the
    whole chunk, as Zarr stores an edge chunk.

    With a ``queue`` the writes go to its thread: :meth:`write` returns at once (after the
    previous block's writes, so one block at most is in flight for an array), and :meth:`wait`
    waits for them, raising the error of a failed one; a failed write also raises at the next
    :meth:`write`. The caller must not change a block it handed over."""

    def __init__(
        self, folder: Path, rows: int, width: int, dtype: str, queue: WriteQueue | None = None
    ) -> None:
        self.folder, self.rows, self.width = folder, rows, width
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.queue = queue
        self._in_flight: Future[None] | None = None
        self._pid = os.getpid()  # whose thread runs _in_flight

    def write(self, first_row: int, block: np.ndarray) -> None:
        """``block``'s rows from ``first_row`` (the start of a chunk) on, chunk by chunk."""
        if first_row % self.rows or block.ndim != 2 or block.shape[1] != self.width:
            raise ValueError(f"rows {first_row}.. of shape {block.shape}: not whole chunks of {self.folder}")
        if self.queue is None:
            self._write(first_row, block)
            return
        self.wait()
        self._in_flight = self.queue.submit(functools.partial(self._write, first_row, block))
        self._pid = os.getpid()

    def wait(self) -> None:
        """Until every block handed to :meth:`write` is on disk (the error of a failed write).
        A forked child does not wait for its parent's writes (no thread of its would finish them)."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None and self._pid == os.getpid():
            in_flight.result()

    def _write(self, first_row: int, block: np.ndarray) -> None:
        for start in range(0, len(block), self.rows):
            piece = block[start : start + self.rows]
            if len(piece) < self.rows:
                whole = np.zeros((self.rows, self.width), dtype=self.dtype)
                whole[: len(piece)] = piece
                piece = whole
            values = np.ascontiguousarray(piece, dtype=self.dtype)
            write_value(self._path((first_row + start) // self.rows), values)

    def read(self, index: int) -> np.ndarray:
        """Chunk ``index``, whole (the rows past the array's end are the padding)."""
        self.wait()
        path = self._path(index)
        data = read_large(path)
        if data is None:
            data = np.fromfile(path, dtype=np.uint8)
        return data.view(self.dtype).reshape(self.rows, self.width)

    def _path(self, index: int) -> Path:
        return self.folder / "c" / str(index) / "0"


def _parts(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"{path!r}: not a path inside a Zarr hierarchy")
    return parts


def _node_type(folder: Path) -> str | None:
    """``"array"``, ``"group"``, or None where ``folder`` holds no Zarr node."""
    try:
        with open(folder / METADATA, "rb") as f:
            return str(json.load(f).get("node_type"))
    except FileNotFoundError:
        return None


def _json(document: dict[str, Any]) -> bytes:
    """A metadata document as Zarr writes it (two-space indents)."""
    return json.dumps(document, indent=2).encode()
