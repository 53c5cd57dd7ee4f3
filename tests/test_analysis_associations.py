"""Associations of components with labels and metadata, checked against hand and scipy computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError
from embedding_explorer.analysis import association, extreme_makeup

N = 240
NAMES = ["Sandal", "Sneaker", "Coat", "Bag"]
OFFSETS = np.array([-6.0, -5.0, 6.0, 0.0])  # along feature 0, per class


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return np.random.default_rng(1).permutation(np.arange(N) % 4)


@pytest.fixture(scope="module")
def data(labels: np.ndarray) -> np.ndarray:
    """Feature 0 separates the classes; feature 1 tracks ``brightness``; the rest is noise."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 5)) * [0.3, 2.0, 1.0, 0.8, 0.5]
    x[:, 0] += OFFSETS[labels]
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def metadata(data: np.ndarray) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    with_gaps = rng.normal(size=N)
    with_gaps[::7] = np.nan
    return pd.DataFrame(
        {
            "brightness": data[:, 1].astype(np.float64) + rng.normal(size=N),
            "site": np.array(["north", "south", "east"])[rng.integers(0, 3, N)],
            "batch": rng.integers(0, 5, N),  # few integers: categorical
            "serial": np.arange(N) * 3,  # many integers: numeric
            "flag": rng.integers(0, 2, N).astype(bool),
            "constant": np.full(N, 7.0),
            "with_gaps": with_gaps,
        }
    )


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory, data: np.ndarray, labels: np.ndarray, metadata: pd.DataFrame
) -> ee.Run:
    out = tmp_path_factory.mktemp("assoc") / "run"
    return ee.explore(
        None,
        data,
        ["input"],
        out=out,
        labels=labels,
        label_names=NAMES,
        metadata=metadata,
        n_components=4,
        progress=False,
    )


@pytest.fixture(scope="module")
def layer(run: ee.Run) -> ee.Layer:
    return run["input"]


# ---- categorical -------------------------------------------------------------------------------
def test_eta2_against_hand_computation(layer: ee.Layer, labels: np.ndarray) -> None:
    table = association(layer)
    assert list(table.index) == ["PC1", "PC2", "PC3", "PC4"]
    scores = layer.scores.astype(np.float64)
    for c in range(4):
        s = scores[:, c]
        between = sum((labels == g).sum() * (s[labels == g].mean() - s.mean()) ** 2 for g in range(4))
        assert table["eta2"].iloc[c] == pytest.approx(between / ((s - s.mean()) ** 2).sum(), rel=1e-10)
        for g, name in enumerate(NAMES):
            assert table[f"mean[{name}]"].iloc[c] == pytest.approx(s[labels == g].mean(), rel=1e-9, abs=1e-12)


def test_eta2_is_r2_of_one_way_anova_and_ols(layer: ee.Layer, labels: np.ndarray) -> None:
    table = association(layer)
    onehot = np.eye(4)[labels]
    for c in range(4):
        s = layer.scores[:, c].astype(np.float64)
        fit = np.linalg.lstsq(onehot, s, rcond=None)[0]
        residual = s - onehot @ fit
        r2 = 1.0 - residual @ residual / ((s - s.mean()) @ (s - s.mean()))
        assert table["eta2"].iloc[c] == pytest.approx(r2, rel=1e-9)
        f = stats.f_oneway(*(s[labels == g] for g in range(4))).statistic
        dfb, dfw = 3, N - 4
        assert table["eta2"].iloc[c] == pytest.approx(f * dfb / (f * dfb + dfw), rel=1e-9)


def test_summary_names_the_separated_classes(layer: ee.Layer, labels: np.ndarray) -> None:
    table = association(layer)
    assert table["eta2"].iloc[0] > 0.99
    # the high end first, as the gallery shows it, and each end named: checked against the scores
    assert table["summary"].iloc[0] == "high: Coat · low: Sandal, Sneaker"
    pc1 = np.asarray(layer.scores)[:, 0]
    coat, sandal = (pc1[labels == NAMES.index(name)].mean() for name in ("Coat", "Sandal"))
    assert coat > pc1.mean() > sandal
    assert list(table.columns) == ["eta2", *(f"mean[{n}]" for n in NAMES), "summary"]


def test_summary_on_one_side_and_none() -> None:
    from embedding_explorer.analysis.associations import _categorical_summary

    names = ["a", "b", "c"]
    assert _categorical_summary(np.array([3.0, 0.1, 0.0]), names, 0.0, 1.0, 0.5) == (
        "high: a · low: no class stands out"
    )
    assert _categorical_summary(np.array([0.0, -2.0, 0.0]), names, 0.0, 1.0, 0.5) == (
        "high: no class stands out · low: b"
    )
    assert _categorical_summary(np.array([0.1, -0.1, 0.0]), names, 0.0, 1.0, 0.5).startswith("no category")


def test_string_and_integer_and_bool_columns_are_categorical(layer: ee.Layer, metadata: pd.DataFrame) -> None:
    site = association(layer, "site")
    assert [c for c in site.columns if c.startswith("mean[")] == ["mean[east]", "mean[north]", "mean[south]"]
    batch = association(layer, "batch")
    assert [c for c in batch.columns if c.startswith("mean[")] == [f"mean[{i}]" for i in range(5)]
    assert "eta2" in association(layer, "flag").columns
    codes = metadata["site"].to_numpy()
    s = layer.scores[:, 1].astype(np.float64)
    groups = [s[codes == v] for v in ("east", "north", "south")]
    f = stats.f_oneway(*groups).statistic
    assert site["eta2"].iloc[1] == pytest.approx(2 * f / (2 * f + N - 3), rel=1e-9)


def test_kind_can_be_forced(layer: ee.Layer, labels: np.ndarray) -> None:
    # 240 categories, one sample each: eta squared would be 1 for every component, said instead
    with pytest.raises(EmbeddingExplorerError, match=r"'serial' has a different value for every sample"):
        association(layer, "serial", kind="categorical")
    numeric = association(layer, "label", kind="numeric")
    s = layer.scores[:, 0].astype(np.float64)
    assert numeric["r"].iloc[0] == pytest.approx(stats.pearsonr(s, labels).statistic, rel=1e-9)
    with pytest.raises(EmbeddingExplorerError, match=r"'site' of dtype .* cannot be treated as numeric"):
        association(layer, "site", kind="numeric")
    with pytest.raises(ValueError, match="kind='ordinal'"):
        association(layer, "site", kind="ordinal")  # type: ignore[arg-type]


# ---- numeric -----------------------------------------------------------------------------------
def test_r_against_pearsonr(layer: ee.Layer, metadata: pd.DataFrame) -> None:
    table = association(layer, "brightness")
    assert list(table.columns) == ["r", "n", "summary"]
    for c in range(4):
        expected = stats.pearsonr(layer.scores[:, c].astype(np.float64), metadata["brightness"]).statistic
        assert table["r"].iloc[c] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    best = table["r"].abs().idxmax()
    assert abs(table.loc[best, "r"]) > 0.8
    assert table.loc[best, "summary"] == f"r = {table.loc[best, 'r']:+.2f} with brightness"


def test_many_integers_are_numeric(layer: ee.Layer) -> None:
    table = association(layer, "serial")
    expected = stats.pearsonr(layer.scores[:, 2].astype(np.float64), np.arange(N) * 3.0).statistic
    assert table["r"].iloc[2] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_nan_samples_are_left_out(layer: ee.Layer, metadata: pd.DataFrame) -> None:
    table = association(layer, "with_gaps")
    v = metadata["with_gaps"].to_numpy()
    keep = ~np.isnan(v)
    assert int(table["n"].iloc[0]) == keep.sum() < N
    for c in range(4):
        expected = stats.pearsonr(layer.scores[keep, c].astype(np.float64), v[keep]).statistic
        assert table["r"].iloc[c] == pytest.approx(expected, rel=1e-9, abs=1e-12)


# ---- extreme makeup ----------------------------------------------------------------------------
def test_extreme_makeup(layer: ee.Layer) -> None:
    low, high = extreme_makeup(layer, 0, n=10)
    assert low == [("Sandal", 10)]
    assert high == [("Coat", 10)]
    low, high = extreme_makeup(layer, 0, n=90)  # 60 per class: Sneaker follows Sandal
    assert low == [("Sandal", 60), ("Sneaker", 30)]
    assert sum(count for _, count in high) == 90 and high[0] == ("Coat", 60)


def test_extreme_makeup_of_a_metadata_column(layer: ee.Layer, metadata: pd.DataFrame) -> None:
    low, _ = extreme_makeup(layer, 1, n=20, column="site")
    ids, _ = layer.extremes(1, 20)
    counts = metadata["site"].iloc[ids].value_counts()
    assert dict(low) == counts.to_dict()
    assert [c for _, c in low] == sorted((c for _, c in low), reverse=True)


# ---- bad input ---------------------------------------------------------------------------------
def test_unknown_column_lists_the_available_ones(layer: ee.Layer) -> None:
    with pytest.raises(EmbeddingExplorerError, match=r"no column 'colour'; available: 'label', 'brightness'"):
        association(layer, "colour")
    with pytest.raises(EmbeddingExplorerError, match="no column 'colour'"):
        extreme_makeup(layer, 0, column="colour")


def test_single_valued_column(layer: ee.Layer) -> None:
    with pytest.raises(EmbeddingExplorerError, match=r"'constant' has a single value \(7\)"):
        association(layer, "constant")
    with pytest.raises(EmbeddingExplorerError, match=r"'constant' has a single value \(7.0\)"):
        association(layer, "constant", kind="categorical")


def test_run_without_labels(tmp_path: Path, data: np.ndarray) -> None:
    run = ee.explore(None, data, ["input"], out=tmp_path / "unlabelled", progress=False)
    with pytest.raises(EmbeddingExplorerError, match="has no labels"):
        association(run["input"])
    with pytest.raises(EmbeddingExplorerError, match="has no labels"):
        extreme_makeup(run["input"], 0)


def test_bad_component(layer: ee.Layer) -> None:
    with pytest.raises(IndexError, match="component=9"):
        extreme_makeup(layer, 9)


def test_a_column_of_many_categories_gives_eta2_and_its_ends(tmp_path: Path) -> None:
    """A token-like column (120 categories): eta2 by hand, and the categories of lowest and highest
    mean named at each end (rare ones left out), not 120 mean columns."""
    rng = np.random.default_rng(0)
    names = [f"tok{i:03d}" for i in range(120)]
    codes = np.concatenate([np.repeat(np.arange(120), 6), [0, 119]])  # 6 each; two rare extras below
    shift = codes.astype(float)
    x = np.stack([shift * 3.0 + rng.normal(size=len(codes)), rng.normal(size=len(codes))], axis=1)
    tokens = [names[c] for c in codes]
    tokens[-2:] = ["rare-low", "rare-high"]
    x[-2, 0], x[-1, 0] = -1e3, 1e3
    run = ee.explore(None, x, ["input"], out=tmp_path / "r", metadata={"token": tokens}, progress=False)
    table = run["input"].association("token")
    assert list(table.columns) == ["eta2", "n_categories", "low", "high", "summary"]
    scores = np.asarray(run["input"].scores, dtype=np.float64)
    groups = pd.Series(tokens)
    for c in range(scores.shape[1]):
        s = pd.Series(scores[:, c])
        between = (s.groupby(groups).count() * (s.groupby(groups).mean() - s.mean()) ** 2).sum()
        assert table["eta2"].iloc[c] == pytest.approx(between / ((s - s.mean()) ** 2).sum())
    pc1 = scores[:, 0]
    low_first = "tok000" if pc1[codes == 0][:6].mean() < pc1[codes == 119][:6].mean() else "tok119"
    assert table["low"].iloc[0].startswith(repr(low_first))
    assert "rare" not in table["low"].iloc[0] + table["high"].iloc[0]
    assert table["n_categories"].iloc[0] == 122
