"""Independent component analysis of a layer: FastICA on its PCA scores, probed like components.

PCA finds the directions of largest variance; ICA rotates the top principal subspace so the
scores are as non-Gaussian (independent) as possible, which often separates mixed factors that
PCA keeps together. FastICA (scikit-learn, ``whiten="unit-variance"``, a fixed seed) is fitted
on the top ``n_components`` PCA scores of at most ``max_samples`` evenly spaced samples and
applied to all. The result is cached on the :class:`Layer` (see :meth:`Layer.ica`), not written
into the run directory.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import kurtosis, skew

from ..checks import positive_int
from ..exceptions import EmbeddingExplorerError, ICAConvergenceWarning
from ..probe import ScoreProbe

if TYPE_CHECKING:
    from ..run import Layer, Run

RELATIVE_VARIANCE = 1e-10
"""A principal component with at most this share of the first's variance counts as without variance."""
log = logging.getLogger(__name__)
MAX_ITER = 1000
"""FastICA iterations (scikit-learn's default, 200, often stops short on PCA scores)."""


class ICAResult(ScoreProbe):
    """Independent components of a layer, ordered by |excess kurtosis|, descending.

    Attributes
    ----------
    layer : Layer
    n_components : int
    scores : ndarray of shape (N, m)
        float32 unit-variance source estimates of every sample, one column per component; each
        column's sign makes its skewness positive.
    unmixing : ndarray of shape (m, D)
        ``scores = (activations - layer.mean) @ unmixing.T - offset``.
    offset : ndarray of shape (m,)
    mixing : ndarray of shape (m, D)
        Each component's direction in activation space: ``activations ~ layer.mean +
        (scores + offset) @ mixing`` within the top ``m`` principal subspace.
    kurtosis : ndarray of shape (m,)
        Excess kurtosis of each component's scores (0 for a Gaussian).
    seed, n_iter : int
        FastICA's ``random_state`` and the iterations it ran.
    converged : bool
        False when FastICA stopped at its iteration limit (an :class:`ICAConvergenceWarning`
        was issued).
    """

    def __init__(
        self,
        layer: Layer,
        scores: np.ndarray,
        unmixing: np.ndarray,
        offset: np.ndarray,
        mixing: np.ndarray,
        excess_kurtosis: np.ndarray,
        *,
        seed: int,
        n_iter: int,
        converged: bool,
    ) -> None:
        self.layer = layer
        self.run: Run = layer.run
        self.name = f"ICA of {layer.name}"
        self._scores = scores
        self.unmixing = unmixing
        self.offset = offset
        self.mixing = mixing
        self.kurtosis = excess_kurtosis
        self.seed = seed
        self.n_iter = n_iter
        self.converged = converged

    def __repr__(self) -> str:
        return f"ICAResult(layer={self.layer.name!r}, n_components={self.n_components}, seed={self.seed})"

    @property
    def scores(self) -> np.ndarray:
        """ndarray of shape (N, m): float32 independent component scores."""
        return self._scores

    @property
    def component_names(self) -> list[str]:
        return [f"IC{i + 1}" for i in range(self.n_components)]

    def project(self, activations: Any) -> np.ndarray:
        """Independent component scores of any (M, D) activations (float64, no refit)."""
        x = np.asarray(activations, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.layer.dim:
            raise EmbeddingExplorerError(
                f"layer {self.layer.name!r} has {self.layer.dim} features; got activations of shape {x.shape}"
            )
        return (x - self.layer.mean) @ self.unmixing.T - self.offset

    def _subject(self) -> str:
        return f"the ICA of layer {self.layer.name!r}"


def ica(
    layer: Layer,
    n_components: int | None = None,
    *,
    seed: int = 0,
    max_samples: int = 50_000,
    warn: bool = True,
) -> ICAResult:
    """FastICA on the top ``n_components`` PCA scores of ``layer``.

    The default is every principal component with variance (see :func:`usable_components`):
    a trailing component whose variance is rounding noise (a rank-deficient layer) is left out,
    since whitening would blow that noise up into a "source".

    Raises
    ------
    EmbeddingExplorerError
        ``n_components`` above the layer's ``k``, a chosen principal component without variance
        (whitening would divide by rounding noise), or fewer than two samples to fit on.
    """
    k = layer.n_components
    usable = usable_components(layer)
    if usable == 0:
        raise EmbeddingExplorerError(f"layer {layer.name!r} has no variance: ICA has nothing to separate")
    m = usable if n_components is None else positive_int(n_components, "n_components")
    max_samples = positive_int(max_samples, "max_samples")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if m > k:
        raise EmbeddingExplorerError(
            f"n_components={m} must be <= the {k} principal components of layer {layer.name!r}"
        )
    if m > usable:
        raise EmbeddingExplorerError(
            f"PC{usable + 1} of layer {layer.name!r} has no variance (at most {RELATIVE_VARIANCE:g} of "
            f"PC1's); ICA needs n_components <= {usable}"
        )
    from sklearn.decomposition import FastICA  # scikit-learn loads only when ICA is asked for
    from sklearn.exceptions import ConvergenceWarning

    pcs = np.asarray(layer.scores[:, :m], dtype=np.float64)
    fit_rows = evenly_spaced(len(pcs), max_samples)
    if len(fit_rows) < 2:
        raise EmbeddingExplorerError(f"ICA of layer {layer.name!r} needs at least 2 samples to fit on")
    model = FastICA(n_components=m, whiten="unit-variance", random_state=int(seed), max_iter=MAX_ITER)
    with warnings.catch_warnings():  # reported below, naming the layer
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(pcs[fit_rows])
    converged = int(model.n_iter_) < MAX_ITER
    if not converged:
        message = (
            f"FastICA did not converge on layer {layer.name!r} within {MAX_ITER} iterations "
            f"(n_components={m}, seed={seed}): its top components may be close to Gaussian, so "
            "independent components are not well defined; try fewer components"
        )
        if warn:
            warnings.warn(message, ICAConvergenceWarning, stacklevel=3)
        else:  # a server: the fit is still the answer, and its kurtosis says how independent
            log.warning("%s", message)
    sources = model.transform(pcs)
    excess = kurtosis(sources, axis=0, fisher=True)
    order = np.argsort(-np.abs(excess), kind="stable")
    signs = np.where(skew(sources[:, order], axis=0) < 0, -1.0, 1.0)
    unmixing_pcs = model.components_[order] * signs[:, None]  # (m, m), on centred PC scores
    mixing_pcs = model.mixing_[:, order] * signs  # (m, m): PC scores ~ sources @ mixing_pcs.T
    top = layer.components[:m]
    return ICAResult(
        layer,
        (sources[:, order] * signs).astype(np.float32),
        unmixing=unmixing_pcs @ top,
        offset=model.mean_ @ unmixing_pcs.T,
        mixing=mixing_pcs.T @ top,
        excess_kurtosis=excess[order],
        seed=int(seed),
        n_iter=int(model.n_iter_),
        converged=converged,
    )


def usable_components(layer: Layer) -> int:
    """How many leading principal components of ``layer`` have variance: above
    ``RELATIVE_VARIANCE`` times the first's. Rank-deficient float32 activations leave trailing
    components at about 1e-14 of the first (rounding noise), which an exact ``> 0`` lets through."""
    ev = np.asarray(layer.explained_variance, dtype=np.float64)
    if len(ev) == 0 or not ev[0] > 0:
        return 0
    flat = np.flatnonzero(~(ev > RELATIVE_VARIANCE * ev[0]))
    return int(flat[0]) if len(flat) else len(ev)


def evenly_spaced(n: int, at_most: int) -> np.ndarray:
    """All of ``0..n-1`` when ``n <= at_most``, else ``at_most`` evenly spaced of them."""
    if n <= at_most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, at_most).round().astype(np.int64))
