"""One PCA over the union of two data sets, saved as a run of its own.

Built from the two runs' *stored* activations (no model, no data set needed): both are streamed
chunk by chunk into one :class:`~embedding_explorer.pca.StreamingPCA` per layer and into the
new run's activations, so the result is exact PCA of the stacked matrix. The samples are the
reference run's, then the other run's; the label of each is the run it came from, so the
association statistics of the joint run say which components separate the two sets.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..checks import positive_int
from ..exceptions import EmbeddingExplorerError
from ..fingerprint import options_key
from ..pca import PCAResult, StreamingPCA
from ..randomized import iter_rows
from ..store.format import FORMAT_VERSION, MANIFEST, RENDERINGS, read_manifest
from ..store.lock import Wait, run_lock
from ..store.reader import RunReader
from ..store.writer import RunWriter
from .manifest import Manifest, layer_entry
from .plan import MAX_DENSE_DIM
from .results import finish_pca, write_scores

if TYPE_CHECKING:
    from ..run import Run

JOINT_COLUMNS = ("class", "source_id")
"""Metadata columns of a joint run: each sample's original label (its name) and its id in its own run."""
RENDER_BLOCK = 4096  # renderings copied this many records at a time


def joint_run(
    reference: Run,
    other: Run,
    layers: Sequence[str],
    *,
    out: str | Path | None = None,
    name: str | None = None,
    n_components: int | None = None,
    recompute: bool = False,
    wait: Wait = False,
) -> Run:
    """Exact PCA of both runs' stored activations stacked (reference rows first), saved as a run.

    Parameters
    ----------
    reference, other : Run
        Runs of the same model (checked by :func:`~.datasets.compare_datasets`).
    layers : sequence of str
        Layers present in both runs with the same width.
    out : path, optional
        Default: ``<reference folder>+<other folder>`` beside the reference run.
    name : str, optional
        Default: ``"<reference name> + <other name>"``.
    n_components : int, optional
        Default: the reference run's ``n_components`` option.
    recompute : bool, default=False
        A finished joint run at ``out`` made from the same two runs is otherwise reused.
    wait : bool or float, default=False
        Another process writing to ``out`` holds its lock (:mod:`.store.lock`): False raises
        :class:`.RunLockedError` naming it, True waits for it, a number waits that many seconds.

    Returns
    -------
    Run
        ``N_reference + N_other`` samples. ``label``: the data-set membership (the run names);
        metadata ``class`` (the original label, as its name), ``source_id`` (the id in its own
        run) and the two runs' metadata columns (missing where a run lacks a column).
        Renderings are both runs' thumbnails or texts when they are of the same kind.
    """
    started = time.perf_counter()
    out_path = (
        Path(out) if out is not None else reference.path.parent / f"{reference.path.name}+{other.path.name}"
    )
    if out_path.resolve() in (reference.path, other.path):
        raise EmbeddingExplorerError(
            f"out={str(out_path)!r} is one of the compared runs; choose another path"
        )
    name = name or f"{reference.name} + {other.name}"
    k = positive_int(
        n_components if n_components is not None else reference.manifest["options"].get("n_components", 10),
        "n_components",
    )
    max_dense_dim = int(reference.manifest["options"].get("max_dense_dim", MAX_DENSE_DIM))
    sources = [_source(reference, "reference"), _source(other, "other")]
    key = options_key(
        {"joint": sources, "layers": list(layers), "n_components": k, "name": name, "format": FORMAT_VERSION}
    )
    with run_lock(out_path, wait=wait):
        if not recompute and (out_path / MANIFEST).exists():
            try:
                if read_manifest(out_path).get("key") == key:
                    return _open(out_path)
            except (EmbeddingExplorerError, ValueError, KeyError):
                pass

        writer = RunWriter(out_path, layers)
        try:
            pcas = {}
            for layer in layers:  # a loop, not a comprehension: the warning's stacklevel counts frames
                pcas[layer] = _fit_layer(writer, layer, reference, other, k, max_dense_dim)
            n = reference.n_samples + other.n_samples
            for layer, pca in pcas.items():
                writer.write_pca(layer, pca)
                write_scores(writer, layer, pca, n)
            table = joint_samples(reference, other)
            writer.write_samples(table)
            kind = _copy_renderings(writer, reference, other)
            manifest = Manifest(
                name=name,
                key=key,
                model=reference.manifest["model"],
                n_samples=n,
                data_type="joint",
                content_hash=_joint_hash(sources),
                options={
                    "name": name,
                    "n_components": k,
                    "layers": list(layers),
                    "max_dense_dim": max_dense_dim,
                },
                extra={"joint": sources},
                layers=[_layer_entry(reference, layer, pca, writer) for layer, pca in pcas.items()],
                labels_present=True,
                metadata_columns=[str(c) for c in table.columns if c not in ("sample_id", "label")],
                recorded={  # the sources' recorded columns that the joint table kept under their names
                    "input_statistics": _recorded(reference.input_statistics, other.input_statistics, table),
                    "outputs": _recorded(reference.output_columns, other.output_columns, table),
                },
                rendering_kind=kind,
                timings={"total_s": round(time.perf_counter() - started, 3)},
            )
            writer.commit(manifest.as_dict())
        except BaseException:
            writer.abort()
            raise
        return _open(out_path)  # under the lock: a writer waiting for it cannot replace the run first


def membership_names(reference: Run, other: Run) -> tuple[str, str]:
    """The two label values of a joint run: the run names (the folder names if those are equal)."""
    if reference.name != other.name:
        return reference.name, other.name
    if reference.path.name != other.path.name:
        return reference.path.name, other.path.name
    return "reference", "other"


def joint_samples(reference: Run, other: Run) -> pd.DataFrame:
    """The sample table of a joint run: ``sample_id``, ``label`` (membership), ``class``,
    ``source_id``, then both runs' metadata columns (a column that clashes with ``class`` or
    ``source_id`` is kept as ``<name>_source``, or ``<name>_source2``... when that is taken)."""
    names = membership_names(reference, other)
    n_r, n_o = reference.n_samples, other.n_samples
    metadata = pd.concat([reference.metadata, other.metadata], ignore_index=True)
    metadata = metadata.rename(columns=clash_renames([str(c) for c in metadata.columns]))
    table = pd.DataFrame(
        {
            "sample_id": np.arange(n_r + n_o, dtype=np.int64),
            "label": np.repeat(np.array(names, dtype=object), [n_r, n_o]),
            "class": np.concatenate([_class_names(reference), _class_names(other)]),
            "source_id": np.concatenate([np.arange(n_r), np.arange(n_o)]).astype(np.int64),
        }
    )
    return pd.concat([table, metadata], axis=1)


def clash_renames(columns: Sequence[str]) -> dict[str, str]:
    """New names for the metadata columns that clash with the joint run's own columns: the
    first of ``<name>_source``, ``<name>_source2``, ... that no column has (nor any new name)."""
    taken = set(columns) | set(JOINT_COLUMNS) | {"sample_id", "label"}
    renames = {}
    for column in columns:
        if column not in JOINT_COLUMNS:
            continue
        candidates = (f"{column}_source{'' if i == 1 else i}" for i in itertools.count(1))
        new = next(c for c in candidates if c not in taken)
        taken.add(new)
        renames[column] = new
    return renames


def _open(path: Path) -> Run:
    from ..run import Run

    return Run(path)


def _source(run: Run, role: str) -> dict[str, Any]:
    return {
        "role": role,
        "name": run.name,
        "path": str(run.path),
        "key": run.manifest.get("key"),
        "content_hash": run.manifest["data"].get("content_hash"),
        "n_samples": run.n_samples,
    }


def _joint_hash(sources: list[dict[str, Any]]) -> str | None:
    hashes = [s["content_hash"] for s in sources]
    if any(h is None for h in hashes):
        return None
    return hashlib.blake2b("+".join(hashes).encode(), digest_size=16).hexdigest()


def _class_names(run: Run) -> np.ndarray:
    """Each sample's label as its display name (None where the run has no labels)."""
    labels = run.labels
    if labels is None:
        return np.full(run.n_samples, None, dtype=object)
    series = pd.Series(labels)
    names = {value: run.label_name(value) for value in series.dropna().unique().tolist()}
    return series.map(names).astype(object).where(series.notna(), None).to_numpy(dtype=object)


def _stacked_rows(reference: Run, other: Run, layer: str) -> Iterator[np.ndarray]:
    for run in (reference, other):
        activations = run.layer(layer).activations
        yield from iter_rows(activations, int(activations.chunks[0]))


def _fit_layer(
    writer: RunWriter, layer: str, reference: Run, other: Run, k: int, max_dense_dim: int
) -> PCAResult:
    """Stream both runs' activations of ``layer`` into the new run and the PCA accumulator."""
    dims = {reference.layer(layer).dim, other.layer(layer).dim}
    if len(dims) != 1:
        raise EmbeddingExplorerError(f"layer {layer!r} has {sorted(dims)} features in the two runs")
    acc = StreamingPCA(k, covariance=dims.pop() <= max_dense_dim)
    for rows in _stacked_rows(reference, other, layer):
        acc.partial_fit(rows)
        writer.append_activations(layer, rows)
    writer.finish_activations()
    # _fit_layer, joint_run, DatasetComparison.joint, the line that called it
    return finish_pca(acc, writer.activations(layer), layer, why=" over both data sets", stacklevel=4)


def _layer_entry(reference: Run, layer: str, pca: PCAResult, writer: RunWriter) -> dict[str, Any]:
    """A joint layer's manifest entry: what the reference run's layer hooked and how."""
    info = reference.layer(layer).info
    return layer_entry(
        layer,
        writer.keys[layer],
        pca,
        module=info.get("module"),
        call=info.get("call"),
        reduce=info.get("reduce"),
    )


def _copy_renderings(writer: RunWriter, reference: Run, other: Run) -> str | None:
    """Both runs' packed renderings, end to end, when they are of one kind; else none."""
    kind = reference.rendering_kind
    if kind is None or other.rendering_kind != kind:
        return None
    if any(run.manifest["rendering"].get("shared") for run in (reference, other)):
        return None  # renderings shared by samples (per-token runs) are not copied one per sample
    offsets = [RunReader(run.path).rendering_offsets() for run in (reference, other)]
    parts = []
    for run, run_offsets in zip((reference, other), offsets, strict=True):
        if run_offsets is None or len(run_offsets) != run.n_samples + 1:
            return None
        parts.append((run, run_offsets))
    for run, run_offsets in parts:
        with open(run.path / RENDERINGS, "rb") as f:
            for start in range(0, run.n_samples, RENDER_BLOCK):
                stop = min(start + RENDER_BLOCK, run.n_samples)
                base = int(run_offsets[start])
                f.seek(base)
                block = f.read(int(run_offsets[stop]) - base)
                ends = run_offsets[start : stop + 1] - base
                writer.append_renderings([block[a:b] for a, b in itertools.pairwise(ends)])
    writer.finish_renderings()
    return kind


def _recorded(a: Sequence[str], b: Sequence[str], table: pd.DataFrame) -> list[str]:
    """Recorded columns of either source run that the joint sample table holds, in order."""
    return [c for c in dict.fromkeys([*a, *b]) if c in table.columns]
