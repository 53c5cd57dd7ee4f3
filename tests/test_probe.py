"""ScoreProbe on any scores: the probing of components, for objects that are not layers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from embedding_explorer.analysis.directions import Direction
from embedding_explorer.analysis.ica import ICAResult
from embedding_explorer.probe import ScoreProbe
from embedding_explorer.run import Layer

N = 50


@dataclass
class FakeRun:
    """What the probe needs of a run: its size, labels and name."""

    n_samples: int
    labels: np.ndarray | None
    name: str = "fake"


class ArrayProbe(ScoreProbe):
    """Probing over a plain array."""

    def __init__(self, scores: np.ndarray, labels: np.ndarray | None = None) -> None:
        self._scores = scores
        self.run = FakeRun(len(scores), labels)  # type: ignore[assignment]

    @property
    def scores(self) -> np.ndarray:
        return self._scores

    def _subject(self) -> str:
        return "the array"


@pytest.fixture
def probe() -> ArrayProbe:
    rng = np.random.default_rng(0)
    scores = rng.integers(-5, 6, size=(N, 2)).astype(np.float32)  # many exact ties
    return ArrayProbe(scores, labels=np.array(["x", "y"])[np.arange(N) % 2])


def test_probing_an_array_against_brute_force(probe: ArrayProbe) -> None:
    s, ids = probe.scores.astype(np.float64), np.arange(N)
    for c in range(2):
        low, high = probe.extremes(c, 7)
        np.testing.assert_array_equal(low, np.lexsort((ids, s[:, c]))[:7])
        np.testing.assert_array_equal(high, np.lexsort((ids, -s[:, c]))[:7])
        order, values = probe.sorted_scores(c)
        np.testing.assert_array_equal(order, np.lexsort((ids, s[:, c])))
        np.testing.assert_array_equal(values, np.sort(s[:, c]))
        assert probe.quantile(c, 0.3) == np.quantile(s[:, c], 0.3)
        target = np.quantile(s[:, c], 0.3)
        chosen = np.lexsort((ids, np.abs(s[:, c] - target)))[:5]
        np.testing.assert_array_equal(
            probe.quantile_samples(c, 0.3, 5), chosen[np.lexsort((chosen, s[chosen, c]))]
        )
        hist = probe.histogram(c, bins=3, by_label=True)
        np.testing.assert_array_equal(hist.counts, np.histogram(s[:, c], bins=hist.edges)[0])
        assert hist.by_label is not None
        np.testing.assert_array_equal(hist.by_label["x"] + hist.by_label["y"], hist.counts)
    np.testing.assert_allclose(probe.percentiles(3), 100 * (s < s[3]).sum(axis=0) / (N - 1))
    assert probe.n_components == 2 and probe.component_names == ["PC1", "PC2"]


def test_errors_name_the_probed_object(probe: ArrayProbe) -> None:
    with pytest.raises(
        IndexError, match=r"component=2 is out of range for the array, which has 2 components"
    ):
        probe.extremes(2)
    with pytest.raises(IndexError, match=r"sample_id=50 is out of range \(0..49\)"):
        probe.percentiles(N)
    with pytest.raises(ValueError, match="has no labels to split the histogram by"):
        ArrayProbe(probe.scores).histogram(0, by_label=True)


def test_layer_direction_and_ica_share_the_probe() -> None:
    for cls in (Layer, Direction, ICAResult):
        assert issubclass(cls, ScoreProbe)
        for method in (
            "extremes",
            "quantile",
            "quantile_samples",
            "percentiles",
            "histogram",
            "sorted_scores",
        ):
            assert getattr(cls, method) is getattr(ScoreProbe, method)
