"""Activations you already have: ``ee.from_arrays`` and the files ``explore --vectors`` reads.

Vectors captured elsewhere (TransformerLens or nnsight caches, SAE feature matrices, an embedding
API's output) become a normal run: exact PCA, scores, the UI, comparisons. The arrays stream in
row blocks through the same writer as a model's activations (:mod:`.arrays`), so a memory-mapped
``.npy``, a Zarr array or a Parquet file larger than memory is never loaded whole.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from .build.arrays import plan_arrays
from .build.plan import MAX_DENSE_DIM
from .exceptions import EmbeddingExplorerError
from .explore import build_run
from .locations import StorageOptions
from .reducers import ReduceSpec
from .render import RenderSpec
from .run import Run
from .store.lock import run_lock

LABEL_COLUMNS = ("label", "labels")


def from_arrays(
    arrays: Mapping[str, Any],
    *,
    labels: Sequence[Any] | np.ndarray | None = None,
    metadata: pd.DataFrame | Mapping[str, Sequence[Any]] | None = None,
    render: RenderSpec | np.ndarray | torch.Tensor = None,
    out: str | Path | None = None,
    name: str | None = None,
    n_components: int = 10,
    batch_size: int = 4096,
    reduce: ReduceSpec | Mapping[str, ReduceSpec] = None,
    label_names: Sequence[str] | None = None,
    recompute: bool = False,
    max_dense_dim: int = MAX_DENSE_DIM,
    storage_dtype: Literal["float32", "float16"] = "float32",
    progress: bool = True,
    storage_options: StorageOptions | None = None,
    wait: bool | float = False,
    model: str | None = None,
) -> Run:
    """Build a run from activations that already exist: ``{layer name: array}``, one row per sample.

    Parameters
    ----------
    arrays : dict of str to array
        numpy arrays, ``np.load(path, mmap_mode="r")`` memory maps, torch tensors, Zarr or h5py
        arrays, Dask arrays: ``(N, D)`` rows, or ``(N, T, D)`` / ``(N, C, H, W)`` reduced per
        sample by ``reduce`` (default: mean over tokens / positions) as hooked outputs are. Read
        ``batch_size`` rows at a time: never copied whole into memory.
    labels, metadata, label_names, n_components, out, name, recompute, max_dense_dim, storage_dtype,
    storage_options, wait, progress
        As in :func:`~embedding_explorer.explore`.
    render : list of texts, array of images, "none" or None, optional
        How samples are shown: one text per sample, or images ``(N, C, H, W)`` / ``(N, H, W)``
        (streamed as well); None shows sample ids only.
    model : str, optional
        The name of the model the arrays came from (e.g. ``"gpt2@resid_5"``), its identity:
        two runs that name the same model can be compared as one model over two data sets
        (``ee.compare_datasets``, data-set shift insights); without it a run is never taken for
        the same model as another.

    Returns
    -------
    Run
        A run like any other: ``run["layer3"].scores``, ``ee.serve(run)``, ``ee.compare_models``...
        The same arrays (shapes, dtypes and sampled rows) and options reuse the finished run.
    """
    started = time.perf_counter()
    plan = plan_arrays(
        arrays,
        out=out,
        name=name,
        n_components=n_components,
        batch_size=batch_size,
        labels=labels,
        metadata=metadata,
        reduce=reduce,
        render=render,
        progress=progress,
        label_names=label_names,
        recompute=recompute,
        max_dense_dim=max_dense_dim,
        storage_dtype=storage_dtype,
        storage_options=storage_options,
        model=model,
    )
    with run_lock(plan.out, wait=wait):
        if plan.finished_run() is None:
            build_run(plan, started)
        return Run(plan.out)  # under the lock: a writer waiting for it cannot replace the run first


@dataclass
class VectorFile:
    """What ``vectors_from_path`` found: layers, and the other columns as labels and metadata."""

    arrays: dict[str, Any]
    labels: np.ndarray | None = None
    metadata: pd.DataFrame | None = field(default=None)

    def explore(self, **options: Any) -> Run:
        """``ee.from_arrays`` over these vectors (``options``: its keyword arguments)."""
        return from_arrays(self.arrays, labels=self.labels, metadata=self.metadata, **options)


def vectors_from_path(path: str | Path, vector_column: str | Sequence[str] | None = None) -> VectorFile:
    """Layers from a file of vectors, for ``explore --vectors``.

    - a ``.parquet`` file: ``vector_column`` (one name, a list, or ``"a,b"``) names the columns of
      list or fixed-size-list vectors, each a layer, read one row group at a time; a ``label`` or
      ``labels`` column becomes the labels, other scalar columns the metadata;
    - a ``.npz`` file: each array of rank 2 or more is a layer, 1-D arrays are labels/metadata;
    - a folder of ``.npy`` files: each is memory-mapped; ``name.npy`` of rank 2+ is the layer
      ``name``, 1-D ones are labels/metadata.
    """
    path = Path(path)
    if not path.exists():
        raise EmbeddingExplorerError(f"--vectors {str(path)!r}: no such file or folder")
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise EmbeddingExplorerError(f"--vectors {str(path)!r}: the folder has no .npy files")
        found = {f.stem: np.load(f, mmap_mode="r") for f in files}
        return _split(found, path, vector_column)
    if path.suffix == ".npz":
        with np.load(path) as archive:  # members of an .npz cannot be memory-mapped
            return _split({k: archive[k] for k in archive.files}, path, vector_column)
    if path.suffix == ".parquet":
        return _parquet(path, vector_column)
    raise EmbeddingExplorerError(
        f"--vectors {str(path)!r}: give a .parquet file, an .npz file or a folder of .npy files"
    )


def _columns(vector_column: str | Sequence[str] | None) -> list[str] | None:
    if vector_column is None:
        return None
    names = vector_column.split(",") if isinstance(vector_column, str) else list(vector_column)
    return [n.strip() for n in names if n.strip()]


def _split(found: Mapping[str, Any], path: Path, vector_column: str | Sequence[str] | None) -> VectorFile:
    wanted = _columns(vector_column)
    if wanted is not None:
        missing = [n for n in wanted if n not in found]
        if missing:
            raise EmbeddingExplorerError(
                f"--vector-column {missing[0]!r} is not in {path.name}; it has {', '.join(found)}"
            )
    arrays = {k: v for k, v in found.items() if v.ndim >= 2 and (wanted is None or k in wanted)}
    if not arrays:
        raise EmbeddingExplorerError(f"--vectors {str(path)!r} holds no array of rank 2 or more (vectors)")
    columns = {k: np.asarray(v) for k, v in found.items() if v.ndim == 1}
    label_key = next((k for k in LABEL_COLUMNS if k in columns), None)
    labels = columns.pop(label_key) if label_key else None
    return VectorFile(arrays, labels, pd.DataFrame(columns) if columns else None)


def _parquet(path: Path, vector_column: str | Sequence[str] | None) -> VectorFile:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    lists = [f.name for f in schema if pa.types.is_list(f.type) or pa.types.is_fixed_size_list(f.type)]
    wanted = _columns(vector_column)
    if wanted is None:
        if len(lists) != 1:
            raise EmbeddingExplorerError(
                f"--vectors {path.name}: name the vector column(s) with --vector-column; list columns: "
                f"{', '.join(lists) or 'none'}"
            )
        wanted = lists
    for column in wanted:
        if column not in schema.names:
            raise EmbeddingExplorerError(
                f"--vector-column {column!r} is not in {path.name}; its columns: {', '.join(schema.names)}"
            )
        if column not in lists:
            raise EmbeddingExplorerError(
                f"--vector-column {column!r} of {path.name} holds {schema.field(column).type}, not vectors"
            )
    scalars = [n for n in schema.names if n not in lists]
    table = pq.read_table(path, columns=scalars).to_pandas() if scalars else None
    labels = None
    if table is not None:
        label_key = next((k for k in LABEL_COLUMNS if k in table.columns), None)
        if label_key:
            labels = table.pop(label_key).to_numpy()
        table = table if len(table.columns) else None
    return VectorFile({c: ParquetVectors(path, c) for c in wanted}, labels, table)


class ParquetVectors:
    """One list column of a Parquet file as an ``(N, D)`` array that reads only the row groups a
    slice needs (``ee.from_arrays`` reads it in row blocks)."""

    def __init__(self, path: Path, column: str) -> None:
        import pyarrow.parquet as pq

        self.path, self.column = path, column
        self._file = pq.ParquetFile(path)
        sizes = [self._file.metadata.row_group(i).num_rows for i in range(self._file.num_row_groups)]
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        first = self._read_group(0) if sizes and sizes[0] else np.zeros((0, 0), np.float32)
        self.shape = (int(self._starts[-1]), int(first.shape[1]))
        self.dtype = first.dtype

    def __getitem__(self, rows: slice) -> np.ndarray:
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("Parquet vectors are read in row slices")
        start, stop, _ = rows.indices(self.shape[0])
        groups = range(
            int(np.searchsorted(self._starts, start, side="right")) - 1,
            int(np.searchsorted(self._starts, max(stop, start + 1), side="left")),
        )
        blocks = [self._read_group(g) for g in groups if 0 <= g < len(self._starts) - 1]
        block = np.concatenate(blocks) if blocks else np.zeros((0, self.shape[1]), self.dtype)
        offset = int(self._starts[groups[0]]) if blocks else start
        return block[start - offset : stop - offset]

    def _read_group(self, group: int) -> np.ndarray:
        import pyarrow.compute as pc

        values = self._file.read_row_group(group, columns=[self.column]).column(0).combine_chunks()
        lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths != lengths[0]).any():
            at = int(np.flatnonzero(lengths != lengths[0])[0])
            row = int(self._starts[group]) + at
            raise EmbeddingExplorerError(
                f"column {self.column!r} of {self.path.name}: row {row} has {lengths[at]} "
                f"values, earlier rows {lengths[0]}; vectors must have one length"
            )
        if values.null_count:
            row = int(
                self._starts[group] + np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0]
            )
            raise EmbeddingExplorerError(f"column {self.column!r} of {self.path.name}: row {row} is empty")
        flat = values.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(values), int(lengths[0]) if len(lengths) else 0)


__all__ = ["ParquetVectors", "VectorFile", "from_arrays", "vectors_from_path"]
