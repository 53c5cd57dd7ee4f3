"""Extraction on a Dask cluster: shards of sample ids, mergeable accumulators, parallel scores.

The driver splits the samples into shards of whole Zarr chunks (so no two workers ever write the
same chunk), and each worker builds the model (a pickled module, a factory or a TorchScript
file) once per thread, runs its shard, writes its slice of the activations and its renderings
(one file per shard in the staging folder) and returns its accumulators, labels, recorded
columns (input statistics, model outputs), rendering sizes and per-batch hashes. The driver
merges them in shard order, exactly as one process would have met the samples, checkpointing
after each (a stopped cluster run resumes too), then finishes the PCA; workers compute the
scores of their shards chunk by chunk.

Batches restart at each shard, so shards are whole batches: their rows equal a single process's.
Over text batches a shard is a range of batches of texts, split by their counts of samples
(texts; in a per-token run the tokenizer's counts, run on the driver with no model), so its
sample range seldom starts or ends on a chunk boundary: its
worker writes the chunks it alone covers and stages the rows of the chunks it shares with a
neighbour, which the driver writes as it merges the shards in order (:class:`~.shards.Span`).
Each call writes a fresh token into the staging folder and every shard carries it: a shard left
running by a failed call finds another token (or none) and writes nothing more. This module is
the driver (:class:`Cluster`); what the workers run is :mod:`.shards`.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import cloudpickle
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .batches import iter_batches
from .capture import LayerCapture
from .exceptions import EmbeddingExplorerError
from .extract import ExtractOptions, Ledger, evaluating, rows_per_chunk
from .fingerprint import model_fingerprint
from .locations import Location, as_location, is_local
from .models import ModelSpec
from .pca import PCAResult
from .shards import (
    CALL_FILE,
    SHARD_PREFIX,
    ModelSource,
    ShardTask,
    Span,
    extract_shard,
    score_shard,
    staged_rows,
)
from .store.format import ARRAYS
from .store.writer import RunWriter
from .tokens import text_batches_of

if TYPE_CHECKING:
    from distributed import Client, Future

SHARDS_PER_WORKER = 4  # enough shards to balance uneven workers, few enough to merge cheaply
RENDER_PIECE_BYTES = 8 << 20  # the driver copies a shard's renderings in pieces of about this
SETTLE_S = 60.0  # how long a failed call waits for its running shards to stop


class Cluster:
    """One run's extraction and scoring on the workers of ``client``."""

    def __init__(
        self,
        client: Client,
        spec: ModelSpec,
        built: nn.Module | None,
        data: Any,
        opts: ExtractOptions,
        writer: RunWriter,
        device: torch.device,
    ) -> None:
        if urlparse(writer.out.url).scheme == "memory":
            raise EmbeddingExplorerError(
                f"out={writer.out.url!r} lives in this process's memory, which Dask workers cannot "
                "see; with client= write the run to a local path every worker shares or a shared store"
            )
        self.client, self.built, self.data, self.opts, self.writer = client, built, data, opts, writer
        self.device = str(device)
        # a module travels as cloudpickle bytes (Dask's own handling of a scattered module loses
        # its hook dicts' type); a factory or a file is sent as it is and built on the worker
        payload = cloudpickle.dumps(spec) if isinstance(spec, nn.Module) else None
        self.model_ref = ModelSource(
            None if payload else spec, model_fingerprint(built)["fingerprint"], payload
        )
        self.shard_rows = 0
        self.n_samples = int(opts.n_known or 0)
        self.staging = _absolute(writer.staging.url)
        self.token = uuid.uuid4().hex

    def extract(self, ledger: Ledger, resume_key: str | None) -> float:
        """Run every shard not yet done; merge in order into ``ledger``. Returns seconds."""
        started = time.perf_counter()
        opts, renderer = self.opts, self.opts.renderer
        counts = None
        if text_batches_of(self.data) is not None:  # per token, N from the tokenizer
            counts = self.data.batch_counts()
            self.n_samples = int(counts.sum())
            if self.n_samples < 2:
                raise EmbeddingExplorerError(f"data has {self.n_samples} samples; PCA needs at least 2")
        workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        per_shard = math.ceil(self.n_samples / (SHARDS_PER_WORKER * workers))
        batch = opts.batch_size if opts.aligned else None
        if ledger.rows_per_chunk is None:
            ledger.dims = self._probe()
            ledger.rows_per_chunk = _capped_rows(rows_per_chunk(ledger.dims, batch), per_shard, batch)
        rows = ledger.rows_per_chunk
        self.writer.layout(ledger.dims, rows, n_rows=self.n_samples)
        self.shard_rows = rows * max(1, per_shard // rows)
        if counts is None:
            spans = [
                Span.of(start, min(start + self.shard_rows, self.n_samples), rows, self.n_samples)
                for start in range(ledger.n_done, self.n_samples, self.shard_rows)
            ]
        else:
            spans = batch_spans(counts, ledger.n_done, per_shard, rows)
        self._location(CALL_FILE).write_json(self.token)
        paths = {layer: _absolute(self.writer.activation_path(layer)) for layer in ledger.dims}
        task = ShardTask(
            refs=opts.refs,
            reducers=opts.reducers,
            batch_size=opts.batch_size,
            n_components=opts.n_components,
            max_dense_dim=opts.max_dense_dim,
            storage_dtype=opts.storage_dtype,
            device=self.device,
            paths=paths,
            storage_options=dict(self.writer.storage_options or {}),
            staging=self.staging,
            token=self.token,
            input_stats=opts.input_stats,
            outputs=opts.outputs,
            labels=opts.labels,
        )
        # fresh keys per call: content-hashed ones would be shared with a failed call's
        # shards, whose cancellation releases them ("lost dependencies")
        shared = self.client.scatter(  # type: ignore[no-untyped-call]
            [self.model_ref, self.data, task, renderer], broadcast=True, hash=False
        )
        state = renderer.state()
        futures: list[Future[dict[str, Any]] | None] = [
            self.client.submit(extract_shard, *shared, {**state, "seen": span.start}, span, pure=False)
            for span in spans
        ]
        bar = tqdm(
            total=self.n_samples,
            initial=ledger.n_done,
            unit="sample",
            unit_scale=True,
            desc=f"extract {opts.name} on {workers} workers",
            disable=not opts.progress,
        )
        with self._settled(futures), bar:
            for i, future in enumerate(futures):
                assert future is not None
                result = future.result()
                futures[i] = None  # the worker may free it
                self._merge(ledger, result)
                bar.update(result["stop"] - result["start"])
                if resume_key is not None:
                    ledger.checkpoint(self.writer, resume_key, renderer.state())
        return time.perf_counter() - started

    @contextlib.contextmanager
    def _settled(self, futures: list[Future[Any] | None]) -> Iterator[None]:
        """On an error: withdraw this call's token (its shards stop at their next batch), wait
        (bounded) for the shards still running, then cancel what is left, so none of them
        writes into a later call's run at the same place."""
        try:
            yield
        except BaseException:
            # the error that stopped the call is what the caller must see, not a cleanup's
            with contextlib.suppress(Exception):
                self._location(CALL_FILE).remove()
            live = [f for f in futures if f is not None]
            if live:
                from distributed import wait

                with contextlib.suppress(Exception):
                    wait(live, timeout=SETTLE_S)  # type: ignore[no-untyped-call]
                with contextlib.suppress(Exception):
                    self.client.cancel(live)  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                self._remove_shard_files()
            raise

    def _probe(self) -> dict[str, int]:
        """Run the first batch here: the layers' widths (the store's layout) and the renderer's
        value range, which every worker must share for renderings to match one pass."""
        opts, renderer = self.opts, self.opts.renderer
        batch = next(iter_batches(self.data, opts.batch_size, 0, opts.batch_size))
        device = torch.device(self.device)
        with (
            evaluating(self.built, device),
            LayerCapture(self.built, opts.refs, opts.reducers) as capture,
            torch.inference_mode(),
        ):
            outputs = capture.forward(batch, device)
        state = renderer.state()
        renderer.render(batch)
        renderer.restore({**renderer.state(), "seen": state["seen"]})
        return {layer: int(x.shape[1]) for layer, x in outputs.items()}

    def _merge(self, ledger: Ledger, result: Mapping[str, Any]) -> None:
        if result["start"] != ledger.n_done:
            raise RuntimeError(f"shard at {result['start']} merged after {ledger.n_done} samples")
        for digest in result["digests"]:
            ledger.add_digest(digest)
        for labels in result["labels"]:
            ledger.add_labels(labels)
        if result["tokens"] is not None:
            ledger.add_tokens(result["tokens"])
        for columns, size in result["columns"]:
            if columns or ledger.column_names:  # a batch that records none of them is refused by name
                ledger.add_columns(columns, size)
        for layer, state in result["states"].items():
            ledger.merge(layer, state)
        if result["edges"]:
            self._write_edges(result["edge_file"], result["edges"], ledger.dims)
        if result["render_sizes"] is not None:
            self._copy_renderings(result["render_file"], result["render_sizes"], result["render_counts"])
        renderer = self.opts.renderer
        renderer.restore({**renderer.state(), "seen": result["stop"], "kind": result["render_kind"]})
        ledger.n_done = result["stop"]

    def _write_edges(
        self, name: str, pieces: list[tuple[str, int, int, int]], dims: Mapping[str, int]
    ) -> None:
        """Write a shard's staged rows: those of the chunks it shares with its neighbours (the
        driver alone writes these chunks, shard after shard, so no two writers meet)."""
        source = self._location(name)
        for layer, first, rows in staged_rows(source, pieces, dims, np.dtype(self.opts.storage_dtype)):
            self.writer.put_activations(layer, first, rows)
        source.remove()

    def _copy_renderings(self, name: str, sizes: np.ndarray, counts: np.ndarray | None) -> None:
        """Append a shard's renderings from its file, a bounded piece at a time (with ``counts``,
        each shared by that many consecutive samples: a per-token run's texts)."""
        source = self._location(name)
        ends = np.cumsum(sizes)
        first = 0
        while first < len(sizes):
            begin = int(ends[first] - sizes[first])
            last = max(first + 1, int(np.searchsorted(ends, begin + RENDER_PIECE_BYTES, side="right")))
            blob = source.read_bytes(begin, int(ends[last - 1]))
            cuts = ends[first:last] - begin
            self.writer.append_renderings(
                [blob[int(a) : int(b)] for a, b in zip(np.concatenate([[0], cuts[:-1]]), cuts, strict=True)],
                None if counts is None else counts[first:last],
            )
            first = last
        source.remove()

    def write_scores(self, writer: RunWriter, layer: str, pca: PCAResult, n: int) -> None:
        """Scores of every shard on the workers, chunk by chunk from the stored activations."""
        scores = writer.scores_array(layer, n, len(pca.components), rows=self.shard_rows)
        source = _absolute(writer.activation_path(layer))
        target = _absolute((writer.staging / ARRAYS / scores.path).url)
        guard = (self.staging, writer.storage_options, self.token)
        futures: list[Future[Any] | None] = [
            self.client.submit(score_shard, source, target, guard, pca, start, stop, pure=False)
            for start in range(0, n, self.shard_rows)
            for stop in [min(start + self.shard_rows, n)]
        ]
        with self._settled(futures):
            self.client.gather(futures)  # type: ignore[no-untyped-call]
        if layer == list(writer.keys)[-1]:  # the last layer's scores: this call's shards are done
            self._remove_shard_files()

    def _location(self, name: str) -> Location:
        return as_location(self.staging, self.writer.storage_options) / name

    def _remove_shard_files(self) -> None:
        staging = as_location(self.staging, self.writer.storage_options)
        for name in staging.names():
            if name.startswith(SHARD_PREFIX):
                (staging / name).remove()


def _capped_rows(rows: int, per_shard: int, batch: int | None) -> int:
    """Chunk height on a cluster: at most a shard's share (so a narrow layer's large chunks still
    make several shards per worker), in whole batches of ``batch`` samples when batches are
    regular."""
    if rows <= per_shard:
        return rows
    return max(1, per_shard) if batch is None else batch * max(1, math.ceil(per_shard / batch))


def batch_spans(counts: np.ndarray, done: int, per_shard: int, rows: int) -> list[Span]:
    """Shards of a run over text batches from sample ``done`` on: runs of whole batches of texts
    of at least ``per_shard`` samples each (the last may have fewer), given each batch's count of
    samples (texts, or tokens in a per-token run).

    A shard's first batch is the first that starts at its first sample, so a batch of no tokens
    (only empty texts, special tokens skipped) goes with the shard after a boundary: a resumed
    run finds the batch it stopped before from the samples done alone."""
    starts = np.concatenate([[0], np.cumsum(counts)])
    n_samples = int(starts[-1])
    first = int(np.searchsorted(starts, done, side="left"))
    if first > len(counts) or int(starts[first]) != done:
        raise RuntimeError(f"{done} samples done is not the end of a batch of texts")
    spans = []
    while first < len(counts):
        stop = int(np.searchsorted(starts, starts[first] + max(per_shard, 1), side="left"))
        stop = min(max(stop, first + 1), len(counts))
        spans.append(Span.of(int(starts[first]), int(starts[stop]), rows, n_samples, (first, stop)))
        first = stop
    return spans


def _absolute(url: str) -> str:
    """A local path made absolute (workers may run elsewhere); URLs stay as they are."""
    return os.path.abspath(url) if is_local(url) and "://" not in url else url
