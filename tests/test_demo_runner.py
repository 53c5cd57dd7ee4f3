"""The demo pipeline end to end on a 2k subset: train, explore trained and untrained, summarise."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from torch import nn

import embedding_explorer as ee
from embedding_explorer.demos import runner
from embedding_explorer.demos.fashion_mnist import CLASSES, DEMO_LAYERS, find_fashion_mnist, train_cnn

try:
    find_fashion_mnist(download=False)
except FileNotFoundError:  # pragma: no cover - the test command installs the data set
    pytest.skip(
        "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)", allow_module_level=True
    )

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_model() -> nn.Module:
    model, _ = train_cnn(limit=2000, epochs=1, progress=False)
    return model


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory, trained_model: nn.Module) -> list[ee.Run]:
    out = tmp_path_factory.mktemp("demo")
    return runner.build_demo_runs(out, limit=2000, progress=False, model=trained_model)


def test_demo_builds_trained_and_untrained_runs(demo_runs: list[ee.Run]) -> None:
    trained, untrained = demo_runs
    assert [trained.name, untrained.name] == [runner.TRAINED, runner.UNTRAINED]
    for run in demo_runs:
        assert run.layers == list(DEMO_LAYERS)
        assert run.n_samples == 2000
        assert run.label_names == list(CLASSES)
        assert run.rendering_kind == "image/png"
        assert run["input"].dim == 784
        assert list(run.metadata.columns) == ["brightness", "ink"]
        assert run["fc2"].dim == 10
        for layer in run:
            ratio = layer.explained_variance_ratio
            assert np.all(np.diff(ratio) <= 1e-12) and 0 < ratio.sum() <= 1 + 1e-9
    # same test images, in the same order, in both runs
    assert trained.manifest["data"]["content_hash"] == untrained.manifest["data"]["content_hash"]
    assert np.array_equal(trained["input"].scores, untrained["input"].scores)


def test_trained_logits_separate_classes_better_than_untrained(demo_runs: list[ee.Run]) -> None:
    """Even a briefly trained network's logits are organised by class, far more than at init."""

    def eta_squared(run: ee.Run) -> float:
        """Share of PC1-3 score variance explained by the class (correlation ratio), by hand."""
        labels = np.asarray(run.labels)
        scores = run["fc2"].scores[:, :3].astype(np.float64)
        between = sum(
            (labels == c).sum() * (scores[labels == c].mean(0) - scores.mean(0)) ** 2 for c in range(10)
        )
        return float(between.sum() / ((scores - scores.mean(0)) ** 2).sum())

    trained, untrained = demo_runs
    print(f"eta2 trained {eta_squared(trained):.2f}, untrained {eta_squared(untrained):.2f}")
    assert eta_squared(trained) > 0.5
    assert eta_squared(trained) > eta_squared(untrained) + 0.2


def test_summary_names_labels_at_extremes(demo_runs: list[ee.Run]) -> None:
    trained = demo_runs[0]
    summaries = runner.extreme_labels(trained["fc2"], 0, n=10)
    labels = np.asarray(trained.labels)
    for summary, ids in zip(summaries, trained["fc2"].extremes(0, 10), strict=True):
        top_name, top_count = Counter(CLASSES[i] for i in labels[ids]).most_common(1)[0]
        assert summary.startswith(f"{top_count}/10 {top_name}")
    text = runner.describe_run(trained)
    assert "fc2" in text and "PC1" in text and "low:" in text and "high:" in text


def test_second_build_reuses_the_runs(demo_runs: list[ee.Run], trained_model: nn.Module) -> None:
    out = demo_runs[0].path.parent
    again = runner.build_demo_runs(out, limit=2000, progress=False, model=trained_model)
    assert [run.manifest["key"] for run in again] == [run.manifest["key"] for run in demo_runs]
    # reused, not recomputed: the manifests are the very same files
    assert [run.manifest["created"] for run in again] == [run.manifest["created"] for run in demo_runs]
    assert [run.manifest["timings"] for run in again] == [run.manifest["timings"] for run in demo_runs]


def test_pixel_metadata_tracks_the_input_space_components(demo_runs: list[ee.Run]) -> None:
    """PCA of the raw images: PC1 follows brightness, as the seed describes for early layers."""
    trained = demo_runs[0]
    table = trained["input"].association("brightness")
    images = trained["input"].activations[:]  # normalised pixels, same order as the metadata
    expected = np.corrcoef(trained["input"].scores[:, 0], trained.metadata["brightness"])[0, 1]
    assert table["r"].iloc[0] == pytest.approx(expected, abs=1e-9)
    assert abs(table["r"].iloc[0]) > 0.8
    assert images.shape == (2000, 784)
