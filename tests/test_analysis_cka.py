"""Linear CKA: streamed from the feature side, checked against N x N Gram-matrix computations."""

from __future__ import annotations

import importlib
from itertools import permutations
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError
from embedding_explorer.analysis import cka, cka_matrix

cka_module = importlib.import_module("embedding_explorer.analysis.cka")  # the package exports the function


# ---- independent Gram-side references ----------------------------------------------------------
def gram_hsic(k: np.ndarray, lg: np.ndarray) -> float:
    """Biased HSIC, tr(K H L H) / (n-1)^2, with the centring matrix H."""
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(k @ h @ lg @ h)) / (n - 1) ** 2


def gram_hsic_unbiased(k: np.ndarray, lg: np.ndarray) -> float:
    """Unbiased HSIC (Song et al. 2012, eq. 5), from the Gram matrices with zeroed diagonals."""
    n = len(k)
    kt, lt, one = k.copy(), lg.copy(), np.ones(n)
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    value = np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
    value -= 2.0 / (n - 2) * (one @ kt @ lt @ one)
    return float(value) / (n * (n - 3))


def u_statistic_hsic(k: np.ndarray, lg: np.ndarray) -> float:
    """Unbiased HSIC as the plain U-statistic: the mean over distinct ordered (i, j, q, r) of
    ``k_ij l_ij + k_ij l_qr - 2 k_ij l_iq`` (tiny n only)."""
    i, j, q, r = np.array(list(permutations(range(len(k)), 4))).T
    return float(np.mean(k[i, j] * lg[i, j] + k[i, j] * lg[q, r] - 2.0 * k[i, j] * lg[i, q]))


def gram_cka(x: np.ndarray, y: np.ndarray, hsic: object = gram_hsic) -> float:
    assert callable(hsic)
    k, lg = x @ x.T, y @ y.T
    return float(hsic(k, lg) / np.sqrt(hsic(k, k) * hsic(lg, lg)))


def pair(seed: int, n: int = 60, p: int = 7, q: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Two related representations with nonzero means."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p) + rng.normal(size=p) * 4
    y = np.tanh(x @ rng.normal(size=(p, q))) + 0.5 * rng.normal(size=(n, q)) + 2.0
    return x, y


# ---- against Gram matrices -------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n", "p", "q"), [(60, 7, 5), (20, 30, 3), (9, 2, 2)])
def test_biased_matches_gram(seed: int, n: int, p: int, q: int) -> None:
    x, y = pair(seed, n, p, q)
    assert cka(x, y) == pytest.approx(gram_cka(x, y), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n", "p", "q"), [(60, 7, 5), (20, 30, 3)])
def test_debiased_matches_gram(seed: int, n: int, p: int, q: int) -> None:
    x, y = pair(seed, n, p, q)
    expected = gram_cka(x, y, gram_hsic_unbiased)
    assert cka(x, y, debiased=True) == pytest.approx(expected, rel=1e-10)


def test_debiased_matches_u_statistic() -> None:
    x, y = pair(3, n=8, p=3, q=2)
    assert cka(x, y, debiased=True) == pytest.approx(gram_cka(x, y, u_statistic_hsic), rel=1e-10)


def test_debiased_removes_bias_on_independent_wide_data() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(50, 200)), rng.normal(size=(50, 200))
    assert cka(x, y) > 0.7  # biased linear CKA of independent wide data is large
    assert abs(cka(x, y, debiased=True)) < 0.05


# ---- invariances ------------------------------------------------------------------------------
@pytest.mark.parametrize("debiased", [False, True])
def test_self_similarity_is_one(debiased: bool) -> None:
    x, _ = pair(5)
    assert cka(x, x, debiased=debiased) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("debiased", [False, True])
def test_invariant_to_orthogonal_transforms_scaling_and_shifts(debiased: bool) -> None:
    x, y = pair(6, p=6)
    rng = np.random.default_rng(6)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    base = cka(x, y, debiased=debiased)
    assert cka(x @ q, y, debiased=debiased) == pytest.approx(base, rel=1e-10)
    assert cka(7.5 * x, 0.01 * y, debiased=debiased) == pytest.approx(base, rel=1e-10)
    assert cka(x + 100.0, y - 3.0, debiased=debiased) == pytest.approx(base, rel=1e-10)


def test_not_invariant_to_anisotropic_scaling() -> None:
    x, y = pair(7, p=6)
    scale = np.array([10.0, 1.0, 1.0, 0.1, 1.0, 3.0])
    assert abs(cka(x * scale, y) - cka(x, y)) > 1e-3


def test_exact_under_a_large_common_offset() -> None:
    """Activations far from the origin (mean 1e4, spread 1): nothing cancels."""
    x, y = pair(8, n=2000, p=4, q=3)
    expected = cka(x - x.mean(axis=0), y - y.mean(axis=0))
    assert cka(x + 1e4, y - 1e4, chunk_rows=300) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("chunk_rows", [1, 7, 59, 60, 1000])
def test_chunking_does_not_change_the_result(chunk_rows: int) -> None:
    x, y = pair(9)
    assert cka(x, y, chunk_rows=chunk_rows) == pytest.approx(cka(x, y), rel=1e-12)
    assert cka(x, y, debiased=True, chunk_rows=chunk_rows) == pytest.approx(
        cka(x, y, debiased=True), rel=1e-10
    )


def test_dask_arrays_are_read_block_by_block() -> None:
    """Dask arrays, whose ``chunks`` are tuples of block sizes, give the Gram-matrix value."""
    da = pytest.importorskip("dask.array")
    x, y = pair(9)
    lazy_x, lazy_y = da.from_array(x, chunks=(13, x.shape[1])), da.from_array(y, chunks=(17, y.shape[1]))
    assert cka(lazy_x, lazy_y) == pytest.approx(gram_cka(x, y), rel=1e-10)


def test_constant_representation_gives_nan() -> None:
    x, _ = pair(10)
    assert np.isnan(cka(x, np.ones((len(x), 3))))


# ---- layers of real runs, streamed from Zarr -------------------------------------------------
class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 12)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return torch.randn(300, 6, generator=torch.Generator().manual_seed(0)) + 2.0


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, data: torch.Tensor) -> ee.Run:
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("cka") / "run"
    return ee.explore(Net(), data, ["input", "fc1", "act", "fc2"], out=out, batch_size=64, progress=False)


@pytest.mark.parametrize("debiased", [False, True])
def test_layers_stream_like_in_memory_arrays(run: ee.Run, debiased: bool) -> None:
    a, b = run["fc1"], run["fc2"]
    x = np.asarray(a.activations[...], dtype=np.float64)
    y = np.asarray(b.activations[...], dtype=np.float64)
    hsic = gram_hsic_unbiased if debiased else gram_hsic
    expected = gram_cka(x, y, hsic)
    assert cka(a, b, debiased=debiased) == pytest.approx(expected, rel=1e-10)
    assert cka(a, b, debiased=debiased, chunk_rows=37) == pytest.approx(expected, rel=1e-10)
    assert cka(a.activations, b.activations, debiased=debiased, chunk_rows=50) == pytest.approx(
        expected, rel=1e-10
    )


def test_cka_matrix_matches_pairs(run: ee.Run) -> None:
    layers = list(run)
    matrix = cka_matrix(layers)
    assert matrix.shape == (4, 4)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-12)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
    for i, a in enumerate(layers):
        for j, b in enumerate(layers):
            assert matrix[i, j] == pytest.approx(cka(a, b), rel=1e-10)
    rect = cka_matrix(layers[:2], layers[1:], debiased=True)
    assert rect[1, 0] == pytest.approx(1.0)
    assert rect[0, 2] == pytest.approx(cka(layers[0], layers[3], debiased=True), rel=1e-10)


def test_cka_matrix_falls_back_to_pairs_when_too_wide(run: ee.Run, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = cka_matrix([run["input"], run["fc1"]], [run["fc2"]])
    monkeypatch.setattr(cka_module, "MAX_FEATURES", 18)  # 6 + 12 fits per pair, not all 22
    np.testing.assert_allclose(cka_matrix([run["input"], run["fc1"]], [run["fc2"]]), expected, rtol=1e-12)


# ---- bad input --------------------------------------------------------------------------------
def test_rows_must_match() -> None:
    with pytest.raises(EmbeddingExplorerError, match="has 9 rows but a has 10"):
        cka(np.ones((10, 2)), np.ones((9, 2)))


def test_not_two_dimensional() -> None:
    with pytest.raises(EmbeddingExplorerError, match=r"2-D .* shape \(10,\)"):
        cka(np.ones(10), np.ones((10, 2)))


def test_debiased_needs_four_samples() -> None:
    x, y = pair(0, n=3)
    with pytest.raises(EmbeddingExplorerError, match="at least 4 samples, got 3"):
        cka(x, y, debiased=True)


def test_too_many_features_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cka_module, "MAX_FEATURES", 10)
    x, y = pair(0, p=7, q=5)
    with pytest.raises(EmbeddingExplorerError, match=r"12 features .* MAX_FEATURES=10 .* reduce"):
        cka(x, y)


def test_layers_of_runs_over_different_samples(run: ee.Run, tmp_path: Path, data: torch.Tensor) -> None:
    other = ee.explore(Net(), data + 1.0, ["fc1"], out=tmp_path / "other", progress=False)
    with pytest.raises(EmbeddingExplorerError, match="not cover the same samples"):
        cka(run["fc1"], other["fc1"])
    with pytest.raises(EmbeddingExplorerError, match="not cover the same samples"):
        cka_matrix([run["fc1"]], [other["fc1"]])
