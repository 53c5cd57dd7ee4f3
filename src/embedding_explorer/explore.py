"""``explore``: capture layers over a data set, fit exact PCA per layer, and save the run."""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import resume
from ._version import __version__
from .batches import count_samples, indexable, loader_batch_size
from .capture import INPUT_LAYER, LayerRef, resolve_layers
from .checks import positive_int
from .exceptions import EmbeddingExplorerError, ZeroVarianceWarning
from .extract import ExtractOptions, Ledger, extract_stream
from .fingerprint import array_hash, data_fingerprint, model_fingerprint, options_key
from .locations import Location, StorageOptions, as_location
from .models import ModelSpec, build_model
from .pca import PCAResult, StreamingPCA, n_components_for, pca_of_stored
from .reducers import Reducer, ReduceSpec, reducers_for
from .render import Renderer, RenderSpec
from .run import Run
from .store.format import FORMAT, FORMAT_VERSION, MANIFEST, read_manifest
from .store.writer import RunWriter

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

MAX_DENSE_DIM = 8192  # wider layers use randomized SVD instead of a D x D covariance


def explore(
    model: ModelSpec,
    data: Any,
    layers: Sequence[str] | Mapping[str, str] | str,
    *,
    out: str | Path | None = None,
    name: str | None = None,
    n_components: int = 10,
    batch_size: int = 256,
    labels: Sequence[Any] | np.ndarray | None = None,
    metadata: pd.DataFrame | Mapping[str, Sequence[Any]] | None = None,
    reduce: ReduceSpec | Mapping[str, ReduceSpec] = None,
    render: RenderSpec = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    label_names: Sequence[str] | None = None,
    recompute: bool = False,
    max_dense_dim: int = MAX_DENSE_DIM,
    storage_dtype: Literal["float32", "float16"] = "float32",
    client: Client | None = None,
    storage_options: StorageOptions | None = None,
) -> Run:
    """Capture ``layers`` of ``model`` over ``data``, run exact PCA per layer, save and open the run.

    Parameters
    ----------
    model : torch.nn.Module, a zero-argument function returning one, or None
        None captures only ``"input"`` (PCA in data space). With a function (e.g.
        ``ee.from_state_dict(MyNet, "weights.pt")``) each Dask worker builds its own copy; a
        module is sent to them pickled.
    data : Tensor, ndarray, Dataset, DataLoader (not shuffling) or iterable of batches
        Batches are tensors, ``(x, y)`` pairs or dicts of keyword arguments (``model(**batch)``).
    layers : str or list of str
        Names from ``model.named_modules()``; ``"input"`` is the model input; ``"name:i"`` keeps
        call ``i`` of a module that runs several times per forward pass. A dict
        ``{shown name: module path}`` gives long paths short names (used everywhere after).
    out : path, or any fsspec URL (``file://``, ``s3://``, ``gs://``...), optional
        Run directory; default ``./runs/<name>``. A finished run there with the same model, data
        and options is reused as it is; anything else is recomputed and replaced. An unfinished
        run with the same arguments resumes from its last checkpoint. Local folders are built
        beside ``out`` and renamed into place; other URLs are written in place, the manifest
        last (see :mod:`embedding_explorer.store`).
    n_components : int, default=10
        Capped at ``min(N - 1, D)`` per layer.
    labels : sequence, optional
        One per sample; default: the ``y`` of ``(x, y)`` batches (or a ``labels`` key).
    metadata : DataFrame or dict of columns, optional
        One row per sample, kept in the run's sample table.
    reduce : str, callable, Reducer, or {layer: spec}, optional
        How outputs become one vector per sample (see :mod:`embedding_explorer.reducers`).
    render : "image", "text", "none", ImageRender, list of texts, or callable, optional
        How samples are shown; default: images when inputs look like images.
    device : optional
        Default: the model's device (CPU for a model on the CPU).
    label_names : list of str, optional
        Names of integer labels; default: the Dataset's ``classes`` attribute when it has one.
    recompute : bool, default=False
        Recompute even if a matching finished (or stopped) run exists.
    max_dense_dim : int, default=8192
        Layers wider than this use randomized SVD (recorded in the manifest).
    storage_dtype : {"float32", "float16"}, default="float32"
        How activations are stored. Statistics accumulate in float64 from the rows before the
        cast, except the components and variances of layers wider than ``max_dense_dim``
        (randomized SVD reads the stored rows back); scores are computed from the stored rows.
        A value beyond float16's range is an error naming the layer and the sample.
    client : distributed.Client, optional
        Run on a Dask cluster: workers extract shards of sample ids, write their slices of the
        store and return mergeable accumulators (see :mod:`embedding_explorer.distributed`).
    storage_options : dict, optional
        fsspec options for an ``out`` URL (credentials, endpoint...), sent to Dask workers too.
        Often unneeded: fsspec also reads the usual environment variables and config files.

    Returns
    -------
    Run
    """
    started = time.perf_counter()
    built = build_model(model)
    refs = resolve_layers(built, layers)
    names = [r.name for r in refs]
    reducers = _with_input_default(reducers_for(names, reduce), refs)
    positive_int(batch_size, "batch_size")
    n_components_for(n_components, 2, 1)  # validates the type and sign early
    if storage_dtype not in ("float32", "float16"):
        raise ValueError(f"storage_dtype={storage_dtype!r}: use 'float32' or 'float16'")
    n_known = count_samples(data)
    if n_known is not None and n_known < 2:
        raise EmbeddingExplorerError(f"data has {n_known} samples; PCA needs at least 2")
    if client is not None and not indexable(data):
        raise EmbeddingExplorerError(
            f"client= splits the data into shards of sample ids, so data must be indexable (a Tensor, "
            f"an ndarray, an (X, y) pair, a map-style Dataset or a DataLoader over one), not "
            f"{type(data).__name__}"
        )
    renderer = Renderer(render, n_known)
    labels_given = _as_label_array(labels, n_known)
    table = _metadata_table(metadata, n_known)
    names_of_labels = list(label_names) if label_names is not None else _dataset_classes(data)
    name = name or _default_name(built)
    out_path = as_location(out if out is not None else Path("runs") / name, storage_options)

    model_info = model_fingerprint(built)
    data_fp = data_fingerprint(data)
    options = {
        "name": name,
        "n_components": int(n_components),
        "layers": [[r.name, r.module, r.call] for r in refs],  # shown names and what they hook
        "reduce": {k: r.describe() for k, r in reducers.items()},
        "render": renderer.describe(),
        "labels": array_hash(labels_given),
        "metadata": array_hash(table),
        "label_names": names_of_labels,
        "max_dense_dim": max_dense_dim,
    }
    if storage_dtype != "float32":  # so float32 runs keep the keys they had
        options["storage_dtype"] = storage_dtype
    key = options_key({"model": model_info, "data": data_fp, "options": options, "format": FORMAT_VERSION})
    if not recompute and data_fp is not None and (out_path / MANIFEST).exists():
        with contextlib.suppress(EmbeddingExplorerError, ValueError, KeyError):
            if read_manifest(out_path).get("key") == key:
                log.info("reusing the finished run at %s", out_path)
                return Run(out_path)

    device_ = _resolve_device(built, device)
    aligned = indexable(data)
    batches = loader_batch_size(data, batch_size)
    # a stopped run resumes only with the same batches; a one-pass iterable always starts over
    resume_key = (
        None
        if data_fp is None
        else options_key({"key": key, "batch_size": batches, "checkpoint": resume.VERSION})
    )
    checkpoint = None
    if resume_key is not None and not recompute:
        checkpoint = resume.load(resume.folder_of(out_path), resume_key)
    writer = RunWriter(out_path, names, storage_dtype=storage_dtype, resume=checkpoint is not None)
    if checkpoint is not None and not writer.can_resume(
        checkpoint.dims, checkpoint.n_done, checkpoint.render_bytes
    ):
        log.warning("the checkpoint at %s does not match its files; starting over", out_path)
        checkpoint = None
        writer = RunWriter(out_path, names, storage_dtype=storage_dtype)
    if checkpoint is not None:
        log.info("resuming the run at %s after %d samples", out_path, checkpoint.n_done)
        renderer.restore(checkpoint.renderer)
        ledger = Ledger.resumed(checkpoint, n_components, max_dense_dim)
    else:
        ledger = Ledger(n_components, max_dense_dim)
    opts = ExtractOptions(
        refs, reducers, renderer, batches, n_components, max_dense_dim, storage_dtype, progress, name,
        n_known, aligned,
    )  # fmt: skip
    try:
        if checkpoint is not None:
            writer.layout(ledger.dims, int(ledger.rows_per_chunk or 0))
            writer.restore(checkpoint.n_done, checkpoint.render_bytes, checkpoint.render_sizes)
        scorer: Any = _write_scores
        if client is not None:
            from .distributed import Cluster

            cluster = Cluster(client, model, built, data, opts, writer, device_)
            seconds = cluster.extract(ledger, resume_key)
            scorer = cluster.write_scores
        else:
            seconds = extract_stream(built, data, opts, writer, device_, ledger, resume_key)
        n = ledger.n_done
        if n < 2:
            raise EmbeddingExplorerError(f"data has {n} samples; PCA needs at least 2")
        extracted_labels = ledger.labels()
        label_values = labels_given if labels_given is not None else extracted_labels
        if label_values is not None and len(label_values) != n:
            raise EmbeddingExplorerError(f"labels has {len(label_values)} entries for {n} samples")
        if table is not None and len(table) != n:
            raise EmbeddingExplorerError(f"metadata has {len(table)} rows for {n} samples")
        renderer.check_count(n)
        t_pca = time.perf_counter()
        layer_infos = []
        for ref in refs:
            pca = _finish_pca(ledger.accumulators[ref.name], writer, ref.name)
            writer.write_pca(ref.name, pca)
            layer_infos.append((ref, pca))
        t_scores = time.perf_counter()
        for ref, pca in layer_infos:
            scorer(writer, ref.name, pca, n)
        t_end = time.perf_counter()
        writer.write_samples(_sample_table(n, label_values, table))
        rendered = writer.finish_renderings()
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": name,
            "key": key,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": model_info,
            "data": {
                "n_samples": n,
                "type": type(data).__name__,
                "fingerprint": data_fp,
                "content_hash": ledger.content_hash(),
            },
            "options": {
                **options,
                "storage_dtype": storage_dtype,
                "batch_size": batches,
                "device": str(device_),
                "rows_per_chunk": ledger.rows_per_chunk,
                "distributed": client is not None,
            },
            "layers": [_layer_manifest(ref, pca, reducers[ref.name], writer) for ref, pca in layer_infos],
            "labels": {"present": label_values is not None, "names": names_of_labels},
            "metadata_columns": [] if table is None else [str(c) for c in table.columns],
            "rendering": {"kind": renderer.kind if rendered == n else None},
            "versions": _versions(),
            "timings": {
                "extract_s": round(seconds, 3),
                "samples_per_s": round(
                    (n - (checkpoint.n_done if checkpoint else 0)) / max(seconds, 1e-9), 1
                ),
                "resumed_at": checkpoint.n_done if checkpoint else 0,
                "pca_s": round(t_scores - t_pca, 3),
                "scores_s": round(t_end - t_scores, 3),
                "total_s": round(time.perf_counter() - started, 3),
            },
        }
        writer.commit(manifest)  # the checkpoints stay until the run is in place
    except BaseException as error:
        if not isinstance(error, EmbeddingExplorerError) and resume.has_checkpoint(out_path):
            # disk full, killed worker, Ctrl-C...: what is checkpointed stays for the next call
            writer.close()
            log.warning("extraction stopped; the next call with the same arguments resumes it")
        else:
            writer.abort()
        raise
    _remove_checkpoints(out_path)
    return Run(out_path)


def _remove_checkpoints(out: Location) -> None:
    """Remove a committed run's checkpoints (moved into it with the staging folder); a failure
    leaves only a stray folder, which readers ignore."""
    try:
        resume.committed_folder(out).remove_tree()
    except OSError as error:
        log.warning("could not remove the checkpoints of the finished run at %s: %s", out, error)


def _finish_pca(acc: StreamingPCA, writer: RunWriter, layer: str) -> PCAResult:
    pca = pca_of_stored(acc, writer.activations(layer))
    if pca.total_variance <= 0:
        warnings.warn(
            f"layer {layer!r} has zero variance: every sample gives the same activation, "
            "so its components carry nothing",
            ZeroVarianceWarning,
            stacklevel=3,  # the line that called explore
        )
    return pca


def _write_scores(writer: RunWriter, layer: str, pca: PCAResult, n: int) -> None:
    """Scores chunk by chunk from the stored activations, never the whole matrix in memory."""
    activations = writer.activations(layer)
    scores = writer.scores_array(layer, n, len(pca.components))
    rows, block = int(activations.chunks[0]), int(scores.chunks[0])
    for first in range(0, n, block):  # one write per score chunk: no chunk is rewritten
        last = min(first + block, n)
        buffer = np.empty((last - first, len(pca.components)), dtype=np.float32)
        for start in range(first, last, rows):
            end = min(start + rows, last)
            buffer[start - first : end - first] = pca.transform(activations[start:end])
        scores[first:last] = buffer


def _layer_manifest(ref: LayerRef, pca: PCAResult, reducer: Reducer, writer: RunWriter) -> dict[str, Any]:
    return {
        "name": ref.name,
        "key": writer.keys[ref.name],
        "module": ref.module,
        "call": ref.call,
        "dim": int(pca.mean.shape[0]),
        "reduce": reducer.describe(),
        "n_components": len(pca.components),
        "pca_method": pca.method,
        "total_variance": pca.total_variance,
        "explained_variance_ratio": pca.explained_variance_ratio.tolist(),
        "zero_variance": pca.total_variance <= 0,
    }


def _with_input_default(reducers: dict[str, Reducer], refs: Sequence[LayerRef]) -> dict[str, Reducer]:
    """The model input is flattened by default: PCA in data space, pixel by pixel."""
    for ref in refs:
        if ref.module == INPUT_LAYER and reducers[ref.name] == Reducer():
            reducers[ref.name] = Reducer("flatten")
    return reducers


def _as_label_array(labels: Any, n_known: int | None) -> np.ndarray | None:
    if labels is None:
        return None
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise EmbeddingExplorerError(f"labels must be one value per sample; got shape {arr.shape}")
    if n_known is not None and len(arr) != n_known:
        raise EmbeddingExplorerError(f"labels has {len(arr)} entries for {n_known} samples")
    return arr


def _metadata_table(metadata: Any, n_known: int | None) -> pd.DataFrame | None:
    if metadata is None:
        return None
    try:
        table = pd.DataFrame(metadata).reset_index(drop=True)
    except ValueError as e:
        raise EmbeddingExplorerError(
            f"metadata must be a table or a dict of equal-length columns: {e}"
        ) from e
    clash = [c for c in table.columns if c in ("sample_id", "label")]
    if clash:
        raise EmbeddingExplorerError(f"metadata columns {clash} are reserved; rename them")
    if n_known is not None and len(table) != n_known:
        raise EmbeddingExplorerError(f"metadata has {len(table)} rows for {n_known} samples")
    table.columns = [str(c) for c in table.columns]
    return table


def _dataset_classes(data: Any) -> list[str] | None:
    dataset = getattr(data, "dataset", data)
    classes = getattr(dataset, "classes", None)
    if isinstance(classes, (list, tuple)) and all(isinstance(c, str) for c in classes):
        return list(classes)
    return None


def _default_name(model: nn.Module | None) -> str:
    return "input" if model is None else type(model).__name__.lower()


def _resolve_device(model: nn.Module | None, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if model is not None:
        for tensor in (*model.parameters(), *model.buffers()):
            return tensor.device
    return torch.device("cpu")


def _sample_table(n: int, labels: np.ndarray | None, table: pd.DataFrame | None) -> pd.DataFrame:
    columns: dict[str, Any] = {"sample_id": np.arange(n, dtype=np.int64)}
    if labels is not None:
        columns["label"] = labels
    frame = pd.DataFrame(columns)
    return frame if table is None else pd.concat([frame, table], axis=1)


def _versions() -> dict[str, str]:
    import sys

    import zarr

    return {
        "embedding_explorer": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "zarr": zarr.__version__,
    }
