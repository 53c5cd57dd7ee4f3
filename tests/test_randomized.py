"""randomized_pca and pca_of_stored (embedding_explorer.randomized) against scikit-learn's exact PCA."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from sklearn.decomposition import PCA

from embedding_explorer import StreamingPCA
from embedding_explorer.randomized import iter_rows, pca_of_stored, randomized_pca


@pytest.mark.parametrize("seed", [0, 1])
def test_randomized_pca_agrees_with_exact_on_low_rank_plus_noise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, d, rank = 300, 40, 5
    basis, _ = np.linalg.qr(rng.normal(size=(d, rank)))
    x = (rng.normal(size=(n, rank)) * [20.0, 15.0, 10.0, 7.0, 5.0]) @ basis.T
    x = (x + 0.1 * rng.normal(size=(n, d)) + 3.0).astype(np.float32)
    moments = StreamingPCA(rank, covariance=False)
    for chunk in iter_rows(x, 64):
        moments.partial_fit(chunk)
    result = randomized_pca(lambda: iter_rows(x, 64), moments)
    reference = PCA(n_components=rank, svd_solver="full").fit(x.astype(np.float64))
    assert result.method == "randomized_svd"
    assert result.total_variance == pytest.approx(x.astype(np.float64).var(axis=0, ddof=1).sum(), rel=1e-9)
    np.testing.assert_allclose(result.mean, x.astype(np.float64).mean(axis=0), rtol=1e-10, atol=1e-12)
    dots = np.sum(result.components * reference.components_, axis=1)
    assert np.all(dots > 0.999), dots
    np.testing.assert_allclose(
        result.explained_variance_ratio, reference.explained_variance_ratio_, atol=1e-5
    )
    np.testing.assert_allclose(result.explained_variance, reference.explained_variance_, rtol=1e-4)


def test_pca_of_stored_takes_the_route_of_its_accumulator() -> None:
    x = np.random.default_rng(3).normal(size=(120, 12)) * np.linspace(4.0, 0.5, 12)
    exact, moments = StreamingPCA(3).fit(x), StreamingPCA(3, covariance=False)
    for chunk in iter_rows(x, 50):
        moments.partial_fit(chunk)
    stored = zarr.create_array(zarr.storage.MemoryStore(), shape=x.shape, chunks=(50, 12), dtype="float64")
    stored[...] = x
    by_covariance, by_svd = pca_of_stored(exact, stored), pca_of_stored(moments, stored)
    assert (by_covariance.method, by_svd.method) == ("covariance_eigh", "randomized_svd")
    np.testing.assert_allclose(by_svd.explained_variance, by_covariance.explained_variance, rtol=1e-6)
    assert np.all(np.sum(by_svd.components * by_covariance.components, axis=1) > 0.9999)
    assert [len(rows) for rows in iter_rows(x, 50)] == [50, 50, 20]
