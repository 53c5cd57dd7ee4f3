"""Run and Layer: probing along components, checked against brute-force computations."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError, LayerNotFoundError

N = 40
LABELS = np.array(["a", "b", "c", "d"])[np.arange(N) % 4]


@pytest.fixture(scope="module")
def tie_data() -> np.ndarray:
    """40 samples drawn (with repeats) from 12 distinct rows: many exactly tied scores."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(12, 3)) * [5.0, 1.0, 0.2]
    return base[rng.integers(0, 12, size=N)].astype(np.float32)


@pytest.fixture(scope="module")
def tie_run(tmp_path_factory: pytest.TempPathFactory, tie_data: np.ndarray) -> ee.Run:
    out = tmp_path_factory.mktemp("runs") / "ties"
    return ee.explore(None, tie_data, ["input"], out=out, labels=LABELS, n_components=3, progress=False)


@pytest.fixture(scope="module")
def layer(tie_run: ee.Run) -> ee.Layer:
    return tie_run["input"]


def scores64(layer: ee.Layer, component: int) -> np.ndarray:
    return layer.scores[:, component].astype(np.float64)


def test_data_has_exact_ties(layer: ee.Layer, tie_data: np.ndarray) -> None:
    _, first, counts = np.unique(tie_data, axis=0, return_index=True, return_counts=True)
    assert counts.max() > 1
    duplicates = np.flatnonzero((tie_data == tie_data[first[np.argmax(counts)]]).all(axis=1))
    for c in range(3):
        assert len(np.unique(layer.scores[duplicates, c])) == 1  # tied rows have tied scores


# ---- extremes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("component", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 3, 8, N, 100])
def test_extremes_against_brute_force(layer: ee.Layer, component: int, n: int) -> None:
    s, ids = scores64(layer, component), np.arange(N)
    low, high = layer.extremes(component, n)
    np.testing.assert_array_equal(low, np.lexsort((ids, s))[:n])  # ascending score, ties: lower id
    np.testing.assert_array_equal(high, np.lexsort((ids, -s))[:n])  # descending score, ties: lower id
    assert np.all(np.diff(s[low]) >= 0) and np.all(np.diff(s[high]) <= 0)


def test_extremes_ties_break_by_lower_id(layer: ee.Layer) -> None:
    s = scores64(layer, 0)
    low, high = layer.extremes(0, N)
    for ends in (low, high):
        for a, b in pairwise(ends):
            if s[a] == s[b]:
                assert a < b
    assert any(s[a] == s[b] for a, b in pairwise(low))  # the case is exercised


# ---- quantile samples --------------------------------------------------------------------------
def brute_force_quantile(s: np.ndarray, q: float, n: int) -> np.ndarray:
    ids = np.arange(len(s))
    distance = np.abs(s - np.quantile(s, q))
    chosen = np.lexsort((ids, distance))[: min(n, len(s))]
    return chosen[np.lexsort((chosen, s[chosen]))]


@pytest.mark.parametrize("component", [0, 1, 2])
@pytest.mark.parametrize("q", [0.0, 0.1, 0.25, 0.3, 0.35, 0.5, 0.62, 0.9, 1.0])
@pytest.mark.parametrize("n", [1, 3, 5, 8, N, 60])
def test_quantile_samples_against_brute_force(layer: ee.Layer, component: int, q: float, n: int) -> None:
    got = layer.quantile_samples(component, q, n)
    np.testing.assert_array_equal(got, brute_force_quantile(scores64(layer, component), q, n))


def test_quantile_samples_include_the_median_sample(layer: ee.Layer) -> None:
    s = scores64(layer, 0)
    (median_sample,) = layer.quantile_samples(0, 0.5, 1)
    assert abs(s[median_sample] - np.median(s)) == np.min(np.abs(s - np.median(s)))
    np.testing.assert_array_equal(layer.quantile_samples(0, 0.0, 1), layer.extremes(0, 1)[0])
    np.testing.assert_array_equal(layer.quantile_samples(0, 1.0, 1), layer.extremes(0, 1)[1])


@pytest.mark.parametrize("q", [-0.1, 1.5, float("nan"), "half"])
def test_quantile_outside_zero_one(layer: ee.Layer, q: object) -> None:
    with pytest.raises(ValueError, match="must be a quantile between 0 and 1"):
        layer.quantile_samples(0, q)  # type: ignore[arg-type]


def test_probing_argument_errors(layer: ee.Layer) -> None:
    with pytest.raises(
        IndexError, match=r"component=3 is out of range for layer 'input', which has 3 components \(0..2\)"
    ):
        layer.extremes(3)
    with pytest.raises(IndexError, match="component=-1 is out of range"):
        layer.quantile_samples(-1, 0.5)
    with pytest.raises(TypeError, match=r"component must be an int, got 1\.0"):
        layer.extremes(1.0)  # type: ignore[arg-type]
    for bad_n in (0, -3):
        with pytest.raises(ValueError, match=f"n={bad_n} must be a positive integer"):
            layer.extremes(0, bad_n)
        with pytest.raises(ValueError, match=f"n={bad_n} must be a positive integer"):
            layer.quantile_samples(0, 0.5, bad_n)
    with pytest.raises(ValueError, match="bins=0 must be a positive integer"):
        layer.histogram(0, bins=0)


# ---- histograms --------------------------------------------------------------------------------
@pytest.mark.parametrize("bins", [1, 4, 7, 20])
def test_histogram_quantile_bins(layer: ee.Layer, tie_run: ee.Run, bins: int) -> None:
    s = scores64(layer, 1)
    hist = layer.histogram(1, bins=bins, by_label=True)
    expected_edges = np.unique(np.quantile(s, np.linspace(0, 1, bins + 1)))
    np.testing.assert_array_equal(hist.edges, expected_edges)
    assert len(hist.counts) == len(hist.edges) - 1
    assert hist.counts.sum() == N
    np.testing.assert_array_equal(hist.counts, np.histogram(s, bins=expected_edges)[0])
    assert hist.by_label is not None
    assert sorted(hist.by_label) == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(sum(hist.by_label.values()), hist.counts)
    for label, counts in hist.by_label.items():
        np.testing.assert_array_equal(
            counts, np.histogram(s[tie_run.labels == label], bins=expected_edges)[0]
        )


def test_histogram_by_label_by_hand(tmp_path: Path) -> None:
    x = np.array([[0.0, 0.0], [1.0, 0.1], [2.0, 0.0], [3.0, 0.1], [4.0, 0.0], [5.0, 0.1]])
    run = ee.explore(None, x, ["input"], out=tmp_path / "h", labels=[0, 1, 0, 0, 1, 1], progress=False)
    s = run["input"].scores[:, 0]
    assert np.all(np.diff(s) > 0)  # the first component runs along the first feature
    hist = run["input"].histogram(0, bins=2, by_label=True)
    np.testing.assert_allclose(hist.edges, [s[0], (s[2] + s[3]) / 2, s[5]], rtol=1e-6)
    np.testing.assert_array_equal(hist.counts, [3, 3])
    assert set(hist.by_label) == {0, 1}
    np.testing.assert_array_equal(hist.by_label[0], [2, 1])  # samples 0, 2 | 3
    np.testing.assert_array_equal(hist.by_label[1], [1, 2])  # sample 1 | 4, 5


def test_histogram_resists_one_outlier(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    x[17] = [1000.0, 0.0, 0.0]
    run = ee.explore(None, x, ["input"], out=tmp_path / "o", n_components=2, progress=False)
    s = scores64(run["input"], 0)
    assert np.histogram(s, bins=10)[0].max() >= 199  # equal widths: everyone in one bin
    hist = run["input"].histogram(0, bins=10)
    assert hist.counts.sum() == 200
    assert hist.counts.max() <= 21  # quantile bins: about 20 per bin


def test_histogram_of_constant_scores_and_without_labels(tmp_path: Path) -> None:
    x = np.zeros((10, 2))
    x[:, 0] = np.r_[np.zeros(9), 1.0]
    run = ee.explore(None, x, ["input"], out=tmp_path / "c", n_components=1, progress=False)
    hist = run["input"].histogram(0, bins=4)
    assert hist.counts.sum() == 10
    assert len(hist.edges) == len(hist.counts) + 1
    with pytest.raises(EmbeddingExplorerError, match="has no labels to split the histogram by"):
        run["input"].histogram(0, by_label=True)


# ---- percentiles and projection ----------------------------------------------------------------
def test_percentiles_against_brute_force(layer: ee.Layer) -> None:
    s = layer.scores
    for sample in (0, 7, 23, N - 1):
        expected = 100.0 * (s < s[sample]).sum(axis=0) / (N - 1)
        np.testing.assert_allclose(layer.percentiles(sample), expected)
    low, high = layer.extremes(0, 1)
    assert layer.percentiles(int(low[0]))[0] == 0.0
    assert layer.percentiles(int(high[0]))[0] == 100.0 * (s[:, 0] < s[high[0], 0]).sum() / (N - 1)
    with pytest.raises(IndexError, match=r"sample_id=40 is out of range \(0..39\)"):
        layer.percentiles(N)


def test_project_equals_manual_projection(layer: ee.Layer, tie_data: np.ndarray) -> None:
    new = np.random.default_rng(5).normal(size=(6, 3))
    np.testing.assert_allclose(layer.project(new), (new - layer.mean) @ layer.components.T, rtol=1e-12)
    np.testing.assert_allclose(layer.project(tie_data), layer.scores, rtol=1e-5, atol=1e-5)
    with pytest.raises(EmbeddingExplorerError, match=r"has 3 features; got activations of shape \(6, 2\)"):
        layer.project(new[:, :2])


# ---- run-level access --------------------------------------------------------------------------
def test_run_accessors(tie_run: ee.Run, layer: ee.Layer) -> None:
    assert tie_run.n_samples == N
    assert tie_run.layers == ["input"]
    assert tie_run.layer("input") is layer
    assert [lay.name for lay in tie_run] == ["input"]
    assert layer.dim == 3 and layer.n_components == 3
    np.testing.assert_array_equal(tie_run.labels, LABELS)
    assert tie_run.samples["sample_id"].tolist() == list(range(N))
    assert tie_run.metadata.shape == (N, 0)
    assert tie_run.label_names is None
    assert tie_run.label_name("a") == "a"
    assert "n_samples=40" in repr(tie_run)
    assert repr(layer) == "Layer('input', dim=3, n_components=3)"
    with pytest.raises(LayerNotFoundError, match="run 'input' has no layer 'fc'; its layers: input"):
        tie_run["fc"]
    with pytest.raises(IndexError, match="sample_id=-1 is out of range"):
        tie_run.rendering(-1)
