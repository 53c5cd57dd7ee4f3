"""Two models over the same samples: CKA table, component correlation, matched components."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError, LayerNotFoundError
from embedding_explorer.analysis import ModelComparison, cka, compare_models

D = 6
PERM = np.array([2, 0, 5, 1, 4, 3])  # output j of model b carries run a's component PERM[j] ...
SIGNS = np.array([1.0, -1.0, -1.0, 1.0, 1.0, -1.0])  # ... with this sign ...
TARGET_VAR = np.array([2.0, 6.0, 1.0, 3.0, 0.5, 4.5])  # ... and this variance


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return torch.randn(400, 8, generator=torch.Generator().manual_seed(0)) * torch.linspace(0.5, 2.0, 8)


@pytest.fixture(scope="module")
def base(data: torch.Tensor) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, D))


@pytest.fixture(scope="module")
def run_a(tmp_path_factory: pytest.TempPathFactory, data: torch.Tensor, base: nn.Sequential) -> ee.Run:
    out = tmp_path_factory.mktemp("compare") / "a"
    return ee.explore(base, data, ["0"], out=out, n_components=D, progress=False)


@pytest.fixture(scope="module")
def run_b(
    tmp_path_factory: pytest.TempPathFactory, data: torch.Tensor, base: nn.Sequential, run_a: ee.Run
) -> ee.Run:
    """``base`` followed by a linear map onto run a's component scores, permuted, sign-flipped
    and rescaled, so that run b's components are run a's in another order and with other signs."""
    layer = run_a["0"]
    scale = np.sqrt(TARGET_VAR / layer.explained_variance[PERM])
    weight = (SIGNS * scale)[:, None] * layer.components[PERM]
    head = nn.Linear(D, D)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weight))
        head.bias.copy_(torch.as_tensor(-weight @ layer.mean))
    model = nn.Sequential(base, head)
    out = tmp_path_factory.mktemp("compare") / "b"
    return ee.explore(model, data, ["0", "1"], out=out, n_components=D, progress=False)


@pytest.fixture(scope="module")
def comparison(run_a: ee.Run, run_b: ee.Run) -> ModelComparison:
    return compare_models(run_a, run_b)


def test_matched_components_recover_the_permutation_and_signs(comparison: ModelComparison) -> None:
    table = comparison.matched_components("0", "1")
    assert list(table.columns) == ["component_a", "component_b", "r", "sign", "ratio_a", "ratio_b", "pair"]
    # run b's component i is its output column with the i-th largest variance
    column_of_b = np.argsort(-TARGET_VAR)
    expected_a = PERM[column_of_b]
    by_b = table.set_index("component_b").sort_index()
    np.testing.assert_array_equal(by_b["component_a"], expected_a)
    np.testing.assert_array_equal(by_b["sign"], SIGNS[column_of_b].astype(int))
    np.testing.assert_allclose(table["r"], 1.0, atol=1e-5)
    np.testing.assert_array_equal(table["component_a"], np.arange(D))  # in run a's order
    a, b = comparison.run_a["0"], comparison.run_b["1"]
    np.testing.assert_allclose(table["ratio_a"], a.explained_variance_ratio)
    np.testing.assert_allclose(table["ratio_b"], b.explained_variance_ratio[table["component_b"]])
    row = table.iloc[PERM[column_of_b[0]]]  # the one matched to run b's PC1
    assert row["pair"] == f"PC{row['component_a'] + 1} ~ {'-' if row['sign'] < 0 else '+'}PC1"


def test_matching_the_same_layer_is_the_identity(comparison: ModelComparison) -> None:
    table = comparison.matched_components("0", "0")  # run b's layer "0" is run a's layer "0"
    np.testing.assert_array_equal(table["component_b"], np.arange(D))
    np.testing.assert_array_equal(table["sign"], 1)


def test_pc_correlation(comparison: ModelComparison) -> None:
    r = comparison.pc_correlation("0", "1")
    assert r.shape == (D, D)
    np.testing.assert_allclose(np.abs(r).max(axis=0), 1.0, atol=1e-5)
    expected = np.corrcoef(comparison.run_a["0"].scores, comparison.run_b["1"].scores, rowvar=False)[:D, D:]
    np.testing.assert_allclose(r, expected, atol=1e-10)


def test_cka_table(comparison: ModelComparison, run_a: ee.Run, run_b: ee.Run) -> None:
    table = comparison.cka
    assert table is comparison.cka  # computed once
    assert list(table.index) == ["0"] and list(table.columns) == ["0", "1"]
    assert table.loc["0", "0"] == pytest.approx(1.0, abs=1e-9)
    assert table.loc["0", "1"] == pytest.approx(cka(run_a["0"], run_b["1"]), rel=1e-10)
    assert table.loc["0", "1"] < 0.99  # an anisotropic linear map changes CKA


def test_debiased_cka_table(run_a: ee.Run, run_b: ee.Run) -> None:
    table = compare_models(run_a, run_b, debiased=True).cka
    assert table.loc["0", "1"] == pytest.approx(cka(run_a["0"], run_b["1"], debiased=True), rel=1e-10)


def test_unknown_layers(comparison: ModelComparison) -> None:
    with pytest.raises(LayerNotFoundError, match="has no layer 'fc'"):
        comparison.pc_correlation("fc", "1")
    with pytest.raises(LayerNotFoundError, match="has no layer '2'"):
        comparison.matched_components("0", "2")


def test_runs_over_different_samples_are_refused(
    run_a: ee.Run, base: nn.Sequential, data: torch.Tensor, tmp_path: Path
) -> None:
    other = ee.explore(base, data[:300], ["0"], out=tmp_path / "fewer", progress=False)
    with pytest.raises(EmbeddingExplorerError, match="different samples: 400 vs 300"):
        compare_models(run_a, other)
    reordered = ee.explore(base, data.roll(1, 0), ["0"], out=tmp_path / "rolled", progress=False)
    with pytest.raises(EmbeddingExplorerError, match="same samples in the same order"):
        compare_models(run_a, reordered)
