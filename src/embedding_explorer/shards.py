"""What a Dask worker runs for :mod:`.distributed`: one shard's extraction, one shard's scores.

A shard is a range of sample ids ``[start, stop)`` of whole Zarr chunks. Its worker builds the
model once per thread (:class:`ModelSource`), writes its slice of every layer's activations and
its renderings (a file of its own in the staging folder), and returns its accumulators, labels,
rendering sizes and per-batch hashes for the driver to merge in order. Every write first checks
that the call that started the shard is still the current one (:class:`CallGuard`).
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cloudpickle
import numpy as np
import torch
from torch import nn

from .batches import iter_batches
from .capture import LayerCapture, LayerRef
from .extract import Ledger, batch_digest, checked_rows
from .locations import StorageOptions, as_location, open_zarr_array
from .models import ModelSpec, build_model
from .pca import PCAResult
from .reducers import Reducer
from .store.writer import RowWriter

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
    """What every shard shares: layers, reducers, batching, storage, the call's token (sent once
    per worker)."""

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
    start: int,
    stop: int,
) -> dict[str, Any]:
    """On a worker: samples ``[start, stop)`` through the model, rows into the store."""
    guard = CallGuard(task.staging, task.storage_options, task.token)
    guard.check()
    model = model_ref.build(task.device)
    renderer = copy.copy(renderer)  # threads of one worker share the scattered one
    renderer.restore(renderer_state)
    ledger = Ledger(task.n_components, task.max_dense_dim)
    writers = {}
    for layer, path in task.paths.items():
        array = open_zarr_array(path, task.storage_options, "r+")
        writers[layer] = ShardWriter(array, guard)
        writers[layer].n_written = start  # whole chunks from the shard's first one
    digests: list[str | None] = []
    labels: list[np.ndarray | None] = []
    render_name = f"{SHARD_PREFIX}{task.token}.{start}.renderings"
    render_sizes: list[int] | None = None
    device = torch.device(task.device)
    done = start
    render_file = None
    try:
        with LayerCapture(model, task.refs, task.reducers) as capture, torch.inference_mode():
            for batch in iter_batches(data, task.batch_size, start, stop):
                guard.check(force=False)
                digests.append(batch_digest(batch))
                labels.append(batch.labels)
                rendered = renderer.render(batch)
                if rendered is not None:
                    if render_file is None:
                        guard.check()
                        render_file = (as_location(task.staging, task.storage_options) / render_name).open(
                            "wb"
                        )
                        render_sizes = []
                    assert render_sizes is not None
                    render_file.write(b"".join(rendered))
                    render_sizes.extend(len(item) for item in rendered)
                for layer, x in capture.forward(batch, device).items():
                    rows = checked_rows(x, layer, done, task.storage_dtype)
                    ledger.accumulate(layer, x, rows)
                    writers[layer].append(np.ascontiguousarray(rows, dtype=task.storage_dtype))
                done += batch.size
    finally:
        if render_file is not None:
            render_file.close()
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
        "render_file": render_name,
        "render_sizes": None if render_sizes is None else np.asarray(render_sizes, dtype=np.int64),
        "render_kind": renderer.kind,
    }


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
