"""One streaming pass over the data: hooks -> reduced rows -> moments, Zarr, renderings, labels.

Nothing here holds an (N, D) array: rows go to the Zarr store chunk by chunk, each layer keeps an
O(D^2) accumulator, and per-sample bookkeeping (labels, recorded columns, token columns) goes to
disk every ``checkpoint_rows`` samples, with the state (:mod:`resume`) at most every
``CHECKPOINT_SECONDS``, so memory stays flat and a run that stops part way continues from its
last checkpoint on the next call with the same arguments.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import resume
from .batches import Batch, iter_batches
from .capture import LayerCapture, LayerRef, forward_dtype
from .cores import available_cores
from .exceptions import EmbeddingExplorerError, NonFiniteActivationError
from .fingerprint import ContentHasher, identity_digest
from .heap import TRIM_GROWTH, release_freed_memory, reused_heap
from .inputstats import image_statistics, original_image_statistics, text_statistics
from .locations import Location
from .outputs import OutputsSpec, class_scores, output_columns
from .overlap import Background
from .pca import StreamingPCA
from .placement import is_placed
from .records import TEXT
from .reducers import Reducer
from .render import Renderer
from .store.format import chunk_rows
from .store.writer import RunWriter
from .threads import blas_threads

log = logging.getLogger(__name__)

FLOAT16_MAX = float(np.finfo(np.float16).max)
MOMENTS_QUEUE = 8  # layer batches waiting for the moments thread (a bound on the rows held,
# besides each layer's gathered block, GATHER_BYTES at most)
# a batch's layers' moments run side by side (not overlapped) from this many multiply-adds on:
# its rows times the sum of its layers' squared widths (moment_work; the work of the blocks the
# batch completes, about a batch's share of it, as rows are gathered). Below it, one thread:
# right after a forward pass torch's OpenMP threads spin on the other cores for a few ms, and
# handing them less work than that costs more than it saves (A/B on 2 cores, README: ResNet-18,
# 86 M, and the demo CNN, 170 M, 1.8% and 3.4% faster on one thread; four 1024-wide layers of
# 64 rows, 268 M, 14% faster side by side, four 2048-wide ones 42%)
SIDE_BY_SIDE_WORK = 1 << 28
GATHER_ROWS = 512  # a layer's host rows gathered into blocks of up to this many for its moments
GATHER_BYTES = 8 << 20  # ... and of at most this many float64 bytes (wide layers: fewer rows)
CHECKPOINT_SECONDS = 30.0
"""The least time between two durable checkpoints of a run; the points in between spill only.
A checkpoint stores the rows still pending in a partial chunk (rewritten once it fills), the
renderings and every layer's float64 accumulators: for a run of seconds that cost more than a
resume could save (per-token MiniLM, 600 texts: about 0.2 s of its 5 s went to two checkpoints).
A run that stops loses at most this much work besides the samples after its last checkpoint."""


@dataclass(kw_only=True)
class ExtractOptions:
    """What one extraction needs besides the model and the data (keywords only)."""

    refs: Sequence[LayerRef]
    reducers: Mapping[str, Reducer]
    renderer: Renderer
    batch_size: int
    n_components: int
    max_dense_dim: int
    storage_dtype: str = "float32"
    progress: bool = False
    name: str = ""
    n_known: int | None = None
    aligned: bool = False  # batches are batch_size long except the last (indexable data)
    dtype: str | None = None  # the forward pass's dtype (None: the model's own)
    input_stats: bool = False  # record inputstats columns
    outputs: OutputsSpec = None  # record the model's class scores (see outputs)
    labels: np.ndarray | None = None  # labels given to explore (for the loss)


@dataclass(frozen=True)
class Segment:
    """The per-sample bookkeeping of consecutive samples (one spilled segment, or the tail not
    spilled yet): ``labels`` (n,), recorded ``columns`` (n, len(column_names)) float64, and
    per-token runs' ``tokens`` (n, 3) text_id, position, token_id; None where there are none."""

    size: int
    labels: np.ndarray | None
    columns: np.ndarray | None
    tokens: np.ndarray | None


class Ledger:
    """Everything extraction accumulates besides the stored rows: per-layer moments, labels, the
    content hash (a chain of per-batch hashes, so it can be saved and resumed) and counts.

    Per-sample bookkeeping (labels, recorded columns, a per-token run's token columns) stays in
    memory only until the next :meth:`spill` (each checkpoint spills): it is then saved as one
    segment (:func:`.resume.save_segment`) in the run's checkpoint folder and dropped, so memory
    stays flat however many samples a run has; :meth:`segments` reads it back one at a time."""

    def __init__(self, n_components: int, max_dense_dim: int) -> None:
        self.n_components, self.max_dense_dim = n_components, max_dense_dim
        self._accumulators: dict[str, StreamingPCA] = {}
        self._gathered: dict[str, GatheredRows] = {}  # host rows not in their accumulator yet
        self.dims: dict[str, int] = {}
        self.n_done = 0
        self.segment = 0  # segments spilled so far
        self.saved_at = 0  # n_done of the last spill
        self.rows_per_chunk: int | None = None
        self.folder: Location | None = None  # where the segments are spilled
        self._labels: list[np.ndarray] = []  # not spilled yet, one array per batch
        self._tokens: list[np.ndarray] = []
        self._columns: list[np.ndarray] = []  # one (batch, len(column_names)) float64 block per batch
        self.n_labels = 0  # labels recorded, spilled or not
        self.batches_with_labels = 0
        self.batches_without_labels = 0
        self._chain = b""
        self._hash_complete = True
        self.column_names: list[str] | None = None  # per-sample columns recorded (inputstats, outputs)

    @classmethod
    def resumed(
        cls, checkpoint: resume.Checkpoint, n_components: int, max_dense_dim: int, folder: Location
    ) -> Ledger:
        """The ledger of a checkpoint saved in ``folder``: its segments stay there."""
        ledger = cls(n_components, max_dense_dim)
        ledger._accumulators = dict(checkpoint.accumulators)
        ledger.dims = dict(checkpoint.dims)
        ledger.n_done = ledger.saved_at = checkpoint.n_done
        ledger.segment = checkpoint.segment
        ledger.folder = folder
        ledger.rows_per_chunk = checkpoint.rows_per_chunk
        ledger.n_labels = checkpoint.rows.get("labels", 0)
        ledger.batches_with_labels = checkpoint.batches_with_labels
        ledger.batches_without_labels = checkpoint.batches_without_labels
        ledger._chain = bytes.fromhex(checkpoint.content_hash or "")
        if checkpoint.column_names:
            ledger.column_names = list(checkpoint.column_names)
        ledger._hash_complete = checkpoint.content_hash is not None
        return ledger

    # per batch -----------------------------------------------------------------------------
    def record(self, prepared: Prepared) -> None:
        """Add one batch's inputs (hash, labels, token columns) as :func:`prepare` found them."""
        self.add_digest(prepared.digest)
        self.add_labels(prepared.labels)
        if prepared.tokens is not None:
            self.add_tokens(prepared.tokens)

    def add_digest(self, digest: str | None) -> None:
        if digest is None:
            self._hash_complete = False
        elif self._hash_complete:
            chained = identity_digest()
            chained.update(self._chain + bytes.fromhex(digest))
            self._chain = chained.digest()

    def add_labels(self, labels: np.ndarray | None) -> None:
        if labels is None:
            self.batches_without_labels += 1
        else:
            self.batches_with_labels += 1
            self._labels.append(labels)
            self.n_labels += len(labels)

    def add_tokens(self, columns: np.ndarray) -> None:
        """Record the next token samples (a batch's, or a Dask shard's, merged in order):
        ``(n, 3)`` int text_id, position, token_id (:meth:`.tokens.TokenSelection.columns`)."""
        self._tokens.append(np.asarray(columns, dtype=np.int64).reshape(-1, 3))

    def add_columns(self, columns: Mapping[str, np.ndarray], size: int) -> None:
        """Record one batch's per-sample columns (the same names for every batch)."""
        names = sorted(columns)
        if self.column_names is None:
            self.column_names = names
        if names != self.column_names:
            raise EmbeddingExplorerError(
                f"the samples from {self.n_done} on record the columns {names}, those before "
                f"{self.column_names}; every batch must give the same inputs and outputs"
            )
        block = np.empty((size, len(names)), dtype=np.float64)
        for i, name in enumerate(names):
            block[:, i] = columns[name]
        self._columns.append(block)

    @property
    def accumulators(self) -> dict[str, StreamingPCA]:
        """Every layer's moments of all the rows accumulated so far (gathered rows added first)."""
        self.add_gathered()
        return self._accumulators

    def accumulate(self, layer: str, x: torch.Tensor, rows: np.ndarray | None) -> None:
        """Add a batch of a layer to its moments: ``x`` on a GPU or in float64, else ``rows``.

        Host rows of a layer with a covariance are gathered into blocks of up to
        ``GATHER_ROWS`` (:class:`GatheredRows`) and added a block at a time: one rank-k update
        of 512 rows costs a third of eight of 64 (measured: 11.6 ms against 31.2 ms for 1,536
        rows of a 512-wide layer, one BLAS thread). Blocks end where :meth:`add_gathered` is
        called too: at every checkpoint and spill mark, points fixed in the sample stream, so a
        resumed run adds the same blocks as one that never stopped."""
        acc = self._accumulators.get(layer)
        if acc is None:
            dim = int(x.shape[1])
            acc = self._accumulators[layer] = StreamingPCA(
                self.n_components, covariance=dim <= self.max_dense_dim
            )
        # on a GPU the moments accumulate there; on the CPU from the host rows (float64
        # outputs keep their precision for the statistics; storage is float32 or float16)
        host = None if x.is_cuda or x.dtype == torch.float64 else rows
        gathered = self._gathered.get(layer)
        if gathered is None and host is not None and acc.covariance and host.ndim == 2 and host.shape[1]:
            gathered = self._gathered[layer] = GatheredRows(int(host.shape[1]))
        if host is None or gathered is None or host.ndim != 2 or host.shape[1] != gathered.width:
            if gathered is not None:
                gathered.add_to(acc)  # the rows before go in first: partial_fit then names a change
            acc.partial_fit(x if host is None else host)  # refuses no features, or another width
            return
        if not gathered.fits(len(host)):
            gathered.add_to(acc)
        if len(host) >= gathered.capacity:  # a block of its own: no copy
            acc.partial_fit(host)
        else:
            gathered.append(host)

    def add_gathered(self, *, release: bool = False) -> None:
        """Add every layer's gathered rows to its moments (a block ends here); with ``release``
        (the stream has ended) let the blocks' memory go too."""
        for layer, gathered in self._gathered.items():
            gathered.add_to(self._accumulators[layer])
            if release:
                gathered.release()

    def merge(self, layer: str, state: Mapping[str, Any]) -> None:
        """Add a shard's accumulator (shards merged in sample order give the same numbers)."""
        shard = StreamingPCA.from_state(dict(state))
        accumulators = self.accumulators
        if layer in accumulators:
            accumulators[layer].merge(shard)
        else:
            accumulators[layer] = shard

    # results -------------------------------------------------------------------------------
    def segments(self, kinds: Collection[str] = resume.SAMPLE_KINDS) -> Iterator[Segment]:
        """The per-sample bookkeeping in sample order, one segment at a time: the spilled ones
        read back from disk, then the tail still in memory. Only the ``kinds`` asked for are
        read (the others are None, and a segment's size is that of those read)."""
        for i in range(1, self.segment + 1):
            assert self.folder is not None
            parts = {kind: resume.read_segment(self.folder, kind, i) for kind in kinds}
            yield _segment(parts.get("labels"), parts.get("columns"), parts.get("tokens"))
        tail = {"labels": self._labels, "columns": self._columns, "tokens": self._tokens}
        parts = {kind: _joined(tail[kind]) for kind in kinds}
        yield _segment(parts.get("labels"), parts.get("columns"), parts.get("tokens"))

    def labels(self) -> np.ndarray | None:
        self.check_labels()
        return _joined([s.labels for s in self.segments(["labels"]) if s.labels is not None])

    def check_labels(self) -> None:
        if self.batches_with_labels and self.batches_without_labels:
            raise EmbeddingExplorerError("some batches carry labels and others do not")

    def columns(self) -> dict[str, np.ndarray]:
        """The recorded per-sample columns, each of length ``n_done``."""
        table = _joined([s.columns for s in self.segments(["columns"]) if s.columns is not None])
        if not self.column_names or table is None:
            return {}
        return {name: table[:, i] for i, name in enumerate(self.column_names)}

    def content_hash(self) -> str | None:
        return self._chain.hex() if self._hash_complete and self._chain else None

    # spills and checkpoints ------------------------------------------------------------------
    def spill(self, writer: RunWriter, *, durable: bool = False) -> None:
        """Save the per-sample bookkeeping since the last spill as the next segment and drop it
        from memory, with the sizes of the renderings appended since the last spill (so every
        segment holds its own, and a checkpoint after spills that were not durable reads back
        whole). ``durable`` (a checkpoint): rows and renderings are made durable first, for a
        resume; otherwise they stay in the writer, which writes each chunk once."""
        render_bytes, sizes, counts = writer.flush(durable=durable)
        self.folder = resume.folder_of(writer.out)
        self.segment += 1
        resume.save_segment(
            self.folder,
            self.segment,
            {
                "labels": _joined(self._labels),
                "columns": _joined(self._columns),
                "tokens": _joined(self._tokens),
                "sizes": sizes if render_bytes or len(sizes) else None,
                "counts": counts,
            },
        )
        self._labels, self._columns, self._tokens = [], [], []
        self.saved_at = self.n_done
        release_freed_memory(grown=TRIM_GROWTH)

    def checkpoint(
        self,
        writer: RunWriter,
        key: str,
        renderer_state: Mapping[str, Any],
        accumulators: Mapping[str, StreamingPCA] | None = None,
    ) -> None:
        """Spill durably, then save where extraction stands (:mod:`.resume`): the renderer's
        state after the last sample recorded, and the accumulators as they were then (by
        default the ledger's own, which must hold those samples and no more)."""
        self.spill(writer, durable=True)
        assert self.folder is not None
        resume.save(
            self.folder,
            resume.Checkpoint(
                key=key,
                n_done=self.n_done,
                segment=self.segment,
                rows_per_chunk=int(self.rows_per_chunk or 0),
                dims=self.dims,
                render_bytes=writer.render_bytes,
                renderer=dict(renderer_state),
                content_hash=self._chain.hex() if self._hash_complete else None,
                batches_with_labels=self.batches_with_labels,
                batches_without_labels=self.batches_without_labels,
                accumulators=dict(self.accumulators if accumulators is None else accumulators),
                column_names=list(self.column_names or []),
            ),
        )


class GatheredRows:
    """One layer's host rows waiting to be added to its moments as one block: a float64 copy
    of up to ``GATHER_ROWS`` rows (fewer for wide layers: ``GATHER_BYTES`` at most). A copy,
    since the rows handed over live in memory the next forward pass reuses."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.capacity = max(1, min(GATHER_ROWS, GATHER_BYTES // (8 * width)))
        self._block: np.ndarray | None = None
        self.count = 0

    def fits(self, rows: int) -> bool:
        return self.count + rows <= self.capacity

    def append(self, rows: np.ndarray) -> None:
        if self._block is None:
            self._block = np.empty((self.capacity, rows.shape[1]), dtype=np.float64)
        self._block[self.count : self.count + len(rows)] = rows
        self.count += len(rows)

    def add_to(self, acc: StreamingPCA) -> None:
        """Add the rows gathered to ``acc``, and start a new block."""
        count, self.count = self.count, 0
        if count and self._block is not None:
            acc.partial_fit(self._block[:count])

    def release(self) -> None:
        """Let the block's memory go (no rows may be waiting)."""
        assert self.count == 0
        self._block = None


def _joined(parts: Sequence[np.ndarray]) -> np.ndarray | None:
    return None if not parts else parts[0] if len(parts) == 1 else np.concatenate(parts)


def _segment(labels: np.ndarray | None, columns: np.ndarray | None, tokens: np.ndarray | None) -> Segment:
    sizes = [len(v) for v in (labels, columns, tokens) if v is not None]
    return Segment(max(sizes, default=0), labels, columns, tokens)


def batch_digest(batch: Batch) -> str | None:
    hasher = ContentHasher()
    hasher.update(batch.inputs, batch.labels)
    return hasher.hexdigest()


def rows_per_chunk(dims: Mapping[str, int], batch_size: int | None, n_samples: int | None = None) -> int:
    """One chunk height for every layer of a run: about ``CHUNK_BYTES`` of its widest layer,
    rounded up to whole batches when batches are regular (so shards and checkpoints that are
    whole chunks are whole batches too), but never taller than the run's ``n_samples`` where
    known (a Zarr chunk at the edge is stored whole: 1,536 samples of a 512-wide layer took
    4,096 rows on disk, all written when the run ended, and 10 samples in a batch of 16,384 a
    chunk of 16,384)."""
    rows = chunk_rows(max(dims.values()))
    if batch_size is not None:
        rows = math.ceil(rows / batch_size) * batch_size
    # a run within one chunk is one chunk of its size, however large its one batch may be
    return min(rows, n_samples) if n_samples is not None and n_samples > 0 else rows


def checkpoint_rows(dims: Mapping[str, int], rows: int, max_dense_dim: int, itemsize: int) -> int:
    """Samples between checkpoints: whole chunks, and at least as many bytes of rows as the
    accumulators saved with each checkpoint (so checkpoints at most double the writes)."""
    state = sum(8 * d * d if d <= max_dense_dim else 16 * d for d in dims.values())
    per_chunk = rows * itemsize * sum(dims.values())
    return rows * max(1, math.ceil(state / max(per_chunk, 1)))


def extract_stream(
    model: nn.Module | None,
    data: Any,
    opts: ExtractOptions,
    writer: RunWriter,
    device: torch.device,
    ledger: Ledger,
    resume_key: str | None,
) -> float:
    """Run the model over the data (from ``ledger.n_done`` on); returns the seconds it took."""
    start = time.perf_counter()
    with (
        evaluating(model, device),
        LayerCapture(
            model,
            opts.refs,
            opts.reducers,
            forward_dtype(opts.dtype),
            keep_output=outputs_recorded(opts.outputs),
        ) as capture,
        torch.inference_mode(),
    ):
        batches = iter_batches(data, opts.batch_size, start=ledger.n_done)
        stream_rows(
            batches,
            lambda batch: capture.forward(batch, device),
            opts,
            writer,
            ledger,
            resume_key,
            model_output=(lambda: capture.last_output) if opts.outputs is not None else None,
            overlap=overlaps(device),
            copied=device.type != "cpu",  # the model sees a copy of the inputs: they can be read later
        )
    return time.perf_counter() - start


@dataclass(frozen=True)
class Prepared:
    """One batch's inputs as recorded before the model runs (it may change them in place):
    what the ledger and the writer take when the batch is consumed, in batch order."""

    digest: str | None
    labels: np.ndarray | None
    tokens: np.ndarray | None  # a per-token run's (n, 3) token columns
    rendered: list[bytes] | None
    counts: np.ndarray | None  # samples per rendering (None: one each)
    renderer_state: dict[str, Any]  # the renderer's state once this batch is rendered
    columns: dict[str, np.ndarray]  # the renderings' input statistics (``input_stats``)


def prepare(batch: Batch, renderer: Renderer, input_stats: bool) -> Prepared:
    """Hash and render one batch's inputs, and take their input statistics (with ``input_stats``);
    the ledger and the writer are left as they are (:class:`Prepared` is applied later)."""
    rendered = renderer.render(batch)
    return Prepared(
        digest=batch_digest(batch),
        labels=batch.labels,
        tokens=None if batch.tokens is None else batch.tokens.columns(),
        rendered=rendered,
        counts=renderer.last_counts,
        renderer_state=renderer.state(),
        columns=input_columns(batch, renderer, rendered) if input_stats else {},
    )


@dataclass(frozen=True)
class Consumed:
    """What the consumer of a batch gets from the forward pass."""

    batch: Batch
    offset: int  # the batch's first sample
    outputs: Mapping[str, torch.Tensor]  # the layers' rows
    prepared: Prepared | None  # None: prepared by the consumer (the model saw a copy of the inputs)
    accumulated: bool  # the moments were accumulated already (on the device)
    scores: torch.Tensor | None  # the model's class scores, on the host (they become columns)
    save: Literal["checkpoint", "spill"] | None  # what is saved once this batch is consumed
    moments: dict[str, StreamingPCA] | None  # the accumulators as of this batch (device, checkpoint)


def stream_rows(
    batches: Iterable[Batch],
    rows_of: Callable[[Batch], Mapping[str, torch.Tensor]],
    opts: ExtractOptions,
    writer: RunWriter,
    ledger: Ledger,
    resume_key: str | None,
    *,
    model_output: Callable[[], Any] | None = None,
    overlap: bool = False,
    copied: bool = False,
) -> None:
    """For each batch: record its inputs and labels, render it, store the rows ``rows_of`` gives
    for it (``{layer: (batch, D) tensor}``), accumulate their moments, checkpoint every so often.

    :func:`extract_stream` gets the rows from a model's hooks; ``ee.from_arrays`` reads them from
    arrays the user already has (:mod:`embedding_explorer.arrays`). ``model_output()`` is the
    model's output for the batch just run (its class scores are recorded, :mod:`.outputs`); the
    renderings' input statistics are recorded with ``opts.input_stats``. With ``overlap`` the work
    after ``rows_of`` (checks, moments, writes; and hashing and rendering too when the inputs
    were ``copied`` to a device) runs in a background thread beside the next ``rows_of``, the
    moments on a second one; without, a batch's layers' moments run side by side on one thread
    per core while its rows are written, where they are work enough (``SIDE_BY_SIDE_WORK``).

    Checkpoints and spills are points in the stream: the batch after which one falls carries
    the mark, and whoever consumes the batches (the background thread, overlapped) takes it
    once that batch is consumed, with the renderer's state :func:`prepare` saw then, while the
    forward passes go on. So a checkpoint holds exactly the batches consumed before it."""
    renderer = opts.renderer
    every = None
    if ledger.rows_per_chunk is not None:  # resumed: the writer has the layout already
        every = checkpoint_rows(ledger.dims, ledger.rows_per_chunk, opts.max_dense_dim, _itemsize(opts))
    bar = tqdm(
        total=opts.n_known,
        initial=ledger.n_done,
        unit="sample",
        unit_scale=True,
        desc=f"extract {opts.name}",
        disable=not opts.progress,
    )
    seen = ledger.n_done  # samples that went through the model (the background may lag behind)
    marked = ledger.saved_at  # the last checkpoint or spill marked in the stream
    checkpoint_clock = Interval(CHECKPOINT_SECONDS)

    def consume(item: Consumed) -> None:
        """Everything after the forward pass, in batch order: the inputs' records, checks,
        moments, writes; then the checkpoint or spill the batch carries."""
        batch, offset, outputs, accumulated = item.batch, item.offset, item.outputs, item.accumulated
        prepared = item.prepared or prepare(batch, renderer, opts.input_stats)
        ledger.record(prepared)
        if prepared.rendered is not None:
            writer.append_renderings(prepared.rendered, prepared.counts)
        # every layer checked before the moments start (the checks then never wait for the GIL
        # that the moments' threads take), the widest layer's moments first
        checked = {
            layer: checked_rows(x, layer, offset, opts.storage_dtype, ledger.dims.get(layer))
            for layer, x in outputs.items()
        }
        layers_done = []
        pool = (  # the threads this batch's layers share, where they are work enough
            layers
            if layers is not None and moment_work(outputs, opts.max_dense_dim) >= SIDE_BY_SIDE_WORK
            else None
        )
        for layer, x in sorted(outputs.items(), key=lambda item: -item[1].shape[1]):
            rows = checked[layer]
            if moments is not None and not accumulated:  # their own thread, beside the writes
                moments.submit((layer, x, rows))
            elif pool is not None and not accumulated:  # the layers side by side
                layers_done.append(pool.submit(ledger.accumulate, layer, x, rows))
            elif not accumulated:
                ledger.accumulate(layer, x, rows)
        for layer, rows in checked.items():
            writer.append_activations(layer, rows)
        for done in layers_done:  # the next forward pass gets the cores back
            done.result()
        recorded = score_columns(batch, item.scores, opts.labels, offset)
        columns = {**prepared.columns, **recorded}
        if columns or ledger.column_names:  # a batch that records none of them is refused by name
            ledger.add_columns(columns, batch.size)
        ledger.n_done += batch.size
        bar.update(batch.size)
        if item.save is not None:  # a block of gathered rows ends at each mark (Ledger.accumulate)
            if moments is not None:
                moments.submit(None)
            else:
                ledger.add_gathered()
        if item.save == "checkpoint" and resume_key is not None:
            if moments is not None:
                moments.drain()  # the moments of the batches consumed (only this thread submits)
            ledger.checkpoint(writer, resume_key, prepared.renderer_state, item.moments)
        elif item.save is not None:
            ledger.spill(writer)

    # one owner of the cores at a time: numpy's BLAS stays on one thread while torch computes
    # (two pools spinning on the same cores slow both down several times). Overlapped, the
    # float64 moments (a rank-k update per layer per block of rows, as costly as a small
    # model's forward pass) run on a thread of their own beside the background's checks and
    # writes, each with that one BLAS thread, so they no longer wait behind the writes' disk
    # waits (README, Performance: a median 0.89x over ten A/B pairs of bench_scale under load,
    # unproven). Not overlapped, torch's threads wait while a batch is consumed: its layers'
    # moments then run side by side on one thread per core (one BLAS thread each) beside the
    # writes where they are work enough, and the next forward pass starts once they are done
    # (not BLAS on every core: its threads spin after each call, and the demo CNN ran 1.6x slower)
    with (
        blas_threads(1),
        reused_heap(),  # the forward passes' activations reuse the last batch's pages (.heap)
        bar,
        Background(
            lambda item: ledger.add_gathered() if item is None else ledger.accumulate(*item),
            depth=MOMENTS_QUEUE,
            name="ee-moments",
        )
        if overlap
        else contextlib.nullcontext() as moments,
        ThreadPoolExecutor(available_cores(), thread_name_prefix="ee-moments")
        if not overlap and available_cores() > 1
        else contextlib.nullcontext() as layers,
        Background(consume) if overlap else contextlib.nullcontext() as background,
    ):
        for batch in batches:
            early = not (overlap and copied)
            prepared = prepare(batch, renderer, opts.input_stats) if early else None
            outputs = rows_of(batch)
            # the class scores copied off the output now (the next pass may reuse its memory, and
            # the rest of it, a model's caches, need not live on); their columns made by the consumer
            scores = host_scores(model_output(), opts.outputs, batch.size) if model_output else None
            if ledger.rows_per_chunk is None:  # the first batch decides the layout
                ledger.dims = {layer: int(x.shape[1]) for layer, x in outputs.items()}
                batch_size = opts.batch_size if opts.aligned else None
                ledger.rows_per_chunk = rows_per_chunk(ledger.dims, batch_size, opts.n_known)
                writer.layout(ledger.dims, ledger.rows_per_chunk)
                every = checkpoint_rows(
                    ledger.dims, ledger.rows_per_chunk, opts.max_dense_dim, _itemsize(opts)
                )
            save: Literal["checkpoint", "spill"] | None = None
            # none at the run's last batch (where its size is known): its finish follows at once
            last = opts.n_known is not None and seen + batch.size >= opts.n_known
            if every and seen + batch.size - marked >= every and not last:
                marked = seen + batch.size
                save = "spill"
                if resume_key is not None and checkpoint_clock.due():
                    save = "checkpoint"
                    checkpoint_clock.reset()
            if background is None:
                consume(Consumed(batch, seen, outputs, prepared, False, scores, save, None))
            else:
                on_device = all(moments_on_device(x) for x in outputs.values())
                snapshot = None
                if on_device:  # the moments accumulate on the GPU, then the rows come to the host
                    for layer, x in outputs.items():
                        check_finite(x, layer, seen)
                        ledger.accumulate(layer, x, None)
                    outputs = {layer: host_rows(x) for layer, x in outputs.items()}
                    if save == "checkpoint":  # later batches accumulate before it is saved
                        snapshot = {
                            layer: StreamingPCA.from_state(acc.state())
                            for layer, acc in ledger.accumulators.items()
                        }
                background.submit(Consumed(batch, seen, outputs, prepared, on_device, scores, save, snapshot))
            seen += batch.size
    ledger.add_gathered(release=True)  # every batch consumed: the last blocks, then their memory
    writer.finish_activations()


class Interval:
    """Whether ``seconds`` have passed since it was made or last :meth:`reset`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.reset()

    def reset(self) -> None:
        self._since = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self._since >= self.seconds


def moment_work(outputs: Mapping[str, torch.Tensor], max_dense_dim: int) -> int:
    """The multiply-adds of one batch's moments: each layer's rows times its width squared (its
    covariance), or times its width where it is wider than ``max_dense_dim`` (means and
    variances only). Rows gathered into blocks (:class:`GatheredRows`) are added when a block
    is full, so a batch's share of that work is paid every few batches, all at once."""
    work = 0
    for x in outputs.values():
        rows, width = int(x.shape[0]), int(x.shape[1])
        work += rows * width * (width if width <= max_dense_dim else 1)
    return work


def overlaps(device: torch.device) -> bool:
    """Whether the CPU-side work of a batch runs in a background thread beside the next forward
    pass: on an accelerator (the CPU would otherwise wait for it, then it for the CPU), or on the
    CPU when torch's threads leave a core idle. Otherwise it would only take cores from torch."""
    if device.type != "cpu":
        return True
    return torch.get_num_threads() < available_cores()


def moments_on_device(x: torch.Tensor) -> bool:
    """Whether a layer's rows are on a GPU: overlapped, their moments then accumulate there, on
    the forward pass's thread, before the rows come to the host."""
    return bool(x.is_cuda)


def host_rows(x: torch.Tensor) -> torch.Tensor:
    """A layer's rows copied to the host, float32 (float64 stays)."""
    return x.detach().cpu() if x.dtype == torch.float64 else x.detach().float().cpu()


def outputs_recorded(spec: OutputsSpec) -> Callable[[Any], bool] | None:
    """Given the first batch's model output, whether the run records it (``outputs=spec``):
    then every forward pass runs the whole model (no early stop after the last hooked layer)."""
    if spec is None:
        return None
    return lambda output: spec != "auto" or class_scores(output, spec) is not None


def input_columns(
    batch: Batch, renderer: Renderer, rendered: Sequence[bytes] | None
) -> dict[str, np.ndarray]:
    """The input statistics of one batch's renderings: images as rendered, or texts (see
    :mod:`.inputstats`); none where the batch has no such rendering."""
    if renderer.last_columns is not None:  # taken where the batch was rendered
        return renderer.last_columns
    if renderer.loaded_without_stats:  # nothing here to take them from: the images stayed there
        raise EmbeddingExplorerError(
            "the loader rendered its batches without input statistics "
            "(decoded_once(..., input_stats=False)): make it with input_stats=True, "
            "or pass input_stats=False to explore"
        )
    if renderer.last_pixels is not None:
        # on torch's threads: between two forward passes (or beside a GPU's) those cores are idle
        workers = torch.get_num_threads()
        return image_statistics(renderer.last_pixels, workers=workers, scratch=renderer.scratch)
    if renderer.last_images:
        return original_image_statistics(renderer.last_images)
    if rendered is not None and renderer.kind == TEXT:
        ids = batch.inputs.get("input_ids") if isinstance(batch.inputs, Mapping) else None
        length = int(ids.shape[1]) if isinstance(ids, torch.Tensor) and ids.ndim == 2 else None
        if batch.tokens is not None:  # a per-token run: each token gets its text's statistics
            per_text = text_statistics(list(batch.tokens.texts), batch.attention_mask, length)
            return {name: values[batch.tokens.rows] for name, values in per_text.items()}
        texts = [item.decode(errors="replace") for item in rendered]
        return text_statistics(texts, batch.attention_mask, length)
    return {}


def host_scores(output: Any, spec: OutputsSpec, batch_size: int) -> torch.Tensor | None:
    """A copy on the host, float64, of the class scores (``outputs=spec``) in one batch's
    model ``output`` (see :mod:`.outputs`); None when there are none to record (or the pass
    stopped early: no class scores were asked for)."""
    scores = class_scores(output, spec, batch_size) if output is not None else None
    return None if scores is None else scores.detach().to("cpu", torch.float64, copy=True)


def score_columns(
    batch: Batch, scores: torch.Tensor | None, given: np.ndarray | None, offset: int
) -> dict[str, np.ndarray]:
    """The columns (:func:`.outputs.output_columns`) of one batch's class ``scores`` (None:
    none); the loss is against the labels ``given`` to explore, else the batch's own."""
    if scores is None:
        return {}
    labels = batch.labels
    if given is not None:
        labels = given[offset : offset + batch.size]
    return output_columns(scores, None if labels is None else np.asarray(labels))


def checked_rows(
    x: torch.Tensor, layer: str, offset: int, storage_dtype: str, width: int | None = None
) -> np.ndarray:
    """A layer's rows on the host as float32 (float64 stays), refused when they have no
    features or another ``width`` than the earlier batches', when not finite or, for float16
    storage, beyond float16's range; errors name the layer and the first bad sample."""
    if x.shape[1] == 0 or (width is not None and x.shape[1] != width):
        had = f"its earlier batches had {width} features" if width else "PCA needs at least one feature"
        raise EmbeddingExplorerError(
            f"layer {layer!r} gave rows of shape {tuple(x.shape)} for the samples from {offset} on; {had}"
        )
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not x.requires_grad:
        rows = x.numpy()  # as it is: each torch call lets go of the GIL and waits to get it back
    else:
        rows = x.detach().cpu().numpy() if x.dtype == torch.float64 else x.detach().float().cpu().numpy()
    check_finite(x if x.is_cuda else rows, layer, offset)
    if storage_dtype == "float16":
        too_big = np.abs(rows).max(axis=1) > FLOAT16_MAX
        if too_big.any():
            row = int(np.flatnonzero(too_big)[0])
            value = float(rows[row].reshape(-1)[np.argmax(np.abs(rows[row]))])  # with its sign
            raise EmbeddingExplorerError(
                f"layer {layer!r} has the value {value:.6g} for sample "
                f"{offset + row}, beyond float16's range (65504); use storage_dtype='float32'"
            )
    return rows


def check_finite(x: torch.Tensor | np.ndarray, layer: str, offset: int) -> None:
    """Refuse NaN/Inf, naming the layer and the first bad sample."""
    if isinstance(x, np.ndarray):
        if np.isfinite(x).all():
            return
        row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        kind = "NaN" if np.isnan(x[row]).any() else "Inf"
    else:
        finite = torch.isfinite(x).all(dim=1)
        if bool(finite.all()):
            return
        row = int((~finite).nonzero()[0, 0])
        kind = "NaN" if bool(torch.isnan(x[row]).any()) else "Inf"
    raise NonFiniteActivationError(
        f"layer {layer!r} produced {kind} for sample {offset + row}; "
        "check the input of that sample and the model's numerics"
    )


@contextlib.contextmanager
def evaluating(model: nn.Module | None, device: torch.device) -> Iterator[None]:
    """Eval mode (and the device) for the duration; every module's own flag restored after.

    A model placed by accelerate or on ``meta`` (:mod:`.placement`) is never moved: its hooks
    bring each module's weights to its execution device."""
    if model is None:
        yield
        return
    modes = {m: m.training for m in model.modules()}
    original = None if is_placed(model) else next((p.device for p in model.parameters()), None)
    moved = original is not None and original != device
    if moved:
        model.to(device)
    model.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training
        if moved and original is not None:
            model.to(original)


def _itemsize(opts: ExtractOptions) -> int:
    return int(np.dtype(opts.storage_dtype).itemsize)
