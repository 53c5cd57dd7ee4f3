"""Linear centred kernel alignment (CKA) between layers, streamed from the feature side.

Linear CKA (Kornblith et al. 2019) compares two representations ``X`` (N, p) and ``Y`` (N, q)
of the same samples through their Gram matrices ``K = X X^T`` and ``L = Y Y^T``::

    CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))

With centred columns, ``tr(K H L H) = ||Y_c^T X_c||_F^2``: everything follows from the ``p x q``,
``p x p`` and ``q x q`` cross-products, so nothing of size ``N x N`` is ever formed. The
cross-products are accumulated in float64 over row chunks (a Zarr array is read chunk by chunk),
all matrices side by side, so one pass over the stored activations gives the CKA of every pair.

The debiased estimator uses the unbiased HSIC of Song et al. (2012), as in Nguyen et al. (2021)::

    HSIC_1 = [tr(K~ L~) + (1^T K~ 1)(1^T L~ 1) / ((N-1)(N-2)) - 2/(N-2) 1^T K~ L~ 1] / (N(N-3))

where ``K~`` is ``K`` with its diagonal set to zero. With ``k_r = ||x_r||^2``, ``l_r = ||y_r||^2``
and the column sums ``s_x = X^T 1``, ``s_y = Y^T 1``, every term has a feature-side form:
``tr(K~ L~) = ||X^T Y||_F^2 - sum_r k_r l_r``, ``1^T K~ 1 = ||s_x||^2 - sum_r k_r`` and
``1^T K~ L~ 1 = s_x^T X^T Y s_y - s_x^T (sum_r l_r x_r) - s_y^T (sum_r k_r y_r) + sum_r k_r l_r``.
So the debiased CKA streams as well, with a few extra vectors per matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checks import positive_int
from ..exceptions import EmbeddingExplorerError
from .correlation import check_same_samples

if TYPE_CHECKING:
    from ..run import Layer

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

MAX_FEATURES = 8192
"""The most features streamed side by side: a float64 ``8192 x 8192`` accumulator is 512 MiB."""
BLOCK_BYTES = 64 << 20
"""Target size of one float64 row block of all matrices side by side."""
DEFAULT_ROWS = 4096


@dataclass
class _Source:
    """One matrix to stream: a Layer's activations or a 2-D array."""

    name: str
    array: Any
    n_rows: int
    dim: int
    shift: FloatArray | None  # subtracted from every row; None: the first block's mean
    layer: Layer | None


def _as_source(x: Any, name: str) -> _Source:
    from ..run import Layer

    if isinstance(x, Layer):
        return _Source(x.name, x.activations, x.run.n_samples, x.dim, np.asarray(x.mean, np.float64), x)
    array = x if hasattr(x, "shape") and hasattr(x, "__getitem__") else np.asarray(x)
    if len(array.shape) != 2:
        raise EmbeddingExplorerError(
            f"{name} must be a Layer or a 2-D (n_samples, n_features) array, got shape {tuple(array.shape)}"
        )
    return _Source(name, array, int(array.shape[0]), int(array.shape[1]), None, None)


class _Moments:
    """Feature-side moments of several matrices over the same rows, side by side.

    With ``Z = [X_1 ... X_m]`` (rows shifted by a fixed reference per matrix) and ``R[r, i]`` the
    squared norm of row ``r`` of ``X_i``: ``gram = Z^T Z`` (upper triangle while streaming),
    ``sums = Z^T 1``, ``weighted = R^T Z``, ``norm_products = R^T R``, ``norm_sums = R^T 1``.
    """

    def __init__(self, dims: Sequence[int]) -> None:
        self.dims = list(dims)
        self.offsets = np.concatenate([[0], np.cumsum(self.dims)]).astype(int)
        total, m = int(self.offsets[-1]), len(self.dims)
        self.n = 0
        self.gram: FloatArray = np.zeros((total, total), order="F")
        self.sums: FloatArray = np.zeros(total)
        self.weighted: FloatArray = np.zeros((m, total))
        self.norm_products: FloatArray = np.zeros((m, m))
        self.norm_sums: FloatArray = np.zeros(m)
        self._symmetric = False

    def update(self, z: FloatArray) -> None:
        """Add a block ``z`` (rows, total features), already shifted, in float64."""
        self.gram += z.T @ z  # numpy's matmul lets go of the GIL (scipy's BLAS wrappers hold it)
        self.sums += z.sum(axis=0)
        squares = z * z
        norms = np.add.reduceat(squares, self.offsets[:-1], axis=1)  # (rows, m)
        self.weighted += norms.T @ z
        self.norm_products += norms.T @ norms
        self.norm_sums += norms.sum(axis=0)
        self.n += int(z.shape[0])

    def finish(self) -> None:
        if not self._symmetric:
            upper = np.triu(self.gram)
            self.gram = upper + np.triu(upper, 1).T
            self._symmetric = True

    def block(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def hsic(self, i: int, j: int, *, debiased: bool) -> float:
        """HSIC of matrices ``i`` and ``j`` (biased: ``tr(KHLH) / (N-1)^2``; debiased: HSIC_1)."""
        n, bi, bj = self.n, self.block(i), self.block(j)
        cross = self.gram[bi, bj]
        s_i, s_j = self.sums[bi], self.sums[bj]
        if not debiased:
            centred = cross - np.outer(s_i, s_j) / n
            return float(np.sum(centred * centred)) / (n - 1) ** 2
        kl = self.norm_products[i, j]
        trace = float(np.sum(cross * cross)) - kl
        ones_k = float(s_i @ s_i) - self.norm_sums[i]
        ones_l = float(s_j @ s_j) - self.norm_sums[j]
        ones_kl = float(s_i @ cross @ s_j) + kl
        ones_kl -= float(s_i @ self.weighted[j, bi]) + float(s_j @ self.weighted[i, bj])
        value = trace + ones_k * ones_l / ((n - 1) * (n - 2)) - 2.0 * ones_kl / (n - 2)
        return value / (n * (n - 3))

    def cka(self, i: int, j: int, *, debiased: bool) -> float:
        self.finish()
        denominator = self.hsic(i, i, debiased=debiased) * self.hsic(j, j, debiased=debiased)
        if not denominator > 0:
            return float("nan")  # a constant matrix (or, debiased, too few samples to tell)
        return self.hsic(i, j, debiased=debiased) / float(np.sqrt(denominator))


def _block_rows(sources: Sequence[_Source], total: int, chunk_rows: int | None) -> int:
    if chunk_rows is not None:
        return positive_int(chunk_rows, "chunk_rows")
    heights = [_chunk_height(s.array) for s in sources]
    stored = [rows for rows in heights if rows is not None]
    rows = max(stored) if stored else DEFAULT_ROWS
    cap = max(256, BLOCK_BYTES // (8 * max(total, 1)))
    while rows > cap and rows % 2 == 0:  # halve, so blocks still tile the stored chunks
        rows //= 2
    return min(rows, cap) if rows > cap else rows


def _chunk_height(array: Any) -> int | None:
    """The rows of an array's stored chunks: Zarr's ``chunks`` is ``(rows, ...)``, Dask's
    ``((rows, rows, ...), ...)`` (its first block's); None where it has none."""
    chunks = getattr(array, "chunks", None)
    if not isinstance(chunks, tuple) or not chunks:
        return None
    first = chunks[0]
    if isinstance(first, tuple):
        return int(first[0]) if first else None
    return int(first)


def _stream(sources: Sequence[_Source], chunk_rows: int | None = None) -> _Moments:
    """One pass over the rows of all ``sources`` (same row count), side by side."""
    n = sources[0].n_rows
    for s in sources[1:]:
        if s.n_rows != n:
            raise EmbeddingExplorerError(
                f"{s.name} has {s.n_rows} rows but {sources[0].name} has {n}: CKA needs the same samples"
            )
    total = sum(s.dim for s in sources)
    if total > MAX_FEATURES:
        dims = ", ".join(f"{s.name}: {s.dim}" for s in sources)
        raise EmbeddingExplorerError(
            f"CKA over {total} features side by side ({dims}) exceeds MAX_FEATURES={MAX_FEATURES} "
            f"(a float64 {total} x {total} accumulator); reduce the wide layers first, e.g. "
            "explore(..., reduce='mean') for convolutional maps, or pass randomly projected activations"
        )
    moments = _Moments([s.dim for s in sources])
    rows = _block_rows(sources, total, chunk_rows)
    shifts = [s.shift for s in sources]
    z = np.empty((rows, total))
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = z[: stop - start]
        for i, s in enumerate(sources):
            part = np.asarray(s.array[start:stop], dtype=np.float64)
            shift = shifts[i]
            if shift is None:  # any fixed shift near the mean keeps the sums exact
                shift = shifts[i] = part.mean(axis=0)
            block[:, moments.block(i)] = part - shift
        moments.update(block)
    moments.finish()
    return moments


def _check_rows(n: int, debiased: bool) -> None:
    need = 4 if debiased else 2
    if n < need:
        kind = "debiased CKA" if debiased else "CKA"
        raise EmbeddingExplorerError(f"{kind} needs at least {need} samples, got {n}")


def cka(a: Any, b: Any, *, debiased: bool = False, chunk_rows: int | None = None) -> float:
    """Linear CKA between two representations of the same samples.

    Parameters
    ----------
    a, b : Layer or array-like of shape (N, p) and (N, q)
        Layers (their stored activations; two runs must cover the same samples in the same
        order) or 2-D arrays with the same rows (numpy, memory map or Zarr).
    debiased : bool, default=False
        Use the unbiased HSIC estimator (Song et al. 2012), which removes the upward bias of
        linear CKA when features are many compared with samples. Needs N >= 4.
    chunk_rows : int, optional
        Rows read per block; by default the stored chunking, capped at about 64 MiB per block.

    Returns
    -------
    float
        In [0, 1] for the biased estimator (the debiased one can be slightly negative). NaN when
        either representation is constant.

    Notes
    -----
    Streams in one pass, in float64, with memory ``O((p + q)^2)``, independent of N; raises
    when ``p + q`` exceeds ``MAX_FEATURES``. Rows are shifted by the layer's mean (the first
    block's mean for arrays) before the cross-products, so nothing cancels catastrophically.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(100, 5))
    >>> round(cka(x, 3.0 * x), 6)
    1.0
    """
    sa, sb = _as_source(a, "a"), _as_source(b, "b")
    if sa.layer is not None and sb.layer is not None:
        check_same_samples(sa.layer.run, sb.layer.run)
    _check_rows(sa.n_rows, debiased)
    moments = _stream([sa, sb], chunk_rows)
    return moments.cka(0, 1, debiased=debiased)


def cka_matrix(
    layers_a: Sequence[Any],
    layers_b: Sequence[Any] | None = None,
    *,
    debiased: bool = False,
    chunk_rows: int | None = None,
) -> FloatArray:
    """Linear CKA of every pair of ``layers_a`` x ``layers_b``.

    Parameters
    ----------
    layers_a, layers_b : sequence of Layer or 2-D arrays over the same samples
        ``layers_b`` defaults to ``layers_a`` (a symmetric layer-by-layer matrix).

    Returns
    -------
    ndarray of shape (len(layers_a), len(layers_b))

    Notes
    -----
    When all the features fit side by side (at most ``MAX_FEATURES``), one pass over the rows
    gives every entry; otherwise each pair is streamed on its own.
    """
    same = layers_b is None
    sources_a = [_as_source(x, f"layers_a[{i}]") for i, x in enumerate(layers_a)]
    sources_b = sources_a if same else [_as_source(x, f"layers_b[{i}]") for i, x in enumerate(layers_b or [])]
    everything = sources_a if same else sources_a + sources_b
    if not everything:
        return np.zeros((len(sources_a), len(sources_b)))
    runs = [s.layer.run for s in everything if s.layer is not None]
    for run in runs[1:]:
        check_same_samples(runs[0], run)
    _check_rows(everything[0].n_rows, debiased)
    out = np.empty((len(sources_a), len(sources_b)))
    offset = 0 if same else len(sources_a)
    if sum(s.dim for s in everything) <= MAX_FEATURES:
        moments = _stream(everything, chunk_rows)
        for i in range(len(sources_a)):
            for j in range(len(sources_b)):
                out[i, j] = moments.cka(i, offset + j, debiased=debiased)
        return out
    for i, sa in enumerate(sources_a):
        for j, sb in enumerate(sources_b):
            out[i, j] = _stream([sa, sb], chunk_rows).cka(0, 1, debiased=debiased)
    return out
