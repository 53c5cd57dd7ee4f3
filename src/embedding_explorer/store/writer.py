"""Writing a run: rows appended in whole chunks, PCA, scores, samples, renderings, the commit."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..exceptions import EmbeddingExplorerError
from ..locations import Location, as_location
from ..pca import PCAResult
from .format import (
    ARRAYS,
    MANIFEST,
    PARTIAL,
    RENDER_PART,
    RENDERING_OFFSETS,
    RENDERING_SAMPLES,
    RENDERINGS,
    SAMPLES,
    STORAGE_DTYPES,
    check_replaceable,
    chunk_rows,
    dictionary_columns,
    has_manifest,
    layer_keys,
    remove_run,
    render_part,
    score_rows,
    staging_of,
    write_json_atomic,
)
from .integrity import FILES, WRITE_ALL_CHUNKS, inventory, missing_chunk
from .zarr_files import RowChunks, WriteQueue, create_array, write_whole_array

log = logging.getLogger(__name__)

KEEP_BYTES = 64 << 20  # stored rows kept in memory for the scores, shared by a run's layers


class RowWriter:
    """Appends rows to a Zarr array in whole chunks, so writes never rewrite a chunk (until
    :meth:`flush`, which also writes the partial chunk and keeps it for the next write).

    Rows are copied into the chunk they fill (one array per chunk, made at its first row), so
    no batch's rows are held: a list of them, each a small block the forward pass allocated
    between its large ones and left in glibc's heap until the chunk was full, split the large
    free blocks the next forward pass would reuse, the heap grew at every batch and its new
    pages faulted in (the issue CNN: 140,000-320,000 page faults a run in the forward passes,
    against 30,000-47,000 in the bare loop; 47,000-81,000 with a chunk array).

    With ``keep_bytes`` it also keeps the rows it writes in memory while they fit in that many
    bytes, so the scores, computed once extraction is over, need not read them back from the
    store (:meth:`stored`); past that it keeps none. With ``files`` (a fresh local run) the
    chunks are written and read as files (:class:`.zarr_files.RowChunks`) and the array's shape
    is set once the rows are stored (:meth:`close`, :meth:`flush`), not at every write."""

    def __init__(
        self, array: Any, n_written: int = 0, *, keep_bytes: int = 0, files: RowChunks | None = None
    ) -> None:
        self.array = array
        self.files = files
        self.rows = int(array.chunks[0])
        self._chunk: np.ndarray | None = None  # the chunk being filled (rows, D), storage dtype
        self._pending_rows = 0  # its rows filled so far
        self.n_written = 0
        self._kept: list[np.ndarray] | None = [] if keep_bytes > 0 else None
        self._keep_bytes = keep_bytes
        if n_written:
            self.restart(n_written)

    def append(self, rows: np.ndarray) -> None:
        """Copy ``rows`` (converted to the array's dtype) after the last ones; each chunk that
        fills is written."""
        done = 0
        while done < len(rows):
            if self._chunk is None:
                self._chunk = np.empty((self.rows, *self.array.shape[1:]), dtype=self.array.dtype)
            take = min(len(rows) - done, self.rows - self._pending_rows)
            self._chunk[self._pending_rows : self._pending_rows + take] = rows[done : done + take]
            self._pending_rows += take
            done += take
            if self._pending_rows == self.rows:
                chunk, self._chunk, self._pending_rows = self._chunk, None, 0
                self._write(chunk)  # a new chunk array next: this one may still be being written

    @property
    def _pending(self) -> np.ndarray | None:
        """The rows appended since the last whole chunk (None: none)."""
        return None if self._chunk is None or not self._pending_rows else self._chunk[: self._pending_rows]

    def close(self) -> None:
        pending = self._pending
        if pending is not None:  # a copy: kept in memory, a view would hold the whole chunk
            self._write(pending.copy())
        self._chunk, self._pending_rows = None, 0
        self._cover(self.n_written)

    def flush(self) -> None:
        """Store the rows still pending too (a checkpoint): they stay pending, so the chunk
        they start is rewritten whole once it fills (rows already stored never change: later
        ones only go after them)."""
        pending = self._pending
        if pending is not None:
            self._store(self.n_written, pending)
        self._cover(self.n_written + self._pending_rows)

    def _store(self, start: int, block: np.ndarray) -> None:
        """``block`` at rows ``start ..``: as files (the shape is set later, :meth:`_cover`), or
        through Zarr, the array grown first where it is shorter."""
        if self.files is not None:
            self.files.write(start, block)
            return
        if self.array.shape[0] < start + len(block):
            self.array.resize((start + len(block), *self.array.shape[1:]))
        self._all_chunks()[start : start + len(block)] = block

    def _cover(self, n_rows: int) -> None:
        """The array's shape grown to ``n_rows`` rows where they were written as files (once
        they are on disk)."""
        if self.files is not None:
            self.files.wait()
            if self.array.shape[0] < n_rows:
                self.array.resize((n_rows, *self.array.shape[1:]))

    def restart(self, n_rows: int) -> None:
        """Continue after the first ``n_rows`` rows (a resumed run): later rows are dropped and
        the partial chunk at the end is read back as pending."""
        self.array.resize((n_rows, *self.array.shape[1:]))
        self._kept = None  # the rows before n_rows are in the store only
        self.n_written = (n_rows // self.rows) * self.rows
        self._chunk, self._pending_rows = None, 0
        self.append(np.asarray(self.array[self.n_written : n_rows]))

    def _write(self, block: np.ndarray) -> None:
        self._store(self.n_written, block)
        self.n_written += len(block)
        if self._kept is not None:
            kept = sum(b.nbytes for b in self._kept) + block.nbytes  # whole arrays each (not views)
            self._kept = [*self._kept, block] if kept <= self._keep_bytes else None

    def forget(self) -> None:
        """Keep no rows in memory (rows were written to the store by another way)."""
        self._kept = None

    def stored(self, n_rows: int) -> Iterator[np.ndarray]:
        """The first ``n_rows`` rows as stored, in consecutive blocks: from memory where every
        row written is kept, else read back from the store one chunk at a time."""
        if self._kept is not None and sum(len(b) for b in self._kept) == self.n_written >= n_rows:
            done = 0
            for block in self._kept:
                if done >= n_rows:
                    return
                yield block[: n_rows - done]
                done += len(block)
            return
        if self.files is not None:  # the rows stored: appended here, or put in place (put_activations)
            end = min(n_rows, max(self.n_written, self.array.shape[0]))
            for start in range(0, end, self.rows):
                yield self.files.read(start // self.rows)[: min(self.rows, end - start)]
            return
        for start in range(0, n_rows, self.rows):
            yield np.asarray(self.array[start : min(start + self.rows, n_rows)])

    def _all_chunks(self) -> Any:
        """The array, writing every chunk, even one of zeros (so a lost chunk can be told from
        one never written, see :func:`.integrity.missing_chunk`)."""
        return self.array.with_config(WRITE_ALL_CHUNKS)


class RunWriter:
    """Builds one run: locally in its staging folder, which :meth:`commit` moves into place; on
    any other file system in place, where :meth:`commit` writes the manifest last."""

    def __init__(
        self,
        out: str | Path | Location,
        layers: Sequence[str],
        *,
        storage_dtype: str = "float32",
        resume: bool = False,
    ) -> None:
        self.out = as_location(out)
        self.in_place = not self.out.is_local
        self.staging = staging_of(self.out)
        check_replaceable(self.out)
        if storage_dtype not in STORAGE_DTYPES:
            raise ValueError(f"storage_dtype={storage_dtype!r}: use one of {', '.join(STORAGE_DTYPES)}")
        self.storage_dtype = storage_dtype
        self.resumed = (
            resume and (self.staging / ARRAYS).is_dir() and not (self.in_place and has_manifest(self.out))
        )
        if not self.resumed:
            if self.in_place:
                remove_run(self.out)  # leaves the prefix marked .partial.json
            else:
                self.staging.remove_tree()
                self.staging.mkdir()
        self.keys = layer_keys(layers)
        try:
            self.root = (self.staging / ARRAYS).zarr_group("r+" if self.resumed else "w")
        except BaseException:
            self.staging.remove_tree()
            raise
        # a fresh local run's new arrays are written as their files (:mod:`.zarr_files`)
        self._files = None if self.resumed else (self.staging / ARRAYS).local
        self._queue = WriteQueue()  # the row chunks' writes, beside the forward passes
        self.rows_per_chunk: int | None = None
        self._writers: dict[str, RowWriter] = {}
        self._render_file: IO[bytes] | None = None
        self._render_sizes: list[np.ndarray] = []  # bytes per rendering, one array per batch
        self._render_counts: list[np.ndarray | None] = []  # samples per rendering (None: one each)
        self._render_bytes = 0
        self._render_segment = 0  # how many of _render_sizes a checkpoint has saved
        self._render_parts: list[tuple[str, int]] = []  # in place: closed objects and their bytes
        self._part_bytes = 0  # in place: bytes in the open object

    @property
    def storage_options(self) -> dict[str, Any]:
        """What a Dask worker needs, besides a URL, to open the run's arrays."""
        return self.out.storage_options

    # activations -----------------------------------------------------------------------
    def layout(self, dims: Mapping[str, int], rows_per_chunk: int, n_rows: int = 0) -> None:
        """Create (or, resuming, open) every layer's array: ``n_rows`` rows to start with,
        chunks of ``rows_per_chunk`` rows, the same for every layer."""
        self.rows_per_chunk = rows_per_chunk
        total = sum(dims.values()) or 1
        for layer, dim in dims.items():
            path = f"activations/{self.keys[layer]}"
            if self.resumed and path in self.root:
                array: Any = self.root[path]
                if array.shape[1] != dim or int(array.chunks[0]) != rows_per_chunk:
                    raise EmbeddingExplorerError(f"layer {layer!r} changed shape since the run stopped")
                if array.shape[0] < n_rows:
                    array.resize((n_rows, dim))
            else:
                array = self._new_array(
                    path, (n_rows, dim), (rows_per_chunk, dim), self.storage_dtype, ("sample", "feature")
                )
            keep = 0 if self.resumed else KEEP_BYTES * dim // total
            files = None
            if self._files is not None:
                files = RowChunks(self._files / path, rows_per_chunk, dim, self.storage_dtype, self._queue)
            self._writers[layer] = RowWriter(array, keep_bytes=keep, files=files)

    def append_activations(self, layer: str, rows: np.ndarray) -> None:
        writer = self._writers.get(layer)
        if writer is None:
            dim = int(rows.shape[1])
            self.layout({layer: dim}, self.rows_per_chunk or chunk_rows(dim))
            writer = self._writers[layer]
        if rows.ndim != 2 or rows.shape[1] != writer.array.shape[1]:
            raise EmbeddingExplorerError(
                f"layer {layer!r} gave rows of shape {tuple(rows.shape)}; "
                f"its earlier batches had {writer.array.shape[1]} features"
            )
        writer.append(rows)

    def put_activations(self, layer: str, start: int, rows: np.ndarray) -> None:
        """Write ``rows`` at samples ``start ..`` of a laid-out layer, in place: a Dask shard's
        rows in the chunks it shares with a neighbour, which only the driver writes."""
        writer = self._writers[layer]
        writer.forget()
        if writer.files is not None:
            writer.files.wait()  # Zarr reads a chunk it writes in part: no write of ours under way
        array = writer.array.with_config(WRITE_ALL_CHUNKS)
        array[start : start + len(rows)] = np.ascontiguousarray(rows, dtype=self.storage_dtype)

    def finish_activations(self) -> None:
        for writer in self._writers.values():
            writer.close()

    def activations(self, layer: str) -> Any:
        return self._writers[layer].array

    def forget_rows(self, layer: str) -> None:
        """Let go of the rows a layer kept in memory (its scores are written)."""
        self._writers[layer].forget()

    def stored_rows(self, layer: str, n_rows: int) -> Iterator[np.ndarray]:
        """A layer's first ``n_rows`` rows as stored, in consecutive blocks (:meth:`RowWriter.stored`)."""
        return self._writers[layer].stored(n_rows)

    def activation_path(self, layer: str) -> str:
        """Where a layer's array lives (a path or a URL), for another process to open it."""
        return (self.staging / ARRAYS / "activations" / self.keys[layer]).url

    # checkpoints -------------------------------------------------------------------------
    @property
    def render_bytes(self) -> int:
        """The bytes of renderings appended so far."""
        return self._render_bytes

    def flush(self, *, durable: bool = True) -> tuple[int, np.ndarray, np.ndarray | None]:
        """Make everything written so far durable (a checkpoint's first step); with
        ``durable=False`` (a spill between checkpoints) only take the renderings' bookkeeping.

        Returns the renderings' total bytes, the sizes appended since the last flush and, where
        renderings are shared by samples, how many samples each of them stands for."""
        if durable:
            self._make_durable()
        new = self._render_sizes[self._render_segment :]
        counts = _counts(new, self._render_counts[self._render_segment :])
        self._render_segment = len(self._render_sizes)
        sizes = np.concatenate(new) if new else np.zeros(0, dtype=np.int64)
        return self._render_bytes, sizes, counts

    def _make_durable(self) -> None:
        """Store the rows still pending and the renderings appended so far."""
        for writer in self._writers.values():
            writer.flush()
        if self._render_file is not None:
            if self.in_place:
                self._close_part()  # an object is stored when closed
            else:
                self._render_file.flush()
                os.fsync(self._render_file.fileno())

    def can_resume(self, dims: Mapping[str, int], n_rows: int, render_bytes: int) -> bool:
        """Whether the staging folder still holds what a checkpoint says was written: every
        chunk of the first ``n_rows`` rows of every layer, whole, and the renderings' bytes
        (a lost chunk would otherwise resume as rows of zeros)."""
        for layer, dim in dims.items():
            path = f"activations/{self.keys.get(layer, '')}"
            if path not in self.root:
                return self._not_resumable(f"the staged rows of layer {layer!r}")
            array: Any = self.root[path]
            if array.shape[0] < n_rows or array.shape[1] != dim:
                return self._not_resumable(f"the staged rows of layer {layer!r}")
            lost = missing_chunk(self.staging / ARRAYS / path, array, n_rows)
            if lost is not None:
                return self._not_resumable(lost)
        if render_bytes == 0:
            return True
        if self.in_place:
            if self._saved_parts(render_bytes) is None:
                return self._not_resumable((self.staging / render_part(0)).url)
            return True
        renderings = self.staging / RENDERINGS
        if not (renderings.exists() and renderings.size() >= render_bytes):
            return self._not_resumable(renderings.url)
        return True

    def _not_resumable(self, what: str) -> bool:
        log.warning("the checkpoint's file %s is missing or truncated; starting over", what)
        return False

    def _saved_parts(self, render_bytes: int) -> list[tuple[str, int]] | None:
        """In place: the first rendering objects, holding exactly ``render_bytes`` (or None)."""
        parts: list[tuple[str, int]] = []
        total = 0
        names = set(self.staging.names())
        while total < render_bytes and render_part(len(parts)) in names:
            name = render_part(len(parts))
            size = (self.staging / name).size()
            parts.append((name, size))
            total += size
        return parts if total == render_bytes else None

    def restore(
        self,
        n_rows: int,
        render_bytes: int,
        render_sizes: np.ndarray | None,
        render_counts: np.ndarray | None = None,
    ) -> None:
        """Continue a stopped run after its first ``n_rows`` samples (see :mod:`resume`);
        ``render_counts``: the samples each saved rendering stands for, where they are shared."""
        if render_sizes is not None and len(render_sizes):
            self._render_counts = [None if render_counts is None else np.asarray(render_counts, np.int64)]
        for writer in self._writers.values():
            writer.restart(n_rows)
        if self.in_place:
            self._render_parts = self._saved_parts(render_bytes) or []
            for name in self.staging.names():  # objects written after the checkpoint
                if RENDER_PART.fullmatch(name) and name not in dict(self._render_parts):
                    (self.staging / name).remove()
            if render_sizes is not None and len(render_sizes):
                self._render_sizes = [np.asarray(render_sizes, dtype=np.int64)]
                self._render_segment, self._render_bytes = 1, render_bytes
            return
        path = (self.staging / RENDERINGS).local
        assert path is not None
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
        names = ("mean", "components", "explained_variance", "explained_variance_ratio")
        values = {name: np.asarray(getattr(pca, name), dtype=np.float64) for name in names}
        if self._files is not None:
            for name, value in values.items():
                write_whole_array(self._files, f"pca/{self.keys[layer]}/{name}", value)
            return
        group = self.root.require_group(f"pca/{self.keys[layer]}")
        for name, value in values.items():
            if self.resumed and name in group:  # a resumed run that stopped after its PCA
                del group[name]
            group.create_array(
                name, data=value, chunks=value.shape, compressors=None, config=WRITE_ALL_CHUNKS
            )

    def scores_array(self, layer: str, n_samples: int, k: int, rows: int | None = None) -> Any:
        """A layer's (N, k) scores; ``rows`` per chunk (aligned with shards written in parallel)."""
        path = f"scores/{self.keys[layer]}"
        if self.resumed and path in self.root:  # a resumed run that stopped while writing scores
            del self.root[path]
        chunks = (rows or score_rows(n_samples, k), k)
        return self._new_array(path, (n_samples, k), chunks, "float32", ("sample", "component"))

    def score_chunks(self, scores: Any) -> RowChunks | None:
        """The chunks of a scores array (:meth:`scores_array`) as files, in a fresh local run;
        written synchronously (no queue: the caller fills the next chunk in the same buffer)."""
        if self._files is None:
            return None
        return RowChunks(self._files / scores.path, int(scores.chunks[0]), int(scores.shape[1]), "float32")

    def _new_array(
        self, path: str, shape: tuple[int, int], chunks: tuple[int, int], dtype: str, dims: tuple[str, str]
    ) -> Any:
        """A new empty array (uncompressed, every chunk written), open for writing."""
        if self._files is None:
            return self.root.create_array(
                path,
                shape=shape,
                chunks=chunks,
                dtype=dtype,
                compressors=None,
                dimension_names=dims,
                config=WRITE_ALL_CHUNKS,
            )
        create_array(self._files, path, shape, chunks, dtype, dims)
        return self.root[path].with_config(WRITE_ALL_CHUNKS)

    # samples ---------------------------------------------------------------------------
    def append_renderings(self, items: Sequence[bytes], counts: np.ndarray | None = None) -> None:
        """Append one batch's renderings: one per sample, or with ``counts`` each one shared by
        that many consecutive samples (a per-token run's texts: its tokens' renderings)."""
        if self._render_file is None:
            if self.in_place:
                self._render_file = (self.staging / render_part(len(self._render_parts))).open("wb")
                self._part_bytes = 0
            else:
                self._render_file = (self.staging / RENDERINGS).open("wb")
        sizes = np.fromiter((len(item) for item in items), dtype=np.int64, count=len(items))
        self._render_file.write(b"".join(items))
        self._render_sizes.append(sizes)
        self._render_counts.append(None if counts is None else np.asarray(counts, dtype=np.int64))
        self._render_bytes += int(sizes.sum())
        self._part_bytes += int(sizes.sum())

    def _close_part(self) -> None:
        if self._render_file is not None:
            self._render_file.close()
            self._render_file = None
            self._render_parts.append((render_part(len(self._render_parts)), self._part_bytes))

    def finish_renderings(self) -> int:
        """Close the packed renderings and write their offsets (and, where samples share them,
        each one's first sample: :data:`.format.RENDERING_SAMPLES`); returns how many samples
        have one."""
        if self._render_file is None and not self._render_parts:
            return 0
        if self.in_place:
            self._close_part()
        elif self._render_file is not None:
            self._render_file.close()
        sizes = np.concatenate(self._render_sizes) if self._render_sizes else np.zeros(0, np.int64)
        offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        with (self.staging / RENDERING_OFFSETS).open_whole() as f:
            np.save(f, offsets)
        counts = _counts(self._render_sizes, self._render_counts)
        if counts is None:
            return len(sizes)
        starts = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        with (self.staging / RENDERING_SAMPLES).open_whole() as f:
            np.save(f, starts)
        return int(starts[-1])

    @property
    def renderings_shared(self) -> bool:
        """Whether samples share renderings (the run then has format version 2)."""
        return any(counts is not None for counts in self._render_counts)

    def write_samples(self, table: pd.DataFrame) -> None:
        """Write the sample table (for one built chunk by chunk, :meth:`write_sample_chunks`)."""
        self.write_sample_chunks([table])

    def write_sample_chunks(
        self, chunks: Iterable[pd.DataFrame], types: Mapping[str, pa.DataType] | None = None
    ) -> int:
        """Write the sample table from consecutive chunks of rows, one row group each, so no
        more than a chunk is ever in memory. Every chunk has the first one's columns, and types
        as its first chunk converts to, less those given in ``types`` (where a chunk could
        infer another, e.g. a column of None). Returns the rows written."""
        rows = 0
        with (self.staging / SAMPLES).open_whole() as f:
            parquet: pq.ParquetWriter | None = None
            schema: pa.Schema | None = None
            try:
                for chunk in chunks:
                    if schema is None:
                        schema = pa.Schema.from_pandas(chunk, preserve_index=False)
                        for name, kind in (types or {}).items():
                            if name in schema.names:
                                i = schema.get_field_index(name)
                                schema = schema.set(i, pa.field(name, kind))
                        parquet = pq.ParquetWriter(f, schema, use_dictionary=dictionary_columns(schema))
                    assert parquet is not None
                    parquet.write_table(pa.Table.from_pandas(chunk, schema=schema, preserve_index=False))
                    rows += len(chunk)
            finally:
                if parquet is not None:
                    parquet.close()
        return rows

    # commit ----------------------------------------------------------------------------
    def commit(self, manifest: dict[str, Any]) -> Path | str:
        """Write the manifest last (atomically), with the inventory of every file of the run
        (:mod:`.integrity`); locally then swap the staging folder into place.

        Returns the run's local path, or its URL."""
        self._queue.close()
        self._queue.check()  # a chunk whose write failed is never committed (missing, it would read as zeros)
        manifest = {**manifest, FILES: inventory(self.out if self.in_place else self.staging)}
        if self.in_place:
            if self._render_parts:  # the objects the renderings' offsets run through, in order
                parts = [[name, size] for name, size in self._render_parts]
                manifest = {**manifest, "rendering": {**manifest.get("rendering", {}), "parts": parts}}
            write_json_atomic(self.out / MANIFEST, manifest)
            (self.out / PARTIAL).remove()
            return self.out.url
        out, staging = self.out.local, self.staging.local
        assert out is not None and staging is not None
        write_json_atomic(staging / MANIFEST, manifest)
        old = as_location(out.parent / f".{out.name}.old")
        old.remove_tree()
        if out.exists():
            os.replace(out, str(old))
        os.replace(staging, out)
        old.remove_tree()
        return out

    def abort(self) -> None:
        """Remove what was written after an error: nothing half-written is left (in place, the
        whole prefix, which :func:`check_replaceable` found to be ours)."""
        self.close()
        self.staging.remove_tree()

    def close(self) -> None:
        """Close open files, keeping the staging folder (a checkpointed run resumes from it);
        the chunk writes under way are waited for."""
        self._queue.close()
        if self._render_file is not None and not self._render_file.closed:
            self._render_file.close()


def _counts(sizes: Sequence[np.ndarray], counts: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """The samples per rendering of these batches, or None when each rendering is one sample's."""
    if all(c is None for c in counts):
        return None
    parts = [np.ones(len(s), np.int64) if c is None else c for s, c in zip(sizes, counts, strict=True)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
