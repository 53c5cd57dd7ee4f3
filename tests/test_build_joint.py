"""The joint run (build.joint): one PCA over two finished runs' stored activations, as a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError
from embedding_explorer.analysis import compare_datasets
from embedding_explorer.build.joint import clash_renames, joint_run
from support import lock_held_at_open


def test_joint_renderings_are_both_sets(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    a = ee.explore(None, torch.from_numpy(rng.random((30, 1, 8, 8), dtype=np.float32)), ["input"],
                   out=tmp_path / "a", name="a", progress=False)  # fmt: skip
    b = ee.explore(None, torch.from_numpy(rng.random((20, 1, 8, 8), dtype=np.float32)), ["input"],
                   out=tmp_path / "b", name="b", progress=False)  # fmt: skip
    joint = compare_datasets(a, b).joint(tmp_path / "j", name="both", n_components=3)
    assert joint.rendering_kind == "image/png" and joint.name == "both"
    assert [joint[name].n_components for name in joint.layers] == [3]
    assert all(joint.rendering(i) == a.rendering(i) for i in range(30))
    assert all(joint.rendering(30 + i) == b.rendering(i) for i in range(20))
    assert joint.samples["class"].isna().all()  # neither run had labels
    with pytest.raises(EmbeddingExplorerError, match="is one of the compared runs"):
        compare_datasets(a, b).joint(tmp_path / "a")


def test_joint_metadata_names_never_clash(tmp_path: Path) -> None:
    """``class`` is renamed ``class_source`` when free, else ``class_source2``..., never a duplicate."""
    x = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    a = ee.explore(
        None, x, ["input"], out=tmp_path / "a", labels=np.arange(30) % 2, progress=False,
        metadata={"class": np.arange(30), "class_source": np.arange(30) * 2, "source_id": -np.arange(30)},
    )  # fmt: skip
    b = ee.explore(
        None, x[:20] + 1, ["input"], out=tmp_path / "b", metadata={"class": np.arange(20)}, progress=False
    )
    joint = compare_datasets(a, b).joint()
    columns = list(joint.samples.columns)
    assert len(set(columns)) == len(columns)
    assert columns[:4] == ["sample_id", "label", "class", "source_id"]
    samples = joint.samples
    np.testing.assert_array_equal(samples["class_source"].to_numpy()[:30], np.arange(30) * 2)
    np.testing.assert_array_equal(samples["class_source2"].to_numpy(), np.r_[np.arange(30), np.arange(20)])
    np.testing.assert_array_equal(samples["source_id_source"].to_numpy()[:30], -np.arange(30))
    np.testing.assert_array_equal(samples["source_id"].to_numpy(), np.r_[np.arange(30), np.arange(20)])


def test_joint_run_is_built_through_the_one_manifest_schema_and_scores_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("embedding_explorer.store.format.SCORE_CHUNK_BYTES", 4 * 2 * 16)  # 16-row chunks
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(40, 4)), rng.normal(size=(25, 4)) + 2
    a = ee.explore(None, torch.from_numpy(x), ["input"], out=tmp_path / "a", progress=False)
    b = ee.explore(None, torch.from_numpy(y), ["input"], out=tmp_path / "b", progress=False)
    joint = joint_run(a, b, ["input"], out=tmp_path / "j", n_components=2)
    stacked = np.vstack([x, y]).astype(np.float32).astype(np.float64)
    reference = PCA(n_components=2, svd_solver="full").fit(stacked)
    signs = np.sign(np.sum(joint["input"].components * reference.components_, axis=1))
    np.testing.assert_allclose(joint["input"].scores, reference.transform(stacked) * signs, atol=1e-5)
    assert sorted(joint.manifest) == sorted([*a.manifest, "joint"])
    assert joint.manifest["data"]["type"] == "joint"
    assert sorted(joint.manifest["layers"][0]) == sorted(a.manifest["layers"][0])
    assert joint.manifest["layers"][0]["reduce"] == a.manifest["layers"][0]["reduce"]


def test_clash_renames() -> None:
    assert clash_renames(["m", "class", "class_source", "source_id"]) == {
        "class": "class_source2",
        "source_id": "source_id_source",
    }


def test_a_joint_run_being_written_by_another_writer_is_refused_untouched(tmp_path: Path) -> None:
    """The joint run takes the same one-writer lock as ``explore``: a second writer is refused
    naming the holder (or gives up after ``wait`` seconds), and writes nothing."""
    from embedding_explorer import RunLockedError
    from embedding_explorer.store.lock import run_lock

    rng = np.random.default_rng(6)
    a = ee.explore(
        None, torch.from_numpy(rng.normal(size=(20, 3))), ["input"], out=tmp_path / "a", progress=False
    )
    b = ee.explore(
        None, torch.from_numpy(rng.normal(size=(10, 3))), ["input"], out=tmp_path / "b", progress=False
    )
    out = tmp_path / "j"
    with run_lock(out):
        with pytest.raises(RunLockedError, match=r"process \d+"):
            joint_run(a, b, ["input"], out=out)
        with pytest.raises(RunLockedError, match=r"after waiting 0\.2 s"):
            compare_datasets(a, b).joint(out, wait=0.2)
        assert not out.exists()
    assert joint_run(a, b, ["input"], out=out, n_components=2).n_samples == 30


def test_the_joint_run_built_is_opened_under_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer waiting for the lock cannot commit another run before joint_run opens its own."""
    rng = np.random.default_rng(7)
    a = ee.explore(
        None, torch.from_numpy(rng.normal(size=(20, 3))), ["input"], out=tmp_path / "a", progress=False
    )
    b = ee.explore(
        None, torch.from_numpy(rng.normal(size=(10, 3))), ["input"], out=tmp_path / "b", progress=False
    )
    held = lock_held_at_open(monkeypatch)
    joint = joint_run(a, b, ["input"], out=tmp_path / "j", n_components=2)
    assert held == [True] and joint.n_samples == 30
