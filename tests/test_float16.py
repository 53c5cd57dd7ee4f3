"""float16 storage of activations: half the disk, statistics still from the float32 rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError
from support import MLP, leftovers


def test_float16_storage_keeps_float32_statistics(
    tmp_path: Path, xy: tuple[torch.Tensor, torch.Tensor]
) -> None:
    model = MLP()
    half = ee.explore(model, xy, ["fc1"], out=tmp_path / "h", storage_dtype="float16", progress=False)
    full = ee.explore(model, xy, ["fc1"], out=tmp_path / "f", progress=False)
    assert half["fc1"].activations.dtype == np.float16 and full["fc1"].activations.dtype == np.float32
    assert half.manifest["options"]["storage_dtype"] == "float16"
    assert full.manifest["options"]["storage_dtype"] == "float32"
    exact = model.fc1(xy[0]).detach().numpy().astype(np.float64)
    np.testing.assert_array_equal(half["fc1"].activations[:], exact.astype(np.float32).astype(np.float16))
    # the PCA is that of the float32 rows, not of their float16 rounding
    reference = PCA(n_components=10, svd_solver="full").fit(exact.astype(np.float32).astype(np.float64))
    ev = reference.explained_variance_  # fc1 has rank 8 of 16: the last components are ~0
    np.testing.assert_allclose(half["fc1"].explained_variance, ev, rtol=1e-9, atol=1e-12 * ev[0])
    np.testing.assert_array_equal(half["fc1"].components, full["fc1"].components)
    # scores are those of the stored (float16) activations
    stored = half["fc1"].activations[:].astype(np.float64)
    expected = (stored - half["fc1"].mean) @ half["fc1"].components.T
    np.testing.assert_allclose(half["fc1"].scores, expected, rtol=1e-5, atol=1e-5)
    assert not np.array_equal(half["fc1"].scores, full["fc1"].scores)


def test_storage_dtype_is_part_of_the_reuse_key(run_dir: Path, xy: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = MLP()
    ee.explore(model, xy, ["fc1"], out=run_dir, progress=False)
    calls = model.calls
    half = ee.explore(model, xy, ["fc1"], out=run_dir, storage_dtype="float16", progress=False)
    assert model.calls > calls and half["fc1"].activations.dtype == np.float16
    calls = model.calls
    ee.explore(model, xy, ["fc1"], out=run_dir, storage_dtype="float16", progress=False)
    assert model.calls == calls


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x * 1e3)


def test_values_beyond_float16_range_name_the_layer_and_sample(run_dir: Path) -> None:
    x = torch.zeros(50, 4)
    x[:, 0] = torch.arange(50.0)
    x[31, 2] = 70.0  # 70,000 after the model: beyond 65,504
    with pytest.raises(
        EmbeddingExplorerError, match=r"layer 'fc' has the value 70000 for sample 31.*float16"
    ):
        ee.explore(Scaled(), x, ["fc"], out=run_dir, storage_dtype="float16", progress=False)
    x[31, 2], x[40, 1] = 0.0, -65.52  # -65,520 rounds to -inf in float16: refused with its sign
    with pytest.raises(EmbeddingExplorerError, match=r"the value -65520 for sample 40.*float16"):
        ee.explore(Scaled(), x, ["fc"], out=run_dir, storage_dtype="float16", progress=False)
    assert leftovers(run_dir) == []
    assert ee.explore(Scaled(), x, ["fc"], out=run_dir, progress=False).n_samples == 50  # float32 is fine


def test_unknown_storage_dtype_is_refused(run_dir: Path, xy: tuple[torch.Tensor, torch.Tensor]) -> None:
    with pytest.raises(ValueError, match="storage_dtype='bfloat16'"):
        ee.explore(MLP(), xy, ["fc1"], out=run_dir, storage_dtype="bfloat16", progress=False)  # type: ignore[arg-type]


def test_float16_wide_layers_take_components_from_the_stored_rows(tmp_path: Path) -> None:
    """Layers wider than max_dense_dim (randomized SVD) read the rows back from the store: with
    float16 storage their components and variances are those of the float16 rows, while the
    mean and total variance still come from the float32 rows before the cast."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 24))
    x = torch.randn(3000, 8, generator=torch.Generator().manual_seed(5)) * 30
    half = ee.explore(
        net,
        x,
        ["2"],
        out=tmp_path / "h",
        progress=False,
        max_dense_dim=16,
        n_components=5,
        storage_dtype="float16",
    )
    layer = half["2"]
    exact = net(x).detach().numpy().astype(np.float64)
    stored = layer.activations[:].astype(np.float64)
    of_stored = PCA(n_components=5, svd_solver="full").fit(stored)
    np.testing.assert_allclose(layer.explained_variance, of_stored.explained_variance_, rtol=1e-6)
    np.testing.assert_allclose(layer.mean, exact.mean(axis=0), rtol=0, atol=1e-10)
    total = half.manifest["layers"][0]["total_variance"]
    np.testing.assert_allclose(total, exact.var(axis=0, ddof=1).sum(), rtol=1e-10)
    assert half.manifest["layers"][0]["pca_method"] == "randomized_svd"
