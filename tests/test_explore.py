"""explore end to end: what it computes, when it reuses, how it fails, what a fresh process sees."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.decomposition import PCA
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import embedding_explorer as ee
from embedding_explorer import (
    DataOrderError,
    EmbeddingExplorerError,
    ImageRender,
    IncompleteRunError,
    LayerNotFoundError,
    LayerOutputError,
    NonFiniteActivationError,
    Reducer,
    ZeroVarianceWarning,
)
from embedding_explorer.store.format import staging_path
from support import MLP, SmallCNN, TinyTransformer, leftovers, lock_held_at_open, token_batches


def check_layer_against_sklearn(layer: ee.Layer, n_components: int = 10) -> None:
    """The stored PCA is exact on the stored activations, with scikit-learn's signs."""
    acts = np.asarray(layer.activations[:], dtype=np.float64)
    assert acts.shape == (layer.run.n_samples, layer.dim)
    k = min(n_components, acts.shape[0] - 1, acts.shape[1])
    assert layer.components.shape == (k, layer.dim)
    reference = PCA(n_components=k, svd_solver="full").fit(acts)
    np.testing.assert_allclose(layer.mean, acts.mean(axis=0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(layer.explained_variance_ratio, reference.explained_variance_ratio_, atol=1e-6)
    np.testing.assert_allclose(layer.explained_variance, reference.explained_variance_, rtol=1e-6, atol=1e-9)
    assert layer.total_variance == pytest.approx(acts.var(axis=0, ddof=1).sum(), rel=1e-9)
    ev = reference.explained_variance_
    for i in range(k):  # directions are only defined where eigenvalues are apart
        gaps = [abs(ev[i] - ev[j]) for j in (i - 1, i + 1) if 0 <= j < len(ev)]
        if min(gaps) > 1e-3 * ev[0]:
            dot = float(layer.components[i] @ reference.components_[i])
            assert dot > 0.9999, (layer.name, i, dot)
    expected_scores = (acts - layer.mean) @ layer.components.T
    np.testing.assert_allclose(
        layer.scores, expected_scores, rtol=1e-5, atol=1e-5 * np.abs(expected_scores).max()
    )


# ---- what explore computes ---------------------------------------------------------------------
def test_cnn_on_xy_dataset(explore_quiet, images) -> None:
    x, y = images
    model = SmallCNN()
    run = explore_quiet(model, TensorDataset(x, y), ["conv1", "relu", "conv2", "fc", "input"], batch_size=16)
    assert run.layers == ["conv1", "relu", "conv2", "fc", "input"]
    assert run.n_samples == 60
    np.testing.assert_array_equal(run.labels, y.numpy())
    assert model.calls == 4  # 60 samples in batches of 16
    with torch.no_grad():
        h1 = model.conv1(x)
        h2 = model.conv2(torch.relu(h1))
        manual = {
            "conv1": h1.mean(dim=(2, 3)),
            "relu": torch.relu(h1).mean(dim=(2, 3)),
            "conv2": h2.mean(dim=(2, 3)),
            "fc": model.fc(h2.mean(dim=(2, 3))),
            "input": x.reshape(60, -1),
        }
    for name, expected in manual.items():
        np.testing.assert_allclose(run[name].activations[:], expected.numpy(), rtol=1e-5, atol=1e-6)
        check_layer_against_sklearn(run[name])
    assert [run[n].dim for n in run.layers] == [4, 4, 6, 3, 64]


def test_input_layer_is_pca_of_the_flattened_data(explore_quiet, images) -> None:
    x, _ = images
    run = explore_quiet(SmallCNN(), x, ["input"], n_components=5)
    reference = PCA(n_components=5, svd_solver="full").fit(x.reshape(60, -1).double().numpy())
    layer = run["input"]
    np.testing.assert_allclose(layer.explained_variance_ratio, reference.explained_variance_ratio_, atol=1e-6)
    assert np.all(np.sum(layer.components * reference.components_, axis=1) > 0.9999)
    np.testing.assert_allclose(
        layer.scores, reference.transform(x.reshape(60, -1).double().numpy()), rtol=1e-4, atol=1e-5
    )
    assert run.labels is None


def test_model_none_captures_the_input(explore_quiet, xy) -> None:
    x, y = xy
    run = explore_quiet(None, TensorDataset(x, y), ["input"], n_components=3)
    assert run.name == "input"
    np.testing.assert_array_equal(run.labels, y.numpy())
    reference = PCA(n_components=3, svd_solver="full").fit(x.double().numpy())
    np.testing.assert_allclose(
        run["input"].explained_variance_ratio, reference.explained_variance_ratio_, atol=1e-6
    )
    check_layer_against_sklearn(run["input"], 3)


def test_mlp_layers_and_component_cap(explore_quiet, xy) -> None:
    x, y = xy
    model = MLP()
    run = explore_quiet(model, TensorDataset(x, y), ["fc1", "act", "fc2"], n_components=10)
    assert run["fc2"].n_components == 5  # capped at D = 5
    assert run["fc1"].n_components == 10
    with torch.no_grad():
        np.testing.assert_allclose(run["fc2"].activations[:], model(x).numpy(), rtol=1e-5, atol=1e-6)
    for name in run.layers:
        check_layer_against_sklearn(run[name])


def test_transformer_with_dict_batches_and_mask_aware_mean(explore_quiet, tokens) -> None:
    model = TinyTransformer()
    run = explore_quiet(model, tokens, ["embed", "block", "block.proj"], n_components=4)
    assert run.n_samples == 30 and model.calls == 3
    assert run.labels is None
    with torch.no_grad():
        ids = torch.cat([b["input_ids"] for b in tokens])
        mask = torch.cat([b["attention_mask"] for b in tokens]).float()
        emb = model.embed(ids)
        hidden, _ = model.block(emb, mask)
    # mask-aware mean by hand: padded tokens count for nothing
    expected_block = np.stack([hidden[i, : int(mask[i].sum())].mean(dim=0).numpy() for i in range(30)])
    expected_embed = np.stack([emb[i, : int(mask[i].sum())].mean(dim=0).numpy() for i in range(30)])
    assert (mask == 0).any()  # some padding exists
    np.testing.assert_allclose(run["block"].activations[:], expected_block, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run["embed"].activations[:], expected_embed, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run["block.proj"].activations[:], expected_block, rtol=1e-5, atol=1e-6)
    unmasked = hidden.mean(dim=1).numpy()
    assert not np.allclose(run["block"].activations[:], unmasked, atol=1e-3)
    for name in run.layers:
        check_layer_against_sklearn(run[name], 4)


def test_dict_batch_labels_and_per_layer_reducers(explore_quiet) -> None:
    batches = token_batches(n_batches=2, batch=8)
    for i, b in enumerate(batches):
        b["labels"] = torch.arange(8) + 10 * i  # taken out: the model has no labels argument
    model = TinyTransformer()
    run = explore_quiet(model, batches, ["block", "embed"], reduce={"block": Reducer("last", select=1)})
    np.testing.assert_array_equal(run.labels, np.r_[np.arange(8), np.arange(10, 18)])
    with torch.no_grad():
        ids = torch.cat([b["input_ids"] for b in batches])
        mask = torch.cat([b["attention_mask"] for b in batches])
        _, attn = model.block(model.embed(ids), mask)
    last = mask.sum(dim=1) - 1
    expected = attn[torch.arange(16), last]  # attention row of each sample's last real token
    np.testing.assert_allclose(run["block"].activations[:], expected.numpy(), rtol=1e-5, atol=1e-6)
    assert run["block"].info["reduce"] == "last[1]"


def test_wide_layers_use_randomized_svd(explore_quiet) -> None:
    g = torch.Generator().manual_seed(6)
    basis = torch.linalg.qr(torch.randn(48, 4, generator=g))[0]
    x = (torch.randn(150, 4, generator=g) * torch.tensor([9.0, 6.0, 4.0, 2.0])) @ basis.T
    x = x + 0.05 * torch.randn(150, 48, generator=g)
    run = explore_quiet(None, x, ["input"], n_components=4, max_dense_dim=16, batch_size=32)
    layer = run["input"]
    assert layer.pca_method == "randomized_svd"
    assert run.manifest["layers"][0]["pca_method"] == "randomized_svd"
    acts = np.asarray(layer.activations[:], dtype=np.float64)
    reference = PCA(n_components=4, svd_solver="full").fit(acts)
    assert np.all(np.sum(layer.components * reference.components_, axis=1) > 0.999)
    np.testing.assert_allclose(layer.explained_variance_ratio, reference.explained_variance_ratio_, atol=1e-4)
    assert layer.total_variance == pytest.approx(acts.var(axis=0, ddof=1).sum(), rel=1e-9)
    np.testing.assert_allclose(layer.scores, (acts - layer.mean) @ layer.components.T, rtol=1e-5, atol=1e-4)
    assert explore_quiet(None, x, ["input"], n_components=4)["input"].pca_method == "covariance_eigh"


def test_a_run_smaller_than_a_chunk_stores_its_rows_not_a_whole_chunk(explore_quiet, tmp_path) -> None:
    """1,000 samples of a 512-wide layer: one chunk of 1,000 rows, not the 4,096 of a 512-wide
    chunk (nor 1,024, whole batches of 64), so the stored file holds 1,000 rows; one batch larger
    than the run does not make the chunk taller either; data of unknown length keeps the full
    chunk height."""
    x = torch.randn(1000, 512, generator=torch.Generator().manual_seed(11))
    run = explore_quiet(None, x, ["input"], batch_size=64, n_components=3)
    assert run.manifest["options"]["rows_per_chunk"] == 1000
    assert run["input"].activations.chunks == (1000, 512)
    chunk = run.path / "arrays.zarr" / "activations" / run.manifest["layers"][0]["key"] / "c" / "0" / "0"
    assert chunk.stat().st_size == 1000 * 512 * 4
    np.testing.assert_array_equal(run["input"].activations[:], x.numpy())
    one_batch = explore_quiet(None, x[:100], ["input"], out=tmp_path / "b", batch_size=4096, n_components=3)
    assert one_batch.manifest["options"]["rows_per_chunk"] == 100
    np.testing.assert_array_equal(one_batch["input"].activations[:], x[:100].numpy())
    unsized = explore_quiet(None, (b for b in x.split(64)), ["input"], out=tmp_path / "u", n_components=3)
    assert unsized.manifest["options"]["rows_per_chunk"] == 4096
    variances = run["input"].explained_variance
    np.testing.assert_allclose(unsized["input"].explained_variance, variances, rtol=1e-10)


def test_default_out_is_runs_slash_name(tmp_path, monkeypatch, xy) -> None:
    monkeypatch.chdir(tmp_path)
    run = ee.explore(MLP(), xy[0], ["fc1"], progress=False)
    assert run.path == (Path("runs") / "mlp").resolve()
    assert (tmp_path / "runs" / "mlp" / "manifest.json").exists()
    named = ee.explore(MLP(), xy[0], ["fc1"], name="mine", progress=False)
    assert named.path == (Path("runs") / "mine").resolve() and named.name == "mine"


# ---- reuse and invalidation --------------------------------------------------------------------
def test_same_arguments_reuse_without_running_the_model(explore_quiet, xy_dataset) -> None:
    model = MLP()
    first = explore_quiet(model, xy_dataset, ["fc1", "fc2"], batch_size=50)
    assert model.calls == 3
    manifest_mtime = (first.path / "manifest.json").stat().st_mtime_ns
    again = explore_quiet(model, xy_dataset, ["fc1", "fc2"], batch_size=50)
    assert model.calls == 3  # not run again
    assert (again.path / "manifest.json").stat().st_mtime_ns == manifest_mtime
    np.testing.assert_array_equal(again["fc1"].scores, first["fc1"].scores)
    first_scores = first["fc1"].scores
    forced = explore_quiet(model, xy_dataset, ["fc1", "fc2"], batch_size=50, recompute=True)
    assert model.calls == 6
    np.testing.assert_allclose(forced["fc1"].scores, first_scores)
    with pytest.raises(ee.RunReplacedError, match="was replaced"):  # a new commit, a new generation
        _ = first["fc1"].scores


def test_changed_weight_recomputes(explore_quiet, xy_dataset) -> None:
    model = MLP()
    before = explore_quiet(model, xy_dataset, ["fc2"])["fc2"].mean.copy()
    with torch.no_grad():
        model.fc2.bias[0] += 1.0
    after = explore_quiet(model, xy_dataset, ["fc2"])
    assert model.calls == 2
    assert after["fc2"].mean[0] == pytest.approx(before[0] + 1.0, abs=1e-5)


def test_changed_data_recomputes(explore_quiet, xy) -> None:
    x, y = xy
    model = MLP()
    before = explore_quiet(model, TensorDataset(x, y), ["input"], n_components=2)["input"].mean.copy()
    x2 = x.clone()
    x2[5, 0] += 12.0  # one value in the middle of the data
    after = explore_quiet(model, TensorDataset(x2, y), ["input"], n_components=2)
    assert after["input"].mean[0] == pytest.approx(before[0] + 12.0 / 120, abs=1e-5)
    np.testing.assert_array_equal(after["input"].activations[5], x2[5].numpy())


def test_changed_options_recompute(explore_quiet, xy_dataset) -> None:
    model = MLP()
    run = explore_quiet(model, xy_dataset, ["fc1"], n_components=4)
    assert run["fc1"].n_components == 4 and model.calls == 1
    run = explore_quiet(model, xy_dataset, ["fc1"], n_components=3)
    assert run["fc1"].n_components == 3 and model.calls == 2
    run = explore_quiet(model, xy_dataset, ["fc1", "fc2"], n_components=3)
    assert run.layers == ["fc1", "fc2"] and model.calls == 3
    run = explore_quiet(model, xy_dataset, ["fc1", "fc2"], n_components=3, labels=np.arange(120) % 2)
    assert model.calls == 4
    np.testing.assert_array_equal(run.labels, np.arange(120) % 2)
    run = explore_quiet(model, xy_dataset, ["fc1", "fc2"], n_components=3, labels=np.arange(120) % 5)
    assert model.calls == 5
    np.testing.assert_array_equal(run.labels, np.arange(120) % 5)
    run = explore_quiet(model, xy_dataset, ["fc1", "fc2"], n_components=3, labels=np.arange(120) % 5)
    assert model.calls == 5  # and the same again is reused
    run = explore_quiet(model, xy_dataset, ["fc1", "fc2"], n_components=3, reduce="flatten")
    assert model.calls == 6


def test_changed_metadata_column_name_recomputes(explore_quiet, xy) -> None:
    model = MLP()
    explore_quiet(model, xy[0], ["fc1"], metadata={"a": range(120)})
    run = explore_quiet(model, xy[0], ["fc1"], metadata={"b": range(120)})  # same values, new name
    assert model.calls == 2
    assert list(run.metadata.columns) == ["b", *run.output_columns]  # then what the model predicted


def test_changed_texts_recompute(explore_quiet, tokens) -> None:
    model = TinyTransformer()
    explore_quiet(model, tokens, ["block"], render=[f"old {i}" for i in range(30)])
    run = explore_quiet(model, tokens, ["block"], render=[f"new {i}" for i in range(30)])
    assert model.calls == 6
    assert run.rendering(4) == b"new 4"


def test_one_pass_iterables_are_never_reused(explore_quiet, xy) -> None:
    model = MLP()
    explore_quiet(model, (b for b in xy[0].split(40)), ["fc1"])
    explore_quiet(model, (b for b in xy[0].split(40)), ["fc1"])
    assert model.calls == 6


# ---- bad input: a clear error and nothing half-written -----------------------------------------
class Boxed(nn.Module):
    def forward(self, x: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(value=x)


class BoxedModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.box = Boxed()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.box(x).value


def with_bad_value(value: float) -> torch.Tensor:
    x = torch.randn(120, 8)
    x[50 + 37, 3] = value  # sample 37 of the second batch of 50
    return x


def one_sample():
    yield torch.randn(1, 8)


def bad_calls(run_dir: Path):
    ds = TensorDataset(torch.randn(120, 8), torch.zeros(120))
    return {
        "unknown layer": (
            lambda: ee.explore(MLP(), ds, ["fc_1"], out=run_dir),
            LayerNotFoundError,
            "closest names: fc1",
        ),
        "shuffling loader": (
            lambda: ee.explore(MLP(), DataLoader(ds, shuffle=True), ["fc1"], out=run_dir),
            DataOrderError,
            "shuffle=False",
        ),
        "non-tensor output": (
            lambda: ee.explore(BoxedModel(), torch.randn(10, 3), ["box"], out=run_dir),
            LayerOutputError,
            "layer 'box' returned SimpleNamespace, not a tensor",
        ),
        "nan": (
            lambda: ee.explore(MLP(), with_bad_value(float("nan")), ["fc1"], out=run_dir, batch_size=50),
            NonFiniteActivationError,
            "layer 'fc1' produced NaN for sample 87",
        ),
        "inf": (
            lambda: ee.explore(None, with_bad_value(float("inf")), ["input"], out=run_dir, batch_size=50),
            NonFiniteActivationError,
            "layer 'input' produced Inf for sample 87",
        ),
        "one sample": (
            lambda: ee.explore(MLP(), torch.randn(1, 8), ["fc1"], out=run_dir),
            EmbeddingExplorerError,
            "data has 1 samples; PCA needs at least 2",
        ),
        "one sample, unknown length": (
            lambda: ee.explore(MLP(), one_sample(), ["fc1"], out=run_dir),
            EmbeddingExplorerError,
            "data has 1 samples; PCA needs at least 2",
        ),
        "empty tensor": (
            lambda: ee.explore(MLP(), torch.empty(0, 8), ["fc1"], out=run_dir),
            EmbeddingExplorerError,
            "data has 0 samples",
        ),
        "empty list": (
            lambda: ee.explore(MLP(), [], ["fc1"], out=run_dir),
            EmbeddingExplorerError,
            "data has 0 samples",
        ),
        "labels length": (
            lambda: ee.explore(MLP(), ds, ["fc1"], out=run_dir, labels=[0] * 119),
            EmbeddingExplorerError,
            "labels has 119 entries for 120 samples",
        ),
        "labels length, unknown data length": (
            lambda: ee.explore(
                MLP(), iter(torch.randn(120, 8).split(50)), ["fc1"], out=run_dir, labels=[0] * 121
            ),
            EmbeddingExplorerError,
            "labels has 121 entries for 120 samples",
        ),
        "metadata length": (
            lambda: ee.explore(MLP(), ds, ["fc1"], out=run_dir, metadata={"a": range(119)}),
            EmbeddingExplorerError,
            "metadata has 119 rows for 120 samples",
        ),
        "metadata length, unknown data length": (
            lambda: ee.explore(
                MLP(), iter(torch.randn(120, 8).split(50)), ["fc1"], out=run_dir, metadata={"a": range(7)}
            ),
            EmbeddingExplorerError,
            "metadata has 7 rows for 120 samples",
        ),
        "reserved metadata column": (
            lambda: ee.explore(MLP(), ds, ["fc1"], out=run_dir, metadata={"label": range(120)}),
            EmbeddingExplorerError,
            r"metadata columns \['label'\] are reserved",
        ),
        "texts length": (
            lambda: ee.explore(MLP(), ds, ["fc1"], out=run_dir, render=["a"] * 3),
            EmbeddingExplorerError,
            "render has 3 texts for 120 samples",
        ),
        "texts length, unknown data length": (
            lambda: ee.explore(
                MLP(), iter(torch.randn(120, 8).split(50)), ["fc1"], out=run_dir, render=["a"] * 121
            ),
            EmbeddingExplorerError,
            "render has 121 texts for 120 samples",
        ),
        "labels in some batches only": (
            lambda: ee.explore(
                MLP(), [(torch.randn(4, 8), torch.zeros(4)), torch.randn(4, 8)], ["fc1"], out=run_dir
            ),
            EmbeddingExplorerError,
            "some batches carry labels and others do not",
        ),
        "n_components": (
            lambda: ee.explore(MLP(), ds, ["fc1"], out=run_dir, n_components=0),
            ValueError,
            "n_components=0 must be a positive integer",
        ),
    }


BAD_CASES = sorted(bad_calls(Path("unused")))


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_fails_clearly_and_writes_nothing(run_dir: Path, case: str) -> None:
    call, error, message = bad_calls(run_dir)[case]
    with pytest.raises(error, match=message):
        call()
    assert leftovers(run_dir) == []
    with pytest.raises(FileNotFoundError, match="no run at"):
        ee.open_run(run_dir)


@pytest.mark.parametrize("case", ["nan", "shuffling loader", "labels length, unknown data length"])
def test_bad_input_keeps_the_previous_run(run_dir: Path, case: str) -> None:
    previous = ee.explore(None, torch.randn(20, 4), ["input"], out=run_dir, progress=False)
    scores = previous["input"].scores.copy()
    call, error, message = bad_calls(run_dir)[case]
    with pytest.raises(error, match=message):
        call()
    assert leftovers(run_dir) == ["r"]
    np.testing.assert_array_equal(ee.open_run(run_dir)["input"].scores, scores)


class Constant(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 3), 0.1)


class WithConstantLayer(MLP):
    def __init__(self) -> None:
        super().__init__()
        self.const = Constant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.const(x).sum()


def test_zero_variance_layer_warns_and_has_zero_ratios(explore_quiet, xy) -> None:
    with pytest.warns(ZeroVarianceWarning, match="layer 'const' has zero variance"):
        run = explore_quiet(WithConstantLayer(), xy[0], ["fc1", "const"], batch_size=32)
    layer = run["const"]
    assert layer.total_variance == 0.0
    np.testing.assert_array_equal(layer.explained_variance_ratio, np.zeros(3))
    np.testing.assert_array_equal(layer.scores, np.zeros((120, 3)))
    assert not np.isnan(layer.components).any()
    assert run.manifest["layers"][1]["zero_variance"] is True
    check_layer_against_sklearn(run["fc1"])


def test_zero_variance_warning_points_at_the_callers_line(run_dir, xy) -> None:
    with pytest.warns(ZeroVarianceWarning) as record:
        ee.explore(WithConstantLayer(), xy[0], ["const"], out=run_dir, progress=False)
    assert record[0].filename == __file__
    assert "ee.explore(WithConstantLayer()" in Path(__file__).read_text().splitlines()[record[0].lineno - 1]


# ---- atomic commit -----------------------------------------------------------------------------
def test_crash_while_writing_scores_leaves_no_run(explore_quiet, run_dir, xy, monkeypatch) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("embedding_explorer.build.finish.write_scores", crash)
    with pytest.raises(OSError, match="disk full"):
        explore_quiet(MLP(), xy[0], ["fc1"])
    assert leftovers(run_dir) == []
    with pytest.raises(FileNotFoundError):
        ee.open_run(run_dir)


class InterruptedAt3(MLP):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calls == 2:  # the third batch
            raise KeyboardInterrupt
        return super().forward(x)


def test_interrupt_keeps_the_previous_finished_run(explore_quiet, run_dir, xy) -> None:
    previous = explore_quiet(MLP(), xy[0], ["fc1"], batch_size=20)
    scores = previous["fc1"].scores.copy()
    model = InterruptedAt3()
    with pytest.raises(KeyboardInterrupt):
        explore_quiet(model, xy[0], ["fc1"], batch_size=20)
    assert model.calls == 2
    assert leftovers(run_dir) == ["r"]
    reopened = ee.open_run(run_dir)
    np.testing.assert_array_equal(reopened["fc1"].scores, scores)
    check_layer_against_sklearn(reopened["fc1"])


def test_killed_process_leaves_an_incomplete_run(explore_quiet, run_dir, xy, monkeypatch) -> None:
    # a killed process never gets to clean up: the staging folder stays, with no manifest
    monkeypatch.setattr("embedding_explorer.store.writer.RunWriter.abort", lambda self: None)
    with pytest.raises(KeyboardInterrupt):
        explore_quiet(InterruptedAt3(), xy[0], ["fc1"], batch_size=20)
    assert staging_path(run_dir).exists()
    assert not (staging_path(run_dir) / "manifest.json").exists()
    with pytest.raises(IncompleteRunError, match="its extraction did not finish"):
        ee.open_run(run_dir)
    monkeypatch.undo()
    run = explore_quiet(MLP(), xy[0], ["fc1"])  # the next explore starts clean
    assert leftovers(run_dir) == ["r"]
    assert run.n_samples == 120


# ---- a fresh process ---------------------------------------------------------------------------
def test_fresh_process_opens_the_same_numbers(explore_quiet, run_dir, images, tmp_path) -> None:
    x, y = images
    run = explore_quiet(SmallCNN(), TensorDataset(x, y), ["conv1", "fc"], metadata={"i": np.arange(60) * 2})
    saved = tmp_path / "saved"
    saved.mkdir()
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        import numpy as np
        import embedding_explorer as ee

        run, out = ee.open_run(sys.argv[1]), Path(sys.argv[2])
        np.save(out / "labels.npy", run.labels)
        np.save(out / "meta.npy", run.metadata["i"].to_numpy())
        np.save(out / "png.npy", np.frombuffer(run.rendering(7), dtype=np.uint8))
        for name in run.layers:
            layer = run[name]
            for attr in ("mean", "components", "explained_variance_ratio", "scores"):
                np.save(out / f"{name}.{attr}.npy", getattr(layer, attr))
            np.save(out / f"{name}.activations.npy", layer.activations[:])
        """
    )
    subprocess.run([sys.executable, "-c", script, str(run_dir), str(saved)], check=True, timeout=120)
    np.testing.assert_array_equal(np.load(saved / "labels.npy"), y.numpy())
    np.testing.assert_array_equal(np.load(saved / "meta.npy"), np.arange(60) * 2)
    assert np.load(saved / "png.npy").tobytes() == run.rendering(7)
    for name in ("conv1", "fc"):
        for attr in ("mean", "components", "explained_variance_ratio", "scores"):
            np.testing.assert_array_equal(np.load(saved / f"{name}.{attr}.npy"), getattr(run[name], attr))
        np.testing.assert_array_equal(np.load(saved / f"{name}.activations.npy"), run[name].activations[:])


# ---- sample table and renderings ---------------------------------------------------------------
def test_metadata_round_trips(explore_quiet, xy) -> None:
    x, y = xy
    meta = pd.DataFrame(
        {
            "colour": np.array(["red", "green", "blue"])[np.arange(120) % 3],
            "size": np.linspace(0.0, 1.0, 120),
            "flag": np.arange(120) % 2 == 0,
            7: np.arange(120),  # a non-string column name becomes a string
        },
        index=np.arange(120) + 1000,  # the index is not data
    )
    run = explore_quiet(MLP(), TensorDataset(x, y), ["fc1"], metadata=meta)
    recorded = run.output_columns  # the MLP's class scores, recorded after the metadata
    assert list(run.samples.columns) == ["sample_id", "label", "colour", "size", "flag", "7", *recorded]
    assert list(run.metadata.columns) == ["colour", "size", "flag", "7", *recorded]
    np.testing.assert_array_equal(run.samples["sample_id"], np.arange(120))
    np.testing.assert_array_equal(run.samples["label"], y.numpy())
    for column in ("colour", "size", "flag"):
        np.testing.assert_array_equal(run.metadata[column].to_numpy(), meta[column].to_numpy())
    np.testing.assert_array_equal(run.metadata["7"].to_numpy(), np.arange(120))
    assert run.manifest["metadata_columns"] == ["colour", "size", "flag", "7"]


def test_metadata_as_dict_of_columns(explore_quiet, xy) -> None:
    run = explore_quiet(None, xy[0], ["input"], metadata={"source": ["a", "b"] * 60})
    assert run.metadata["source"].tolist() == ["a", "b"] * 60


class Named(TensorDataset):
    classes: ClassVar[list[str]] = ["cat", "dog", "bird"]


def test_label_names_from_dataset_classes(explore_quiet, xy) -> None:
    x, y = xy
    run = explore_quiet(MLP(), DataLoader(Named(x, y), batch_size=40), ["fc1"])
    assert run.label_names == ["cat", "dog", "bird"]
    assert run.label_name(1) == "dog"
    assert run.label_name(np.int64(2)) == "bird"
    assert run.label_name(7) == "7"
    explicit = explore_quiet(MLP(), Named(x, y), ["fc1"], label_names=["a", "b", "c"])
    assert explicit.label_names == ["a", "b", "c"]


def decode(png: bytes | None) -> Image.Image:
    assert png is not None and png.startswith(b"\x89PNG")
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_images_become_pngs(explore_quiet, images) -> None:
    x, y = images
    run = explore_quiet(SmallCNN(), TensorDataset(x, y), ["fc"])
    assert run.rendering_kind == "image/png"
    for i in (0, 33, 59):
        image = decode(run.rendering(i))
        assert image.size == (8, 8) and image.mode == "L"
        expected = np.rint(x[i, 0].numpy() * 255).astype(int)
        np.testing.assert_array_equal(np.asarray(image, dtype=int), expected)


def test_image_render_undoes_normalisation(explore_quiet) -> None:
    g = torch.Generator().manual_seed(4)
    raw = torch.rand(6, 3, 10, 12, generator=g)  # non-square, RGB
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    normalised = (raw - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    run = explore_quiet(None, normalised, ["input"], render=ImageRender(mean=mean, std=std))
    image = decode(run.rendering(2))
    assert image.size == (12, 10) and image.mode == "RGB"  # (width, height)
    r, g_, b = image.getpixel((5, 3))  # column 5, row 3
    assert (r, g_, b) == tuple(round(float(raw[2, c, 3, 5]) * 255) for c in range(3))
    np.testing.assert_array_equal(
        np.asarray(image, dtype=int), np.rint(raw[2].permute(1, 2, 0).numpy() * 255).astype(int)
    )


def test_grey_image_render_with_scalar_mean_std(explore_quiet) -> None:
    raw = torch.rand(4, 1, 9, 9)
    run = explore_quiet(None, (raw - 0.5) / 0.25, ["input"], render=ImageRender(mean=0.5, std=0.25))
    image = decode(run.rendering(1))
    assert image.getpixel((4, 2)) == round(float(raw[1, 0, 2, 4]) * 255)


def test_large_images_become_thumbnails(explore_quiet) -> None:
    raw = torch.rand(3, 1, 100, 200)
    run = explore_quiet(None, raw, ["input"], n_components=2, render="image")
    assert decode(run.rendering(0)).size == (128, 64)


def test_texts_round_trip(explore_quiet, tokens) -> None:
    texts = [f"sample {i}: naïve café ✓" for i in range(30)]
    run = explore_quiet(TinyTransformer(), tokens, ["block"], render=texts)
    assert run.rendering_kind == "text/plain"
    assert [run.rendering(i).decode() for i in range(30)] == texts


def test_no_rendering_for_plain_vectors(explore_quiet, xy) -> None:
    run = explore_quiet(MLP(), xy[0], ["fc1"])
    assert run.rendering_kind is None
    assert run.rendering(0) is None


@pytest.mark.parametrize("kind", ["list", "tuple", "ndarray", "series"])
def test_texts_as_any_sequence(explore_quiet, xy, kind: str) -> None:
    texts = [f"row {i}" for i in range(120)]
    given = {"list": texts, "tuple": tuple(texts), "ndarray": np.array(texts), "series": pd.Series(texts)}[
        kind
    ]
    run = explore_quiet(MLP(), xy[0], ["fc1"], render=given)
    assert run.rendering(119) == b"row 119"


def test_callable_render_on_tensor_and_dict_batches(explore_quiet, xy, tokens) -> None:
    x, _ = xy
    run = explore_quiet(MLP(), x, ["fc1"], render=lambda row: f"{float(row[0]):.3f}")
    assert run.rendering_kind == "text/plain"
    assert run.rendering(17).decode() == f"{float(x[17, 0]):.3f}"

    # dict batches: the callable gets one sample's dict of model arguments
    def real_tokens(sample: dict[str, torch.Tensor]) -> str:
        return " ".join(str(int(t)) for t in sample["input_ids"][sample["attention_mask"].bool()])

    run = explore_quiet(TinyTransformer(), tokens, ["block"], render=real_tokens)
    ids, mask = tokens[1]["input_ids"][3], tokens[1]["attention_mask"][3]
    assert run.rendering(13).decode() == " ".join(str(int(t)) for t in ids[mask.bool()])


def test_callable_render_returning_images(explore_quiet, xy) -> None:
    def draw(row: torch.Tensor) -> Image.Image:
        return Image.new("RGB", (20, 10), (int(row[0] > 0) * 255, 0, 0))

    run = explore_quiet(MLP(), xy[0], ["fc1"], render=draw)
    assert run.rendering_kind == "image/png"
    image = decode(run.rendering(3))
    assert image.size == (20, 10)
    assert image.getpixel((0, 0)) == (255 if xy[0][3, 0] > 0 else 0, 0, 0)


# ---- regressions found in review -----------------------------------------------------------
def test_a_folder_with_someone_elses_manifest_is_never_replaced(tmp_path: Path) -> None:
    app = tmp_path / "webapp"
    app.mkdir()
    (app / "manifest.json").write_text('{"name": "my pwa"}')
    (app / "index.html").write_text("<html></html>")
    with pytest.raises(EmbeddingExplorerError, match="is not a run directory"):
        ee.explore(None, torch.randn(10, 3), ["input"], out=app, progress=False)
    assert (app / "index.html").read_text() == "<html></html>"


def test_loader_batching_model_architecture_and_name_are_part_of_the_reuse_key(tmp_path: Path) -> None:
    ds = torch.utils.data.TensorDataset(torch.randn(20, 4))
    out = tmp_path / "r"
    keep_all = ee.explore(None, DataLoader(ds, batch_size=8), ["input"], out=out, progress=False)
    dropped = ee.explore(
        None, DataLoader(ds, batch_size=8, drop_last=True), ["input"], out=out, progress=False
    )
    assert (keep_all.n_samples, dropped.n_samples) == (20, 16)
    torch.manual_seed(0)
    relu = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    tanh = nn.Sequential(nn.Linear(4, 3), nn.Tanh())
    tanh[0].load_state_dict(relu[0].state_dict())
    x = torch.randn(30, 4)
    a = ee.explore(relu, x, ["1"], out=tmp_path / "m", progress=False)
    b = ee.explore(tanh, x, ["1"], out=tmp_path / "m", progress=False)
    assert a.manifest["key"] != b.manifest["key"]
    assert np.all(b["1"].activations[:] >= -1) and np.any(b["1"].activations[:] < 0)
    renamed = ee.explore(tanh, x, ["1"], out=tmp_path / "m", name="second", progress=False)
    assert renamed.name == "second"


def test_the_input_layer_is_captured_before_an_in_place_model_changes_it(tmp_path: Path) -> None:
    model = nn.Sequential(nn.ReLU(inplace=True), nn.Linear(5, 2))
    x = torch.randn(16, 5)
    expected = x.clone()
    run = ee.explore(model, x.clone(), ["input", "1"], out=tmp_path / "r", progress=False)
    np.testing.assert_array_equal(run["input"].activations[:], expected.numpy())


def test_float64_numpy_data_runs_through_a_float32_model(tmp_path: Path) -> None:
    model = nn.Linear(4, 3)
    x = np.random.default_rng(0).normal(size=(12, 4))  # numpy's default float64
    net = nn.Sequential(model)
    run = ee.explore(net, x, ["0"], out=tmp_path / "r", progress=False)
    with torch.no_grad():
        expected = model(torch.from_numpy(x).float()).numpy()
    np.testing.assert_allclose(run["0"].activations[:], expected, rtol=1e-6, atol=1e-6)


def test_layers_given_short_names_hook_their_modules(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randn(30, 4)
    run = ee.explore(model, x, {"hidden": "1", "logits": "2"}, out=tmp_path / "r", progress=False)
    assert run.layers == ["hidden", "logits"]
    assert [info["module"] for info in run.manifest["layers"]] == ["1", "2"]
    with torch.no_grad():
        np.testing.assert_allclose(run["logits"].activations[:], model(x).numpy(), rtol=1e-6, atol=1e-6)
    # the same shown name on another module is another run, never a stale reuse
    moved = ee.explore(model, x, {"hidden": "0", "logits": "2"}, out=tmp_path / "r", progress=False)
    assert moved.manifest["key"] != run.manifest["key"]
    with torch.no_grad():
        np.testing.assert_allclose(moved["hidden"].activations[:], model[0](x).numpy(), rtol=1e-6, atol=1e-6)


# ---- where a run lives ---------------------------------------------------------------------------
def test_out_as_a_file_url(tmp_path: Path, xy) -> None:
    folder = tmp_path / "with space" / "run"
    run = ee.explore(MLP(), xy, ["fc1"], out=folder.as_uri(), progress=False)
    assert run.path == folder.resolve() and (folder / "manifest.json").exists()
    assert ee.open_run(folder.as_uri()).n_samples == 120
    # other fsspec URLs are written in place (tests/test_locations.py); an unknown one is refused
    with pytest.raises(EmbeddingExplorerError, match="cannot open 'nosuch://bucket/run' with fsspec"):
        ee.explore(MLP(), xy, ["fc1"], out="nosuch://bucket/run", progress=False)


def test_model_as_a_factory(run_dir: Path, xy) -> None:
    def factory() -> MLP:
        torch.manual_seed(3)
        return MLP()

    run = ee.explore(factory, xy, ["fc1"], out=run_dir, progress=False)
    assert run.name == "mlp"
    np.testing.assert_allclose(run["fc1"].activations[:], factory().fc1(xy[0]).detach().numpy(), rtol=1e-6)
    with pytest.raises(TypeError, match="returned int"):
        ee.explore(lambda: 3, xy, ["fc1"], out=run_dir, progress=False)


def test_model_from_a_state_dict_file(tmp_path: Path, xy) -> None:
    model = MLP()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    run = ee.explore(
        ee.from_state_dict(MLP, tmp_path / "w.pt"), xy, ["fc1"], out=tmp_path / "a", progress=False
    )
    np.testing.assert_allclose(run["fc1"].activations[:], model.fc1(xy[0]).detach().numpy(), rtol=1e-6)
    with pytest.raises(ee.SpecError, match=r"is a path to weights, not a model: .*ee.from_state_dict"):
        ee.explore(str(tmp_path / "w.pt"), xy, ["fc1"], out=tmp_path / "b", progress=False)


def test_the_run_explore_built_is_opened_under_its_lock(
    run_dir: Path, xy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer waiting for the lock cannot commit another run before explore opens its own."""
    held = lock_held_at_open(monkeypatch)
    run = ee.explore(MLP(), xy, ["fc1"], out=run_dir, n_components=3, progress=False)
    assert held == [True] and run["fc1"].n_components == 3


def test_a_run_with_a_torn_manifest_is_rebuilt(run_dir: Path, xy) -> None:
    """A damaged manifest says to rebuild with recompute=True, and that rebuild replaces the folder."""
    ee.explore(MLP(), xy, ["fc1"], out=run_dir, n_components=3, progress=False)
    manifest = run_dir / "manifest.json"
    manifest.write_text(manifest.read_text()[:200])
    with pytest.raises(ee.ManifestError, match=r"not valid JSON.*explore\(\.\.\., recompute=True\)"):
        ee.open_run(run_dir)
    run = ee.explore(MLP(), xy, ["fc1"], out=run_dir, n_components=3, progress=False, recompute=True)
    run.verify()
    assert ee.open_run(run_dir).generation == run.generation and run["fc1"].n_components == 3


def test_a_folder_with_run_files_and_someone_elses_manifest_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "other"
    (out / "arrays.zarr").mkdir(parents=True)
    (out / "arrays.zarr" / "zarr.json").write_text("{}")
    (out / "samples.parquet").write_bytes(b"PAR1")
    (out / "manifest.json").write_text('{"name": "not ours"}')
    with pytest.raises(EmbeddingExplorerError, match="is not a run directory"):
        ee.explore(None, torch.randn(10, 3), ["input"], out=out, progress=False, recompute=True)
    assert (out / "manifest.json").read_text() == '{"name": "not ours"}'
