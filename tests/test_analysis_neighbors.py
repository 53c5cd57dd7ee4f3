"""Nearest neighbours in a layer against scikit-learn's brute force, streamed in small chunks,
and the k-NN overlap of neighbourhoods between layers and between models, by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors
from tests.support import MLP
from torch.utils.data import TensorDataset

import embedding_explorer as ee
from embedding_explorer.analysis import neighbors as nb


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[ee.Run, ee.Run]:
    """Two models (seeds 0 and 1) over the same 150 samples."""
    x = torch.randn(150, 8, generator=torch.Generator().manual_seed(5))
    out = tmp_path_factory.mktemp("nn")
    made = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        made.append(
            ee.explore(
                MLP(),
                TensorDataset(x),
                ["fc1", "fc2"],
                out=out / f"m{seed}",
                name=f"m{seed}",
                n_components=3,
                progress=False,
            )
        )
    return made[0], made[1]


def sklearn_neighbors(x: np.ndarray, i: int, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """k nearest of sample i but i itself, by scikit-learn's exact brute force."""
    found = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric=metric).fit(x)
    d, ids = found.kneighbors(x[i : i + 1])
    keep = ids[0] != i
    return ids[0][keep][:k], d[0][keep][:k]


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("sample", [0, 77, 149])
def test_neighbors_equal_sklearn_brute_force_across_chunks(
    runs: tuple[ee.Run, ee.Run], metric: str, sample: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nb, "CHUNK_BYTES", 8 * 16 * 7)  # 7 rows of 16 at a time: 22 chunks
    layer = runs[0]["fc1"]
    x = np.asarray(layer.activations[...], dtype=np.float64)
    ids, dist = layer.neighbors(sample, k=10, metric=metric)  # type: ignore[arg-type]
    want_ids, want_dist = sklearn_neighbors(x, sample, 10, metric)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-9, atol=1e-12)
    assert (ids == want_ids).all()
    assert sample not in ids and list(dist) == sorted(dist)


def test_score_neighbours_search_the_pca_scores(runs: tuple[ee.Run, ee.Run]) -> None:
    layer = runs[0]["fc2"]
    ids, dist = layer.neighbors(3, k=5, metric="euclidean", space="scores")
    want_ids, want_dist = sklearn_neighbors(layer.scores.astype(np.float64), 3, 5, "euclidean")
    assert (ids == want_ids).all()
    np.testing.assert_allclose(dist, want_dist, rtol=1e-9)


def test_ties_go_to_the_lower_id_and_zero_vectors_are_at_cosine_distance_one() -> None:
    block = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    d = nb.distances(block, np.array([3.0, 0.0]), "cosine")
    np.testing.assert_allclose(d, [1.0, 0.0, 0.0, 1.0])
    from embedding_explorer.probe import smallest

    assert list(smallest(d, 3)) == [1, 2, 0]


def test_overlap_is_the_shared_share_by_hand(runs: tuple[ee.Run, ee.Run]) -> None:
    assert ee.knn_overlap([1, 2, 3, 4], [4, 3, 9, 8]) == 0.5
    with pytest.raises(ValueError, match="one length k"):
        ee.knn_overlap([1, 2], [1])
    a, b = runs
    table = ee.neighbor_overlap(a, b, 10, k=6)
    assert list(table.index) == ["fc1", "fc2"] and list(table.columns) == ["fc1", "fc2"]
    for la in a.layers:
        for lb in b.layers:
            na, nb_ = set(a[la].neighbors(10, 6)[0]), set(b[lb].neighbors(10, 6)[0])
            assert table.loc[la, lb] == len(na & nb_) / 6
    within = ee.neighbor_overlap(a, None, 10, k=6)
    assert np.allclose(np.diag(within.to_numpy()), 1.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"sample_id": 150}, IndexError, r"sample_id=150 is out of range for run 'm0' \(0..149\)"),
        ({"sample_id": 0, "k": 150}, ValueError, r"k=150 must be at most 149"),
        ({"sample_id": 0, "k": 0}, ValueError, r"k=0 must be a positive integer"),
        (
            {"sample_id": 0, "metric": "manhattan"},
            ValueError,
            r"metric='manhattan' must be one of cosine, euclidean",
        ),
        (
            {"sample_id": 0, "space": "pixels"},
            ValueError,
            r"space='pixels' must be one of activations, scores",
        ),
    ],
)
def test_bad_arguments_are_named(
    runs: tuple[ee.Run, ee.Run], kwargs: dict, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        runs[0]["fc1"].neighbors(**kwargs)
