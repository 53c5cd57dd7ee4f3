"""Exact PCA of tall activation matrices in one streaming, mergeable pass.

Each batch contributes its count, its mean and its *centred* cross-products; batches (and shards
computed elsewhere) are combined with the pairwise update of Chan, Golub and LeVeque (1979), so
nothing cancels catastrophically the way ``X^T X - n mu mu^T`` does in float32 or even float64.
Everything is accumulated in float64. The principal axes come from one symmetric
eigendecomposition at the end, with scikit-learn's sign convention, so results agree with
``sklearn.decomposition.PCA`` on the same matrix.

Where the feature count is too large for a ``D x D`` matrix, only the per-feature moments are
streamed and :func:`~embedding_explorer.randomized.randomized_pca` finds the top components over
the stored activations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import linalg
from scipy.linalg import blas

from .checks import positive_int
from .exceptions import EmbeddingExplorerError, NonFiniteActivationError
from .threads import blas_threads

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
THREADED_EIGH_DIM = 2048  # covariances this wide are decomposed with all BLAS threads
FLOAT32_BLOCK = 64  # rows per float32 product block (products="float32"): error vs speed, measured


@dataclass(frozen=True)
class PCAResult:
    """The principal axes of one matrix: what a layer's PCA stores.

    Attributes
    ----------
    mean : ndarray of shape (n_features,)
    components : ndarray of shape (n_components, n_features), unit-norm rows
    explained_variance : ndarray of shape (n_components,), N-1 denominator
    explained_variance_ratio : ndarray of shape (n_components,), share of ``total_variance``
    total_variance : float, the sum of all features' variances
    n_samples : int
    method : ``"covariance_eigh"`` (exact) or ``"randomized_svd"``
    """

    mean: FloatArray
    components: FloatArray
    explained_variance: FloatArray
    explained_variance_ratio: FloatArray
    total_variance: float
    n_samples: int
    method: str

    def transform(self, x: np.ndarray) -> FloatArray:
        """Scores of rows ``x`` on the components: ``(x - mean) @ components.T``, centred in float64
        in one pass (no float64 copy of ``x`` first: the same values, a third less time)."""
        return np.subtract(x, self.mean, dtype=np.float64) @ self.components.T


class StreamingPCA:
    """Exact PCA by streaming, mergeable moments, in the mould of scikit-learn's estimators.

    Parameters
    ----------
    n_components : int, default=10
        Components kept; capped at ``min(n_samples - 1, n_features)`` when finalised.
    covariance : bool, default=True
        Accumulate the full ``D x D`` centred cross-products (exact PCA). ``False`` keeps only
        per-feature moments (mean and variance), for layers too wide for ``D x D``; their
        components come from :func:`randomized_pca` instead.
    products : {"float64", "float32"}, default="float64"
        How each CPU batch's centred cross-products are made. ``"float32"``: in float32 blocks
        (twice the BLAS speed), each centred on a float32 copy of the batch mean and added into
        the float64 accumulator, for float32 activations (what extraction uses): the
        explained-variance ratios stay within about 1e-9 of float64 scikit-learn (1e-10 at
        50,000 rows, as rounding averages out over blocks). CUDA batches always use float64.

    Attributes
    ----------
    n_samples_seen_ : int
        Rows accumulated so far (set by :meth:`partial_fit`, :meth:`fit`, :meth:`merge`).
    n_features_in_ : int
    mean_ : ndarray of shape (n_features,)
        The running mean, float64 (a float64 tensor on the device of CUDA batches).
    components_ : ndarray of shape (n_components, n_features)
        Unit-norm rows, scikit-learn's signs; set by :meth:`finalize` (and so by :meth:`fit`).
    explained_variance_ : ndarray of shape (n_components,)
        N-1 denominator; set by :meth:`finalize`.
    explained_variance_ratio_ : ndarray of shape (n_components,)
        Share of the total variance; set by :meth:`finalize`.

    Notes
    -----
    Batches that arrive as CUDA tensors are accumulated on that GPU (float64), so activations
    never travel to the host for the statistics. CPU batches use a BLAS symmetric rank-k update.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(100, 5))
    >>> pca = StreamingPCA(n_components=2)
    >>> for batch in np.array_split(x, 7):
    ...     _ = pca.partial_fit(batch)
    >>> pca.finalize().components.shape
    (2, 5)
    >>> StreamingPCA(n_components=2).fit(x).components_.shape
    (2, 5)
    """

    n_samples_seen_: int
    n_features_in_: int | None
    mean_: Any  # float64 ndarray, or a float64 tensor on the batches' device
    components_: FloatArray
    explained_variance_: FloatArray
    explained_variance_ratio_: FloatArray
    _m2: Any  # centred cross-products (their upper triangle is read), or per-feature sums

    def __init__(self, n_components: int = 10, *, covariance: bool = True, products: str = "float64") -> None:
        self.n_components = n_components
        self.covariance = covariance
        self.products = products

    def _reset(self) -> None:
        """Forget every row seen (the state before the first batch)."""
        self.n_samples_seen_ = 0
        self.n_features_in_ = None
        self.mean_ = None
        self._m2 = None
        for name in ("components_", "explained_variance_", "explained_variance_ratio_"):
            self.__dict__.pop(name, None)

    def _seen(self) -> int:
        return getattr(self, "n_samples_seen_", 0)

    # ---- accumulation -------------------------------------------------------------------
    def fit(
        self, x: np.ndarray | torch.Tensor | Iterable[np.ndarray | torch.Tensor], *, batch_size: int = 2048
    ) -> StreamingPCA:
        """Forget earlier rows and accumulate ``x``: a matrix (streamed in blocks of
        ``batch_size`` rows, to bound extra memory; 2048 rows keep each block in cache, which
        measured fastest) or an iterable of ``(n_rows, n_features)`` batches. Then
        :meth:`finalize`, which sets ``components_`` and the variances.

        Returns
        -------
        self : StreamingPCA
        """
        positive_int(batch_size, "batch_size")
        self._reset()
        if isinstance(x, (np.ndarray, torch.Tensor)):
            batches: Iterable[Any] = (
                x[start : start + batch_size] for start in range(0, int(x.shape[0]), batch_size)
            )
        else:
            batches = x
        for batch in batches:
            self.partial_fit(batch)
        self.finalize()
        return self

    def partial_fit(self, x: np.ndarray | torch.Tensor) -> StreamingPCA:
        """Add a batch of rows ``x`` of shape (n_rows, n_features).

        Returns
        -------
        self : StreamingPCA
        """
        if not hasattr(self, "n_samples_seen_"):
            self._reset()
        if x.ndim != 2:
            raise ValueError(f"expected a (n_rows, n_features) batch, got shape {tuple(x.shape)}")
        n_b, d = int(x.shape[0]), int(x.shape[1])
        if d == 0:
            raise ValueError("batch has 0 features; PCA needs at least one")
        if self.n_features_in_ is None:
            self.n_features_in_ = d
        elif d != self.n_features_in_:
            raise ValueError(f"batch has {d} features, earlier batches had {self.n_features_in_}")
        if n_b == 0:
            return self
        if self.n_samples_seen_ == 0:
            n_components_for(self.n_components, 2, 1)  # a bad n_components fails on the first batch
            if self.products not in ("float64", "float32"):
                raise ValueError(f"products={self.products!r}: use 'float64' or 'float32'")
        _check_kind(x)
        if isinstance(x, torch.Tensor) and _on_accelerator(x):
            _check_finite(x, self.n_samples_seen_)
            if self.n_samples_seen_ and not isinstance(self._m2, torch.Tensor):  # resumed from state()
                self.mean_ = _like(self.mean_, x)
                self._m2 = _like(self._m2, x)
            mean_b, m2_b = _batch_moments_torch(x, self.covariance)
            self._combine(n_b, mean_b, m2_b)
            return self
        xs = _host_array(x)  # NaN/Inf are found by the batch mean each path computes anyway
        if self.covariance and self.products == "float32" and not isinstance(self._m2, torch.Tensor):
            self._update_float32(xs)
        elif self.covariance and self.n_samples_seen_ > 0 and isinstance(self._m2, np.ndarray):
            self._update_in_place(xs)
        else:
            self._combine(n_b, *_batch_moments_numpy(xs, self.covariance, self.n_samples_seen_))
        return self

    def _update_in_place(self, x: np.ndarray) -> None:
        """Chan's update of the accumulator in place with the batch's centred cross-products."""
        n_a, n_b = self.n_samples_seen_, int(x.shape[0])
        centred = np.array(x, dtype=np.float64)  # a fresh copy, centred in place
        with np.errstate(invalid="ignore"):  # inf - inf: a NaN mean, refused next
            mean_b = centred.mean(axis=0)
        _check_mean(mean_b, x, n_a)
        centred -= mean_b
        delta = mean_b - self.mean_
        n = n_a + n_b
        # numpy's matmul (a symmetric rank-k update for x^T x) lets go of the GIL while BLAS
        # works; scipy's BLAS wrappers hold it, which stalled the forward pass's Python on
        # the other threads whenever moments ran beside it
        self._m2 += centred.T @ centred
        self._m2 += np.outer(delta * (n_a * n_b / n), delta)
        self.mean_ = self.mean_ + delta * (n_b / n)
        self.n_samples_seen_ = n

    def _update_float32(self, x: np.ndarray) -> None:
        """Chan's update with the batch's products made in float32 (BLAS ``ssyrk``: twice the
        speed of ``dsyrk``) in blocks of ``FLOAT32_BLOCK`` rows, each added into the float64
        accumulator in place.

        A block is centred on the batch mean rounded to float32 (``m32``); products about
        ``m32`` exceed those about the blocks' own mean by ``n s s^T`` (``s`` their mean), which
        is subtracted exactly. The diagonal (each feature's variance, so the total variance) is
        summed in float64. What remains is float32 rounding inside a block, which averages
        out over blocks: explained-variance ratios within 1e-10 of float64 scikit-learn at
        50,000 x 512 (``benchmarks/bench_moments.py``), about 1e-9 over 20,000 rows of a
        strongly anisotropic layer (tests/test_pca.py)."""
        n_a, (n_b, d) = self.n_samples_seen_, x.shape
        with np.errstate(invalid="ignore"):
            mean_b = x.mean(axis=0, dtype=np.float64)
        _check_mean(mean_b, x, n_a)
        if n_a == 0:
            self.mean_, self._m2 = np.zeros(d), np.zeros((d, d), order="F")
        m32 = mean_b.astype(np.float32)
        sums, squares = np.zeros(d), np.diag(self._m2).copy()
        products = np.zeros((d, d), dtype=np.float32, order="F")  # upper triangle written by ssyrk
        for start in range(0, n_b, FLOAT32_BLOCK):
            block = np.array(x[start : start + FLOAT32_BLOCK], dtype=np.float32)
            block -= m32
            wide = block.astype(np.float64)  # float32 squares are exact in float64
            sums += wide.sum(axis=0)
            squares += np.einsum("ij,ij->j", wide, wide)
            products = blas.ssyrk(1.0, block.T, c=products, beta=0.0, trans=0, lower=0, overwrite_c=1)
            self._m2 += products
        np.fill_diagonal(self._m2, squares)  # the variances (and so the total) as float64 sums
        m2 = blas.dsyr(-1.0 / n_b, sums, a=self._m2, lower=0, overwrite_a=1)  # n s s^T, s = sums / n
        n = n_a + n_b
        delta = mean_b - self.mean_
        self._m2 = blas.dsyr(n_a * n_b / n, delta, a=m2, lower=0, overwrite_a=1)
        self.mean_ = self.mean_ + delta * (n_b / n)
        self.n_samples_seen_ = n

    def merge(self, other: StreamingPCA) -> StreamingPCA:
        """Add the moments of ``other`` (a disjoint set of rows) into this accumulator."""
        if other._seen() == 0:
            return self
        if not hasattr(self, "n_samples_seen_"):
            self._reset()
        if self.covariance != other.covariance:
            raise ValueError("cannot merge a full-covariance accumulator with a diagonal one")
        if self.n_features_in_ is not None and other.n_features_in_ != self.n_features_in_:
            raise ValueError(
                f"cannot merge accumulators of {other.n_features_in_} and {self.n_features_in_} features"
            )
        self.n_features_in_ = other.n_features_in_
        self._combine(other.n_samples_seen_, other.mean_, other._m2)
        return self

    def _combine(self, n_b: int, mean_b: Any, m2_b: Any) -> None:
        n_a = self.n_samples_seen_
        if n_a == 0:  # copies: an accumulator never shares buffers with another
            self.n_samples_seen_, self.mean_, self._m2 = n_b, _copy(mean_b), _copy(m2_b)
            return
        mean_b, m2_b = _like(mean_b, self.mean_), _like(m2_b, self._m2)  # numpy or the same device
        n = n_a + n_b
        delta = mean_b - self.mean_
        self.mean_ = self.mean_ + delta * (n_b / n)
        weight = n_a * n_b / n
        if self.covariance:
            self._m2 = self._m2 + m2_b + _outer(delta, delta) * weight
        else:
            self._m2 = self._m2 + m2_b + delta * delta * weight
        self.n_samples_seen_ = n

    # ---- state for pickling across processes -----------------------------------------------
    def state(self) -> dict[str, Any]:
        """Plain numpy state, e.g. to send a shard's accumulator to another process."""
        return {
            "n_components": self.n_components,
            "covariance": self.covariance,
            "products": self.products,
            "n_samples_seen": self._seen(),
            "n_features": getattr(self, "n_features_in_", None),
            "mean": None if getattr(self, "mean_", None) is None else _to_numpy(self.mean_).copy(),
            "m2": None if getattr(self, "_m2", None) is None else _to_numpy(self._m2).copy(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> StreamingPCA:
        pca = cls(
            state["n_components"], covariance=state["covariance"], products=state.get("products", "float64")
        )
        pca.n_samples_seen_ = state["n_samples_seen"]
        pca.n_features_in_ = state["n_features"]
        pca.mean_, pca._m2 = _copy(state["mean"]), _copy(state["m2"])
        return pca

    # ---- results ---------------------------------------------------------------------------
    def variances(self) -> FloatArray:
        """Per-feature variances (N-1 denominator)."""
        self._check_fitted()
        m2 = _to_numpy(self._m2)
        diag = np.diag(m2) if self.covariance else m2
        return np.maximum(diag, 0.0) / (self.n_samples_seen_ - 1)

    def finalize(self) -> PCAResult:
        """Exact PCA of all rows seen: one symmetric eigendecomposition of the covariance.

        Also sets ``components_``, ``explained_variance_`` and ``explained_variance_ratio_``;
        more batches may follow (and ``finalize`` again)."""
        self._check_fitted()
        if not self.covariance:
            raise ValueError("this accumulator kept per-feature moments only; use randomized_pca")
        n, d = self.n_samples_seen_, int(self.n_features_in_ or 0)
        k = n_components_for(self.n_components, n, d)
        m2 = _to_numpy(self._m2)
        upper = np.triu(m2)
        cov = (upper + np.triu(upper, 1).T) / (n - 1)
        # one BLAS thread below THREADED_EIGH_DIM: more only spin and wait there, and on a busy
        # machine two threads made a 512 x 512 eigh 8x slower (measured), not faster
        with blas_threads(1 if d < THREADED_EIGH_DIM else None):
            eigenvalues, eigenvectors = top_eigenpairs(cov, k)
        order = np.argsort(eigenvalues)[::-1][:k]
        components = flip_signs(eigenvectors[:, order].T)
        explained = np.maximum(eigenvalues[order], 0.0)
        total = float(np.trace(cov))
        result = PCAResult(
            mean=_to_numpy(self.mean_),
            components=components,
            explained_variance=explained,
            explained_variance_ratio=explained / total if total > 0 else np.zeros_like(explained),
            total_variance=total,
            n_samples=n,
            method="covariance_eigh",
        )
        self.components_ = result.components
        self.explained_variance_ = result.explained_variance
        self.explained_variance_ratio_ = result.explained_variance_ratio
        return result

    def transform(self, x: np.ndarray | torch.Tensor) -> FloatArray:
        """Scores of rows ``x`` on the components of the last :meth:`finalize` (or :meth:`fit`):
        ``(x - mean_) @ components_.T``, float64, of shape (n_rows, n_components)."""
        if not hasattr(self, "components_"):
            raise AttributeError("transform needs components_: call fit or finalize first")
        rows = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
        return np.subtract(rows, _to_numpy(self.mean_), dtype=np.float64) @ self.components_.T

    def _check_fitted(self) -> None:
        if self._seen() < 2:
            raise EmbeddingExplorerError(f"PCA needs at least 2 samples, got {self._seen()}")


def n_components_for(requested: int, n_samples: int, n_features: int) -> int:
    """Components actually kept: ``min(requested, n_samples - 1, n_features)``."""
    positive_int(requested, "n_components")
    if n_samples < 2:
        raise EmbeddingExplorerError(f"PCA needs at least 2 samples, got {n_samples}")
    return int(min(requested, n_samples - 1, n_features))


def flip_signs(components: FloatArray) -> FloatArray:
    """scikit-learn's convention: each row's entry of largest absolute value is positive."""
    biggest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), biggest])
    signs[signs == 0] = 1.0
    return components * signs[:, None]


def top_eigenpairs(cov: FloatArray, k: int) -> tuple[FloatArray, FloatArray]:
    """Eigenvalues (ascending) and eigenvectors (columns) of the symmetric ``cov`` holding at
    least its ``k`` largest. For few components only those are computed (LAPACK ``dsyevr`` on
    an index range): the reduction to tridiagonal form is the same, but only k vectors are
    found and transformed back, 2.5x faster at 384 x 384 with k = 10 (4.3 ms against 10.7 ms,
    measured), and equal to the full decomposition to rounding (tests/test_pca.py)."""
    d = cov.shape[0]
    if k > d // 4:
        return np.linalg.eigh(cov)
    return linalg.eigh(cov, subset_by_index=[d - k, d - 1], driver="evr", check_finite=False)


# ---- per-batch moments ----------------------------------------------------------------------
def _on_accelerator(x: torch.Tensor) -> bool:
    """Whether a batch's moments accumulate where it is (a GPU) rather than through numpy."""
    return x.device.type != "cpu"


def _batch_moments_numpy(x: np.ndarray, covariance: bool, seen: int) -> tuple[FloatArray, FloatArray]:
    x64 = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        mean = x64.mean(axis=0)
    _check_mean(mean, x, seen)
    centred = x64 - mean
    if not covariance:
        return mean, np.einsum("ij,ij->j", centred, centred)
    return mean, centred.T @ centred  # numpy's matmul: a rank-k update without the GIL


def _batch_moments_torch(x: torch.Tensor, covariance: bool) -> tuple[torch.Tensor, torch.Tensor]:
    x64 = x.detach().to(torch.float64)
    mean = x64.mean(dim=0)
    centred = x64 - mean
    if not covariance:
        return mean, (centred * centred).sum(dim=0)
    return mean, centred.T @ centred


def _copy(value: Any) -> Any:
    if value is None:
        return None
    return value.clone() if isinstance(value, torch.Tensor) else np.array(value, dtype=np.float64)


def _outer(a: Any, b: Any) -> Any:
    return torch.outer(a, b) if isinstance(a, torch.Tensor) else np.outer(a, b)


def _to_numpy(value: Any) -> FloatArray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().astype(np.float64, copy=False)
    return np.asarray(value, dtype=np.float64)


def _like(value: Any, reference: Any) -> Any:
    """``value`` on the same backend (numpy or the torch device) as ``reference``."""
    if isinstance(reference, torch.Tensor):
        return torch.as_tensor(value, dtype=torch.float64, device=reference.device)
    return _to_numpy(value)


def _host_array(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """A CPU batch as numpy without a copy where it can (float32 and float64 tensors as they
    are; other dtypes, e.g. bfloat16 which numpy lacks, as float64)."""
    if not isinstance(x, torch.Tensor):
        return np.asarray(x)
    x = x.detach().cpu()
    return x.numpy() if x.dtype in (torch.float32, torch.float64) else x.to(torch.float64).numpy()


def _check_kind(x: np.ndarray | torch.Tensor) -> None:
    """Refuse a complex batch or one of values that are not numbers (dtype checks only)."""
    if (isinstance(x, torch.Tensor) and x.is_complex()) or (
        not isinstance(x, torch.Tensor) and np.iscomplexobj(x)
    ):
        raise EmbeddingExplorerError(
            f"partial_fit: the batch x is complex ({x.dtype}); PCA here is over real numbers: pass the "
            "real and imaginary parts as features, or the magnitudes"
        )
    if not isinstance(x, torch.Tensor) and np.asarray(x).dtype.kind not in "biuf":
        raise EmbeddingExplorerError(
            f"partial_fit: the batch x holds {np.asarray(x).dtype} values, not numbers"
        )


def _check_mean(mean: np.ndarray, x: np.ndarray, seen: int) -> None:
    """A NaN or Inf anywhere in a feature makes its float64 batch mean NaN or Inf, so the mean
    that every update computes anyway finds bad batches without another pass over the values;
    only then are they searched for the first bad value (:func:`_check_finite`)."""
    if not np.isfinite(mean).all():
        _check_finite(x, seen)


def _check_finite(x: np.ndarray | torch.Tensor, seen: int) -> None:
    """Refuse a batch with NaN/Inf, naming the row and the feature (an eigen solver would fail
    later with a LinAlgError naming neither)."""
    if isinstance(x, torch.Tensor):
        if bool(torch.isfinite(x).all()):
            return
        row, col = (int(i) for i in (~torch.isfinite(x)).nonzero()[0])
        value = float(x[row, col])
    else:
        arr = np.asarray(x)
        finite = np.isfinite(arr)
        if finite.all():
            return
        row, col = (int(i) for i in np.argwhere(~finite)[0])
        value = float(arr[row, col])
    raise NonFiniteActivationError(
        f"partial_fit: the batch x has {value} at row {row}, feature {col} (sample {seen + row} of the "
        "fit); PCA needs finite values: drop or impute those rows"
    )
