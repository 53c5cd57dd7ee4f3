"""PCA of a layer too wide for a ``D x D`` covariance: randomized SVD over its stored rows.

:func:`pca_of_stored` is how every builder finishes a layer's PCA: one eigendecomposition of
the accumulated covariance (:meth:`~embedding_explorer.pca.StreamingPCA.finalize`), or, for an
accumulator that kept per-feature moments only, :func:`randomized_pca` over the rows stored in
the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from .pca import FloatArray, PCAResult, StreamingPCA, flip_signs, n_components_for


def randomized_pca(
    chunks: Callable[[], Iterable[np.ndarray]],
    moments: StreamingPCA,
    *,
    n_oversamples: int = 10,
    n_iter: int = 4,
    seed: int = 0,
) -> PCAResult:
    """Top components of a matrix too wide for ``D x D``, by randomized SVD (Halko et al. 2011).

    ``chunks()`` yields the rows again on every call (e.g. from the Zarr store); it is called
    ``2 * n_iter + 2`` times. ``moments`` holds the mean and per-feature variances of the same
    rows (a ``covariance=False`` accumulator), which give the exact total variance.
    """
    state = moments.state()  # the mean as float64 on the host (per-feature moments: O(D))
    n, d = state["n_samples_seen"], int(state["n_features"] or 0)
    k = n_components_for(moments.n_components, n, d)
    mean = np.asarray(state["mean"], dtype=np.float64)
    total = float(moments.variances().sum())
    width = min(k + n_oversamples, d, n)
    rng = np.random.default_rng(seed)
    omega = rng.standard_normal((d, width))

    def times(right: FloatArray) -> FloatArray:  # (X - mean) @ right, row by row
        return np.concatenate([(c.astype(np.float64) - mean) @ right for c in chunks()])

    def transposed_times(left: FloatArray) -> FloatArray:  # (X - mean).T @ left
        out, start = np.zeros((d, left.shape[1])), 0
        for c in chunks():
            out += (c.astype(np.float64) - mean).T @ left[start : start + len(c)]
            start += len(c)
        return out

    q, _ = np.linalg.qr(times(omega))
    for _ in range(n_iter):
        z, _ = np.linalg.qr(transposed_times(q))
        q, _ = np.linalg.qr(times(z))
    b = transposed_times(q).T  # (width, d) = Q^T (X - mean)
    _, s, vt = np.linalg.svd(b, full_matrices=False)
    explained = s[:k] ** 2 / (n - 1)
    return PCAResult(
        mean=mean,
        components=flip_signs(vt[:k]),
        explained_variance=explained,
        explained_variance_ratio=explained / total if total > 0 else np.zeros_like(explained),
        total_variance=total,
        n_samples=n,
        method="randomized_svd",
    )


def pca_of_stored(moments: StreamingPCA, stored: Any) -> PCAResult:
    """The PCA of a layer whose rows are in ``stored`` (a chunked array) and were fed to
    ``moments``: one eigendecomposition of the covariance, or randomized SVD over the stored
    rows for a layer too wide for a D x D matrix."""
    if moments.covariance:
        return moments.finalize()
    return randomized_pca(lambda: iter_rows(stored, int(stored.chunks[0])), moments)


def iter_rows(array: Any, chunk_rows: int) -> Iterator[np.ndarray]:
    """Row blocks of an array-like (numpy, memory map or Zarr array)."""
    for start in range(0, int(array.shape[0]), chunk_rows):
        yield np.asarray(array[start : start + chunk_rows])
