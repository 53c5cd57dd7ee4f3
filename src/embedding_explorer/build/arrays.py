"""The plan of ``ee.from_arrays``: the same :class:`~.plan.ExplorePlan` as ``explore``'s, for
activations that already exist (no model, no forward pass), so extraction, finishing, the lock,
checkpoints and the run's format are those of every other run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import torch

from .. import resume
from ..arrays import ArraySource
from ..capture import LayerRef
from ..checks import positive_int, run_name
from ..exceptions import EmbeddingExplorerError
from ..fingerprint import array_hash, identity_digest, options_key
from ..locations import StorageOptions, as_location
from ..pca import n_components_for
from ..reducers import ReduceSpec, reducers_for
from ..render import Renderer, RenderSpec
from ..store.format import FORMAT_VERSION, STORAGE_DTYPES, chunk_rows
from .plan import MAX_DENSE_DIM, ExplorePlan, _as_label_array, _check_storable, _metadata_table

NO_MODEL = {"class": None, "fingerprint": "arrays", "n_parameters": 0}  # no model said: unknown


def arrays_model(model: str | None) -> dict[str, Any]:
    """The manifest's model entry of a run built from arrays: :data:`NO_MODEL`, or the model the
    caller names (``model=``: its name is its identity, so two runs naming the same model can be
    compared as one model over two data sets)."""
    if model is None:
        return NO_MODEL
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model={model!r}: name the model the arrays came from, e.g. 'gpt2@resid_5'")
    return {"class": model, "fingerprint": f"arrays:{model}", "n_parameters": 0}


def plan_arrays(
    arrays: Mapping[str, Any],
    *,
    out: str | Path | None = None,
    name: str | None = None,
    n_components: int = 10,
    batch_size: int = 4096,
    labels: Sequence[Any] | np.ndarray | None = None,
    metadata: pd.DataFrame | Mapping[str, Sequence[Any]] | None = None,
    reduce: ReduceSpec | Mapping[str, ReduceSpec] = None,
    render: RenderSpec | np.ndarray | torch.Tensor = None,
    progress: bool = True,
    label_names: Sequence[str] | None = None,
    recompute: bool = False,
    max_dense_dim: int = MAX_DENSE_DIM,
    storage_dtype: str = "float32",
    storage_options: StorageOptions | None = None,
    model: str | None = None,
) -> ExplorePlan:
    """Check the arguments of ``ee.from_arrays`` and compute the run's keys."""
    model_info = arrays_model(model)
    images = render if _is_image_array(render) else None
    texts = _texts(render) if images is None else None
    source = ArraySource(arrays, images)
    names = list(source.arrays)
    reducers = reducers_for(names, reduce)
    positive_int(batch_size, "batch_size")
    positive_int(max_dense_dim, "max_dense_dim")
    if name is not None:
        run_name(name)
    n_components_for(n_components, 2, 1)
    if storage_dtype not in STORAGE_DTYPES:
        raise ValueError(f"storage_dtype={storage_dtype!r}: use 'float32' or 'float16'")
    n = source.n_samples
    if n < 2:
        raise EmbeddingExplorerError(f"the arrays have {n} rows; PCA needs at least 2")
    shown = "image" if images is not None else ("none" if render is None else render)
    renderer = Renderer(cast(RenderSpec, shown), n)  # a 1-D array of texts is taken as a list
    labels_given = _as_label_array(labels, n)
    table = _metadata_table(metadata, n)
    _check_storable(labels_given, table)
    name = name or "arrays"
    out_path = as_location(out if out is not None else Path("runs") / name, storage_options)
    data_fp = source.fingerprint()
    options: dict[str, Any] = {
        "name": name,
        "n_components": int(n_components),
        "layers": [[layer, layer, None] for layer in names],
        "reduce": {k: r.describe() for k, r in reducers.items()},
        "render": renderer.describe(),
        "labels": array_hash(labels_given),
        "metadata": array_hash(table),
        "label_names": list(label_names) if label_names is not None else None,
        "max_dense_dim": max_dense_dim,
        "source": "arrays",
    }
    sample_hash = samples_hash(texts, images)
    if sample_hash is not None:  # runs made before hashed the activations: made again once
        options["content"] = "samples"
    if storage_dtype != "float32":
        options["storage_dtype"] = storage_dtype
    key = options_key({"model": model_info, "data": data_fp, "options": options, "format": FORMAT_VERSION})
    # batches no taller than a chunk of the widest layer: the writer holds one chunk per layer
    batch_size = max(1, min(batch_size, chunk_rows(max(_width(a) for a in source.arrays.values()))))
    resume_key = options_key({"key": key, "batch_size": batch_size, "checkpoint": resume.VERSION})
    return ExplorePlan(
        spec=None,
        model=None,
        data=source,
        refs=tuple(LayerRef(layer, layer) for layer in names),
        reducers=reducers,
        renderer=renderer,
        labels=labels_given,
        metadata=table,
        label_names=options["label_names"],
        name=name,
        out=out_path,
        n_components=int(n_components),
        max_dense_dim=max_dense_dim,
        storage_dtype=storage_dtype,
        batch_size=batch_size,
        aligned=True,
        n_known=n,
        device=torch.device("cpu"),
        progress=progress,
        recompute=recompute,
        client=None,
        model_info=model_info,
        data_fingerprint=data_fp,
        options=options,
        key=key,
        resume_key=resume_key,
        content_hash=sample_hash,
    )


def _width(array: Any) -> int:
    """A layer's width after the default reduction: D of (N, D) and (N, T, D), C of (N, C, H, W)."""
    shape = tuple(array.shape)
    return int(shape[-1] if len(shape) == 3 else shape[1] if len(shape) >= 2 else 1)


SAMPLE_HASH_ROWS = 1024  # images hashed this many at a time (fixed: the hash is the same however
# the run is batched)


def samples_hash(texts: Sequence[str] | None, images: Any) -> str | None:
    """The content hash of a run built from arrays: what its samples are, the texts or the images
    given as ``render`` (each text's length and bytes; the images' shape, dtype and bytes), so
    two models' caches over the same samples cover the same samples (``compare_models``),
    whatever their widths and batches; None where neither is given."""
    if texts is None and images is None:
        return None
    digest = identity_digest()
    if texts is not None:
        digest.update(f"texts:{len(texts)}".encode())
        for text in texts:
            encoded = text.encode()
            digest.update(len(encoded).to_bytes(8, "little") + encoded)
        return str(digest.hexdigest())
    n = int(images.shape[0])
    digest.update(f"images:{tuple(images.shape)}:{images.dtype}".encode())
    for start in range(0, n, SAMPLE_HASH_ROWS):
        block = images[start : start + SAMPLE_HASH_ROWS]
        block = block.detach().cpu().numpy() if isinstance(block, torch.Tensor) else np.asarray(block)
        digest.update(np.ascontiguousarray(block).view(np.uint8).reshape(-1).data)
    return str(digest.hexdigest())


def _texts(render: Any) -> list[str] | None:
    """``render`` given as one text per sample (a list, a pandas Series, a 1-D array of
    strings: any sized iterable of them), else None."""
    if isinstance(render, (str, bytes)) or render is None or callable(render) or _is_image_array(render):
        return None
    if isinstance(render, np.ndarray) and (render.ndim != 1 or render.dtype.kind not in "UO"):
        return None
    try:
        texts = list(render)
    except TypeError:
        return None
    return texts if texts and all(isinstance(t, str) for t in texts) else None


def _is_image_array(render: Any) -> bool:
    """``render`` given as images (N, C, H, W), (N, H, W) rather than texts or a mode."""
    shape = getattr(render, "shape", None)
    return shape is not None and len(shape) in (3, 4) and not isinstance(render, (str, list))


__all__ = ["plan_arrays"]
