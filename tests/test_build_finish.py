"""The last stage of explore (build.finish), alone: a ledger and stored rows become a run."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError
from embedding_explorer.build.finish import finish
from embedding_explorer.build.plan import ExplorePlan, plan_explore
from embedding_explorer.extract import Ledger
from embedding_explorer.pca import PCAResult
from embedding_explorer.store.format import staging_path
from embedding_explorer.store.writer import RunWriter


def extracted(plan: ExplorePlan, x: np.ndarray, batch: int = 16) -> tuple[RunWriter, Ledger]:
    """What extraction would leave: ``x`` as the rows of every layer of ``plan``."""
    writer = RunWriter(plan.out, plan.names)
    ledger = Ledger(plan.n_components, plan.max_dense_dim)
    ledger.dims = {name: x.shape[1] for name in plan.names}
    ledger.rows_per_chunk = 32
    writer.layout(ledger.dims, ledger.rows_per_chunk)
    for start in range(0, len(x), batch):
        rows = x[start : start + batch]
        for name in plan.names:
            ledger.accumulate(name, torch.from_numpy(rows), rows)
            writer.append_activations(name, rows)
        ledger.n_done += len(rows)
    writer.finish_activations()
    return writer, ledger


def test_finish_commits_the_pca_scores_samples_and_manifest(run_dir: Path) -> None:
    x = np.random.default_rng(0).normal(size=(90, 6)).astype(np.float32)
    labels = np.arange(90) % 3
    plan = plan_explore(
        None, torch.from_numpy(x), ["input"], out=run_dir, n_components=3, labels=labels,
        metadata={"m": np.arange(90.0)}, progress=False,
    )  # fmt: skip
    writer, ledger = extracted(plan, x)
    manifest = finish(plan, writer, ledger, extract_s=2.0, started=time.perf_counter(), resumed_at=10)
    assert not staging_path(run_dir).exists()
    run = ee.open_run(run_dir)
    assert run.manifest["key"] == plan.key == manifest.key
    assert run.manifest["timings"]["resumed_at"] == 10 and run.manifest["timings"]["samples_per_s"] == 40.0
    assert run.manifest["options"]["rows_per_chunk"] == 32 and run.manifest["layers"][0]["reduce"] is not None
    reference = PCA(n_components=3, svd_solver="full").fit(x.astype(np.float64))
    np.testing.assert_allclose(run["input"].explained_variance, reference.explained_variance_, rtol=1e-9)
    signs = np.sign(np.sum(run["input"].components * reference.components_, axis=1))
    np.testing.assert_allclose(run["input"].scores, reference.transform(x) * signs, atol=1e-5)
    np.testing.assert_array_equal(run.labels, labels)
    assert run.metadata.columns.tolist() == ["m"]
    assert plan.finished_run() == plan.out  # the next call with the same arguments reuses it


def test_finish_uses_the_scorer_it_is_given(run_dir: Path) -> None:
    x = np.random.default_rng(1).normal(size=(40, 4)).astype(np.float32)
    plan = plan_explore(None, torch.from_numpy(x), ["input"], out=run_dir, n_components=2, progress=False)
    writer, ledger = extracted(plan, x)
    scored: list[tuple[str, int]] = []

    def scorer(writer: RunWriter, layer: str, pca: PCAResult, n: int) -> None:
        scored.append((layer, n))
        writer.scores_array(layer, n, len(pca.components))[...] = 0.0

    finish(plan, writer, ledger, extract_s=1.0, started=time.perf_counter(), scorer=scorer)
    assert scored == [("input", 40)]
    np.testing.assert_array_equal(ee.open_run(run_dir)["input"].scores, np.zeros((40, 2)))


def test_finish_refuses_counts_that_do_not_match_and_commits_nothing(run_dir: Path) -> None:
    x = np.random.default_rng(2).normal(size=(30, 4)).astype(np.float32)
    plan = plan_explore(
        None, torch.from_numpy(x), ["input"], out=run_dir, labels=np.arange(30), progress=False
    )
    writer, ledger = extracted(plan, x[:20])  # the data ran short of what the plan expected
    with pytest.raises(EmbeddingExplorerError, match="labels has 30 entries for 20 samples"):
        finish(plan, writer, ledger, extract_s=1.0, started=time.perf_counter())
    writer.abort()
    writer, ledger = extracted(plan, x[:1])
    with pytest.raises(EmbeddingExplorerError, match="data has 1 samples; PCA needs at least 2"):
        finish(plan, writer, ledger, extract_s=1.0, started=time.perf_counter())
    writer.abort()
    assert not run_dir.exists()


def test_layers_scored_side_by_side_equal_one_after_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layers' scores made on the ee-scores threads are bit-equal to those made one layer
    after another, and an error in one layer's scores is raised with nothing committed."""
    import threading

    from embedding_explorer.build import finish as finish_module
    from support import MLP

    x = torch.randn(600, 8, generator=torch.Generator().manual_seed(3))
    layers = ["input", "fc1", "fc2"]
    threads: list[str] = []
    original = finish_module.write_scores

    def recording(writer: RunWriter, layer: str, pca: PCAResult, n: int) -> None:
        threads.append(threading.current_thread().name)
        original(writer, layer, pca, n)

    monkeypatch.setattr(finish_module, "write_scores", recording)
    monkeypatch.setattr(finish_module, "available_cores", lambda: 2)
    model = MLP()
    side_by_side = ee.explore(model, x, layers, out=tmp_path / "two", progress=False)
    assert len(threads) == 3 and all(name.startswith("ee-scores") for name in threads)
    monkeypatch.setattr(finish_module, "available_cores", lambda: 1)
    threads.clear()
    in_turn = ee.explore(model, x, layers, out=tmp_path / "one", progress=False)
    assert threads == [threading.current_thread().name] * 3
    for layer in layers:
        np.testing.assert_array_equal(side_by_side[layer].scores, in_turn[layer].scores)

    def failing(writer: RunWriter, layer: str, pca: PCAResult, n: int) -> None:
        if layer == "fc1":
            raise OSError("disk full while scoring fc1")
        original(writer, layer, pca, n)

    monkeypatch.setattr(finish_module, "write_scores", failing)
    monkeypatch.setattr(finish_module, "available_cores", lambda: 2)
    with pytest.raises(OSError, match="scoring fc1"):
        ee.explore(model, x, layers, out=tmp_path / "failed", progress=False)
    assert not (tmp_path / "failed").exists()
