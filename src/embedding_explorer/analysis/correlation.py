"""Correlations between the component scores of two layers over the same samples."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import EmbeddingExplorerError

if TYPE_CHECKING:
    from ..run import Layer, Run

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def check_same_samples(run_a: Run, run_b: Run) -> None:
    """Raise unless two runs cover the same samples in the same order.

    The same run always passes. Two runs must agree on the sample count and on the content hash
    of their inputs and labels (``manifest["data"]["content_hash"]``), which depends on order.
    """
    if run_a is run_b or run_a.url == run_b.url:
        return
    if run_a.n_samples != run_b.n_samples:
        raise EmbeddingExplorerError(
            f"runs {run_a.name!r} and {run_b.name!r} cover different samples: "
            f"{run_a.n_samples} vs {run_b.n_samples} samples"
        )
    hash_a = run_a.manifest["data"].get("content_hash")
    hash_b = run_b.manifest["data"].get("content_hash")
    if not hash_a or hash_a != hash_b:
        raise EmbeddingExplorerError(
            f"runs {run_a.name!r} and {run_b.name!r} do not cover the same samples in the same order "
            f"(their data content hashes differ: {str(hash_a)[:12]} vs {str(hash_b)[:12]}); "
            "compare runs made from the same data set, unshuffled"
        )


def standardize(x: np.ndarray) -> FloatArray:
    """Columns of ``x`` (N, k) centred and scaled to unit norm, in float64.

    A constant column becomes NaN, so its correlations are NaN (as with ``np.corrcoef``).
    """
    z = np.asarray(x, dtype=np.float64)
    z = z - z.mean(axis=0)
    norms = np.sqrt(np.einsum("ij,ij->j", z, z))
    scale = np.full_like(norms, np.nan)
    np.divide(1.0, norms, out=scale, where=norms > 0)
    return z * scale


def correlate(x: np.ndarray, y: np.ndarray) -> FloatArray:
    """Pearson correlations between the columns of ``x`` (N, p) and ``y`` (N, q): shape (p, q)."""
    if x.shape[0] != y.shape[0]:
        raise EmbeddingExplorerError(f"cannot correlate {x.shape[0]} rows with {y.shape[0]} rows")
    r = standardize(x).T @ standardize(y)
    return np.clip(r, -1.0, 1.0)


def pc_correlation(layer_a: Layer, layer_b: Layer) -> FloatArray:
    """Pearson correlations between the component scores of two layers.

    Parameters
    ----------
    layer_a, layer_b : Layer
        Layers of one run, or of two runs over the same samples in the same order.

    Returns
    -------
    ndarray of shape (k_a, k_b)
        ``r[i, j]`` correlates component ``i`` of ``layer_a`` with component ``j`` of
        ``layer_b``, computed in float64. NaN where a component's scores are constant.

    Raises
    ------
    EmbeddingExplorerError
        When the two runs cover different samples (count or content hash differ).
    """
    check_same_samples(layer_a.run, layer_b.run)
    return correlate(layer_a.scores, layer_b.scores)
