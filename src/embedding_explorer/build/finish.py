"""The last stage of :func:`~embedding_explorer.explore`: PCA, scores, samples, manifest, commit.

:func:`finish` takes what extraction left in the writer (every layer's rows) and in the
:class:`~embedding_explorer.extract.Ledger` (accumulators, labels, counts, the content hash),
checks the counts against the plan, and commits the run.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from ..cores import available_cores
from ..exceptions import EmbeddingExplorerError
from ..extract import Ledger
from ..heap import release_freed_memory
from ..inputstats import colourless_columns
from ..pca import PCAResult
from ..store.writer import RunWriter
from ..threads import blas_threads
from .columns import keeps_loss, recorded_block, recorded_names
from .manifest import Manifest, layer_entry
from .plan import ExplorePlan
from .results import Scorer, finish_pca, sample_table, write_scores
from .token_samples import write_token_samples

log = logging.getLogger(__name__)

TRIM_AFTER_SCORES = 1 << 17  # samples from which freed memory is handed back after each layer's
# scores: else the next layer's buffers come on top of the last one's (~50 MB kept at 1M samples);
# below it the buffers are small and a trim (10-80 ms) would cost more than it saves
TRIM_BEFORE_PCA = 256 << 20  # bytes of rows from which what extraction freed is handed back
# before the PCA: below it extraction's buffers were small (and its checkpoints trimmed already)


def finish(
    plan: ExplorePlan,
    writer: RunWriter,
    ledger: Ledger,
    *,
    extract_s: float,
    started: float,
    resumed_at: int = 0,
    scorer: Scorer | None = None,
) -> Manifest:
    """Fit every layer's PCA, write its scores, the sample table and the manifest, and commit.

    Parameters
    ----------
    plan : ExplorePlan
    writer : RunWriter
        Holding every layer's rows (``finish_activations`` called) and the renderings.
    ledger : Ledger
        The extraction's accumulators, labels and counts.
    extract_s : float
        Seconds the extraction took (this call's part of it, for a resumed run).
    started : float
        ``time.perf_counter()`` when the call began, for the total time.
    resumed_at : int, default=0
        Samples extracted before this call (a resumed run).
    scorer : callable, optional
        Writes a layer's scores; default :func:`~.results.write_scores` (one process).

    Returns
    -------
    Manifest
        What was committed as ``manifest.json``.
    """
    n = ledger.n_done
    if n < 2:
        raise EmbeddingExplorerError(f"data has {n} samples; PCA needs at least 2")
    ledger.check_labels()
    tokens = plan.tokens
    labels, metadata = None, plan.metadata
    if tokens is None:
        labels = plan.labels if plan.labels is not None else ledger.labels()
        if labels is not None and len(labels) != n:
            raise EmbeddingExplorerError(f"labels has {len(labels)} entries for {n} samples")
        if metadata is not None and len(metadata) != n:
            raise EmbeddingExplorerError(f"metadata has {len(metadata)} rows for {n} samples")
    elif plan.labels is None and ledger.batches_with_labels and ledger.n_labels != n:
        raise EmbeddingExplorerError(f"labels has {ledger.n_labels} entries for {n} samples")
    plan.renderer.check_count(n)
    if n * sum(ledger.dims.values()) * 4 >= TRIM_BEFORE_PCA:
        release_freed_memory()  # what extraction freed, before the scores' buffers
    t_pca = time.perf_counter()
    pcas: dict[str, PCAResult] = {}
    for ref in plan.refs:
        pca = finish_pca(
            ledger.accumulators[ref.name],
            writer.activations(ref.name),
            ref.name,
            why=": every sample gives the same activation, so its components carry nothing",
            stacklevel=4,  # finish, _build, explore, the line that called explore
        )
        writer.write_pca(ref.name, pca)
        pcas[ref.name] = pca
    t_scores = time.perf_counter()
    score_layers(scorer, writer, pcas, n)
    t_end = time.perf_counter()
    if tokens is None:
        metadata_columns = [] if metadata is None else [str(c) for c in metadata.columns]
        metadata, recorded = recorded_columns(ledger, labels, metadata, n)
        writer.write_samples(sample_table(n, labels, metadata))
        labels_present = labels is not None
    else:  # per-token run: token columns, the text's label and metadata per token, in chunks
        metadata_columns, recorded = write_token_samples(writer, tokens, ledger, plan.labels, plan.metadata)
        labels_present = plan.labels is not None or ledger.batches_with_labels > 0
    rendered = writer.finish_renderings()
    manifest = Manifest(
        name=plan.name,
        key=plan.key,
        model=plan.model_info,
        n_samples=n,
        data_type=type(plan.data).__name__,
        data_fingerprint=plan.data_fingerprint,
        content_hash=plan.content_hash or ledger.content_hash(),
        options={
            **plan.options,
            "storage_dtype": plan.storage_dtype,
            "batch_size": plan.batch_size,
            "device": str(plan.device),
            "rows_per_chunk": ledger.rows_per_chunk,
            "distributed": plan.client is not None,
        },
        layers=[
            layer_entry(
                ref.name,
                writer.keys[ref.name],
                pcas[ref.name],
                module=ref.module,
                call=ref.call,
                reduce=plan.reducers[ref.name].describe(),
            )
            for ref in plan.refs
        ],
        labels_present=labels_present,
        label_names=plan.label_names,
        metadata_columns=metadata_columns,
        recorded=recorded,
        rendering_kind=plan.renderer.kind if rendered == n else None,
        renderings_shared=rendered == n and writer.renderings_shared,
        timings={
            "extract_s": round(extract_s, 3),
            "samples_per_s": round((n - resumed_at) / max(extract_s, 1e-9), 1),
            "resumed_at": resumed_at,
            "pca_s": round(t_scores - t_pca, 3),
            "scores_s": round(t_end - t_scores, 3),
            "total_s": round(time.perf_counter() - started, 3),
        },
    )
    writer.commit(manifest.as_dict())  # the checkpoints stay until the run is in place
    return manifest


def score_layers(scorer: Scorer | None, writer: RunWriter, pcas: dict[str, PCAResult], n: int) -> None:
    """Every layer's scores. In this process the layers are scored side by side, one thread per
    core, each on one BLAS thread: a layer's scores are a read of its rows, a ``(rows, D) x
    (D, k)`` product and writes, during which numpy and the disk let go of the GIL, so the
    layers overlap (bench_scale, four 512-wide layers of 100,000 rows: 0.6-0.9 s one after
    another). Each layer's numbers are the same whichever thread makes them. A ``scorer`` of
    its own (Dask's workers) is called one layer after another."""

    def score(layer: str) -> None:
        (scorer or write_scores)(writer, layer, pcas[layer], n)
        if n >= TRIM_AFTER_SCORES:  # big score buffers: hand them back before the next layer's
            release_freed_memory()

    workers = min(available_cores(), len(pcas))
    if scorer is not None or workers <= 1:
        for layer in pcas:
            score(layer)
        return
    with blas_threads(1), ThreadPoolExecutor(workers, thread_name_prefix="ee-scores") as pool:
        for done in [pool.submit(score, layer) for layer in pcas]:
            done.result()  # the first error, as one after another would raise it


def recorded_columns(
    ledger: Ledger, labels: np.ndarray | None, metadata: pd.DataFrame | None, n: int
) -> tuple[pd.DataFrame | None, dict[str, list[str]]]:
    """The metadata with the columns extraction recorded appended (input statistics, the model's
    outputs), and their names by source (the manifest's ``recorded`` entry). A metadata column
    of the same name wins over a recorded one."""
    raw = ledger.columns()
    if raw and any(len(v) != n for v in raw.values()):  # pragma: no cover - guarded per batch
        log.warning("recorded columns cover fewer than %d samples; left out", n)
        raw = {}
    for name in colourless_columns(raw):  # every image grey: no colour to speak of
        del raw[name]
    given = set() if metadata is None else {str(c) for c in metadata.columns}
    loss = keeps_loss(labels is not None and len(labels) > 0, [raw["loss"]] if "loss" in raw else None)
    extra = recorded_block(raw, labels, given, loss)
    recorded = recorded_names(list(raw), given, loss)
    if not extra:
        return metadata, recorded
    frame = pd.DataFrame({k: extra[k] for k in recorded["input_statistics"] + recorded["outputs"]})
    return (frame if metadata is None else pd.concat([metadata, frame], axis=1)), recorded
