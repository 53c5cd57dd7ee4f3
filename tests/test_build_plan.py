"""The first stage of explore (build.plan): arguments checked and keys computed, no forward pass."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError, Reducer
from embedding_explorer.build.plan import ExplorePlan, plan_explore
from embedding_explorer.extract import ExtractOptions
from support import MLP


def test_a_plan_is_frozen_and_runs_nothing(run_dir: Path, xy: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = MLP()
    plan = plan_explore(model, xy[0], ["fc1", "input"], out=run_dir, n_components=4, batch_size=32)
    assert isinstance(plan, ExplorePlan) and model.calls == 0 and not run_dir.exists()
    assert plan.names == ["fc1", "input"] and plan.n_known == 120 and plan.aligned
    assert plan.reducers["input"] == Reducer("flatten")  # the model input is flattened by default
    assert plan.out.local == run_dir and plan.name == "mlp" and plan.device == torch.device("cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.key = "another"  # type: ignore[misc]
    assert "tensor" not in repr(plan) and plan.key in repr(plan)  # the data stays out of its repr


def test_keys_follow_the_arguments(run_dir: Path, xy: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = MLP()
    plan = plan_explore(model, xy[0], ["fc1"], out=run_dir)
    same = plan_explore(model, xy[0].clone(), ["fc1"], out=run_dir, progress=False)
    assert (plan.key, plan.resume_key) == (same.key, same.resume_key)
    other = [
        plan_explore(model, xy[0], ["fc1"], out=run_dir, n_components=3),
        plan_explore(model, xy[0] + 1, ["fc1"], out=run_dir),
        plan_explore(model, xy[0], ["fc1"], out=run_dir, labels=np.arange(120)),
        plan_explore(model, xy[0], ["fc1"], out=run_dir, storage_dtype="float16"),
    ]
    assert len({plan.key, *(p.key for p in other)}) == 5
    rebatched = plan_explore(model, xy[0], ["fc1"], out=run_dir, batch_size=7)
    assert rebatched.key == plan.key and rebatched.resume_key != plan.resume_key  # checkpoints differ
    one_pass = plan_explore(model, iter([xy[0][:60], xy[0][60:]]), ["fc1"], out=run_dir)
    assert one_pass.data_fingerprint is None and one_pass.resume_key is None


def test_bad_arguments_are_refused_before_any_work(
    run_dir: Path, xy: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x = xy[0]
    with pytest.raises(ValueError, match="batch_size=0 must be a positive integer"):
        plan_explore(MLP(), x, ["fc1"], out=run_dir, batch_size=0)
    with pytest.raises(ValueError, match="storage_dtype='int8'"):
        plan_explore(MLP(), x, ["fc1"], out=run_dir, storage_dtype="int8")
    with pytest.raises(EmbeddingExplorerError, match="labels has 3 entries for 120 samples"):
        plan_explore(MLP(), x, ["fc1"], out=run_dir, labels=[0, 1, 2])
    with pytest.raises(EmbeddingExplorerError, match="metadata columns \\['label'\\] are reserved"):
        plan_explore(MLP(), x, ["fc1"], out=run_dir, metadata={"label": np.arange(120)})
    with pytest.raises(EmbeddingExplorerError, match="data has 1 samples; PCA needs at least 2"):
        plan_explore(MLP(), x[:1], ["fc1"], out=run_dir)
    with pytest.raises(EmbeddingExplorerError, match="data must be indexable"):
        plan_explore(MLP(), iter([x]), ["fc1"], out=run_dir, client=object())  # type: ignore[arg-type]
    assert not run_dir.exists()


def test_labels_and_metadata_are_checked_against_pyarrow_in_the_plan(
    run_dir: Path, xy: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x = xy[0]
    with pytest.raises(EmbeddingExplorerError, match=r"metadata column 'kind'.*row 2 holds 'b' \(str\)"):
        plan_explore(MLP(), x, ["fc1"], out=run_dir, metadata={"kind": [1, 2, "b"] + [3] * 117})
    with pytest.raises(
        EmbeddingExplorerError, match=r"labels .*row 1 holds 3 \(int\) after dict"
    ):  # one-pass data too
        plan_explore(MLP(), iter([x]), ["fc1"], out=run_dir, labels=[{"a": 1}, 3] * 60)
    # what pyarrow stores is accepted: ints with floats and missing values, strings with None,
    # booleans, timestamps, categories, mixed labels turned into strings by numpy
    fine = {
        "number": [1, 2.5, None] * 40,
        "text": ["a", None, "c"] * 40,
        "flag": [True, False, True] * 40,
        "when": pd.date_range("2024-01-01", periods=120),
        "group": pd.Categorical(["x", "y", "z"] * 40),
    }
    plan = plan_explore(MLP(), x, ["fc1"], out=run_dir, metadata=fine, labels=[1, "a", 2.5] * 40)
    assert plan.metadata is not None and list(plan.metadata.columns) == list(fine)
    assert not run_dir.exists()


def test_extract_options_are_the_plans_and_keyword_only(
    run_dir: Path, xy: tuple[torch.Tensor, torch.Tensor]
) -> None:
    plan = plan_explore(MLP(), xy[0], ["fc1"], out=run_dir, n_components=3, batch_size=40, progress=False)
    opts = plan.extract_options()
    assert (opts.batch_size, opts.n_components, opts.n_known, opts.aligned) == (40, 3, 120, True)
    assert opts.renderer is plan.renderer and list(opts.refs) == list(plan.refs)
    with pytest.raises(TypeError):
        ExtractOptions(plan.refs, plan.reducers, plan.renderer, 40, 3, 8192)  # type: ignore[misc]


def test_finished_run_only_when_the_keys_match(run_dir: Path, xy: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = MLP()
    plan = plan_explore(model, xy[0], ["fc1"], out=run_dir, progress=False)
    assert plan.finished_run() is None
    ee.explore(model, xy[0], ["fc1"], out=run_dir, progress=False)
    assert plan.finished_run() == plan.out
    assert plan_explore(model, xy[0], ["fc1"], out=run_dir, recompute=True).finished_run() is None
    assert plan_explore(model, xy[0], ["fc1"], out=run_dir, n_components=2).finished_run() is None
