"""A run's results from its stored rows: each layer's PCA (warning on zero variance) and
scores, and the sample table."""

from __future__ import annotations

import warnings
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..exceptions import ZeroVarianceWarning
from ..pca import PCAResult, StreamingPCA
from ..randomized import pca_of_stored
from ..store.writer import RunWriter


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
    """Scores chunk by chunk from the stored activations, never the whole matrix in memory:
    one write per score chunk, so no chunk is ever rewritten."""
    activations = writer.activations(layer)
    scores = writer.scores_array(layer, n, len(pca.components))
    rows, block = int(activations.chunks[0]), int(scores.chunks[0])
    for first in range(0, n, block):
        last = min(first + block, n)
        buffer = np.empty((last - first, len(pca.components)), dtype=np.float32)
        for start in range(first, last, rows):
            end = min(start + rows, last)
            buffer[start - first : end - first] = pca.transform(activations[start:end])
        scores[first:last] = buffer


def sample_table(n: int, labels: np.ndarray | None, metadata: pd.DataFrame | None) -> pd.DataFrame:
    """A run's sample table: ``sample_id`` 0..n-1, ``label`` when there are labels, then the
    metadata columns."""
    columns: dict[str, Any] = {"sample_id": np.arange(n, dtype=np.int64)}
    if labels is not None:
        columns["label"] = labels
    frame = pd.DataFrame(columns)
    return frame if metadata is None else pd.concat([frame, metadata], axis=1)
