"""The demo pipeline end to end on a 2k subset: train, explore trained and untrained, the data-set
runs (inverted, Animal-MNIST, joint, input space), summarise."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from torch import nn

import embedding_explorer as ee
from embedding_explorer.demos import runner, shifts
from embedding_explorer.demos.animal_mnist import ANIMAL_CLASSES
from embedding_explorer.demos.cnn import DEMO_LAYERS
from embedding_explorer.demos.fashion_mnist import CLASSES, MEAN, STD, find_fashion_mnist
from embedding_explorer.demos.training import train_cnn

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
    trained, untrained = demo_runs[:2]
    assert [trained.name, untrained.name] == [runner.TRAINED, runner.UNTRAINED]
    for run in demo_runs[:2]:
        assert run.layers == list(DEMO_LAYERS)
        assert run.n_samples == 2000
        assert run.label_names == list(CLASSES)
        assert run.rendering_kind == "image/png"
        assert run["input"].dim == 784
        assert run.input_statistics == ["brightness", "contrast", "edge_density"]  # grey images
        assert run.output_columns == ["predicted", "confidence", "entropy", "loss", "correct"]
        assert list(run.metadata.columns) == ["ink", *run.input_statistics, *run.output_columns]
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

    trained, untrained = demo_runs[:2]
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


# ---- the data-set runs -----------------------------------------------------------------------------
def test_demo_builds_the_dataset_runs(demo_runs: list[ee.Run]) -> None:
    trained = demo_runs[0]
    inverted, animals, joint, input_space = demo_runs[2:]
    assert [run.name for run in demo_runs[2:]] == list(shifts.DATASET_RUNS)
    assert [run.path.name for run in demo_runs[2:]] == [shifts.FOLDERS[name] for name in shifts.DATASET_RUNS]
    assert inverted.n_samples == animals.n_samples == input_space.n_samples == 2000
    assert inverted.label_names == list(CLASSES) and animals.label_names == list(ANIMAL_CLASSES)
    assert np.bincount(np.asarray(animals.labels)).tolist() == [200] * 10  # class-balanced subset
    # the inverted images are the test images' negatives, pixel for pixel (normalised the same way)
    x, x_inv = trained["input"].activations[:50], inverted["input"].activations[:50]
    np.testing.assert_allclose(x * STD + MEAN + x_inv * STD + MEAN, 1.0, atol=1e-5)
    np.testing.assert_allclose(
        inverted.metadata["brightness"], 1.0 - trained.metadata["brightness"], atol=1e-12
    )
    # the input-space run needs no model and equals the CNN run's input layer
    assert input_space.manifest["model"]["fingerprint"] == "none" and input_space.layers == ["input"]
    np.testing.assert_allclose(input_space["input"].scores, trained["input"].scores, atol=1e-4)
    assert joint.n_samples == 4000 and joint.rendering(2000) == animals.rendering(0)
    assert set(np.asarray(joint.labels).tolist()) == {runner.TRAINED, shifts.ANIMALS}


def test_inverting_shifts_block1_along_brightness(demo_runs: list[ee.Run]) -> None:
    """Inverted images are brighter on average (0.71 vs 0.29): block1's brightness component
    moves up by several standard deviations, the layer's largest shift in score units."""
    trained, inverted = demo_runs[0], demo_runs[2]
    r = trained["block1"].association("brightness")["r"]
    brightness_pc = str(r.abs().idxmax())
    assert abs(r[brightness_pc]) > 0.8
    shift = ee.compare_datasets(trained, inverted).shift("block1")
    assert shift["wasserstein"].idxmax() == brightness_pc
    assert shift["wasserstein"].max() > 5 * shift["wasserstein"].drop(brightness_pc).max()
    row = shift.loc[brightness_pc]
    assert np.sign(row["smd"]) == np.sign(r[brightness_pc]) and abs(row["smd"]) > 2.0 and row["ks"] > 0.8
    assert shift["smd"].abs().max() > 2.0


def test_animals_separate_from_garments_in_the_joint_run(demo_runs: list[ee.Run]) -> None:
    joint = demo_runs[4]
    best = max(joint[name].association()["eta2"].max() for name in joint.layers)
    assert best > 0.2
    summary = runner.describe_demo(demo_runs)
    assert shifts.INVERTED in summary and "smd" in summary and "accuracy" in summary
    assert "the CNN calls them" in summary and shifts.JOINT in summary


def test_the_demo_shows_insights(demo_runs: list[ee.Run]) -> None:
    """The trained CNN's findings name brightness in block1, the inverted images' shift and the
    untrained CNN's CKA; the recorded outputs agree with the model's accuracy."""
    trained, untrained, inverted = demo_runs[:3]
    table = trained.insights(compare=[untrained, inverted])
    kinds = set(table["kind"])
    assert {"input_statistic", "class_emergence", "dataset_shift", "model_comparison"} <= kinds
    block1 = table[(table.kind == "input_statistic") & (table.layer == "block1")]
    assert not block1.empty and block1.iloc[0].column in ("brightness", "contrast", "edge_density")
    assert 0.5 < trained.metadata["correct"].mean() <= 1.0  # one epoch on 2k images
    text = runner.describe_demo(demo_runs)
    assert f"Insights for {trained.name}" in text and table["sentence"].iloc[0] in text
