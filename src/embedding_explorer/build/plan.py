"""The first stage of :func:`~embedding_explorer.explore`: every argument checked, the reuse key.

:func:`plan_explore` does everything that needs no forward pass: it builds the model, resolves
the layers and their reducers, checks the labels, the metadata and the renderings against the
data's size where that is known, fingerprints the model and the data, and computes the key a
finished run must carry to be reused and the key a checkpoint must carry to be resumed. The
result is a frozen :class:`ExplorePlan`; extraction and :mod:`.finish` only read it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from torch import nn

from .. import resume
from ..batches import check_data, count_samples, indexable, loader_batch_size
from ..capture import INPUT_LAYER, LayerRef, forward_dtype, resolve_layers
from ..checks import positive_int, run_name
from ..exceptions import EmbeddingExplorerError
from ..extract import ExtractOptions
from ..fingerprint import (
    array_hash,
    callable_digest,
    data_fingerprint,
    files_stated_once,
    model_fingerprint,
    options_key,
)
from ..locations import Location, StorageOptions, as_location
from ..models import ModelSpec, build_model
from ..outputs import OutputsSpec, check_outputs
from ..pca import n_components_for
from ..placement import execution_device
from ..reducers import Reducer, ReduceSpec, reducers_for
from ..render import Renderer, RenderSpec
from ..store.format import FORMAT_VERSION, MANIFEST, STORAGE_DTYPES, read_manifest
from ..tokens import TOKEN_COLUMNS, TokenBatches, text_batches_of, token_samples, tokens_choice

if TYPE_CHECKING:
    from distributed import Client

MAX_DENSE_DIM = 8192  # wider layers use randomized SVD instead of a D x D covariance


@dataclass(frozen=True, kw_only=True, eq=False)
class ExplorePlan:
    """One call of :func:`~embedding_explorer.explore`, checked: what to extract, where, and the
    keys of the run it makes.

    ``renderer`` is the one mutable part: it learns the images' value range while it renders.
    """

    spec: ModelSpec = field(repr=False)  # the model as given: a Dask worker builds its own copy
    model: nn.Module | None = field(repr=False)
    data: Any = field(repr=False)
    refs: tuple[LayerRef, ...]
    reducers: Mapping[str, Reducer]
    renderer: Renderer
    labels: np.ndarray | None = field(repr=False)  # given by the caller; None: from the batches
    metadata: pd.DataFrame | None = field(repr=False)  # per text in a per-token run
    label_names: list[str] | None
    name: str
    out: Location
    n_components: int
    max_dense_dim: int
    storage_dtype: str
    dtype: str | None = None  # the forward pass's dtype (None: the model's own)
    batch_size: int  # the size batches come in (a DataLoader's own)
    aligned: bool  # batches are batch_size long except the last (indexable data)
    n_known: int | None  # the number of samples, when known without iterating
    device: torch.device
    progress: bool
    recompute: bool
    client: Client | None
    model_info: Mapping[str, Any]
    data_fingerprint: str | None
    options: Mapping[str, Any]  # the options the key covers
    key: str  # a finished run at ``out`` with this key is reused
    resume_key: str | None  # a checkpoint with this key is resumed; None: never (one-pass data)
    input_stats: bool = True  # record inputstats columns
    outputs: OutputsSpec = "auto"  # record the model's class scores (see outputs)
    # the run's content hash where it is known before extraction (ee.from_arrays: what its samples
    # are, their texts or images); None: the hash of the inputs extraction reads
    content_hash: str | None = None

    @property
    def tokens(self) -> TokenBatches | None:
        """The token batches of a per-token run (labels and metadata are then per text)."""
        return self.data if isinstance(self.data, TokenBatches) else None

    @property
    def names(self) -> list[str]:
        """The layers' shown names, in order."""
        return [ref.name for ref in self.refs]

    def extract_options(self) -> ExtractOptions:
        return ExtractOptions(
            refs=self.refs,
            reducers=self.reducers,
            renderer=self.renderer,
            batch_size=self.batch_size,
            n_components=self.n_components,
            max_dense_dim=self.max_dense_dim,
            storage_dtype=self.storage_dtype,
            progress=self.progress,
            name=self.name,
            n_known=self.n_known,
            aligned=self.aligned,
            dtype=self.dtype,
            input_stats=self.input_stats,
            outputs=self.outputs,
            labels=self.labels,
        )

    def finished_run(self) -> Location | None:
        """The finished run at ``out`` when it was made by the same call (and may be reused)."""
        if not self.model_info.get("reusable", True):  # a placed model naming no checkpoint
            return None
        if self.recompute or self.data_fingerprint is None or not (self.out / MANIFEST).exists():
            return None
        with contextlib.suppress(EmbeddingExplorerError, ValueError, KeyError):
            if read_manifest(self.out).get("key") == self.key:
                return self.out
        return None


def plan_explore(
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
    storage_dtype: str = "float32",
    client: Client | None = None,
    storage_options: StorageOptions | None = None,
    dtype: str | None = None,
    input_stats: bool = True,
    outputs: OutputsSpec = "auto",
) -> ExplorePlan:
    """Check the arguments of :func:`~embedding_explorer.explore` (same names, same meaning)
    and compute its keys; raises what ``explore`` raises for a bad argument."""
    built = build_model(model)
    refs = resolve_layers(built, layers)
    reducers = _with_input_default(reducers_for([r.name for r in refs], reduce), refs)
    positive_int(batch_size, "batch_size")
    positive_int(max_dense_dim, "max_dense_dim")
    if name is not None:
        run_name(name)
    device_given = _checked_device(device, here=client is None)
    n_components_for(n_components, 2, 1)  # validates the type and sign early
    if storage_dtype not in STORAGE_DTYPES:
        raise ValueError(f"storage_dtype={storage_dtype!r}: use 'float32' or 'float16'")
    forward_dtype(dtype)
    if dtype is not None and client is not None:
        raise ValueError(f"dtype={dtype!r} runs in this process only; leave it out with client=")
    if not isinstance(input_stats, bool):
        raise TypeError(f"input_stats={input_stats!r}: use True or False")
    check_outputs(outputs)
    check_data(data)
    skip_special = tokens_choice(
        {k: (r.method if isinstance(r.method, str) else "", r.skip_special) for k, r in reducers.items()}
    )
    n_texts = None
    if skip_special is not None:  # a per-token run: labels, metadata are per text
        if not (render is None or (isinstance(render, str) and render == "text")):
            raise EmbeddingExplorerError(
                "reduce='tokens' shows each token within its own text; leave render= out"
            )
        data = token_samples(data, skip_special)
        n_texts = data.n_texts
    n_known = count_samples(data)
    if n_known is not None and n_known < 2:
        raise EmbeddingExplorerError(f"data has {n_known} samples; PCA needs at least 2")
    if client is not None and not (indexable(data) or text_batches_of(data) is not None):
        raise EmbeddingExplorerError(
            f"client= splits the data into shards of sample ids, so data must be indexable (a Tensor, "
            f"an ndarray, an (X, y) pair, a map-style Dataset or a DataLoader over one; or "
            f"ee.text_batches), not {type(data).__name__}"
        )
    renderer = Renderer(render, n_known)
    per_row = n_known if n_texts is None else n_texts
    labels_given = _as_label_array(labels, per_row, "texts" if n_texts is not None else "samples")
    table = _metadata_table(metadata, per_row, "texts" if n_texts is not None else "samples")
    if table is not None and n_texts is not None:
        clash = [c for c in table.columns if c in TOKEN_COLUMNS]
        if clash:
            raise EmbeddingExplorerError(
                f"metadata columns {clash} are reserved in a per-token run; rename them"
            )
    _check_storable(labels_given, table)
    names_of_labels = list(label_names) if label_names is not None else _dataset_classes(data)
    name = name or _default_name(built)
    out_path = as_location(out if out is not None else Path("runs") / name, storage_options)

    model_info = model_fingerprint(built)
    with files_stated_once():  # an image folder as data and as the renderer's originals: one stat each
        data_fp = data_fingerprint(data)
        rendered_as = renderer.describe()
    options: dict[str, Any] = {
        "name": name,
        "n_components": int(n_components),
        "layers": [[r.name, r.module, r.call] for r in refs],  # shown names and what they hook
        "reduce": {k: r.describe() for k, r in reducers.items()},
        "render": rendered_as,
        "labels": array_hash(labels_given),
        "metadata": array_hash(table),
        "label_names": names_of_labels,
        "max_dense_dim": max_dense_dim,
        "input_stats": input_stats,
        "outputs": _describe_outputs(outputs),
    }
    if storage_dtype != "float32":  # so float32 runs keep the keys they had
        options["storage_dtype"] = storage_dtype
    if dtype is not None:
        options["dtype"] = dtype
    key = options_key({"model": model_info, "data": data_fp, "options": options, "format": FORMAT_VERSION})
    batches = loader_batch_size(data, batch_size)
    # a stopped run resumes only with the same batches; a one-pass iterable always starts over
    resume_key = (
        None
        if data_fp is None or not model_info.get("reusable", True)
        else options_key({"key": key, "batch_size": batches, "checkpoint": resume.VERSION})
    )
    return ExplorePlan(
        spec=model,
        model=built,
        data=data,
        refs=tuple(refs),
        reducers=reducers,
        renderer=renderer,
        labels=labels_given,
        metadata=table,
        label_names=names_of_labels,
        name=name,
        out=out_path,
        n_components=int(n_components),
        max_dense_dim=max_dense_dim,
        storage_dtype=storage_dtype,
        dtype=dtype,
        batch_size=batches,
        aligned=indexable(data),
        n_known=n_known,
        device=_resolve_device(built, device_given),
        progress=progress,
        recompute=recompute,
        client=client,
        model_info=model_info,
        data_fingerprint=data_fp,
        options=options,
        key=key,
        resume_key=resume_key,
        input_stats=input_stats,
        # a per-token run's samples are tokens, a classifier's scores one row per text: none
        # recorded (nor the whole model run for them), whatever the sizes of a batch
        outputs=None if n_texts is not None and outputs == "auto" else outputs,
    )


def _describe_outputs(spec: OutputsSpec) -> str | None:
    """A stable text form of ``outputs=`` for the run's key."""
    if callable(spec):
        name = getattr(spec, "__qualname__", type(spec).__qualname__)
        return f"callable:{name}:{callable_digest(spec)}"
    return spec


def _with_input_default(reducers: dict[str, Reducer], refs: Sequence[LayerRef]) -> dict[str, Reducer]:
    """The model input is flattened by default: PCA in data space, pixel by pixel."""
    for ref in refs:
        if ref.module == INPUT_LAYER and reducers[ref.name] == Reducer():
            reducers[ref.name] = Reducer("flatten")
    return reducers


def _as_label_array(labels: Any, n_known: int | None, unit: str = "samples") -> np.ndarray | None:
    if labels is None:
        return None
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise EmbeddingExplorerError(f"labels must be one value per sample; got shape {arr.shape}")
    if n_known is not None and len(arr) != n_known:
        raise EmbeddingExplorerError(f"labels has {len(arr)} entries for {n_known} {unit}")
    return arr


def _metadata_table(metadata: Any, n_known: int | None, unit: str = "samples") -> pd.DataFrame | None:
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
        raise EmbeddingExplorerError(f"metadata has {len(table)} rows for {n_known} {unit}")
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


def _resolve_device(model: nn.Module | None, device: torch.device | None) -> torch.device:
    if device is not None:
        return device
    return torch.device("cpu") if model is None else execution_device(model)


def _checked_device(device: str | torch.device | None, *, here: bool) -> torch.device | None:
    """``device`` as a torch.device (one this machine has when the model runs ``here``, not on
    Dask workers), or an error naming the argument."""
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise EmbeddingExplorerError(
            f"device={device!r} is not a torch device; use e.g. 'cpu', 'cuda', 'cuda:1' or 'mps'"
        ) from e
    if not here:
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise EmbeddingExplorerError(
                f"device={device!r} but CUDA is not available here; pass device='cpu' (or leave it out: "
                "the model's own device)"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise EmbeddingExplorerError(
                f"device={device!r} but this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise EmbeddingExplorerError(f"device={device!r} but MPS is not available here; pass device='cpu'")
    return dev


def _check_storable(labels: np.ndarray | None, table: pd.DataFrame | None) -> None:
    """Labels and metadata as the sample table will store them (Parquet, through pyarrow), checked
    now rather than after the extraction: an error names the column, a bad value and its row."""
    columns: list[tuple[str, pd.Series]] = []
    if labels is not None:
        columns.append(("labels", pd.Series(labels)))
    if table is not None:
        columns += [(f"metadata column {c!r}", table[c]) for c in table.columns]
    with contextlib.suppress(pa.ArrowException, TypeError, ValueError):
        pa.Table.from_pandas(
            pd.DataFrame({str(i): c for i, (_, c) in enumerate(columns)}), preserve_index=False
        )
        return  # the usual case: one conversion of the whole table
    for what, column in columns:
        try:
            pa.Table.from_pandas(pd.DataFrame({"c": column.reset_index(drop=True)}), preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as e:
            raise EmbeddingExplorerError(
                f"{what} cannot be stored in the run's sample table: "
                f"{_bad_value(column)}; give it one type of numbers, strings, "
                f"booleans or timestamps (e.g. .astype(str))"
            ) from e


def _bad_value(column: pd.Series) -> str:
    """The first value of ``column`` that pyarrow cannot store alongside those before it."""
    values = list(column)
    first: type | None = None
    for row, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        try:
            pa.array([value])
        except (pa.ArrowException, TypeError, ValueError):
            return f"row {row} holds {value!r} ({type(value).__name__})"
        kind = _kind(value)
        if first is None:
            first = kind
        elif kind is not first:
            return f"row {row} holds {value!r} ({type(value).__name__}) after {first.__name__} values"
    return f"its values are of dtype {column.dtype}"


def _kind(value: Any) -> type:
    """Values that pyarrow stores in one column share a kind (ints and floats mix)."""
    if isinstance(value, (bool, np.bool_)):
        return bool
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float
    return type(value)
