"""One model over two data sets: shift statistics, captured variance, extremes, the joint PCA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.decomposition import PCA
from torch import nn

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError, LayerNotFoundError
from embedding_explorer.analysis import DatasetComparison, compare_datasets
from embedding_explorer.analysis.insights import comparable
from embedding_explorer.outputs import OUTPUT_COLUMNS

D = 6
SHIFT = 3.0  # the other set is shifted by this much along the reference's PC2


def _linear(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(D, 5))


@pytest.fixture(scope="module")
def model() -> nn.Sequential:
    return _linear(0)


@pytest.fixture(scope="module")
def x_ref() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.normal(size=(600, D)) * np.linspace(3.0, 0.5, D)).astype(np.float32)


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory, model: nn.Sequential, x_ref: np.ndarray) -> ee.Run:
    labels = np.arange(600) % 3
    out = tmp_path_factory.mktemp("datasets") / "ref"
    return ee.explore(
        model, torch.from_numpy(x_ref), ["input", "0"], out=out, name="clean", labels=labels,
        label_names=["a", "b", "c"], metadata={"m": np.arange(600.0)}, progress=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def x_other(ref: ee.Run) -> np.ndarray:
    """Fresh samples of the same distribution, squeezed on feature 5 and moved along the reference's PC2."""
    rng = np.random.default_rng(1)
    base = rng.normal(size=(500, D)) * np.linspace(3.0, 0.5, D)
    base[:, 5] *= 0.2
    return (base + SHIFT * ref["input"].components[1]).astype(np.float32)


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory, model: nn.Sequential, x_other: np.ndarray) -> ee.Run:
    out = tmp_path_factory.mktemp("datasets") / "other"
    return ee.explore(
        model, torch.from_numpy(x_other), ["input", "0"], out=out, name="shifted",
        labels=np.arange(500) % 2, label_names=["p", "q"], progress=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def cmp(ref: ee.Run, other: ee.Run) -> DatasetComparison:
    return compare_datasets(ref, other)


def _activations(model: nn.Sequential, x: np.ndarray, layer: str) -> np.ndarray:
    """The layer's activations computed independently with numpy, in float64."""
    x64 = x.astype(np.float64)
    if layer == "input":
        return x64
    linear = model[0]
    assert isinstance(linear, nn.Linear)
    weight = linear.weight.detach().numpy().astype(np.float64)
    return x64 @ weight.T + linear.bias.detach().numpy().astype(np.float64)


# ---- scores and shift statistics -----------------------------------------------------------------
def test_layers_and_repr(cmp: DatasetComparison) -> None:
    assert cmp.layers == ["input", "0"]
    assert "clean" in repr(cmp) and "shifted" in repr(cmp)


@pytest.mark.parametrize("layer", ["input", "0"])
def test_other_scores_are_an_independent_projection(
    cmp: DatasetComparison, model: nn.Sequential, x_ref: np.ndarray, x_other: np.ndarray, layer: str
) -> None:
    scores = cmp.other_scores(layer)
    assert scores.shape == (500, cmp.reference[layer].n_components) and scores.dtype == np.float32
    # scikit-learn fitted on the reference activations, applied to the other set's
    pca = PCA(n_components=scores.shape[1]).fit(_activations(model, x_ref, layer))
    expected = pca.transform(_activations(model, x_other, layer))
    signs = np.sign(np.sum(pca.components_ * cmp.reference[layer].components, axis=1))
    np.testing.assert_allclose(scores, expected * signs, atol=2e-4)


@pytest.mark.parametrize("layer", ["input", "0"])
def test_shift_matches_scipy(cmp: DatasetComparison, layer: str) -> None:
    table = cmp.shift(layer)
    k = cmp.reference[layer].n_components
    assert list(table.index) == [f"PC{c + 1}" for c in range(k)]
    assert list(table.columns) == [
        "w1_total_sd", "smd", "ks", "ks_pvalue", "wasserstein",
        "mean_reference", "mean_other", "std_reference", "std_other",
    ]  # fmt: skip
    ref_scores = cmp.reference[layer].scores.astype(np.float64)
    other_scores = cmp.other_scores(layer).astype(np.float64)
    for c in range(k):
        r, o = ref_scores[:, c], other_scores[:, c]
        row = table.iloc[c]
        ks = stats.ks_2samp(r, o)
        assert row["ks"] == pytest.approx(ks.statistic, abs=1e-12)
        assert row["ks_pvalue"] == pytest.approx(ks.pvalue, rel=1e-9, abs=1e-300)
        assert row["wasserstein"] == pytest.approx(stats.wasserstein_distance(r, o), rel=1e-12)
        # Cohen's d by hand: pooled variance with N-1 per group
        pooled = np.sqrt((599 * r.var(ddof=1) + 499 * o.var(ddof=1)) / (600 + 500 - 2))
        assert row["smd"] == pytest.approx((o.mean() - r.mean()) / pooled, rel=1e-10)
        assert row["std_other"] == pytest.approx(o.std(ddof=1), rel=1e-12)
        assert row["mean_reference"] == pytest.approx(0.0, abs=1e-5)


def test_ranked_finds_the_shifted_component(cmp: DatasetComparison, ref: ee.Run) -> None:
    ranked = cmp.ranked("input", by="smd")
    assert ranked.index[0] == "PC2"
    assert list(ranked["smd"].abs()) == sorted(ranked["smd"].abs(), reverse=True)
    default = cmp.ranked("input")  # variance-aware: W1 over the layer's total SD
    assert list(default["w1_total_sd"]) == sorted(default["w1_total_sd"], reverse=True)
    with pytest.raises(ValueError, match="by='p'"):
        cmp.ranked("input", by="p")  # type: ignore[arg-type]
    # the mean moved by SHIFT along PC2: smd is that over the pooled standard deviation
    row = ranked.loc["PC2"]
    assert row["mean_other"] - row["mean_reference"] == pytest.approx(SHIFT, abs=0.35)
    assert row["smd"] > 1.0 and row["ks"] > 0.4 and row["ks_pvalue"] < 1e-20


def test_same_data_shows_no_shift(ref: ee.Run) -> None:
    table = compare_datasets(ref, ref).shift("0")
    np.testing.assert_allclose(table[["smd", "ks", "wasserstein"]].to_numpy(), 0.0, atol=1e-6)


@pytest.mark.parametrize("layer", ["input", "0"])
def test_captured_variance(
    cmp: DatasetComparison, model: nn.Sequential, x_ref: np.ndarray, x_other: np.ndarray, layer: str
) -> None:
    table = cmp.captured_variance(layer)
    k = min(cmp.reference[layer].n_components, cmp.other[layer].n_components)
    assert list(table.index) == list(range(1, k + 1)) and table.index.name == "k"
    a_ref, a_other = _activations(model, x_ref, layer), _activations(model, x_other, layer)
    axes = PCA().fit(a_ref).components_[:k]
    total = a_other.var(axis=0, ddof=1).sum()
    expected = np.cumsum(((a_other - a_ref.mean(axis=0)) @ axes.T).var(axis=0, ddof=1)) / total
    np.testing.assert_allclose(table["reference_components"], expected, rtol=1e-5)
    own = np.cumsum(PCA().fit(a_other).explained_variance_ratio_[:k])
    np.testing.assert_allclose(table["own_components"], own, rtol=1e-6)  # float32 model
    assert (table["own_components"] >= table["reference_components"] - 1e-6).all()  # Ky Fan


def test_extremes_of_the_other_set(cmp: DatasetComparison) -> None:
    scores = cmp.other_scores("0")[:, 1].astype(np.float64)
    order = np.argsort(scores, kind="stable")
    low, high = cmp.extremes("0", 1, n=5)
    np.testing.assert_array_equal(low, order[:5])
    np.testing.assert_array_equal(high, np.argsort(-scores, kind="stable")[:5])
    low_all, _ = cmp.extremes("0", 1, n=10_000)
    np.testing.assert_array_equal(low_all, order)


def test_probe_of_the_other_set(cmp: DatasetComparison) -> None:
    probe = cmp.probe("0")
    assert probe.run is cmp.other and cmp.probe("0") is probe
    scores = cmp.other_scores("0")[:, 0].astype(np.float64)
    median = np.quantile(scores, 0.5)
    assert probe.quantile(0, 0.5) == pytest.approx(median, rel=1e-12)
    nearest = np.argsort(np.abs(scores - median), kind="stable")[:3]
    assert set(probe.quantile_samples(0, 0.5, n=3).tolist()) == set(nearest.tolist())


def test_histogram_on_one_axis(cmp: DatasetComparison) -> None:
    hist = cmp.histogram("input", 1, bins=12)
    r = cmp.reference["input"].scores[:, 1].astype(np.float64)
    o = cmp.other_scores("input")[:, 1].astype(np.float64)
    assert hist["edges"][0] == min(r.min(), o.min()) and hist["edges"][-1] == max(r.max(), o.max())
    np.testing.assert_array_equal(hist["reference"], np.histogram(r, hist["edges"])[0])
    np.testing.assert_array_equal(hist["other"], np.histogram(o, hist["edges"])[0])
    assert hist["reference"].sum() == 600 and hist["other"].sum() == 500


# ---- bad input -------------------------------------------------------------------------------------
def test_refuses_runs_of_different_models(tmp_path: Path, ref: ee.Run, x_other: np.ndarray) -> None:
    run = ee.explore(
        _linear(1), torch.from_numpy(x_other), ["input", "0"], out=tmp_path / "m", progress=False
    )
    with pytest.raises(EmbeddingExplorerError, match=r"different models.*compare_models"):
        compare_datasets(ref, run)
    free = ee.explore(None, torch.from_numpy(x_other), ["input"], out=tmp_path / "free", progress=False)
    with pytest.raises(EmbeddingExplorerError, match=r"no model \(input space\)"):
        compare_datasets(ref, free)


def test_two_model_free_runs_compare(tmp_path: Path, x_ref: np.ndarray, x_other: np.ndarray) -> None:
    a = ee.explore(None, torch.from_numpy(x_ref), ["input"], out=tmp_path / "a", progress=False)
    b = ee.explore(None, torch.from_numpy(x_other), ["input"], out=tmp_path / "b", progress=False)
    cmp = compare_datasets(a, b)
    assert cmp.ranked("input", by="smd").index[0] == "PC2"
    # both runs are called "input": the joint run tells them apart by their folders
    joint = cmp.joint()
    assert a.name == b.name == "input" and joint.name == "input + input"
    assert np.asarray(joint.labels).tolist() == ["a"] * 600 + ["b"] * 500


def test_runs_built_from_arrays_are_one_model_only_where_they_say_so(
    tmp_path: Path, x_ref: np.ndarray, x_other: np.ndarray
) -> None:
    """Two caches of two models over one data set are not one model over two data sets: a run
    built from arrays is the same model as another only where both name it (``model=``), and
    no data-set shift is found between two that do not."""
    rng = np.random.default_rng(3)
    mix = rng.normal(size=(x_ref.shape[1], x_ref.shape[1]))
    first = ee.from_arrays({"emb": x_ref}, out=tmp_path / "a", progress=False)
    second = ee.from_arrays({"emb": x_ref @ mix}, out=tmp_path / "b", progress=False)  # another model
    with pytest.raises(EmbeddingExplorerError, match=r"built from arrays without naming their model.*model="):
        compare_datasets(first, second)
    assert not comparable(first, second)
    with pytest.raises(EmbeddingExplorerError, match="neither"):  # no shift stated between them
        first.insights(compare=second)
    named = ee.from_arrays({"emb": x_ref}, out=tmp_path / "c", progress=False, model="encoder-v1")
    shifted = ee.from_arrays({"emb": x_other}, out=tmp_path / "d", progress=False, model="encoder-v1")
    assert named.manifest["model"]["class"] == "encoder-v1"
    reference = PCA(n_components=2).fit(x_ref)
    cmp = compare_datasets(named, shifted)
    np.testing.assert_allclose(
        np.abs(cmp.other_scores("emb")[:, :2]), np.abs(reference.transform(x_other)), rtol=1e-4, atol=1e-4
    )
    other_model = ee.from_arrays({"emb": x_other}, out=tmp_path / "e", progress=False, model="encoder-v2")
    with pytest.raises(EmbeddingExplorerError, match="different models"):
        compare_datasets(named, other_model)
    with pytest.raises(ValueError, match="model=''"):
        ee.from_arrays({"emb": x_ref}, out=tmp_path / "f", progress=False, model="")


def test_missing_layers_are_named(tmp_path: Path, ref: ee.Run, other: ee.Run, model: nn.Sequential) -> None:
    only_input = ee.explore(model, torch.zeros(4, D).normal_(), ["input"], out=tmp_path / "i", progress=False)
    assert compare_datasets(ref, only_input).layers == ["input"]
    with pytest.raises(LayerNotFoundError, match=r"layer '0' is missing from run 'sequential'"):
        compare_datasets(ref, only_input, layers=["input", "0"])
    cmp = compare_datasets(ref, other)
    with pytest.raises(LayerNotFoundError, match=r"layer 'fc9' is missing from run 'clean'"):
        cmp.shift("fc9")
    with pytest.raises(LayerNotFoundError, match="not among the compared layers"):
        compare_datasets(ref, other, layers=["input"]).other_scores("0")


def test_layers_that_differ_or_none_shared(tmp_path: Path, ref: ee.Run, model: nn.Sequential) -> None:
    x = torch.zeros(20, D).normal_()
    reduced = ee.explore(model, x, {"input": "0"}, out=tmp_path / "r", progress=False)
    with pytest.raises(EmbeddingExplorerError, match=r"layer 'input' differs .*module"):
        compare_datasets(ref, reduced)
    renamed = ee.explore(model, x, {"lin": "0"}, out=tmp_path / "n", progress=False)
    with pytest.raises(EmbeddingExplorerError, match="share no layer"):
        compare_datasets(ref, renamed)


def test_bad_arguments(cmp: DatasetComparison) -> None:
    with pytest.raises(IndexError, match=r"component=7 is out of range for layer 'input'"):
        cmp.extremes("input", 7)
    with pytest.raises(ValueError, match="n=0 must be a positive integer"):
        cmp.extremes("input", 0, n=0)
    with pytest.raises(ValueError, match="bins=0"):
        cmp.histogram("input", 0, bins=0)
    with pytest.raises(TypeError, match="layer must be a layer name"):
        cmp.shift(0)  # type: ignore[arg-type]


# ---- the joint PCA -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def joint(cmp: DatasetComparison) -> ee.Run:
    return cmp.joint()


def test_joint_pca_equals_sklearn_on_the_stacked_activations(
    joint: ee.Run, ref: ee.Run, other: ee.Run
) -> None:
    assert joint.path == ref.path.parent / "ref+other"
    assert joint.name == "clean + shifted" and joint.n_samples == 1100
    for name in ("input", "0"):
        stacked = np.vstack([ref[name].activations[...], other[name].activations[...]]).astype(np.float64)
        pca = PCA(n_components=joint[name].n_components).fit(stacked)
        layer = joint[name]
        np.testing.assert_allclose(layer.explained_variance, pca.explained_variance_, rtol=1e-9)
        np.testing.assert_allclose(layer.explained_variance_ratio, pca.explained_variance_ratio_, rtol=1e-9)
        np.testing.assert_allclose(np.abs(layer.components), np.abs(pca.components_), atol=1e-9)
        signs = np.sign(np.sum(layer.components * pca.components_, axis=1))
        np.testing.assert_allclose(layer.scores, pca.transform(stacked) * signs, atol=1e-4)
        np.testing.assert_array_equal(layer.activations[...], stacked.astype(np.float32))


def test_joint_samples_and_membership(joint: ee.Run) -> None:
    samples = joint.samples
    assert list(samples["label"]) == ["clean"] * 600 + ["shifted"] * 500
    assert list(samples["class"][:4]) == ["a", "b", "c", "a"] and list(samples["class"][600:603]) == [
        "p",
        "q",
        "p",
    ]
    np.testing.assert_array_equal(samples["source_id"], np.r_[np.arange(600), np.arange(500)])
    assert samples["m"][599] == 599.0 and samples["m"][600:].isna().all()  # only the reference had "m"
    given = [c for c in joint.metadata.columns if c not in OUTPUT_COLUMNS]  # not the model's outputs
    assert given == ["class", "source_id", "m"]


def test_joint_association_finds_the_separating_component(joint: ee.Run, ref: ee.Run) -> None:
    table = joint["input"].association()
    eta2 = table["eta2"].to_numpy()
    assert int(np.argmax(eta2)) == 1 and eta2[1] > 0.2 and np.delete(eta2, 1).max() < 0.05
    # eta2 by hand: between-set sum of squares over the total, on the joint PC2 scores
    s = joint["input"].scores[:, 1].astype(np.float64)
    groups = [s[:600], s[600:]]
    between = sum(len(g) * (g.mean() - s.mean()) ** 2 for g in groups)
    assert eta2[1] == pytest.approx(between / ((s - s.mean()) ** 2).sum(), rel=1e-6)
    # the component that separates the sets is the direction of the shift
    assert abs(float(joint["input"].components[1] @ ref["input"].components[1])) > 0.95


def test_joint_is_reused_and_can_be_recomputed(cmp: DatasetComparison, joint: ee.Run) -> None:
    created = joint.manifest["created"]
    mtime = (joint.path / "manifest.json").stat().st_mtime_ns
    again = cmp.joint()
    assert again.manifest["created"] == created
    assert (again.path / "manifest.json").stat().st_mtime_ns == mtime
    fresh = cmp.joint(recompute=True)
    assert (fresh.path / "manifest.json").stat().st_mtime_ns != mtime
    assert fresh.manifest["joint"][1]["name"] == "shifted"


def test_exported_from_the_package() -> None:
    assert ee.compare_datasets is compare_datasets and ee.DatasetComparison is DatasetComparison


def test_a_filtered_shift_uses_the_samples_the_filter_keeps_in_both_sets(tmp_path: Path) -> None:
    """``shift``/``ranked`` with ``filter=``: the statistics of each set's kept samples (checked
    with scipy on the masked scores); a filter keeping under 2 samples of a set is refused."""
    rng = np.random.default_rng(7)
    xa, xb = rng.normal(size=(80, 4)), rng.normal(size=(60, 4)) + np.array([0.0, 2.0, 0.0, 0.0])
    size_a, size_b = rng.random(80), rng.random(60)
    a = ee.explore(None, torch.from_numpy(xa), ["input"], out=tmp_path / "a", metadata={"size": size_a},
                   progress=False)  # fmt: skip
    b = ee.explore(None, torch.from_numpy(xb), ["input"], out=tmp_path / "b", metadata={"size": size_b},
                   progress=False)  # fmt: skip
    comparison = compare_datasets(a, b)
    small = {"ranges": {"size": [None, 0.5]}}
    table = comparison.shift("input", filter=small)
    kept_a = a["input"].scores[size_a <= 0.5].astype(np.float64)
    kept_b = comparison.other_scores("input")[size_b <= 0.5].astype(np.float64)
    for c in range(a["input"].n_components):
        assert table.iloc[c]["ks"] == pytest.approx(stats.ks_2samp(kept_a[:, c], kept_b[:, c]).statistic)
        assert table.iloc[c]["wasserstein"] == pytest.approx(
            stats.wasserstein_distance(kept_a[:, c], kept_b[:, c])
        )
    assert not table.equals(comparison.shift("input"))
    assert list(comparison.ranked("input", filter=small).index) == list(
        table.iloc[np.argsort(-table["w1_total_sd"].to_numpy(), kind="stable")].index
    )
    with pytest.raises(EmbeddingExplorerError, match="a shift needs at least 2 of each"):
        comparison.shift("input", filter={"ranges": {"size": [2.0, None]}})
