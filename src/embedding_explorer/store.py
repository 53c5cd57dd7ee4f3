"""The run directory: how a run is laid out on disk, written, committed and read back.

::

    RUN/
      manifest.json        written last, atomically: the commit marker of a finished run
      arrays.zarr/         Zarr v3: activations/<key> (N, D), scores/<key> (N, k), pca/<key>/...
      samples.parquet      sample_id, label, metadata columns
      renderings.bin       per-sample thumbnails (PNG) or texts, packed end to end
      renderings.idx.npy   int64 offsets (N + 1) into renderings.bin

A run is built in a hidden staging folder beside ``RUN`` and moved into place only when its
manifest is written, so an interrupted extraction never leaves a folder that opens as finished.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import zarr

from .exceptions import EmbeddingExplorerError, IncompleteRunError
from .stats import PCAResult

MANIFEST = "manifest.json"
ARRAYS = "arrays.zarr"
SAMPLES = "samples.parquet"
RENDERINGS = "renderings.bin"
RENDERING_OFFSETS = "renderings.idx.npy"
FORMAT = "embedding-explorer/run"
FORMAT_VERSION = 1
CHUNK_BYTES = 8 << 20  # target size of one activation chunk
STORAGE_DTYPES = ("float32", "float16")


def layer_keys(names: Sequence[str]) -> dict[str, str]:
    """A file-safe, unique storage key per layer name (``block1.0:1`` -> ``03_block1.0_1``)."""
    return {name: f"{i:02d}_{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}" for i, name in enumerate(names)}


def chunk_rows(dim: int) -> int:
    """Rows per activation chunk: about ``CHUNK_BYTES`` of float32."""
    return max(256, min(65536, CHUNK_BYTES // (4 * max(dim, 1))))


def staging_path(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


class RowWriter:
    """Appends rows to a Zarr array in whole chunks, so writes never rewrite a chunk (until
    :meth:`flush`, which also writes the partial chunk and keeps it for the next write)."""

    def __init__(self, array: Any, n_written: int = 0) -> None:
        self.array = array
        self.rows = int(array.chunks[0])
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self.n_written = 0
        if n_written:
            self.restart(n_written)

    def append(self, rows: np.ndarray) -> None:
        self._pending.append(rows)
        self._pending_rows += len(rows)
        if self._pending_rows >= self.rows:
            block = np.concatenate(self._pending)
            whole = (len(block) // self.rows) * self.rows
            self._write(block[:whole])
            rest = block[whole:]
            self._pending, self._pending_rows = ([rest] if len(rest) else []), len(rest)

    def close(self) -> None:
        if self._pending_rows:
            self._write(np.concatenate(self._pending))
        self._pending, self._pending_rows = [], 0

    def flush(self) -> None:
        """Store the rows still pending too (a checkpoint): they stay pending, so the chunk
        they start is rewritten whole once it fills."""
        if self._pending_rows:
            block = np.concatenate(self._pending)
            self._pending = [block]
            end = self.n_written + len(block)
            self.array.resize((end, *self.array.shape[1:]))
            self.array[self.n_written : end] = block

    def restart(self, n_rows: int) -> None:
        """Continue after the first ``n_rows`` rows (a resumed run): later rows are dropped and
        the partial chunk at the end is read back as pending."""
        self.array.resize((n_rows, *self.array.shape[1:]))
        self.n_written = (n_rows // self.rows) * self.rows
        tail = np.asarray(self.array[self.n_written : n_rows])
        self._pending, self._pending_rows = ([tail] if len(tail) else []), len(tail)

    def _write(self, block: np.ndarray) -> None:
        start = self.n_written
        if self.array.shape[0] < start + len(block):
            self.array.resize((start + len(block), *self.array.shape[1:]))
        self.array[start : start + len(block)] = block
        self.n_written += len(block)


class RunWriter:
    """Builds one run in its staging folder; :meth:`commit` moves it into place."""

    def __init__(
        self, out: Path, layers: Sequence[str], *, storage_dtype: str = "float32", resume: bool = False
    ) -> None:
        self.out = out
        self.staging = staging_path(out)
        check_replaceable(out)
        if storage_dtype not in STORAGE_DTYPES:
            raise ValueError(f"storage_dtype={storage_dtype!r}: use one of {', '.join(STORAGE_DTYPES)}")
        self.storage_dtype = storage_dtype
        self.resumed = resume and (self.staging / ARRAYS).is_dir()
        if not self.resumed:
            if self.staging.exists():
                shutil.rmtree(self.staging)
            self.staging.mkdir(parents=True)
        self.keys = layer_keys(layers)
        try:
            self.root = zarr.open_group(str(self.staging / ARRAYS), mode="r+" if self.resumed else "w")
        except BaseException:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise
        self.rows_per_chunk: int | None = None
        self._writers: dict[str, RowWriter] = {}
        self._render_file: BinaryIO | None = None
        self._render_sizes: list[np.ndarray] = []  # bytes per sample, one array per batch
        self._render_bytes = 0
        self._render_segment = 0  # how many of _render_sizes a checkpoint has saved

    # activations -----------------------------------------------------------------------
    def layout(self, dims: Mapping[str, int], rows_per_chunk: int, n_rows: int = 0) -> None:
        """Create (or, resuming, open) every layer's array: ``n_rows`` rows to start with,
        chunks of ``rows_per_chunk`` rows, the same for every layer."""
        self.rows_per_chunk = rows_per_chunk
        for layer, dim in dims.items():
            path = f"activations/{self.keys[layer]}"
            if self.resumed and path in self.root:
                array: Any = self.root[path]
                if array.shape[1] != dim or int(array.chunks[0]) != rows_per_chunk:
                    raise EmbeddingExplorerError(f"layer {layer!r} changed shape since the run stopped")
                if array.shape[0] < n_rows:
                    array.resize((n_rows, dim))
            else:
                array = self.root.create_array(
                    path,
                    shape=(n_rows, dim),
                    chunks=(rows_per_chunk, dim),
                    dtype=self.storage_dtype,
                    compressors=None,
                    dimension_names=("sample", "feature"),
                )
            self._writers[layer] = RowWriter(array)

    def append_activations(self, layer: str, rows: np.ndarray) -> None:
        writer = self._writers.get(layer)
        if writer is None:
            dim = int(rows.shape[1])
            self.layout({layer: dim}, self.rows_per_chunk or chunk_rows(dim))
            writer = self._writers[layer]
        writer.append(np.ascontiguousarray(rows, dtype=self.storage_dtype))

    def finish_activations(self) -> None:
        for writer in self._writers.values():
            writer.close()

    def activations(self, layer: str) -> Any:
        return self._writers[layer].array

    def activation_path(self, layer: str) -> str:
        """Where a layer's array lives, for another process to open it."""
        return str(self.staging / ARRAYS / "activations" / self.keys[layer])

    # checkpoints -------------------------------------------------------------------------
    def flush(self) -> tuple[int, np.ndarray]:
        """Make everything written so far durable (a checkpoint's first step).

        Returns the renderings' total bytes and the sizes appended since the last flush."""
        for writer in self._writers.values():
            writer.flush()
        if self._render_file is not None:
            self._render_file.flush()
            os.fsync(self._render_file.fileno())
        new = self._render_sizes[self._render_segment :]
        self._render_segment = len(self._render_sizes)
        sizes = np.concatenate(new) if new else np.zeros(0, dtype=np.int64)
        return self._render_bytes, sizes

    def can_resume(self, dims: Mapping[str, int], n_rows: int, render_bytes: int) -> bool:
        """Whether the staging folder still holds what a checkpoint says was written."""
        for layer, dim in dims.items():
            path = f"activations/{self.keys.get(layer, '')}"
            if path not in self.root:
                return False
            array: Any = self.root[path]
            if array.shape[0] < n_rows or array.shape[1] != dim:
                return False
        renderings = self.staging / RENDERINGS
        return render_bytes == 0 or (renderings.exists() and renderings.stat().st_size >= render_bytes)

    def restore(self, n_rows: int, render_bytes: int, render_sizes: np.ndarray | None) -> None:
        """Continue a stopped run after its first ``n_rows`` samples (see :mod:`resume`)."""
        for writer in self._writers.values():
            writer.restart(n_rows)
        path = self.staging / RENDERINGS
        if render_sizes is not None and len(render_sizes):
            with open(path, "r+b") as f:
                f.truncate(render_bytes)
            self._render_file = open(path, "ab")  # noqa: SIM115 - closed in finish
            self._render_sizes = [np.asarray(render_sizes, dtype=np.int64)]
            self._render_segment, self._render_bytes = 1, render_bytes
        elif path.exists():
            path.unlink()

    # PCA and scores --------------------------------------------------------------------
    def write_pca(self, layer: str, pca: PCAResult) -> None:
        group = self.root.require_group(f"pca/{self.keys[layer]}")
        for name in ("mean", "components", "explained_variance", "explained_variance_ratio"):
            value = np.asarray(getattr(pca, name), dtype=np.float64)
            if name in group:  # a resumed run that stopped after its PCA
                del group[name]
            group.create_array(name, data=value, chunks=value.shape, compressors=None)

    def scores_array(self, layer: str, n_samples: int, k: int, rows: int | None = None) -> Any:
        """A layer's (N, k) scores; ``rows`` per chunk (aligned with shards written in parallel)."""
        path = f"scores/{self.keys[layer]}"
        if path in self.root:  # a resumed run that stopped while writing scores
            del self.root[path]
        return self.root.create_array(
            path,
            shape=(n_samples, k),
            chunks=(rows or min(max(n_samples, 1), 1 << 18), k),
            dtype="float32",
            compressors=None,
            dimension_names=("sample", "component"),
        )

    # samples ---------------------------------------------------------------------------
    def append_renderings(self, items: Sequence[bytes]) -> None:
        if self._render_file is None:
            self._render_file = open(self.staging / RENDERINGS, "wb")  # noqa: SIM115 - closed in finish
        sizes = np.fromiter((len(item) for item in items), dtype=np.int64, count=len(items))
        self._render_file.write(b"".join(items))
        self._render_sizes.append(sizes)
        self._render_bytes += int(sizes.sum())

    def finish_renderings(self) -> int:
        """Close the packed renderings; returns how many samples have one."""
        if self._render_file is None:
            return 0
        self._render_file.close()
        sizes = np.concatenate(self._render_sizes) if self._render_sizes else np.zeros(0, np.int64)
        offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        np.save(self.staging / RENDERING_OFFSETS, offsets)
        return len(sizes)

    def write_samples(self, table: pd.DataFrame) -> None:
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), self.staging / SAMPLES)

    # commit ----------------------------------------------------------------------------
    def commit(self, manifest: dict[str, Any]) -> Path:
        """Write the manifest last (atomically), then swap the staging folder into place."""
        write_json_atomic(self.staging / MANIFEST, manifest)
        old = self.out.parent / f".{self.out.name}.old"
        if old.exists():
            shutil.rmtree(old)
        if self.out.exists():
            os.replace(self.out, old)
        os.replace(self.staging, self.out)
        if old.exists():
            shutil.rmtree(old)
        return self.out

    def abort(self) -> None:
        """Remove the staging folder after an error: nothing half-written is left."""
        self.close()
        shutil.rmtree(self.staging, ignore_errors=True)

    def close(self) -> None:
        """Close open files, keeping the staging folder (a checkpointed run resumes from it)."""
        if self._render_file is not None and not self._render_file.closed:
            self._render_file.close()


def check_replaceable(out: Path) -> None:
    """Refuse to overwrite anything but an empty folder or a finished run of ours."""
    if not out.exists():
        return
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
        return
    try:
        is_run = out.is_dir() and json.loads((out / MANIFEST).read_text()).get("format") == FORMAT
    except (OSError, ValueError):
        is_run = False
    if not is_run:
        raise EmbeddingExplorerError(
            f"out={str(out)!r} exists and is not a run directory; choose another path"
        )


def write_json_atomic(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2, default=_json_default)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a finished run, or a clear error for anything else."""
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        if staging_path(path).exists() or (path.exists() and path.is_dir()):
            raise IncompleteRunError(
                f"{str(path)!r} has no {MANIFEST}: its extraction did not finish; run explore again"
            )
        raise FileNotFoundError(f"no run at {str(path)!r}")
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise EmbeddingExplorerError(f"{str(manifest_path)!r} is not an embedding-explorer manifest")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise EmbeddingExplorerError(
            f"run {str(path)!r} has format version {manifest['format_version']}; this version reads "
            f"up to {FORMAT_VERSION}: upgrade embedding-explorer"
        )
    return manifest


class RunReader:
    """Read access to a finished run's files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest = read_manifest(path)
        self.root = zarr.open_group(str(path / ARRAYS), mode="r")
        self._offsets: np.ndarray | None = None

    def array(self, kind: str, key: str) -> Any:
        return self.root[f"{kind}/{key}"]

    def pca_arrays(self, key: str) -> dict[str, np.ndarray]:
        group: Any = self.root[f"pca/{key}"]
        return {name: np.asarray(group[name][...]) for name in group.array_keys()}

    def samples(self) -> pd.DataFrame:
        return pq.read_table(self.path / SAMPLES).to_pandas()

    def rendering(self, sample_id: int) -> bytes | None:
        """The packed rendering of one sample, read with one seek."""
        offsets = self.rendering_offsets()
        if offsets is None:
            return None
        start, end = int(offsets[sample_id]), int(offsets[sample_id + 1])
        with open(self.path / RENDERINGS, "rb") as f:
            f.seek(start)
            return f.read(end - start)

    def rendering_offsets(self) -> np.ndarray | None:
        if self._offsets is None and (self.path / RENDERING_OFFSETS).exists():
            self._offsets = np.load(self.path / RENDERING_OFFSETS)
        return self._offsets
