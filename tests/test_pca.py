"""StreamingPCA (embedding_explorer.pca) checked against scikit-learn's exact PCA."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from embedding_explorer import EmbeddingExplorerError, NonFiniteActivationError, PCAResult, StreamingPCA
from embedding_explorer.pca import flip_signs, n_components_for, top_eigenpairs

SCALES = np.array([10.0, 6.0, 4.0, 2.5, 1.5, 1.0, 0.5, 0.3])  # well separated eigenvalues


def make_data(seed: int, n: int = 200, scales: np.ndarray = SCALES, offset: float = 0.0) -> np.ndarray:
    """Gaussian rows with the given standard deviations along random orthogonal axes."""
    rng = np.random.default_rng(seed)
    d = len(scales)
    axes, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return rng.normal(size=(n, d)) * scales @ axes.T + rng.normal(size=d) + offset


def stream(x: np.ndarray | torch.Tensor, batch: int | None, n_components: int = 5) -> StreamingPCA:
    pca = StreamingPCA(n_components)
    step = len(x) if batch is None else batch
    for start in range(0, len(x), step):
        assert pca.partial_fit(x[start : start + step]) is pca
    return pca


def assert_matches_sklearn(result: PCAResult, reference: PCA, *, cosine: float = 0.9999) -> None:
    k = reference.n_components_
    assert result.components.shape == reference.components_.shape
    np.testing.assert_allclose(
        result.explained_variance_ratio, reference.explained_variance_ratio_, atol=1e-6
    )
    np.testing.assert_allclose(result.explained_variance, reference.explained_variance_, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(result.components, axis=1), np.ones(k), atol=1e-12)
    dots = np.sum(result.components * reference.components_, axis=1)
    assert np.all(np.abs(dots) > cosine), dots
    assert np.all(dots > 0), "signs differ from scikit-learn's convention"


# ---- exactness against scikit-learn ------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 7, None], ids=["batch1", "batch7", "whole"])
def test_matches_sklearn_full_pca(seed: int, dtype: type, batch: int | None) -> None:
    x = make_data(seed).astype(dtype)
    reference = PCA(n_components=5, svd_solver="full").fit(x.astype(np.float64))
    result = stream(x, batch).finalize()
    assert_matches_sklearn(result, reference)
    np.testing.assert_allclose(result.mean, x.astype(np.float64).mean(axis=0), rtol=1e-10, atol=1e-12)
    assert result.n_samples == len(x)
    assert result.method == "covariance_eigh"
    total = x.astype(np.float64).var(axis=0, ddof=1).sum()
    assert result.total_variance == pytest.approx(total, rel=1e-10)


def test_torch_and_numpy_batches_agree() -> None:
    x = make_data(3)
    from_numpy = stream(x, 16).finalize()
    from_torch = stream(torch.from_numpy(x), 16).finalize()
    np.testing.assert_allclose(from_torch.components, from_numpy.components, atol=1e-12)
    np.testing.assert_allclose(from_torch.explained_variance, from_numpy.explained_variance, rtol=1e-12)


def test_fit_equals_partial_fit_loop_and_transform_equals_sklearn() -> None:
    x = make_data(4)
    fitted = StreamingPCA(3).fit(x, batch_size=13).finalize()
    reference = PCA(n_components=3, svd_solver="full").fit(x)
    assert_matches_sklearn(fitted, reference)
    np.testing.assert_allclose(fitted.transform(x), reference.transform(x), atol=1e-9)


def test_components_follow_sklearn_sign_convention() -> None:
    result = stream(make_data(5), 10).finalize()
    biggest = result.components[np.arange(5), np.argmax(np.abs(result.components), axis=1)]
    assert np.all(biggest > 0)


def test_flip_signs_makes_largest_entry_positive() -> None:
    rows = np.array([[0.1, -0.9, 0.3], [0.0, 0.0, 0.0], [0.5, 0.2, 0.1]])
    np.testing.assert_array_equal(flip_signs(rows), [[-0.1, 0.9, -0.3], [0.0, 0.0, 0.0], [0.5, 0.2, 0.1]])


@pytest.mark.parametrize("offset", [1e4, 1e6])
@pytest.mark.parametrize("batch", [1, 7, None], ids=["batch1", "batch7", "whole"])
def test_large_mean_offset_does_not_cancel(offset: float, batch: int | None) -> None:
    x = make_data(6, offset=offset)
    centred = x - x.mean(axis=0)
    reference = PCA(n_components=5, svd_solver="full").fit(centred)
    result = stream(x, batch).finalize()
    assert_matches_sklearn(result, reference)
    np.testing.assert_allclose(result.mean, x.mean(axis=0), rtol=1e-12)
    # the naive raw-moment route, X^T X / n - mu mu^T, would lose ~log10(offset^2) digits here
    assert result.total_variance == pytest.approx(centred.var(axis=0, ddof=1).sum(), rel=1e-9)


# ---- merging shards ----------------------------------------------------------------------------
def covariance_of(pca: StreamingPCA) -> np.ndarray:
    """The covariance held by an accumulator (its state stores the upper triangle of M2)."""
    state = pca.state()
    upper = np.triu(state["m2"])
    return (upper + np.triu(upper, 1).T) / (state["n_samples_seen"] - 1)


def test_merged_shards_equal_the_whole() -> None:
    x = make_data(7, n=301)
    whole = stream(x, 50)
    shards = [stream(part, 9) for part in np.array_split(x, [40, 41, 200])]  # includes a 1-row shard
    merged = StreamingPCA(5)
    for shard in shards:
        # as if each shard came from another process: plain numpy state, rebuilt there
        merged.merge(StreamingPCA.from_state(shard.state()))
    assert merged.n_samples_seen_ == whole.n_samples_seen_ == 301
    np.testing.assert_allclose(merged.mean_, whole.mean_, rtol=1e-12)
    np.testing.assert_allclose(covariance_of(merged), np.cov(x, rowvar=False), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(covariance_of(merged), covariance_of(whole), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(merged.variances(), x.var(axis=0, ddof=1), rtol=1e-10)
    a, b = merged.finalize(), whole.finalize()
    np.testing.assert_allclose(a.components, b.components, atol=1e-10)
    np.testing.assert_allclose(a.explained_variance, b.explained_variance, rtol=1e-10)
    np.testing.assert_allclose(a.explained_variance_ratio, b.explained_variance_ratio, atol=1e-12)


def test_state_round_trip_keeps_accumulating() -> None:
    x = make_data(8)
    first = stream(x[:90], 30)
    restored = StreamingPCA.from_state(first.state())
    for start in range(90, 200, 30):
        restored.partial_fit(x[start : start + 30])
    assert_matches_sklearn(restored.finalize(), PCA(n_components=5, svd_solver="full").fit(x))


def test_merge_with_empty_accumulators() -> None:
    x = make_data(9)
    full = stream(x, 25)
    into_empty = StreamingPCA(5).merge(full)
    into_empty.merge(StreamingPCA(5))  # an empty shard adds nothing
    np.testing.assert_allclose(into_empty.finalize().components, full.finalize().components, atol=1e-12)


def test_merge_refuses_other_feature_counts_and_kinds() -> None:
    a, b = stream(make_data(0), 50), stream(make_data(0)[:, :4], 50)
    with pytest.raises(ValueError, match="cannot merge accumulators of 4 and 8 features"):
        a.merge(b)
    diagonal = StreamingPCA(5, covariance=False).partial_fit(make_data(0))
    with pytest.raises(ValueError, match="full-covariance accumulator with a diagonal one"):
        a.merge(diagonal)


# ---- validation --------------------------------------------------------------------------------
def test_feature_count_mismatch_raises() -> None:
    pca = StreamingPCA(2).partial_fit(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="batch has 4 features, earlier batches had 5"):
        pca.partial_fit(np.zeros((3, 4)))


def test_non_2d_batch_raises() -> None:
    with pytest.raises(ValueError, match=r"expected a \(n_rows, n_features\) batch, got shape \(3, 2, 2\)"):
        StreamingPCA(2).partial_fit(np.zeros((3, 2, 2)))


@pytest.mark.parametrize(
    ("n", "d", "requested", "kept"),
    [(5, 8, 10, 4), (50, 3, 10, 3), (50, 8, 2, 2), (2, 8, 10, 1)],
)
def test_n_components_capped_at_n_minus_1_and_d(n: int, d: int, requested: int, kept: int) -> None:
    x = np.random.default_rng(0).normal(size=(n, d))
    result = StreamingPCA(requested).fit(x).finalize()
    assert result.components.shape == (kept, d)
    assert result.explained_variance_ratio.shape == (kept,)
    reference = PCA(n_components=kept, svd_solver="full").fit(x)
    np.testing.assert_allclose(
        result.explained_variance_ratio, reference.explained_variance_ratio_, atol=1e-6
    )


@pytest.mark.parametrize("rows", [0, 1])
def test_fewer_than_two_samples_raises(rows: int) -> None:
    pca = StreamingPCA(2).partial_fit(np.ones((rows, 3)))
    with pytest.raises(EmbeddingExplorerError, match=f"PCA needs at least 2 samples, got {rows}"):
        pca.finalize()
    with pytest.raises(EmbeddingExplorerError, match="at least 2 samples"):
        pca.variances()


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3", None])
def test_invalid_n_components_raises(bad: object) -> None:
    with pytest.raises(ValueError, match="must be a positive integer"):
        StreamingPCA(bad).partial_fit(make_data(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"n_components=.* must be a positive integer"):
        n_components_for(bad, 10, 3)  # type: ignore[arg-type]


def test_zero_variance_gives_zero_ratios_not_nan() -> None:
    x = np.full((40, 4), 0.1, dtype=np.float32)
    result = stream(x, 7, n_components=3).finalize()
    assert result.total_variance == 0.0
    np.testing.assert_array_equal(result.explained_variance, np.zeros(3))
    np.testing.assert_array_equal(result.explained_variance_ratio, np.zeros(3))
    np.testing.assert_allclose(np.linalg.norm(result.components, axis=1), 1.0)
    np.testing.assert_allclose(result.mean, np.full(4, np.float32(0.1)), rtol=1e-12)


def test_one_constant_feature_among_varying_ones() -> None:
    x = make_data(1)
    x[:, 3] = 5.0
    result = stream(x, 11).finalize()
    assert_matches_sklearn(result, PCA(n_components=5, svd_solver="full").fit(x))
    assert result.mean[3] == pytest.approx(5.0)


def test_diagonal_accumulator_has_no_exact_pca() -> None:
    pca = StreamingPCA(2, covariance=False).partial_fit(make_data(0))
    np.testing.assert_allclose(pca.variances(), make_data(0).var(axis=0, ddof=1), rtol=1e-10)
    with pytest.raises(ValueError, match="use randomized_pca"):
        pca.finalize()


def test_accumulators_never_share_buffers() -> None:
    """Updating a copy (from_state, or a merge into an empty one) must not change the original."""
    rng = np.random.default_rng(3)
    a = StreamingPCA(2).partial_fit(rng.normal(size=(50, 4)))
    before = a.finalize()
    c = StreamingPCA.from_state(a.state())
    c.partial_fit(rng.normal(size=(30, 4)) * 5)
    merged = StreamingPCA(2).merge(a)
    merged.partial_fit(rng.normal(size=(30, 4)) * 5)
    after = a.finalize()
    np.testing.assert_array_equal(before.explained_variance, after.explained_variance)
    assert a.state()["m2"] is not a.state()["m2"]


# ---- the GPU path, run on CPU tensors ----------------------------------------------------------
@pytest.fixture
def accelerator_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send CPU tensors down the path CUDA tensors take (moments accumulated by torch where the
    batch is), so that path is checked without a GPU."""
    import embedding_explorer.pca as pca

    monkeypatch.setattr(pca, "_on_accelerator", lambda x: True)


@pytest.mark.parametrize("covariance", [True, False])
def test_accelerator_path_equals_the_numpy_path(accelerator_path: None, covariance: bool) -> None:
    x = make_data(11, n=300, offset=1e3)
    on_device = StreamingPCA(4, covariance=covariance)
    for start in range(0, 300, 64):
        on_device.partial_fit(torch.from_numpy(x[start : start + 64]).float())
    assert isinstance(on_device.mean_, torch.Tensor) and on_device.mean_.dtype == torch.float64
    on_host = StreamingPCA(4, covariance=covariance)
    for start in range(0, 300, 64):
        on_host.partial_fit(x[start : start + 64].astype(np.float32))
    np.testing.assert_allclose(on_device.variances(), on_host.variances(), rtol=1e-10)
    np.testing.assert_allclose(
        on_device.state()["mean"], x.astype(np.float32).astype(np.float64).mean(0), rtol=1e-12
    )
    if covariance:
        reference = PCA(n_components=4, svd_solver="full").fit(x.astype(np.float32).astype(np.float64))
        assert_matches_sklearn(on_device.finalize(), reference)
        np.testing.assert_allclose(on_device.finalize().components, on_host.finalize().components, atol=1e-9)


def test_accelerator_path_resumes_from_a_saved_state(accelerator_path: None) -> None:
    x = make_data(12, n=240)
    first = StreamingPCA(3)
    first.partial_fit(torch.from_numpy(x[:100]))
    resumed = StreamingPCA.from_state(first.state())  # numpy arrays, as a checkpoint holds them
    resumed.partial_fit(torch.from_numpy(x[100:]))
    assert isinstance(resumed.mean_, torch.Tensor)  # moved back to the batches' device
    reference = PCA(n_components=3, svd_solver="full").fit(x)
    assert_matches_sklearn(resumed.finalize(), reference)


# ---- the scikit-learn estimator contract -------------------------------------------------------
def test_init_only_stores_parameters() -> None:
    pca = StreamingPCA(4, covariance=False)
    assert vars(pca) == {"n_components": 4, "covariance": False, "products": "float64"}
    with pytest.raises(TypeError):
        StreamingPCA(4, False)  # type: ignore[misc]  # keyword-only after the first


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_returns_self_with_the_learned_attributes_of_sklearn_pca(seed: int, dtype: type) -> None:
    x = make_data(seed, n=150).astype(dtype)
    pca = StreamingPCA(4)
    assert pca.fit(x, batch_size=16) is pca
    reference = PCA(n_components=4, svd_solver="full").fit(x.astype(np.float64))
    np.testing.assert_allclose(pca.mean_, reference.mean_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(pca.explained_variance_, reference.explained_variance_, rtol=1e-6)
    np.testing.assert_allclose(pca.explained_variance_ratio_, reference.explained_variance_ratio_, atol=1e-6)
    assert np.all(np.sum(pca.components_ * reference.components_, axis=1) > 0.9999)
    assert pca.n_samples_seen_ == 150 and pca.n_features_in_ == x.shape[1]
    signs = np.sign(np.sum(pca.components_ * reference.components_, axis=1))
    np.testing.assert_allclose(pca.transform(x), reference.transform(x.astype(np.float64)) * signs, atol=1e-6)
    np.testing.assert_allclose(pca.transform(torch.from_numpy(x)), pca.transform(x))
    with pytest.raises(AttributeError, match="call fit or finalize first"):
        StreamingPCA(2).transform(x)


def test_fit_takes_an_iterable_of_batches_and_starts_over() -> None:
    x = make_data(2, n=120)
    from_batches = StreamingPCA(3).fit(np.array_split(x, 7))
    from_torch = StreamingPCA(3).fit(torch.from_numpy(x[start : start + 10]) for start in range(0, 120, 10))
    pca = StreamingPCA(3).fit(make_data(9, n=50))
    pca.fit(iter(np.array_split(x, 3)))  # a second fit forgets the first one's rows
    assert pca.n_samples_seen_ == from_batches.n_samples_seen_ == 120
    for other in (from_torch, pca):
        np.testing.assert_allclose(other.components_, from_batches.components_, atol=1e-10)
        np.testing.assert_allclose(other.explained_variance_, from_batches.explained_variance_, rtol=1e-10)


def test_finalize_sets_the_learned_attributes_it_returns() -> None:
    pca = stream(make_data(3), 25, n_components=3)
    with pytest.raises(AttributeError):
        _ = pca.components_
    result = pca.finalize()
    np.testing.assert_array_equal(pca.components_, result.components)
    np.testing.assert_array_equal(pca.explained_variance_, result.explained_variance)
    np.testing.assert_array_equal(pca.explained_variance_ratio_, result.explained_variance_ratio)


def test_unfitted_accumulator_merges_and_saves_as_empty() -> None:
    empty = StreamingPCA(2)
    assert empty.state()["n_samples_seen"] == 0
    full = stream(make_data(4, n=30), 10, n_components=2)
    assert StreamingPCA(2).merge(full).n_samples_seen_ == 30
    assert full.merge(StreamingPCA(2)).n_samples_seen_ == 30
    with pytest.raises(EmbeddingExplorerError, match="PCA needs at least 2 samples, got 0"):
        StreamingPCA(2).finalize()


def test_fit_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_size=0 must be a positive integer"):
        StreamingPCA(2).fit(make_data(0), batch_size=0)


# ---- float32 products (what extraction uses for float32 activations) ---------------------------
def relu_activations(seed: int, n: int, d: int = 48) -> np.ndarray:
    """Non-negative float32 rows with a large shared mean and a decaying spectrum, like a ReLU
    layer's outputs (the case where products about an inexact mean would lose digits)."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) * np.logspace(0, -2, d)
    return np.maximum(rng.normal(size=(n, d)) @ mixing.T + 3.0, 0.0).astype(np.float32)


@pytest.mark.parametrize("batch", [7, 1000, None], ids=["batch7", "batch1000", "whole"])
def test_float32_products_match_float64_sklearn(batch: int | None) -> None:
    x = relu_activations(0, 20_000)
    pca = StreamingPCA(10, products="float32")
    step = len(x) if batch is None else batch
    for start in range(0, len(x), step):
        pca.partial_fit(x[start : start + step])
    result = pca.finalize()
    reference = PCA(n_components=10, svd_solver="full").fit(x.astype(np.float64))
    # float32 rounding inside each 64-row block, averaged over blocks: measured 3e-10 (batch
    # 1000) to 1.2e-9 (one batch) on this strongly anisotropic layer; float64 products: 1e-16
    np.testing.assert_allclose(
        result.explained_variance_ratio, reference.explained_variance_ratio_, rtol=0, atol=2e-9
    )
    np.testing.assert_allclose(result.explained_variance, reference.explained_variance_, rtol=1e-7)
    np.testing.assert_allclose(result.mean, x.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(
        np.abs(result.components[:4] @ reference.components_[:4].T), np.eye(4), atol=1e-6
    )


def test_float32_products_survive_state_and_merge_like_one_pass() -> None:
    x = relu_activations(1, 1200)
    whole = StreamingPCA(5, products="float32")
    for start in range(0, 1200, 100):
        whole.partial_fit(x[start : start + 100])
    first = StreamingPCA(5, products="float32")
    for start in range(0, 600, 100):
        first.partial_fit(x[start : start + 100])
    resumed = StreamingPCA.from_state(first.state())
    assert resumed.products == "float32"
    for start in range(600, 1200, 100):
        resumed.partial_fit(x[start : start + 100])
    np.testing.assert_array_equal(covariance_of(resumed), covariance_of(whole))  # the same operations
    shard = StreamingPCA(5, products="float32").partial_fit(x[600:])
    merged = StreamingPCA.from_state(first.state()).merge(shard)
    reference = np.cov(x.astype(np.float64), rowvar=False)
    np.testing.assert_allclose(covariance_of(merged), reference, rtol=0, atol=1e-6 * np.abs(reference).max())


def test_unknown_products_refused_on_the_first_batch() -> None:
    pca = StreamingPCA(3, products="float16")
    with pytest.raises(ValueError, match="products='float16'"):
        pca.partial_fit(np.ones((4, 3)))


@pytest.mark.parametrize(
    "options", [{}, {"products": "float32"}, {"covariance": False}], ids=["float64", "float32", "diagonal"]
)
@pytest.mark.parametrize("bad", [np.nan, np.inf, "both"])
def test_a_non_finite_batch_is_refused_by_its_mean_and_leaves_the_accumulator_as_it_was(
    options: dict[str, Any], bad: Any
) -> None:
    """Bad values are found through the batch mean every update computes: +inf and -inf in one
    feature (a NaN mean) as well as a lone NaN or Inf; the error names row and feature, and the
    moments are those of the good batches, equal to numpy's."""
    rng = np.random.default_rng(0)
    good = rng.normal(size=(40, 6)).astype(np.float32)
    batch = rng.normal(size=(20, 6)).astype(np.float32)
    if bad == "both":
        batch[3, 4], batch[7, 4] = np.inf, -np.inf
    else:
        batch[3, 4] = bad
    pca = StreamingPCA(2, **options).partial_fit(good[:20]).partial_fit(good[20:])
    before = pca.state()
    with pytest.raises(NonFiniteActivationError, match=r"row 3, feature 4 \(sample 43 "):
        pca.partial_fit(batch)
    with pytest.raises(NonFiniteActivationError, match=r"row 3, feature 4 \(sample 3 "):
        StreamingPCA(2, **options).partial_fit(batch)  # the first batch too
    after = pca.state()
    assert after["n_samples_seen"] == 40
    np.testing.assert_array_equal(after["mean"], before["mean"])
    np.testing.assert_array_equal(after["m2"], before["m2"])
    np.testing.assert_allclose(pca.variances(), good.astype(np.float64).var(axis=0, ddof=1), rtol=1e-6)


@pytest.mark.parametrize("k", [1, 10, 96, 200])
def test_top_eigenpairs_equal_the_full_decomposition(k: int) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1000, 384)) * np.geomspace(10.0, 1e-3, 384)  # widely spread spectrum
    cov = np.cov(x @ np.linalg.qr(rng.standard_normal((384, 384)))[0], rowvar=False)
    full_values, full_vectors = np.linalg.eigh(cov)
    values, vectors = top_eigenpairs(cov, k)
    top = np.argsort(values)[::-1][:k]
    assert np.allclose(values[top], full_values[::-1][:k], rtol=1e-12, atol=1e-15 * full_values[-1])
    same = flip_signs(vectors[:, top].T) @ flip_signs(full_vectors[:, ::-1][:, :k].T).T
    assert np.allclose(np.diag(same), 1.0, atol=1e-10)  # the same unit vectors, same signs
    zero_values, _ = top_eigenpairs(np.zeros((384, 384)), k)  # a layer with zero variance
    assert np.array_equal(np.sort(zero_values)[-k:], np.zeros(k))


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int64])
def test_scores_centre_in_float64_to_the_bit(dtype: type) -> None:
    """PCAResult.transform and StreamingPCA.transform centre the rows in float64 in one pass:
    exactly the scores of a float64 copy centred, then projected."""
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(300, 24)) * 20).astype(dtype)
    estimator = StreamingPCA(5).fit(x.astype(np.float64))
    result = estimator.finalize()
    expected = (x.astype(np.float64) - result.mean) @ result.components.T
    np.testing.assert_array_equal(result.transform(x), expected)
    np.testing.assert_array_equal(estimator.transform(x), expected)
