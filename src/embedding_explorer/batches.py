"""Walk the user's data in a stable order, one normalised batch at a time.

Accepted data: a Tensor or ndarray (rows are samples), a whole ``(X, y)`` pair, a map-style
Dataset, a DataLoader that does not shuffle, or any iterable of batches. A batch is a tensor,
an ``(x, y)`` pair (labels from ``y``), or a dict of model keyword arguments (``labels`` and
``label`` keys are taken out as labels, ``attention_mask`` is kept for token reductions).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset
from torch.utils.data import sampler as samplers

from .checks import positive_int
from .exceptions import DataOrderError, EmbeddingExplorerError
from .text import TextBatches
from .tokens import TOKENS_KEY, TokenBatches, TokenSelection

LABEL_KEYS = ("labels", "label")


@dataclass(frozen=True)
class Rendered:
    """One batch's renderings made where it was loaded (a DataLoader worker decodes each file
    once, for the model and for its thumbnail): one rendering per sample, of one ``kind``
    (:mod:`.records`), and their input statistics (:mod:`.inputstats`; None where the loader was
    made without them, ``decoded_once(..., input_stats=False)``). ``source`` says what they
    were made from and how (:func:`.render.rendering_source`): a renderer takes them only where
    it would have made the same ones itself."""

    kind: str
    items: list[bytes]
    columns: dict[str, np.ndarray] | None
    source: str


@dataclass(frozen=True)
class RenderedBatch:
    """A raw batch (anything :func:`parse_batch` reads) with its samples' :class:`Rendered`
    renderings: what a collate function that renders returns."""

    batch: Any
    rendered: Rendered


@dataclass(frozen=True)
class LoadFailure:
    """What a loader worker returns for a batch it could not read (a file that does not decode):
    :func:`parse_batch` raises ``error`` in the main process as it is, where the DataLoader would
    have wrapped it in a message holding the worker's whole traceback."""

    error: Exception


@dataclass
class Batch:
    """One batch: what the model receives, and what we record about its samples.

    In a per-token run (``tokens`` set) samples are the selected tokens: ``size`` counts them
    and ``labels`` (one per text in the raw batch) are repeated on each token of a text.
    """

    inputs: Any  # a tensor, a tuple of positional tensors, or a dict of keyword tensors
    size: int
    labels: np.ndarray | None
    attention_mask: torch.Tensor | None
    shown: Any = None  # what renderings are made of when not the inputs (ee.from_arrays' images)
    tokens: TokenSelection | None = None
    rendered: Rendered | None = None  # renderings made where the batch was loaded (RenderedBatch)

    def model_args(
        self, device: torch.device, dtype: torch.dtype | None = None
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Positional and keyword arguments of the forward call, on ``device``; floating
        tensors are cast to the model's ``dtype`` (numpy's float64 into a float32 model)."""
        if isinstance(self.inputs, Mapping):
            return (), {k: _to_device(v, device, dtype) for k, v in self.inputs.items()}
        return (_to_device(self.inputs, device, dtype),), {}


def check_data(data: Any) -> None:
    """Refuse data that would be read wrongly: a pandas table (its rows would be iterated as
    column names), complex numbers (PCA is over reals), an ``(X, y)`` pair of unequal lengths."""
    if type(data).__module__.split(".")[0] == "pandas" and type(data).__name__ in ("DataFrame", "Series"):
        raise TypeError(
            f"data is a pandas {type(data).__name__}; pass its values as data (df.to_numpy() or a "
            "tensor) and the table itself as metadata= (its columns are kept in the sample table)"
        )
    if isinstance(data, (torch.Tensor, np.ndarray)):
        if data.ndim == 0:
            raise EmbeddingExplorerError("data is a 0-d tensor; rows of data must be samples")
        check_real(data, "data")
    elif isinstance(data, (str, bytes, Mapping)) or not isinstance(data, (Iterable, Dataset)):
        raise TypeError(
            "data must be a Tensor, a Dataset, a DataLoader or an iterable of batches, "
            f"not {type(data).__name__}"
        )
    pair = whole_pair(data)
    if pair is not None:
        check_real(pair[0], "data")


def check_real(x: torch.Tensor | np.ndarray, what: str) -> None:
    """Refuse a complex tensor or array: its imaginary part would be lost."""
    if (isinstance(x, torch.Tensor) and x.is_complex()) or (isinstance(x, np.ndarray) and np.iscomplexobj(x)):
        raise EmbeddingExplorerError(
            f"{what} is complex ({x.dtype}); PCA here is over real numbers and the imaginary part "
            "would be lost: pass the real and imaginary parts as features (torch.view_as_real) or "
            "the magnitudes (x.abs())"
        )


def count_samples(data: Any) -> int | None:
    """The number of samples when it is known without iterating."""
    if isinstance(data, (torch.Tensor, np.ndarray)):
        return int(data.shape[0])
    if isinstance(data, TextBatches):
        return data.n_samples
    if isinstance(data, TokenBatches):
        return None  # tokens are counted as they are extracted
    pair = whole_pair(data)
    if pair is not None:
        return int(pair[0].shape[0])
    if isinstance(data, DataLoader):
        loader, data = data, data.dataset
        if isinstance(data, IterableDataset):
            return None
        batch_size = getattr(loader.batch_sampler, "batch_size", None)
        if loader.drop_last and isinstance(batch_size, int) and hasattr(data, "__len__"):
            return (len(data) // batch_size) * batch_size  # the last, partial batch is dropped
    if isinstance(data, Dataset) and hasattr(data, "__len__"):
        return len(data)
    return None


def iter_batches(data: Any, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[Batch]:
    """Batches of ``data`` in sample order, as :class:`Batch`.

    ``start``/``stop`` select samples ``[start, stop)`` (to resume a run or run one shard): data
    that can be indexed (:func:`indexable`) is sliced without loading what is skipped; other
    iterables are walked and their first batches dropped, so ``start`` must fall between
    batches. Batches restart at ``start``: it should be a multiple of the batch size for the
    batches to be the same as in a run from 0.
    """
    batch_size = positive_int(batch_size, "batch_size")
    if start or stop is not None:
        sliced = _sliced(data, start, stop)
        if sliced is not None:
            data = sliced
        else:
            yield from _skipping(_raw_batches(data, batch_size), start, stop)
            return
    for raw in _raw_batches(data, batch_size):
        yield parse_batch(raw)


def indexable(data: Any) -> bool:
    """Whether samples can be reached by position (so a run can be split into shards): a Tensor,
    an ndarray, an ``(X, y)`` pair, a map-style Dataset or a DataLoader over one."""
    if isinstance(data, (torch.Tensor, np.ndarray)) or whole_pair(data) is not None:
        return True
    if isinstance(data, DataLoader):
        check_loader_order(data)
        data = data.dataset
    return isinstance(data, Dataset) and not isinstance(data, IterableDataset) and hasattr(data, "__len__")


def loader_batch_size(data: Any, batch_size: int) -> int:
    """The batch size batches of ``data`` come in: a DataLoader's own, else ``batch_size``."""
    if isinstance(data, DataLoader):
        return int(data.batch_size or batch_size)
    return batch_size


def _sliced(data: Any, start: int, stop: int | None) -> Any:
    """Samples ``[start, stop)`` of indexable data, batched the same way, or None."""
    if isinstance(data, (torch.Tensor, np.ndarray)):
        return data[start:stop]
    pair = whole_pair(data)
    if pair is not None:
        return pair[0][start:stop], pair[1][start:stop]
    if isinstance(data, DataLoader) and indexable(data):
        end = len(data.dataset) if stop is None else stop  # type: ignore[arg-type]
        # a daemonic process (a Dask worker) may not start the loader's worker processes
        workers = 0 if multiprocessing.current_process().daemon else data.num_workers
        return DataLoader(
            Subset(data.dataset, range(start, end)),
            batch_size=data.batch_size,
            collate_fn=data.collate_fn,
            num_workers=workers,
            pin_memory=data.pin_memory,
            drop_last=data.drop_last,
            timeout=data.timeout,
            worker_init_fn=data.worker_init_fn,
            persistent_workers=data.persistent_workers and workers > 0,
            prefetch_factor=data.prefetch_factor if workers > 0 else None,
        )
    if indexable(data):
        return Subset(data, range(start, len(data) if stop is None else stop))
    return None


def _skipping(raws: Iterable[Any], start: int, stop: int | None) -> Iterator[Batch]:
    """Batches of a stream from sample ``start`` on, parsing (not running) those before it.

    A batch of no samples (a per-token run's batch of empty texts, special tokens skipped) at
    ``start`` itself is yielded: a run stopped there had not met it (checkpoints and Dask shards
    end after a batch with samples), and its hash is part of the content hash."""
    seen = 0
    for raw in raws:
        if stop is not None and seen >= stop:
            return
        batch = parse_batch(raw)
        before, seen = seen, seen + batch.size
        if before < start:
            if seen > start:
                raise EmbeddingExplorerError(
                    f"cannot start at sample {start}: a batch spans samples {before}..{seen - 1}; "
                    "the data no longer comes in the same batches"
                )
            continue
        yield batch


def whole_pair(data: Any) -> tuple[torch.Tensor, Any] | None:
    """``(X, y)`` for a whole data set given as one pair: X with rows, y one label per row.

    A pair of batches cannot look like this: a batch's labels are not a whole second batch.
    """
    if not (isinstance(data, tuple) and len(data) == 2):
        return None
    x, y = data
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        return None
    labels = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y
    if isinstance(labels, (np.ndarray, list)) and np.ndim(labels) == 1:
        if len(labels) != x.shape[0]:
            raise EmbeddingExplorerError(
                f"data is an (X, y) pair with {x.shape[0]} rows in X but {len(labels)} labels in y; "
                "give one label per row"
            )
        return x, labels
    return None


def _raw_batches(data: Any, batch_size: int) -> Iterable[Any]:
    check_data(data)
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        if data.ndim == 0:
            raise EmbeddingExplorerError("data is a 0-d tensor; rows of data must be samples")
        return (data[i : i + batch_size] for i in range(0, data.shape[0], batch_size))
    pair = whole_pair(data)
    if pair is not None:
        x, y = pair
        return ((x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, x.shape[0], batch_size))
    if isinstance(data, DataLoader):
        check_loader_order(data)
        return data
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        return DataLoader(data, batch_size=batch_size, shuffle=False)
    if isinstance(data, IterableDataset):
        return DataLoader(data, batch_size=batch_size)
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Iterable):
        raise TypeError(
            "data must be a Tensor, a Dataset, a DataLoader or an iterable of batches, "
            f"not {type(data).__name__}"
        )
    return data


def check_loader_order(loader: DataLoader[Any]) -> None:
    """Refuse a DataLoader that does not yield every sample once, in data-set order.

    Sample ids are positions in the data set, so only the sequential sampler (batched by the
    standard BatchSampler) is accepted; an IterableDataset yields in its own order.
    """
    if isinstance(loader.dataset, IterableDataset):
        return
    batch_sampler: Any = loader.batch_sampler
    if batch_sampler is None:
        raise DataOrderError(
            "the DataLoader has batch_size=None, so it yields single samples, not batches; "
            "give it a batch_size (or pass the Dataset itself)"
        )
    sampler = getattr(batch_sampler, "sampler", loader.sampler)
    if type(batch_sampler) is not samplers.BatchSampler or type(sampler) is not samplers.SequentialSampler:
        custom = sampler if type(batch_sampler) is samplers.BatchSampler else batch_sampler
        raise DataOrderError(
            f"the DataLoader draws samples with {type(custom).__name__}, so sample ids would not "
            "follow data-set order; pass a DataLoader with shuffle=False and no custom sampler "
            "(or the Dataset itself; take a subset with torch.utils.data.Subset)"
        )


def parse_batch(raw: Any) -> Batch:
    """Split a raw batch into model inputs, labels and attention mask."""
    if isinstance(raw, LoadFailure):
        raise raw.error
    if isinstance(raw, RenderedBatch):
        batch = parse_batch(raw.batch)
        if len(raw.rendered.items) != batch.size:
            raise EmbeddingExplorerError(
                f"a batch has {batch.size} samples but {len(raw.rendered.items)} renderings"
            )
        batch.rendered = raw.rendered
        return batch
    if isinstance(raw, Mapping):
        inputs = {k: v for k, v in raw.items() if k not in LABEL_KEYS and k != TOKENS_KEY}
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor):
                check_real(value, f"the batch key {key!r}")
        label_key = next((k for k in LABEL_KEYS if k in raw), None)
        labels = as_labels(raw[label_key]) if label_key else None
        mask = inputs.get("attention_mask")
        mask = mask if isinstance(mask, torch.Tensor) else None
        tokens = raw.get(TOKENS_KEY)
        if isinstance(tokens, TokenSelection):  # samples are tokens; labels are per text
            if labels is not None and len(labels) != tokens.keep.shape[0]:
                raise EmbeddingExplorerError(
                    f"a batch has {tokens.keep.shape[0]} texts but {len(labels)} labels"
                )
            per_token = labels[tokens.rows] if labels is not None else None
            return Batch(inputs, tokens.size, per_token, mask, tokens=tokens)
        return Batch(inputs, _leading_size(inputs), labels, mask)
    if isinstance(raw, (tuple, list)):
        if len(raw) == 1:
            return parse_batch(raw[0])
        if len(raw) != 2:
            raise EmbeddingExplorerError(
                f"a batch is a {type(raw).__name__} of {len(raw)} elements; expected x or (x, y). "
                "Wrap the data so it yields (x, y), or pass a dict of model arguments"
            )
        inner = parse_batch(raw[0])
        labels = as_labels(raw[1])
        if len(labels) != inner.size:
            raise EmbeddingExplorerError(
                f"a batch has {inner.size} inputs but {len(labels)} labels in its (x, y) pair"
            )
        return Batch(inner.inputs, inner.size, labels, inner.attention_mask)
    if isinstance(raw, np.ndarray):
        raw = torch.from_numpy(raw)
    if isinstance(raw, torch.Tensor):
        if raw.ndim == 0:
            raise EmbeddingExplorerError("a batch is a 0-d tensor; batches must be batch-first")
        check_real(raw, "a batch of data")
        return Batch(raw, int(raw.shape[0]), None, None)
    raise TypeError(
        f"a batch is a {type(raw).__name__}; expected a tensor, an (x, y) pair or a dict of tensors"
    )


def as_labels(y: Any) -> np.ndarray:
    """Labels of a batch as a 1-D numpy array (numbers or strings)."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise EmbeddingExplorerError(f"labels of a batch have shape {arr.shape}; expected one per sample")
    if np.iscomplexobj(arr):  # the sample table could not store them, after the whole extraction
        raise EmbeddingExplorerError(f"labels of a batch are complex ({arr.dtype}); give real labels")
    return arr


def _leading_size(inputs: Mapping[str, Any]) -> int:
    for value in inputs.values():
        if isinstance(value, torch.Tensor) and value.ndim > 0:
            return int(value.shape[0])
    raise EmbeddingExplorerError(f"a dict batch has no tensor to count samples by; keys: {list(inputs)}")


def _to_device(value: Any, device: torch.device, dtype: torch.dtype | None = None) -> Any:
    if isinstance(value, torch.Tensor):
        if dtype is not None and value.is_floating_point() and value.dtype != dtype:
            return value.to(device, dtype=dtype, non_blocking=True)
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {k: _to_device(v, device, dtype) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_to_device(v, device, dtype) for v in value)
    return value


def input_tensor(batch: Batch, layer: str = "input") -> torch.Tensor:
    """The model input as one tensor, for the ``"input"`` pseudo-layer (PCA in data space)."""
    if isinstance(batch.inputs, torch.Tensor):
        return batch.inputs
    raise EmbeddingExplorerError(
        f"layer {layer!r} captures the model input, but batches are "
        f"{type(batch.inputs).__name__}; it needs tensor inputs"
    )
