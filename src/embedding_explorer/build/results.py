"""A run's results from its stored rows: each layer's PCA (warning on zero variance) and
scores, and the sample table."""

from __future__ import annotations

import warnings
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..exceptions import EmbeddingExplorerError, ZeroVarianceWarning
from ..pca import PCAResult, StreamingPCA
from ..randomized import pca_of_stored
from ..store.writer import RunWriter
from ..threads import blas_threads


class Scorer(Protocol):
    """Writes a layer's ``(n, k)`` scores into a run (one process, or shards on a cluster)."""

    def __call__(self, writer: RunWriter, layer: str, pca: PCAResult, n: int) -> None: ...


def finish_pca(acc: StreamingPCA, stored: Any, layer: str, *, why: str, stacklevel: int) -> PCAResult:
    """The PCA of a layer whose rows were fed to ``acc`` and stored in ``stored``
    (:func:`~embedding_explorer.randomized.pca_of_stored`).

    A layer with zero variance warns ``layer 'name' has zero variance<why>``, ``stacklevel``
    frames above the caller of this function (the line that called the builder)."""
    pca = pca_of_stored(acc, stored)
    if pca.total_variance <= 0:
        warnings.warn(
            f"layer {layer!r} has zero variance{why}", ZeroVarianceWarning, stacklevel=stacklevel + 1
        )
    return pca


def write_scores(writer: RunWriter, layer: str, pca: PCAResult, n: int) -> None:
    """Scores from the stored rows (kept in memory where the run is small, else read back chunk
    by chunk: never the whole matrix), one write per score chunk, so no chunk is ever rewritten.

    On one BLAS thread: the products are ``(rows, D) x (D, k)`` with k about 10, which a second
    thread does not speed up, and its spinning took a core from whatever else ran (on a busy
    machine the scores of four small layers measured 0.11 s instead of a few ms)."""
    k = len(pca.components)
    scores = writer.scores_array(layer, n, k)
    files = writer.score_chunks(scores)
    block = int(scores.chunks[0])
    buffer = np.empty((min(block, n), k), dtype=np.float32)
    at = 0  # the next row to score
    with blas_threads(1):
        for rows in writer.stored_rows(layer, n):
            values = pca.transform(rows)
            done = 0
            while done < len(values):
                first = at // block * block  # the score chunk that row ``at`` falls in
                last = min(first + block, n)
                take = min(len(values) - done, last - at)
                buffer[at - first : at - first + take] = values[done : done + take]
                at, done = at + take, done + take
                if at == last:  # a whole score chunk: written once
                    if files is not None:
                        files.write(first, buffer[: last - first])
                    else:
                        scores[first:last] = buffer[: last - first]
    if at != n:
        raise EmbeddingExplorerError(f"layer {layer!r} has {at} stored rows for {n} samples")
    writer.forget_rows(layer)  # the rows kept for the scores go with them


def sample_table(n: int, labels: np.ndarray | None, metadata: pd.DataFrame | None) -> pd.DataFrame:
    """A run's sample table: ``sample_id`` 0..n-1, ``label`` when there are labels, then the
    metadata columns."""
    columns: dict[str, Any] = {"sample_id": np.arange(n, dtype=np.int64)}
    if labels is not None:
        columns["label"] = labels
    frame = pd.DataFrame(columns)
    return frame if metadata is None else pd.concat([frame, metadata], axis=1)
