"""``explore``: capture layers over a data set, fit exact PCA per layer, and save the run."""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits
from torch import nn
from tqdm.auto import tqdm

from ._version import __version__
from .batches import count_samples, iter_batches
from .capture import INPUT_LAYER, LayerCapture, LayerRef, resolve_layers
from .checks import positive_int
from .exceptions import EmbeddingExplorerError, NonFiniteActivationError, ZeroVarianceWarning
from .fingerprint import ContentHasher, array_hash, data_fingerprint, model_fingerprint, options_key
from .reducers import Reducer, ReduceSpec, reducers_for
from .render import Renderer, RenderSpec
from .run import Run
from .stats import PCAResult, StreamingPCA, iter_rows, n_components_for, randomized_pca
from .store import FORMAT, FORMAT_VERSION, MANIFEST, RunWriter, read_manifest

log = logging.getLogger(__name__)

MAX_DENSE_DIM = 8192  # wider layers use randomized SVD instead of a D x D covariance


def explore(
    model: nn.Module | None,
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
) -> Run:
    """Capture ``layers`` of ``model`` over ``data``, run exact PCA per layer, save and open the run.

    Parameters
    ----------
    model : torch.nn.Module or None
        None captures only ``"input"`` (PCA in data space).
    data : Tensor, ndarray, Dataset, DataLoader (not shuffling) or iterable of batches
        Batches are tensors, ``(x, y)`` pairs or dicts of keyword arguments (``model(**batch)``).
    layers : str or list of str
        Names from ``model.named_modules()``; ``"input"`` is the model input; ``"name:i"`` keeps
        call ``i`` of a module that runs several times per forward pass. A dict
        ``{shown name: module path}`` gives long paths short names (used everywhere after).
    out : path, optional
        Run directory; default ``./runs/<name>``. A finished run there with the same model, data
        and options is reused as it is; anything else is recomputed and replaced.
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
        Recompute even if a matching finished run exists.
    max_dense_dim : int, default=8192
        Layers wider than this use randomized SVD (recorded in the manifest).

    Returns
    -------
    Run
    """
    started = time.perf_counter()
    refs = resolve_layers(model, layers)
    names = [r.name for r in refs]
    reducers = _with_input_default(reducers_for(names, reduce), refs)
    positive_int(batch_size, "batch_size")
    n_components_for(n_components, 2, 1)  # validates the type and sign early
    n_known = count_samples(data)
    if n_known is not None and n_known < 2:
        raise EmbeddingExplorerError(f"data has {n_known} samples; PCA needs at least 2")
    renderer = Renderer(render, n_known)
    labels_given = _as_label_array(labels, n_known)
    table = _metadata_table(metadata, n_known)
    names_of_labels = list(label_names) if label_names is not None else _dataset_classes(data)
    name = name or _default_name(model)
    out_path = Path(out) if out is not None else Path("runs") / name

    model_info = model_fingerprint(model)
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
    key = options_key({"model": model_info, "data": data_fp, "options": options, "format": FORMAT_VERSION})
    if not recompute and data_fp is not None and (out_path / MANIFEST).exists():
        with contextlib.suppress(EmbeddingExplorerError, ValueError, KeyError):
            if read_manifest(out_path).get("key") == key:
                log.info("reusing the finished run at %s", out_path)
                return Run(out_path)

    device_ = _resolve_device(model, device)
    writer = RunWriter(out_path, names)
    try:
        extracted = _extract(
            model,
            data,
            refs,
            reducers,
            renderer,
            writer,
            device_,
            batch_size,
            progress,
            name,
            n_known,
            n_components,
            max_dense_dim,
        )
        n = extracted.n_samples
        if n < 2:
            raise EmbeddingExplorerError(f"data has {n} samples; PCA needs at least 2")
        label_values = labels_given if labels_given is not None else extracted.labels
        if label_values is not None and len(label_values) != n:
            raise EmbeddingExplorerError(f"labels has {len(label_values)} entries for {n} samples")
        if table is not None and len(table) != n:
            raise EmbeddingExplorerError(f"metadata has {len(table)} rows for {n} samples")
        renderer.check_count(n)
        t_pca = time.perf_counter()
        layer_infos = []
        for ref in refs:
            pca = _finish_pca(extracted.accumulators[ref.name], writer, ref.name)
            writer.write_pca(ref.name, pca)
            layer_infos.append((ref, pca))
        t_scores = time.perf_counter()
        for ref, pca in layer_infos:
            _write_scores(writer, ref.name, pca, n)
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
                "content_hash": extracted.content_hash,
            },
            "options": {**options, "batch_size": batch_size, "device": str(device_)},
            "layers": [_layer_manifest(ref, pca, reducers[ref.name], writer) for ref, pca in layer_infos],
            "labels": {"present": label_values is not None, "names": names_of_labels},
            "metadata_columns": [] if table is None else [str(c) for c in table.columns],
            "rendering": {"kind": renderer.kind if rendered == n else None},
            "versions": _versions(),
            "timings": {
                "extract_s": round(extracted.seconds, 3),
                "samples_per_s": round(n / max(extracted.seconds, 1e-9), 1),
                "pca_s": round(t_scores - t_pca, 3),
                "scores_s": round(t_end - t_scores, 3),
                "total_s": round(time.perf_counter() - started, 3),
            },
        }
        writer.commit(manifest)
    except BaseException:
        writer.abort()
        raise
    return Run(out_path)


class _Extracted:
    def __init__(self) -> None:
        self.accumulators: dict[str, StreamingPCA] = {}
        self.labels: np.ndarray | None = None
        self.n_samples = 0
        self.content_hash: str | None = None
        self.seconds = 0.0


def _extract(
    model: nn.Module | None,
    data: Any,
    refs: Sequence[LayerRef],
    reducers: Mapping[str, Reducer],
    renderer: Renderer,
    writer: RunWriter,
    device: torch.device,
    batch_size: int,
    progress: bool,
    name: str,
    n_known: int | None,
    n_components: int,
    max_dense_dim: int,
) -> _Extracted:
    """One pass over the data: hooks -> reduced vectors -> moments, Zarr, renderings."""
    result = _Extracted()
    hasher = ContentHasher()
    label_parts: list[np.ndarray] = []
    batches_without_labels = 0
    start = time.perf_counter()
    bar = tqdm(total=n_known, unit="sample", unit_scale=True, desc=f"extract {name}", disable=not progress)
    # numpy's BLAS stays on one thread while torch computes: two pools spinning on the same
    # cores slow both down several times; the per-batch updates are small anyway
    with (
        threadpool_limits(1, user_api="blas"),
        _evaluating(model, device),
        LayerCapture(model, refs, reducers) as capture,
        torch.inference_mode(),
        bar,
    ):
        for batch in iter_batches(data, batch_size):
            # the inputs are hashed and rendered before the model runs: it may change them in place
            hasher.update(batch.inputs, batch.labels)
            rendered = renderer.render(batch)
            if rendered is not None:
                writer.append_renderings(rendered)
            if batch.labels is None:
                batches_without_labels += 1
            else:
                label_parts.append(batch.labels)
            outputs = capture.forward(batch, device)
            for layer, x in outputs.items():
                rows = x.detach().float().cpu().numpy()
                _check_finite(x if x.is_cuda else rows, layer, result.n_samples)
                acc = result.accumulators.get(layer)
                if acc is None:
                    acc = result.accumulators[layer] = StreamingPCA(
                        n_components, covariance=int(x.shape[1]) <= max_dense_dim
                    )
                # on a GPU the moments accumulate there; on the CPU from the host rows (float64
                # outputs keep their precision for the statistics; storage is float32)
                acc.partial_fit(x if x.is_cuda or x.dtype == torch.float64 else rows)
                writer.append_activations(layer, rows)
            result.n_samples += batch.size
            bar.update(batch.size)
    writer.finish_activations()
    result.seconds = time.perf_counter() - start
    if label_parts and batches_without_labels:
        raise EmbeddingExplorerError("some batches carry labels and others do not")
    result.labels = np.concatenate(label_parts) if label_parts else None
    result.content_hash = hasher.hexdigest()
    return result


@contextlib.contextmanager
def _evaluating(model: nn.Module | None, device: torch.device) -> Iterator[None]:
    """Eval mode (and the device) for the duration; every module's own flag restored after."""
    if model is None:
        yield
        return
    modes = {m: m.training for m in model.modules()}
    original = next((p.device for p in model.parameters()), None)
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


def _check_finite(x: torch.Tensor | np.ndarray, layer: str, offset: int) -> None:
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


def _finish_pca(acc: StreamingPCA, writer: RunWriter, layer: str) -> PCAResult:
    if acc.covariance:
        pca = acc.finalize()
    else:
        array = writer.activations(layer)
        pca = randomized_pca(lambda: iter_rows(array, int(array.chunks[0])), acc)
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
    rows = int(activations.chunks[0])
    for start in range(0, n, rows):
        scores[start : start + rows] = pca.transform(activations[start : start + rows]).astype(np.float32)


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
