"""ICA of a layer: the same numbers as scikit-learn's FastICA, and known sources recovered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kurtosis, skew
from sklearn.decomposition import FastICA

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError
from embedding_explorer.analysis.ica import MAX_ITER, ICAResult

N = 2000


@pytest.fixture(scope="module")
def sources() -> np.ndarray:
    """Two independent non-Gaussian sources: Laplace (excess kurtosis 3), uniform (-1.2)."""
    rng = np.random.default_rng(7)
    laplace = rng.laplace(size=N) / np.sqrt(2)
    uniform = rng.uniform(-np.sqrt(3), np.sqrt(3), size=N)
    return np.column_stack([laplace, uniform])


@pytest.fixture(scope="module")
def mixture(sources: np.ndarray) -> np.ndarray:
    """The sources mixed into 5 features, plus a little Gaussian noise in every feature."""
    rng = np.random.default_rng(8)
    mixing = np.array([[1.0, 0.6, -0.4, 0.2, 0.9], [0.8, 1.0, 0.3, 0.5, -0.2]])
    return (sources @ mixing + 0.01 * rng.normal(size=(N, 5)) + 3.0).astype(np.float32)


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory, mixture: np.ndarray) -> ee.Layer:
    out = tmp_path_factory.mktemp("runs") / "ica"
    return ee.explore(None, mixture, ["input"], out=out, n_components=4, progress=False)["input"]


def test_sources_of_a_mixture_are_recovered(layer: ee.Layer, sources: np.ndarray) -> None:
    result = layer.ica(2)
    assert isinstance(result, ICAResult) and result.scores.shape == (N, 2)
    r = np.corrcoef(result.scores.T, sources.T)[:2, 2:]
    assert abs(r[0, 0]) > 0.95 and abs(r[1, 1]) > 0.95  # IC1 = Laplace (|kurtosis| ~3), IC2 = uniform
    np.testing.assert_allclose(result.kurtosis, kurtosis(sources, axis=0), atol=0.1)
    assert result.kurtosis[0] > 1.5 and result.kurtosis[1] < -1.0
    # PCA mixes them: no principal component alone is as close to either source
    r_pca = np.corrcoef(layer.scores[:, :2].T, sources.T)[:2, 2:]
    assert np.abs(r_pca).max() < 0.95


def test_equals_scikit_learn_fastica_on_the_same_pca_scores(layer: ee.Layer) -> None:
    result = layer.ica(3, seed=4, max_samples=500)
    pcs = layer.scores[:, :3].astype(np.float64)
    fit_rows = np.unique(np.linspace(0, N - 1, 500).round().astype(int))
    assert len(fit_rows) == 500
    model = FastICA(n_components=3, whiten="unit-variance", random_state=4, max_iter=MAX_ITER)
    theirs = model.fit(pcs[fit_rows]).transform(pcs)
    excess = kurtosis(theirs, axis=0)
    order = np.argsort(-np.abs(excess))
    expected = theirs[:, order] * np.sign(skew(theirs[:, order], axis=0))
    np.testing.assert_allclose(result.scores, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.kurtosis, excess[order], rtol=1e-10)
    assert np.all(np.diff(np.abs(result.kurtosis)) <= 0)
    assert np.all(skew(result.scores.astype(np.float64), axis=0) > 0)
    assert result.n_iter == model.n_iter_


def test_unmixing_and_mixing_in_activation_space(layer: ee.Layer, mixture: np.ndarray) -> None:
    result = layer.ica(2)
    assert result.unmixing.shape == result.mixing.shape == (2, 5)
    np.testing.assert_allclose(result.project(mixture), result.scores, rtol=1e-4, atol=1e-4)
    # the activations come back from the sources within the top-2 principal subspace
    rebuilt = layer.mean + (result.scores + result.offset) @ result.mixing
    within = layer.mean + layer.scores[:, :2].astype(np.float64) @ layer.components[:2]
    np.testing.assert_allclose(rebuilt, within, atol=1e-4)


def test_ica_is_probed_like_components_and_cached_on_the_layer(layer: ee.Layer) -> None:
    files_before = sorted(p.relative_to(layer.run.path) for p in layer.run.path.rglob("*"))
    result = layer.ica()
    assert result is layer.ica(4) and result is layer.ica(None, seed=0)
    assert layer.ica(4, seed=1) is not result
    assert result.n_components == 4 and result.component_names == ["IC1", "IC2", "IC3", "IC4"]
    s, ids = result.scores[:, 1].astype(np.float64), np.arange(N)
    low, high = result.extremes(1, 6)
    np.testing.assert_array_equal(low, np.lexsort((ids, s))[:6])
    np.testing.assert_array_equal(high, np.lexsort((ids, -s))[:6])
    assert sorted(p.relative_to(layer.run.path) for p in layer.run.path.rglob("*")) == files_before
    with pytest.raises(IndexError, match="component=4 is out of range for the ICA of layer 'input'"):
        result.histogram(4)


def test_bad_arguments(layer: ee.Layer, tmp_path: Path) -> None:
    with pytest.raises(EmbeddingExplorerError, match="n_components=5 must be <= the 4 principal components"):
        layer.ica(5)
    with pytest.raises(ValueError, match="n_components=0 must be a positive integer"):
        layer.ica(0)
    with pytest.raises(ValueError, match="max_samples=0 must be a positive integer"):
        layer.ica(max_samples=0)
    with pytest.raises(TypeError, match="seed must be an int"):
        layer.ica(seed=0.5)  # type: ignore[arg-type]
    with pytest.raises(EmbeddingExplorerError, match="needs at least 2 samples to fit on"):
        layer.ica(max_samples=1)
    flat = np.zeros((10, 3), dtype=np.float32)
    flat[:, 0] = np.arange(10)
    flat_layer = ee.explore(None, flat, ["input"], out=tmp_path / "flat", n_components=2, progress=False)[
        "input"
    ]
    with pytest.raises(
        EmbeddingExplorerError, match=r"PC2 of layer 'input' has no variance .*n_components <= 1"
    ):
        flat_layer.ica(2)
    assert flat_layer.ica().n_components == 1  # the default: every component with variance
    flat[:, 0] = 1.0
    with pytest.warns(ee.ZeroVarianceWarning):
        constant = ee.explore(None, flat, ["input"], out=tmp_path / "constant", progress=False)["input"]
    with pytest.raises(
        EmbeddingExplorerError, match="layer 'input' has no variance: ICA has nothing to separate"
    ):
        constant.ica()


def test_no_convergence_is_reported_naming_the_layer(
    layer: ee.Layer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedding_explorer.analysis import ica as ica_module

    monkeypatch.setattr(ica_module, "MAX_ITER", 2)  # stop FastICA long before it converges
    with pytest.warns(ee.ICAConvergenceWarning, match=r"FastICA did not converge on layer 'input' within 2 "):
        result = layer.ica(3, seed=9)
    assert not result.converged and result.n_iter == 2
    assert layer.ica(2).converged  # the mixture of two sources converges


def test_without_warn_no_convergence_is_logged_not_warned(
    layer: ee.Layer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A server fits with ``warn=False``: the same message goes to the log, and no warning (which
    the server would otherwise have to catch with process-wide warning filters)."""
    import warnings

    from embedding_explorer.analysis import ica as ica_module

    monkeypatch.setattr(ica_module, "MAX_ITER", 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = layer.ica(3, seed=11, warn=False)
    assert not result.converged
    assert "FastICA did not converge on layer 'input' within 2 " in caplog.text


def test_a_component_of_rounding_noise_is_left_out(tmp_path: Path) -> None:
    """Rank-2 data with k=3: PC3's variance is float rounding (about 1e-16 of PC1's), not zero,
    so an exact ``> 0`` check let FastICA whiten the noise into a third "source"."""
    rng = np.random.default_rng(0)
    s = np.column_stack([rng.laplace(size=500), rng.uniform(-1, 1, 500)])
    x = (s @ rng.normal(size=(2, 5)) + 3).astype(np.float32)
    layer = ee.explore(None, x, ["input"], out=tmp_path / "r", n_components=3, progress=False)["input"]
    ev = layer.explained_variance
    assert 0 < ev[2] < 1e-10 * ev[0]
    ica = layer.ica()
    assert ica.n_components == 2 and layer.ica(2) is ica  # the default is the largest valid count
    corr = np.abs(np.corrcoef(np.column_stack([ica.scores, s]).T)[:2, 2:])
    assert np.sort(corr.max(axis=0)).min() > 0.99  # each source found by one component
    with pytest.raises(EmbeddingExplorerError, match=r"PC3 of layer 'input' has no variance .*<= 2"):
        layer.ica(3)


def test_concurrent_calls_fit_once(layer: ee.Layer, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    import embedding_explorer.analysis.ica as ica_module

    fresh = ee.open_run(layer.run.path)["input"]  # nothing cached yet
    calls: list[int] = []
    real = ica_module.ica

    def slow(*args: object, **kwargs: object) -> ICAResult:
        calls.append(threading.get_ident())
        time.sleep(0.2)  # long enough for every thread to arrive while the first one fits
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ica_module, "ica", slow)
    results: list[ICAResult] = []
    threads = [threading.Thread(target=lambda: results.append(fresh.ica())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 4 and all(r is results[0] for r in results)
