"""explore on a Dask cluster (LocalCluster, 2 worker processes) equals the single-process run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import embedding_explorer as ee
from conftest import MLP, SmallCNN
from embedding_explorer import EmbeddingExplorerError, NonFiniteActivationError

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow  # worker processes start and import torch: about 15 s in all


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as dask_client,
    ):
        yield dask_client


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """256-row chunks, so a few thousand samples make several shards per worker."""
    monkeypatch.setattr("embedding_explorer.store.CHUNK_BYTES", 1)


def assert_equal_runs(a: ee.Run, b: ee.Run) -> None:
    """Same activations and labels; PCA and scores equal to float rounding."""
    assert a.n_samples == b.n_samples and a.layers == b.layers
    assert a.manifest["data"]["content_hash"] == b.manifest["data"]["content_hash"]
    for name in a.layers:
        la, lb = a[name], b[name]
        np.testing.assert_array_equal(la.activations[:], lb.activations[:])
        np.testing.assert_allclose(la.mean, lb.mean, rtol=1e-12, atol=1e-12)
        ev = lb.explained_variance
        np.testing.assert_allclose(la.explained_variance, ev, rtol=1e-10, atol=1e-12 * ev[0])
        real = ev > 1e-9 * ev[0]  # beyond the layer's rank, directions are arbitrary
        np.testing.assert_allclose(la.components[real], lb.components[real], atol=1e-8)
        np.testing.assert_allclose(la.scores[:, real], lb.scores[:, real], rtol=1e-5, atol=1e-5)
    if b.labels is not None:
        np.testing.assert_array_equal(a.labels, b.labels)
    assert a.rendering_kind == b.rendering_kind
    if b.rendering_kind is not None:
        assert [a.rendering(i) for i in range(a.n_samples)] == [b.rendering(i) for i in range(b.n_samples)]


def make_mlp() -> MLP:
    """A picklable factory: every worker builds the same weights."""
    torch.manual_seed(7)
    return MLP()


@pytest.fixture
def xy3000() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(8)
    return torch.randn(3000, 8, generator=g), torch.randint(0, 5, (3000,), generator=g)


def test_factory_model_on_two_workers_equals_one_process(
    client: Any, tmp_path: Path, small_chunks: None, xy3000: Any
) -> None:
    layers = ["input", "fc1", "act", "fc2"]
    texts = [f"sample {i}" for i in range(3000)]
    run = ee.explore(
        make_mlp, xy3000, layers, out=tmp_path / "d", client=client, render=texts, progress=False
    )
    single = ee.explore(make_mlp(), xy3000, layers, out=tmp_path / "s", render=texts, progress=False)
    assert run.manifest["options"]["distributed"] is True
    assert_equal_runs(run, single)
    # and exact against an independent computation
    acts = run["fc1"].activations[:].astype(np.float64)
    np.testing.assert_allclose(acts, make_mlp().fc1(xy3000[0]).detach().numpy(), rtol=1e-6, atol=1e-6)
    cov = np.cov(acts, rowvar=False)
    np.testing.assert_allclose(
        run["fc1"].explained_variance, np.linalg.eigvalsh(cov)[::-1][:10], rtol=1e-9, atol=1e-12
    )


def test_module_and_dataloader_with_images(client: Any, tmp_path: Path, small_chunks: None) -> None:
    g = torch.Generator().manual_seed(9)
    x, y = torch.rand(1100, 1, 8, 8, generator=g) * 3 - 1, torch.randint(0, 3, (1100,), generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=50)  # values outside [0, 1]: one shared range
    model = SmallCNN()
    run = ee.explore(model, loader, ["conv1", "fc"], out=tmp_path / "d", client=client, progress=False)
    single = ee.explore(model, loader, ["conv1", "fc"], out=tmp_path / "s", progress=False)
    assert run.rendering_kind == "image/png"
    assert_equal_runs(run, single)


def test_float16_storage_on_workers(client: Any, tmp_path: Path, small_chunks: None, xy3000: Any) -> None:
    kwargs: dict[str, Any] = {"storage_dtype": "float16", "progress": False}
    torch.save(make_mlp().state_dict(), tmp_path / "weights.pt")  # each worker loads the file
    factory = ee.from_state_dict(MLP, tmp_path / "weights.pt")
    run = ee.explore(factory, xy3000, ["fc1"], out=tmp_path / "d", client=client, **kwargs)
    single = ee.explore(make_mlp(), xy3000, ["fc1"], out=tmp_path / "s", **kwargs)
    assert run["fc1"].activations.dtype == np.float16
    assert_equal_runs(run, single)


def test_an_iterable_of_batches_is_refused(client: Any, tmp_path: Path, xy3000: Any) -> None:
    batches = [xy3000[0][:100], xy3000[0][100:200]]
    with pytest.raises(EmbeddingExplorerError, match=r"must be indexable.*list"):
        ee.explore(make_mlp, batches, ["fc1"], out=tmp_path / "d", client=client, progress=False)


class NaNAt(nn.Module):
    """fc output NaN for one sample, to see a worker's error name it."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 3)
        self.head = nn.Identity()
        self.bad = bad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x)
        return self.head(out.masked_fill((x[:, :1] == float(self.bad)).expand_as(out), float("nan")))


def test_a_workers_error_names_the_layer_and_sample(
    client: Any, tmp_path: Path, small_chunks: None, xy3000: Any
) -> None:
    x = xy3000[0].clone()
    x[2345, 0] = 1000.0
    with pytest.raises(NonFiniteActivationError, match="layer 'head' produced NaN for sample 2345"):
        ee.explore(NaNAt(1000), x, ["head"], out=tmp_path / "d", client=client, progress=False)
    assert not (tmp_path / "d").exists() and not (tmp_path / ".d.partial").exists()


def test_a_stopped_cluster_run_resumes(
    client: Any, tmp_path: Path, small_chunks: None, xy3000: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedding_explorer import distributed as dist

    merged = [0]
    original = dist.Cluster._merge

    def stop_after_three(self: Any, ledger: Any, result: Any) -> None:
        if merged[0] == 3:
            raise KeyboardInterrupt
        merged[0] += 1
        original(self, ledger, result)

    monkeypatch.setattr(dist.Cluster, "_merge", stop_after_three)
    with pytest.raises(KeyboardInterrupt):
        ee.explore(make_mlp, xy3000, ["fc1"], out=tmp_path / "d", client=client, progress=False)
    monkeypatch.undo()
    monkeypatch.setattr("embedding_explorer.store.CHUNK_BYTES", 1)
    run = ee.explore(make_mlp, xy3000, ["fc1"], out=tmp_path / "d", client=client, progress=False)
    assert run.manifest["timings"]["resumed_at"] == 3 * 256  # three shards of one chunk were merged
    assert_equal_runs(run, ee.explore(make_mlp(), xy3000, ["fc1"], out=tmp_path / "s", progress=False))


def test_wide_layers_finish_on_the_driver_with_randomized_svd(
    client: Any, tmp_path: Path, small_chunks: None, xy3000: Any
) -> None:
    kwargs: dict[str, Any] = {"max_dense_dim": 8, "n_components": 4, "progress": False}
    run = ee.explore(make_mlp, xy3000, ["fc1"], out=tmp_path / "d", client=client, **kwargs)
    single = ee.explore(make_mlp(), xy3000, ["fc1"], out=tmp_path / "s", **kwargs)
    assert run["fc1"].pca_method == single["fc1"].pca_method == "randomized_svd"
    assert_equal_runs(run, single)
