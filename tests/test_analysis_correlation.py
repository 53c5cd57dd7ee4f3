"""Correlation of component scores across layers and runs, checked against np.corrcoef."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError
from embedding_explorer.analysis import pc_correlation


def net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 5))


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return torch.randn(200, 6, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, data: torch.Tensor) -> tuple[ee.Run, ee.Run]:
    root = tmp_path_factory.mktemp("corr")
    a = ee.explore(net(0), data, ["0", "2"], out=root / "a", n_components=4, progress=False)
    b = ee.explore(net(1), data, ["1", "2"], out=root / "b", n_components=3, progress=False)
    return a, b


def corrcoef_block(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    full = np.corrcoef(x.astype(np.float64), y.astype(np.float64), rowvar=False)
    return full[: x.shape[1], x.shape[1] :]


def test_same_run_against_corrcoef(runs: tuple[ee.Run, ee.Run]) -> None:
    a, _ = runs
    r = pc_correlation(a["0"], a["2"])
    assert r.shape == (4, 4) and r.dtype == np.float64
    np.testing.assert_allclose(r, corrcoef_block(a["0"].scores, a["2"].scores), atol=1e-12)


def test_layer_with_itself_is_identity(runs: tuple[ee.Run, ee.Run]) -> None:
    a, _ = runs
    np.testing.assert_allclose(pc_correlation(a["0"], a["0"]), np.eye(4), atol=1e-5)  # float32 scores


def test_two_runs_over_the_same_samples(runs: tuple[ee.Run, ee.Run]) -> None:
    a, b = runs
    r = pc_correlation(a["2"], b["1"])
    assert r.shape == (4, 3)
    np.testing.assert_allclose(r, corrcoef_block(a["2"].scores, b["1"].scores), atol=1e-12)


def test_reopened_run_counts_as_the_same(runs: tuple[ee.Run, ee.Run]) -> None:
    a, _ = runs
    again = ee.open_run(a.path)
    np.testing.assert_allclose(pc_correlation(a["0"], again["2"]), pc_correlation(a["0"], a["2"]))


def test_runs_over_different_samples_are_refused(
    runs: tuple[ee.Run, ee.Run], data: torch.Tensor, tmp_path: Path
) -> None:
    a, _ = runs
    fewer = ee.explore(net(0), data[:150], ["2"], out=tmp_path / "fewer", progress=False)
    with pytest.raises(EmbeddingExplorerError, match="different samples: 200 vs 150"):
        pc_correlation(a["2"], fewer["2"])
    shuffled = ee.explore(net(0), data.flip(0), ["2"], out=tmp_path / "shuffled", progress=False)
    with pytest.raises(EmbeddingExplorerError, match="same samples in the same order"):
        pc_correlation(a["2"], shuffled["2"])
