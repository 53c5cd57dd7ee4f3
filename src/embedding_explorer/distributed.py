"""Extraction on a Dask cluster: shards of sample ids, mergeable accumulators, parallel scores.

The driver splits the samples into shards of whole Zarr chunks (so no two workers ever write the
same chunk), and each worker builds the model (a pickled module, a factory or a TorchScript
file), runs its shard, writes its slice of the activations and returns its accumulators, labels,
renderings and per-batch hashes. The driver merges them in shard order, exactly as one process
would have met the samples, checkpointing after each (a stopped cluster run resumes too), then
finishes the PCA; workers compute the scores of their shards chunk by chunk.

Batches restart at each shard, so shards are whole batches: their rows equal a single process's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import cloudpickle
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .batches import iter_batches
from .capture import LayerCapture
from .extract import ExtractOptions, Ledger, batch_digest, checked_rows, evaluating, rows_per_chunk
from .fingerprint import model_fingerprint
from .locations import StorageOptions, as_location, open_zarr_array
from .models import ModelSpec, build_model
from .stats import PCAResult
from .store import ARRAYS, RowWriter, RunWriter

if TYPE_CHECKING:
    from distributed import Client, Future

SHARDS_PER_WORKER = 4  # enough shards to balance uneven workers, few enough to merge cheaply

_MODELS: dict[str, nn.Module] = {}  # per worker process: models built from factories or files


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
        self.client, self.built, self.data, self.opts, self.writer = client, built, data, opts, writer
        self.device = str(device)
        # a module travels as cloudpickle bytes (Dask's own handling of a scattered module loses
        # its hook dicts' type); a factory or a file is sent as it is and built on the worker
        payload = cloudpickle.dumps(spec) if isinstance(spec, nn.Module) else None
        self.model_ref = _ModelSource(
            None if payload else spec, model_fingerprint(built)["fingerprint"], payload
        )
        self.shard_rows = 0
        self.n_samples = int(opts.n_known or 0)

    def extract(self, ledger: Ledger, resume_key: str | None) -> float:
        """Run every shard not yet done; merge in order into ``ledger``. Returns seconds."""
        started = time.perf_counter()
        opts, renderer = self.opts, self.opts.renderer
        if ledger.rows_per_chunk is None:
            ledger.dims = self._probe()
            ledger.rows_per_chunk = rows_per_chunk(ledger.dims, opts.batch_size)
        rows = ledger.rows_per_chunk
        self.writer.layout(ledger.dims, rows, n_rows=self.n_samples)
        workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        per_shard = math.ceil(self.n_samples / (SHARDS_PER_WORKER * workers))
        self.shard_rows = rows * max(1, per_shard // rows)
        paths = {layer: self.writer.activation_path(layer) for layer in ledger.dims}
        task = _ShardTask(
            opts.refs, opts.reducers, opts.batch_size, opts.n_components, opts.max_dense_dim,
            opts.storage_dtype, self.device, paths, self.writer.storage_options,
        )  # fmt: skip
        shared = self.client.scatter(  # type: ignore[no-untyped-call]
            [self.model_ref, self.data, task, renderer], broadcast=True
        )
        state = renderer.state()
        futures: list[Future[dict[str, Any]]] = []
        for start in range(ledger.n_done, self.n_samples, self.shard_rows):
            stop = min(start + self.shard_rows, self.n_samples)
            shard_renderer = {**state, "seen": start}
            futures.append(
                self.client.submit(_extract_shard, *shared, shard_renderer, start, stop, pure=False)
            )
        bar = tqdm(
            total=self.n_samples,
            initial=ledger.n_done,
            unit="sample",
            unit_scale=True,
            desc=f"extract {opts.name} on {workers} workers",
            disable=not opts.progress,
        )
        try:
            with bar:
                for i, future in enumerate(futures):
                    result = future.result()
                    futures[i] = None  # type: ignore[call-overload]  # the worker may free it
                    self._merge(ledger, result)
                    bar.update(result["stop"] - result["start"])
                    if resume_key is not None:
                        ledger.checkpoint(self.writer, resume_key, renderer)
        except BaseException:
            self.client.cancel([f for f in futures if f is not None])  # type: ignore[no-untyped-call]
            raise
        return time.perf_counter() - started

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
        for layer, state in result["states"].items():
            ledger.merge(layer, state)
        if result["renderings"] is not None:
            self.writer.append_renderings(result["renderings"])
        renderer = self.opts.renderer
        renderer.restore({**renderer.state(), "seen": result["stop"], "kind": result["render_kind"]})
        ledger.n_done = result["stop"]

    def write_scores(self, writer: RunWriter, layer: str, pca: PCAResult, n: int) -> None:
        """Scores of every shard on the workers, chunk by chunk from the stored activations."""
        scores = writer.scores_array(layer, n, len(pca.components), rows=self.shard_rows)
        source, target = writer.activation_path(layer), (writer.staging / ARRAYS / scores.path).url
        options = writer.storage_options
        futures = [
            self.client.submit(_score_shard, source, target, options, pca, start, stop, pure=False)
            for start in range(0, n, self.shard_rows)
            for stop in [min(start + self.shard_rows, n)]
        ]
        self.client.gather(futures)  # type: ignore[no-untyped-call]


class _ModelSource:
    """A pickled module, a factory or a TorchScript path, with the driver's fingerprint so each
    worker builds it once."""

    def __init__(self, spec: ModelSpec, fingerprint: str, payload: bytes | None = None) -> None:
        self.spec, self.fingerprint, self.payload = spec, fingerprint, payload

    def build(self) -> nn.Module | None:
        model = _MODELS.get(self.fingerprint)
        if model is None:
            model = build_model(cloudpickle.loads(self.payload) if self.payload else self.spec)
            if model is not None:
                _MODELS.clear()  # one run's model at a time
                _MODELS[self.fingerprint] = model
        return model


class _ShardTask:
    """What every shard shares: layers, reducers, batching, storage (sent once per worker)."""

    def __init__(
        self,
        refs: Any,
        reducers: Any,
        batch_size: int,
        n_components: int,
        max_dense_dim: int,
        storage_dtype: str,
        device: str,
        paths: Mapping[str, str],
        storage_options: StorageOptions | None = None,
    ) -> None:
        self.refs, self.reducers, self.batch_size = refs, reducers, batch_size
        self.n_components, self.max_dense_dim, self.storage_dtype = n_components, max_dense_dim, storage_dtype
        self.device, self.paths = device, dict(paths)  # local paths or URLs
        self.storage_options = dict(storage_options or {})


def _extract_shard(
    model_ref: Any,
    data: Any,
    task: _ShardTask,
    renderer: Any,
    renderer_state: Mapping[str, Any],
    start: int,
    stop: int,
) -> dict[str, Any]:
    """On a worker: samples ``[start, stop)`` through the model, rows into the store."""
    model = model_ref.build()
    renderer.restore(renderer_state)
    ledger = Ledger(task.n_components, task.max_dense_dim)
    writers = {}
    for layer, path in task.paths.items():
        array = open_zarr_array(path, task.storage_options, "r+")
        writers[layer] = _ShardWriter(array, path, task.storage_options)
        writers[layer].n_written = start  # whole chunks from the shard's first one
    digests: list[str | None] = []
    labels: list[np.ndarray | None] = []
    renderings: list[bytes] | None = None
    device = torch.device(task.device)
    done = start
    with (
        evaluating(model, device),
        LayerCapture(model, task.refs, task.reducers) as capture,
        torch.inference_mode(),
    ):
        for batch in iter_batches(data, task.batch_size, start, stop):
            digests.append(batch_digest(batch))
            labels.append(batch.labels)
            rendered = renderer.render(batch)
            if rendered is not None:
                renderings = renderings or []
                renderings.extend(rendered)
            for layer, x in capture.forward(batch, device).items():
                rows = checked_rows(x, layer, done, task.storage_dtype)
                ledger.accumulate(layer, x, rows)
                writers[layer].append(np.ascontiguousarray(rows, dtype=task.storage_dtype))
            done += batch.size
    for writer in writers.values():
        writer.close()
    if done != stop:
        raise RuntimeError(f"shard {start}..{stop} yielded {done - start} samples")
    return {
        "start": start,
        "stop": stop,
        "states": {layer: acc.state() for layer, acc in ledger.accumulators.items()},
        "labels": labels,
        "digests": digests,
        "renderings": renderings,
        "render_kind": renderer.kind,
    }


class _ShardWriter(RowWriter):
    """Rows of one shard; stops when the driver has given the run up (its staging removed), so
    a shard still running after an error never recreates the folder."""

    def __init__(self, array: Any, path: str, storage_options: StorageOptions | None = None) -> None:
        super().__init__(array)
        self.marker = as_location(path, storage_options) / "zarr.json"

    def _write(self, block: np.ndarray) -> None:
        if not self.marker.exists():
            raise RuntimeError(f"the run was abandoned: {self.marker.url} is gone")
        super()._write(block)


def _score_shard(
    source: str, target: str, storage_options: StorageOptions, pca: PCAResult, start: int, stop: int
) -> None:
    """On a worker: scores of samples ``[start, stop)``, one activation chunk at a time."""
    activations = open_zarr_array(source, storage_options, "r")
    scores = open_zarr_array(target, storage_options, "r+")
    rows = int(activations.chunks[0])
    for begin in range(start, stop, rows):
        end = min(begin + rows, stop)
        scores[begin:end] = pca.transform(np.asarray(activations[begin:end])).astype(np.float32)
