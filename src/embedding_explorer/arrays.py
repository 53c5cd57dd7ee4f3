"""Activations captured elsewhere, read in row blocks: the data of ``ee.from_arrays``.

Each layer is an array with one row per sample: numpy (a ``np.load(..., mmap_mode="r")``
memory map included), torch, Zarr, h5py or Dask (anything with ``.shape``, ``.dtype`` and row
slicing). Rows are read ``batch_size`` at a time and never all at once, so a memory-mapped or
on-disk array larger than memory streams through the same pipeline as a model's hooks
(:func:`~embedding_explorer.extract.stream_rows`). Rank-3 ``(N, T, D)`` and rank-4 arrays are
reduced per sample by the layer's reducer, as a hooked output would be.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .batches import Batch
from .exceptions import EmbeddingExplorerError
from .reducers import Reducer, reduce_output

SAMPLED_ROWS = 256  # rows of each array hashed for its quick fingerprint


@dataclass(frozen=True, eq=False)
class ArraySource:
    """``{layer: array}`` with one row per sample, and optionally images to render them by."""

    arrays: Mapping[str, Any]
    images: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.arrays, Mapping) or not self.arrays:
            raise EmbeddingExplorerError(
                "from_arrays needs a dict {layer name: array} with at least one layer"
            )
        sizes = {}
        for name, array in self.arrays.items():
            if not isinstance(name, str) or not name or name != name.strip():
                raise EmbeddingExplorerError(f"layer names are non-empty strings, got {name!r}")
            shape = getattr(array, "shape", None)
            dtype = getattr(array, "dtype", None)
            if shape is None or dtype is None or not hasattr(array, "__getitem__"):
                raise EmbeddingExplorerError(
                    f"layer {name!r} is a {type(array).__name__}; give an array (numpy, a memory map, "
                    "torch, Zarr, h5py) with one row per sample"
                )
            if len(shape) == 0:
                raise EmbeddingExplorerError(f"layer {name!r} has shape {tuple(shape)}: one row per sample")
            if not _is_real_number(dtype):
                raise EmbeddingExplorerError(
                    f"layer {name!r} has dtype {dtype}; activations are real numbers (float or int)"
                )
            sizes[name] = int(shape[0])
        if len(set(sizes.values())) > 1:
            raise EmbeddingExplorerError(f"the layers have different numbers of rows (samples): {sizes}")
        if self.images is not None and int(self.images.shape[0]) != self.n_samples:
            raise EmbeddingExplorerError(
                f"render has {int(self.images.shape[0])} images for {self.n_samples} samples"
            )

    @property
    def n_samples(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])

    def __len__(self) -> int:
        return self.n_samples

    def rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        """Rows ``[start, stop)`` of one layer as a CPU tensor (a copy of those rows only)."""
        return _as_tensor(self.arrays[name][start:stop])

    def batches(self, batch_size: int, start: int = 0) -> Iterator[Batch]:
        """Row blocks from ``start`` on; a batch's inputs are its rows ``{layer: tensor}``."""
        for i in range(start, self.n_samples, batch_size):
            stop = min(i + batch_size, self.n_samples)
            inputs = {name: self.rows(name, i, stop) for name in self.arrays}
            shown = None if self.images is None else _as_tensor(self.images[i:stop])
            yield Batch(inputs, stop - i, None, None, shown=shown)

    def fingerprint(self) -> str:
        """Each array's shape and dtype and up to ``SAMPLED_ROWS`` evenly spaced rows (so a
        finished run is reused for the same arrays; an edit between sampled rows is not seen:
        pass ``recompute=True``), and the images' too."""
        digest = hashlib.blake2b(digest_size=16)
        named = [*self.arrays.items(), *([("<images>", self.images)] if self.images is not None else [])]
        for name, array in named:
            digest.update(f"{name}:{tuple(array.shape)}:{array.dtype}".encode())
            n = int(array.shape[0])
            for i in np.unique(np.linspace(0, n - 1, num=min(n, SAMPLED_ROWS)).astype(int)) if n else []:
                row = _as_tensor(array[int(i) : int(i) + 1]).numpy()
                digest.update(np.ascontiguousarray(row).view(np.uint8).data)
        return digest.hexdigest()


def reduced_rows(batch: Batch, reducers: Mapping[str, Reducer]) -> dict[str, torch.Tensor]:
    """A batch's rows, each layer's reduced to ``(batch, D)`` by its reducer (rank 2 is kept)."""
    return {
        name: reduce_output(rows, reducers[name], name, batch.size) for name, rows in batch.inputs.items()
    }


def _as_tensor(block: Any) -> torch.Tensor:
    if isinstance(block, torch.Tensor):
        return block.detach().cpu()
    if hasattr(block, "compute"):  # a Dask array's block
        block = block.compute()
    arr = np.asarray(block)
    if arr.dtype.byteorder == ">" or not arr.flags.writeable:  # torch wants native, writable memory
        arr = arr.astype(arr.dtype.newbyteorder("="), copy=True)
    if arr.dtype == np.float16 or arr.dtype.kind in "iub":
        arr = arr.astype(np.float32)
    return torch.from_numpy(arr)


def _is_real_number(dtype: Any) -> bool:
    if isinstance(dtype, torch.dtype):
        return not dtype.is_complex and dtype != torch.bool
    try:
        return np.dtype(dtype).kind in "fiu"
    except TypeError:
        return False


__all__ = ["ArraySource", "reduced_rows"]
