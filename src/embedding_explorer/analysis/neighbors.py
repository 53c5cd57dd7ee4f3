"""Nearest neighbours of a sample in a layer, and how much a neighbourhood changes between layers
or models (k-NN overlap).

Neighbours are exact: the stored activations are read in chunks of rows (never the whole (N, D)
matrix at once) and every sample's distance to the query is computed in float64. The
``"scores"`` space uses the layer's PCA scores instead (k columns, already in memory): fast, and
exact for the top-k subspace, which is what the gallery reads.

Distances follow scikit-learn: ``"euclidean"`` is the L2 distance, ``"cosine"`` is ``1 - cos``
(a zero vector is at distance 1 from everything). Ties break by lower sample id; the sample
itself is never its own neighbour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from ..checks import positive_int
from ..exceptions import EmbeddingExplorerError
from ..probe import smallest

if TYPE_CHECKING:
    from ..run import Layer, Run

Metric = Literal["cosine", "euclidean"]
Space = Literal["activations", "scores"]
METRICS: tuple[Metric, ...] = ("cosine", "euclidean")
SPACES: tuple[Space, ...] = ("activations", "scores")
CHUNK_BYTES = 32 * 2**20  # float64 bytes of activations read at a time


def neighbors(
    layer: Layer,
    sample_id: int,
    k: int = 10,
    metric: Metric = "cosine",
    *,
    space: Space = "activations",
) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, distances)`` of the ``k`` samples nearest ``sample_id`` in ``layer``, nearest first."""
    n = layer.run.n_samples
    k = positive_int(k, "k")
    if isinstance(sample_id, bool) or not isinstance(sample_id, (int, np.integer)) or not 0 <= sample_id < n:
        raise IndexError(f"sample_id={sample_id!r} is out of range for run {layer.run.name!r} (0..{n - 1})")
    if k > n - 1:
        raise ValueError(f"k={k} must be at most {n - 1}: run {layer.run.name!r} has {n} samples")
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} must be one of {', '.join(METRICS)}")
    if space not in SPACES:
        raise ValueError(f"space={space!r} must be one of {', '.join(SPACES)}")
    rows = layer.scores if space == "scores" else layer.activations
    width = rows.shape[1]
    query = np.asarray(rows[int(sample_id)], dtype=np.float64)
    if not np.all(np.isfinite(query)):
        raise EmbeddingExplorerError(f"sample {sample_id} of layer {layer.name!r} has non-finite values")
    step = max(1, CHUNK_BYTES // (8 * max(width, 1)))
    best_ids = np.empty(0, dtype=np.int64)
    best = np.empty(0, dtype=np.float64)
    for start in range(0, n, step):
        block = np.asarray(rows[start : start + step], dtype=np.float64)
        d = distances(block, query, metric)
        if start <= sample_id < start + len(block):
            d[sample_id - start] = np.inf
        order = np.argsort(best_ids)  # ids ascending, so that ties in `smallest` go to the lower id
        ids = np.concatenate([best_ids[order], np.arange(start, start + len(block))])
        values = np.concatenate([best[order], d])
        keep = smallest(values, k)
        best_ids, best = ids[keep], values[keep]
    return best_ids, best


def distances(block: np.ndarray, query: np.ndarray, metric: Metric) -> np.ndarray:
    """Distances (M,) of the rows of ``block`` (M, D) to ``query`` (D,), float64."""
    if metric == "euclidean":
        return np.sqrt(np.square(block - query).sum(axis=1))
    norms = np.linalg.norm(block, axis=1)
    q = float(np.linalg.norm(query))
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = (block @ query) / (norms * q)
    cos = np.where((norms == 0) | (q == 0), 0.0, cos)
    return np.clip(1.0 - cos, 0.0, 2.0)


def knn_overlap(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> float:
    """``|A ∩ B| / k``: the share of one neighbour list found in the other (same length k)."""
    a, b = np.asarray(a), np.asarray(b)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(
            f"knn_overlap needs two neighbour lists of one length k >= 1; got {len(a)} and {len(b)}"
        )
    return len(np.intersect1d(a, b)) / len(a)


def neighbor_overlap(
    a: Run | Sequence[Layer],
    b: Run | Sequence[Layer] | None,
    sample_id: int,
    k: int = 10,
    metric: Metric = "cosine",
    *,
    space: Space = "activations",
) -> pd.DataFrame:
    """k-NN overlap of one sample's neighbourhoods: rows the layers of ``a``, columns those of
    ``b`` (default ``a`` itself: layer to layer). Two runs must hold the same samples (two
    models on the same data)."""
    rows, cols = list(a), list(a) if b is None else list(b)
    if not rows or not cols:
        raise ValueError("neighbor_overlap needs at least one layer on each side")
    n_a, n_b = rows[0].run.n_samples, cols[0].run.n_samples
    if n_a != n_b:
        raise EmbeddingExplorerError(
            f"run {rows[0].run.name!r} has {n_a} samples and run {cols[0].run.name!r} {n_b}: "
            "neighbourhoods compare only over the same samples"
        )
    found: dict[int, np.ndarray] = {}
    for lay in [*rows, *cols]:
        if id(lay) not in found:
            found[id(lay)] = neighbors(lay, sample_id, k, metric, space=space)[0]
    values = [[knn_overlap(found[id(r)], found[id(c)]) for c in cols] for r in rows]
    return pd.DataFrame(values, index=[r.name for r in rows], columns=[c.name for c in cols])
