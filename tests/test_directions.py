"""Custom directions between two groups of samples, checked against a hand computation in numpy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError
from embedding_explorer.analysis.directions import Direction
from embedding_explorer.store import format as store_format

N, D = 600, 6
NAMES = ["cat", "dog", "fox"]


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, D)) * [3.0, 2.0, 1.0, 1.0, 0.5, 0.5] + 10.0  # far from the origin
    x[np.arange(N) % 3 == 2, 4] += 4.0  # class 2 ("fox") sits apart along feature 4
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, data: np.ndarray) -> ee.Run:
    """A run whose activations are stored in 256-row chunks (3 chunks), as a large run's are."""
    out = tmp_path_factory.mktemp("runs") / "dirs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store_format, "CHUNK_BYTES", 1)  # the minimum: 256 rows per chunk
        return ee.explore(
            None,
            data,
            ["input"],
            out=out,
            labels=np.arange(N) % 3,
            label_names=NAMES,
            n_components=4,
            progress=False,
        )


@pytest.fixture(scope="module")
def layer(run: ee.Run) -> ee.Layer:
    return run["input"]


def hand_direction(x: np.ndarray, mean: np.ndarray, a: list[int], b: list[int]) -> tuple[np.ndarray, ...]:
    x64 = x.astype(np.float64)
    diff = x64[b].mean(axis=0) - x64[a].mean(axis=0)
    v = diff / np.sqrt((diff**2).sum())
    scores = (x64 - mean) @ v
    sa, sb = scores[a], scores[b]
    pooled = ((len(a) - 1) * sa.var(ddof=1) + (len(b) - 1) * sb.var(ddof=1)) / (len(a) + len(b) - 2)
    return v, scores, np.array((sb.mean() - sa.mean()) / np.sqrt(pooled))


def test_activations_span_several_chunks(layer: ee.Layer) -> None:
    assert layer.activations.chunks[0] == 256 and layer.activations.shape == (N, D)


def test_direction_against_hand_computation(layer: ee.Layer, data: np.ndarray) -> None:
    a = [5, 17, 300, 301, 599, 17]  # a repeat counts once; groups span all three chunks
    b = [0, 1, 2, 260, 511, 512, 513]
    direction = layer.direction(a, b)
    v, scores, sep = hand_direction(data, layer.mean, sorted(set(a)), b)
    assert isinstance(direction, Direction) and direction.name == "A -> B"
    np.testing.assert_allclose(direction.vector, v, rtol=1e-12, atol=1e-14)
    assert np.linalg.norm(direction.vector) == pytest.approx(1.0, abs=1e-14)
    assert direction.scores.shape == (N, 1) and direction.scores.dtype == np.float32
    np.testing.assert_allclose(direction.scores[:, 0], scores, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(direction.mean_a, data[sorted(set(a))].astype(np.float64).mean(axis=0))
    np.testing.assert_array_equal(direction.group_a, sorted(set(a)))
    np.testing.assert_array_equal(direction.group_b, b)
    assert direction.separation == pytest.approx(float(sep), rel=1e-5)
    # the scores of group b's mean minus group a's mean is the distance between the means
    gap = scores[b].mean() - scores[sorted(set(a))].mean()
    assert gap == pytest.approx(np.linalg.norm(direction.mean_b - direction.mean_a), rel=1e-9)
    np.testing.assert_allclose(direction.project(data[:5]), scores[:5], rtol=1e-12)


def test_direction_is_probed_like_a_component(layer: ee.Layer, data: np.ndarray) -> None:
    direction = layer.direction([0, 3, 6], [1, 4, 7], name="mine")
    s = direction.scores[:, 0].astype(np.float64)
    ids = np.arange(N)
    low, high = direction.extremes(0, 5)
    np.testing.assert_array_equal(low, np.lexsort((ids, s))[:5])
    np.testing.assert_array_equal(high, np.lexsort((ids, -s))[:5])
    hist = direction.histogram(0, bins=4, by_label=True)
    np.testing.assert_array_equal(hist.counts, np.histogram(s, bins=hist.edges)[0])
    assert direction.percentiles(int(low[0]))[0] == 0.0
    assert direction.quantile(0, 0.5) == pytest.approx(np.median(s))
    assert direction.component_names == ["mine"]
    with pytest.raises(
        IndexError, match=r"component=1 is out of range for direction 'mine' of layer 'input'"
    ):
        direction.extremes(1)


def test_label_direction_by_name_and_raw_value(layer: ee.Layer, data: np.ndarray) -> None:
    by_name = layer.label_direction("cat", "fox")
    by_value = layer.label_direction(0, 2)
    ids = np.arange(N)
    v, _, sep = hand_direction(data, layer.mean, list(ids[ids % 3 == 0]), list(ids[ids % 3 == 2]))
    np.testing.assert_allclose(by_name.vector, v, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(by_name.scores, by_value.scores)
    assert by_name.name == by_value.name == "cat -> fox"
    assert by_name.separation == pytest.approx(float(sep), rel=1e-5)
    assert abs(by_name.vector[4]) > 0.9  # the class offset is along feature 4
    assert by_name.separation > 4  # foxes sit about 4 / 0.5 = 8 SD apart along it


def test_direction_reads_group_rows_in_chunk_order_never_the_whole_matrix(
    layer: ee.Layer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = layer.activations
    reads: list[tuple[int, int]] = []

    class Recorder:
        chunks, shape = real.chunks, real.shape

        def __getitem__(self, key: Any) -> Any:
            assert isinstance(key, slice)
            reads.append((key.start, min(key.stop, N)))
            return real[key]

    monkeypatch.setattr(ee.Layer, "activations", property(lambda self: Recorder()))
    direction = layer.direction([520, 10, 11], [12, 530])
    group_reads, score_reads = reads[:2], reads[2:]
    assert group_reads == [(0, 256), (512, 600)]  # only the chunks holding group samples, in order
    assert score_reads == [(0, 256), (256, 512), (512, 600)]
    assert max(stop - start for start, stop in reads) <= 256
    assert direction.scores.shape == (N, 1)


@pytest.mark.parametrize(
    ("group_a", "group_b", "error", "message"),
    [
        ([], [1, 2], EmbeddingExplorerError, "group_a is empty: a direction of layer 'input' needs"),
        ([1], np.array([], dtype=int), EmbeddingExplorerError, "group_b is empty"),
        ([1, 2], [2, 1, 1], EmbeddingExplorerError, "group_a and group_b are the same 2 sample"),
        ([1, N], [2], EmbeddingExplorerError, rf"group_a has sample id {N}, out of range \(0..{N - 1}\)"),
        ([1], [-1, -2], EmbeddingExplorerError, r"group_b has sample id -1, .*\(and 1 more\)"),
        ([0.5], [1], TypeError, "group_a must hold integer sample ids, got dtype float64"),
        (np.ones(N, bool), [1], TypeError, r"group_a is a boolean mask; .*np.flatnonzero"),
        (3, [1], TypeError, "group_a must be a sequence of sample ids"),
        ([[1, 2]], [1], TypeError, "group_a must be a sequence of sample ids"),
    ],
)
def test_bad_groups(layer: ee.Layer, group_a: Any, group_b: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        layer.direction(group_a, group_b)


def test_groups_with_identical_means(tmp_path: Path) -> None:
    x = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 0.0], [5.0, 1.0]], dtype=np.float32)
    layer = ee.explore(None, x, ["input"], out=tmp_path / "same", progress=False)["input"]
    with pytest.raises(EmbeddingExplorerError, match="have the same mean activation on layer 'input'"):
        layer.direction([0], [1])  # different samples, identical rows
    direction = layer.direction([0, 2], [3])  # a single sample on one side: group a's SD is pooled
    s = direction.scores[:, 0].astype(np.float64)
    assert direction.separation == pytest.approx((s[3] - (s[0] + s[2]) / 2) / abs(s[2] - s[0]) * np.sqrt(2))
    assert layer.direction([0, 1], [2]).separation == np.inf  # no spread within either group
    assert np.isnan(layer.direction([0], [3]).separation)  # two single samples: no spread to pool


def test_label_direction_errors(layer: ee.Layer, tmp_path: Path) -> None:
    with pytest.raises(
        EmbeddingExplorerError, match=r"label_b='wolf' is not a label of run .*'cat', 'dog', 'fox'"
    ):
        layer.label_direction("cat", "wolf")
    with pytest.raises(EmbeddingExplorerError, match="label_a='dog' and label_b=1 are the same label"):
        layer.label_direction("dog", 1)
    unlabelled = ee.explore(None, np.eye(3), ["input"], out=tmp_path / "u", progress=False)["input"]
    with pytest.raises(
        EmbeddingExplorerError, match=r"has no labels; use layer.direction\(group_a, group_b\)"
    ):
        unlabelled.label_direction(0, 1)
