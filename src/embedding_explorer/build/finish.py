"""The last stage of :func:`~embedding_explorer.explore`: PCA, scores, samples, manifest, commit.

:func:`finish` takes what extraction left in the writer (every layer's rows) and in the
:class:`~embedding_explorer.extract.Ledger` (accumulators, labels, counts, the content hash),
checks the counts against the plan, and commits the run.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from ..exceptions import EmbeddingExplorerError
from ..extract import Ledger
from ..inputstats import ALL_STATS, TEXT_STATS
from ..outputs import OUTPUT_COLUMNS, finish_columns
from ..pca import PCAResult
from ..store.writer import RunWriter
from ..tokens import TokenBatches, token_table
from .manifest import Manifest, layer_entry
from .plan import ExplorePlan
from .results import Scorer, finish_pca, sample_table, write_scores

log = logging.getLogger(__name__)


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
    extracted_labels = ledger.labels()
    labels = plan.labels if plan.labels is not None else extracted_labels
    metadata = plan.metadata
    tokens = plan.tokens
    if tokens is not None:  # per-token run: token columns, the text's label and metadata per token
        metadata, labels = per_token_table(tokens, ledger, plan.labels, extracted_labels, plan.metadata)
    if labels is not None and len(labels) != n:
        raise EmbeddingExplorerError(f"labels has {len(labels)} entries for {n} samples")
    if metadata is not None and len(metadata) != n:
        raise EmbeddingExplorerError(f"metadata has {len(metadata)} rows for {n} samples")
    plan.renderer.check_count(n)
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
    for layer, pca in pcas.items():
        (scorer or write_scores)(writer, layer, pca, n)
    t_end = time.perf_counter()
    given_metadata = metadata  # the user's (and a per-token run's token columns)
    metadata, recorded = recorded_columns(ledger, labels, metadata, n)
    writer.write_samples(sample_table(n, labels, metadata))
    rendered = writer.finish_renderings()
    manifest = Manifest(
        name=plan.name,
        key=plan.key,
        model=plan.model_info,
        n_samples=n,
        data_type=type(plan.data).__name__,
        data_fingerprint=plan.data_fingerprint,
        content_hash=ledger.content_hash(),
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
        labels_present=labels is not None,
        label_names=plan.label_names,
        metadata_columns=[] if given_metadata is None else [str(c) for c in given_metadata.columns],
        recorded=recorded,
        rendering_kind=plan.renderer.kind if rendered == n else None,
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
    stats = {k: v.astype(np.int64) if k in TEXT_STATS else v for k, v in raw.items() if k in ALL_STATS}
    outputs = finish_columns(raw, labels) if "predicted" in raw else {}
    given = set() if metadata is None else {str(c) for c in metadata.columns}
    extra = {k: v for k, v in {**stats, **outputs}.items() if k not in given}
    recorded = {
        "input_statistics": [k for k in ALL_STATS if k in extra],
        "outputs": [k for k in OUTPUT_COLUMNS if k in extra],
    }
    if not extra:
        return metadata, recorded
    frame = pd.DataFrame({k: extra[k] for k in recorded["input_statistics"] + recorded["outputs"]})
    return (frame if metadata is None else pd.concat([metadata, frame], axis=1)), recorded


def per_token_table(
    tokens: TokenBatches,
    ledger: Ledger,
    labels_per_text: np.ndarray | None,
    extracted_labels: np.ndarray | None,
    metadata_per_text: pd.DataFrame | None,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The metadata and labels of a per-token run's samples: ``text_id``, ``position``,
    ``token``, ``token_id``, then the text's own metadata; labels of each token's text."""
    columns = ledger.tokens()
    if columns is None:
        columns = np.empty((0, 3), dtype=np.int64)
    table = token_table(columns, tokens)
    text_ids = table["text_id"].to_numpy()
    labels = labels_per_text[text_ids] if labels_per_text is not None else extracted_labels
    if metadata_per_text is not None:
        own = metadata_per_text.iloc[text_ids].reset_index(drop=True)
        table = pd.concat([table, own], axis=1)
    return table, labels
