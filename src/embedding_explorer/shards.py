"""What a Dask worker runs for :mod:`.distributed`: one shard's extraction, one shard's scores.

A shard is a range of sample ids ``[start, stop)`` of whole batches (:class:`Span`). Its worker
builds the model once per thread (:class:`ModelSource`), writes the rows of the chunks it alone
covers into every layer's activations, stages the rows of chunks it shares with a neighbour
and its renderings (files of its own in the staging folder), and returns its accumulators,
labels, token columns, recorded columns (input statistics, model outputs), rendering sizes and
per-batch hashes for the driver to merge in order, as one process records them.
Every write first checks that the call that started the shard is still the current one
(:class:`CallGuard`).
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cloudpickle
import numpy as np
import torch
from torch import nn

from .batches import Batch, iter_batches, parse_batch
from .capture import LayerCapture, LayerRef
from .extract import (
    Ledger,
    batch_digest,
    checked_rows,
    host_scores,
    input_columns,
    outputs_recorded,
    score_columns,
)
from .locations import Location, StorageOptions, as_location, open_zarr_array
from .models import ModelSpec, build_model
from .outputs import OutputsSpec
from .pca import PCAResult
from .reducers import Reducer
from .store.writer import RowWriter
from .tokens import text_batches_of

CALL_FILE = "dask-call.txt"  # the current call's token, in the staging folder
SHARD_PREFIX = "dask-"  # the call file and the shards' rendering files
TOKEN_CHECK_S = 1.0  # how often a running shard looks whether its call is still current

_MODELS: dict[tuple[str, str, int], nn.Module] = {}  # per worker thread: built models
_MODELS_LOCK = threading.Lock()


class ModelSource:
    """A pickled module, a factory or a TorchScript path, with the driver's fingerprint, so each
    worker thread builds its own copy once (hooks and modes are per model; threads run shards
    at the same time)."""

    def __init__(self, spec: ModelSpec, fingerprint: str, payload: bytes | None = None) -> None:
        self.spec, self.fingerprint, self.payload = spec, fingerprint, payload

    def build(self, device: str) -> nn.Module | None:
        key = (self.fingerprint, device, threading.get_ident())
        # one build at a time: a factory seeding torch's global generator (torch.manual_seed)
        # then drawing weights gets other weights when another thread draws in between
        with _MODELS_LOCK:
            model = _MODELS.get(key)
            if model is None:
                model = build_model(cloudpickle.loads(self.payload) if self.payload else self.spec)
                if model is not None:
                    model.to(torch.device(device)).eval()  # the thread's own copy: set once
                    for old in [k for k in _MODELS if k[0] != self.fingerprint]:
                        del _MODELS[old]  # one run's model at a time
                    _MODELS[key] = model
        return model


@dataclass(frozen=True, kw_only=True)
class ShardTask:
    """What every shard shares: layers, reducers, batching, storage, the call's token, what it
    records besides the rows (sent once per worker)."""

    refs: Sequence[LayerRef]
    reducers: Mapping[str, Reducer]
    batch_size: int
    n_components: int
    max_dense_dim: int
    storage_dtype: str
    device: str
    paths: Mapping[str, str]  # each layer's activations: local paths or URLs
    storage_options: StorageOptions
    staging: str
    token: str
    input_stats: bool = False  # record each batch's input statistics (inputstats)
    outputs: OutputsSpec = None  # record the model's class scores (outputs)
    labels: np.ndarray | None = None  # labels given to explore (the loss is against them)


@dataclass(frozen=True)
class Span:
    """One shard: samples ``[start, stop)``, of which the worker writes rows ``[direct_start,
    direct_stop)`` (the chunks no other shard touches) into the store and stages the others
    for the driver. ``batches``: in a per-token run, the batches of texts that give the samples
    (a shard's token range is known only from the tokenizer's counts, and seldom whole chunks)."""

    start: int
    stop: int
    direct_start: int
    direct_stop: int
    batches: tuple[int, int] | None = None

    @classmethod
    def of(
        cls, start: int, stop: int, rows: int, n_samples: int, batches: tuple[int, int] | None = None
    ) -> Span:
        """The span of samples ``[start, stop)`` in chunks of ``rows``: whole chunks, and the
        last rows of the data, are written directly; the rows before the shard's first chunk
        boundary and after its last are staged (another shard has rows in those chunks)."""
        first = min(-(-start // rows) * rows, stop)
        last = stop if stop == n_samples else max((stop // rows) * rows, first)
        return cls(start, stop, first, last, batches)


class CallGuard:
    """A shard's check that its call is still the current one at its run's place: the staging
    folder's call file holds the same token. Checked before every write, and between batches
    at most every ``TOKEN_CHECK_S``."""

    def __init__(self, staging: str, storage_options: StorageOptions | None, token: str) -> None:
        self.file = as_location(staging, storage_options) / CALL_FILE
        self.token = token
        self.checked = -math.inf

    def check(self, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self.checked < TOKEN_CHECK_S:
            return
        try:
            current = self.file.read_text()
        except (OSError, ValueError):
            current = None
        if current is None or current.strip().strip('"') != self.token:
            raise RuntimeError(
                f"the call that started this shard is over ({self.file.url} has no token of it)"
            )
        self.checked = now


def extract_shard(
    model_ref: Any,
    data: Any,
    task: ShardTask,
    renderer: Any,
    renderer_state: Mapping[str, Any],
    span: Span,
) -> dict[str, Any]:
    """On a worker: the samples of ``span`` through the model, rows into the store."""
    guard = CallGuard(task.staging, task.storage_options, task.token)
    guard.check()
    model = model_ref.build(task.device)
    renderer = copy.copy(renderer)  # threads of one worker share the scattered one
    renderer.restore(renderer_state)
    ledger = Ledger(task.n_components, task.max_dense_dim)
    writers = {}
    widths = {}  # each layer's width, as the driver's first batch gave it (the stored array's)
    for layer, path in task.paths.items():
        array = open_zarr_array(path, task.storage_options, "r+")
        widths[layer] = int(array.shape[1])
        writers[layer] = ShardWriter(array, guard)
        writers[layer].n_written = span.direct_start  # whole chunks from the shard's first one
    edges = EdgeRows(span)
    digests: list[str | None] = []
    labels: list[np.ndarray | None] = []
    tokens: list[np.ndarray] = []
    columns: list[tuple[dict[str, np.ndarray], int]] = []  # per batch: recorded columns, samples
    staging = as_location(task.staging, task.storage_options)
    render_name = f"{SHARD_PREFIX}{task.token}.{span.start}.renderings"
    render_sizes: list[int] | None = None
    render_counts: list[np.ndarray] = []  # samples per rendering (a per-token run's texts)
    device = torch.device(task.device)
    done = span.start
    render_file = None
    try:
        with (
            LayerCapture(
                model, task.refs, task.reducers, keep_output=outputs_recorded(task.outputs)
            ) as capture,
            torch.inference_mode(),
        ):
            for batch in shard_batches(data, task.batch_size, span):
                guard.check(force=False)
                digests.append(batch_digest(batch))
                labels.append(batch.labels)
                if batch.tokens is not None:
                    tokens.append(batch.tokens.columns())
                rendered = renderer.render(batch)
                if rendered is not None:
                    if render_file is None:
                        guard.check()
                        render_file = (staging / render_name).open("wb")
                        render_sizes = []
                    assert render_sizes is not None
                    render_file.write(b"".join(rendered))
                    render_sizes.extend(len(item) for item in rendered)
                    if renderer.last_counts is not None:
                        render_counts.append(renderer.last_counts)
                stats = input_columns(batch, renderer, rendered) if task.input_stats else {}
                outputs = capture.forward(batch, device)
                if task.outputs is not None:
                    scores = host_scores(capture.last_output, task.outputs, batch.size)
                    stats.update(score_columns(batch, scores, task.labels, done))
                columns.append((stats, batch.size))
                for layer, x in outputs.items():
                    rows = checked_rows(x, layer, done, task.storage_dtype, widths.get(layer))
                    ledger.accumulate(layer, x, rows)
                    direct = edges.split(layer, done, np.ascontiguousarray(rows, dtype=task.storage_dtype))
                    if len(direct):
                        writers[layer].append(direct)
                done += batch.size
    finally:
        if render_file is not None:
            render_file.close()
    for writer in writers.values():
        writer.close()
    if done != span.stop:
        raise RuntimeError(f"shard {span.start}..{span.stop} yielded {done - span.start} samples")
    guard.check()
    edge_name = f"{SHARD_PREFIX}{task.token}.{span.start}.rows"
    return {
        "start": span.start,
        "stop": span.stop,
        "states": {layer: acc.state() for layer, acc in ledger.accumulators.items()},
        "labels": labels,
        "tokens": np.concatenate(tokens) if tokens else None,
        "columns": columns,
        "digests": digests,
        "render_file": render_name,
        "render_sizes": None if render_sizes is None else np.asarray(render_sizes, dtype=np.int64),
        "render_counts": np.concatenate(render_counts) if render_counts else None,
        "render_kind": renderer.kind,
        "edge_file": edge_name,
        "edges": edges.save(staging / edge_name),
    }


def shard_batches(data: Any, batch_size: int, span: Span) -> Iterator[Batch]:
    """The batches of one shard: its batches of texts (text batches, per text or per token),
    else its samples."""
    if span.batches is None:
        return iter_batches(data, batch_size, span.start, span.stop)
    texts = text_batches_of(data)
    if texts is None:
        raise TypeError(f"a shard of batches of texts needs text batches, not {type(data).__name__}")
    return (parse_batch(raw) for raw in texts.batches(*span.batches))


class EdgeRows:
    """A shard's rows outside its direct range (:class:`Span`): another shard has rows in their
    chunks, so the driver writes them. At most a chunk per layer on each side is kept, then
    staged in one file of raw rows."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self._parts: dict[tuple[str, int], list[np.ndarray]] = {}  # (layer, first row): rows

    def split(self, layer: str, offset: int, rows: np.ndarray) -> np.ndarray:
        """Keep the rows of samples ``offset ..`` outside the direct range; return the others."""
        n = len(rows)
        head = min(max(self.span.direct_start - offset, 0), n)
        tail = min(max(self.span.direct_stop - offset, head), n)
        if head:
            self._parts.setdefault((layer, self.span.start), []).append(rows[:head])
        if tail < n:
            self._parts.setdefault((layer, self.span.direct_stop), []).append(rows[tail:])
        return rows[head:tail]

    def save(self, target: Location) -> list[tuple[str, int, int, int]]:
        """Write the kept rows to ``target`` (nothing when there are none); returns each piece as
        (layer, first row, rows, first byte)."""
        pieces: list[tuple[str, int, int, int]] = []
        if not self._parts:
            return pieces
        offset = 0
        with target.open("wb") as f:
            for (layer, first), parts in self._parts.items():
                block = np.concatenate(parts)
                f.write(block.tobytes())
                pieces.append((layer, first, len(block), offset))
                offset += block.nbytes
        self._parts.clear()
        return pieces


def staged_rows(
    source: Location,
    pieces: Sequence[tuple[str, int, int, int]],
    dims: Mapping[str, int],
    dtype: np.dtype[Any],
) -> Iterator[tuple[str, int, np.ndarray]]:
    """The rows :meth:`EdgeRows.save` staged in ``source``, as (layer, first row, rows) per piece.

    The file is read once, whole (one request on an object store, not one per piece): it holds
    at most a chunk per layer on each side of one shard, which that shard's worker held too."""
    blob = source.read_bytes()
    for layer, first, n_rows, begin in pieces:
        flat = np.frombuffer(blob, dtype=dtype, count=n_rows * dims[layer], offset=begin)
        yield layer, first, flat.reshape(n_rows, dims[layer])


class ShardWriter(RowWriter):
    """Rows of one shard, written only while its call is current (see :class:`CallGuard`)."""

    def __init__(self, array: Any, guard: CallGuard) -> None:
        super().__init__(array)
        self.guard = guard

    def _write(self, block: np.ndarray) -> None:
        self.guard.check()
        super()._write(block)


def score_shard(
    source: str,
    target: str,
    guard: tuple[str, StorageOptions, str],
    pca: PCAResult,
    start: int,
    stop: int,
) -> None:
    """On a worker: scores of samples ``[start, stop)``, one activation chunk at a time."""
    staging, storage_options, token = guard
    call = CallGuard(staging, storage_options, token)
    activations = open_zarr_array(source, storage_options, "r")
    scores = open_zarr_array(target, storage_options, "r+")
    rows = int(activations.chunks[0])
    for begin in range(start, stop, rows):
        end = min(begin + rows, stop)
        block = pca.transform(np.asarray(activations[begin:end])).astype(np.float32)
        call.check()
        scores[begin:end] = block
