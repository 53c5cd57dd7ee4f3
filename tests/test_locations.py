"""Runs at any fsspec URL: written in place (manifest last), resumed, read and served exactly as
runs in local folders. ``memory://`` stands in for an object store (it has no rename either);
``local://`` is fsspec's own local file system taken through the same in-place code path, so
Dask workers in other processes can reach it."""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError, IncompleteRunError, NonFiniteActivationError
from embedding_explorer.locations import as_location, is_local, local_path
from embedding_explorer.store.format import FORMAT, FORMAT_VERSION, PARTIAL
from embedding_explorer.store.reader import RunReader
from embedding_explorer.store.writer import RunWriter
from support import MLP, TOKEN_TEXTS, assert_equal_runs, assert_same_run, minilm_bert

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

MEMORY = fsspec.filesystem("memory")
TEXTS = [f"text {i}" + "~" * (i % 5) for i in range(1200)]


@pytest.fixture
def mem_url() -> Iterator[str]:
    """A fresh ``memory://`` prefix, removed afterwards (the memory file system is global)."""
    root = f"ee-test-{uuid.uuid4().hex[:8]}"
    yield f"memory://{root}/run"
    if MEMORY.exists(f"/{root}"):
        MEMORY.rm(f"/{root}", recursive=True)


@pytest.fixture
def xy() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    return torch.randn(1200, 8, generator=g), torch.randint(0, 4, (1200,), generator=g)


def mlp() -> MLP:
    """The same weights at every call."""
    torch.manual_seed(7)
    return MLP()


def listing(url: str) -> list[str]:
    return as_location(url).names()


def stop_after(model: nn.Module, calls: int) -> Any:
    """Raise OSError (a full disk, a lost connection) on forward call ``calls + 1``."""
    seen = [0]

    def hook(module: nn.Module, args: Any) -> None:
        seen[0] += 1
        if seen[0] > calls:
            raise OSError("connection reset")

    return model.register_forward_pre_hook(hook)


# ---- naming -----------------------------------------------------------------------------------
def test_locations_local_and_urls(tmp_path: Path) -> None:
    folder = tmp_path / "with space" / "run"
    assert is_local(folder) and is_local(str(folder)) and is_local(folder.as_uri())
    assert not is_local("s3://bucket/run") and not is_local("memory://x") and not is_local("local:///x")
    assert local_path(folder.as_uri()) == folder
    url = as_location("memory://bucket/runs/x/")
    assert (url.url, url.local, (url / "arrays.zarr").url) == (
        "memory://bucket/runs/x",
        None,
        "memory://bucket/runs/x/arrays.zarr",
    )
    assert as_location(folder.as_uri()).local == folder
    with pytest.raises(EmbeddingExplorerError, match="storage_options are for fsspec URLs"):
        as_location(folder, {"anon": True})
    with pytest.raises(EmbeddingExplorerError, match="cannot open 'nosuch://b/r' with fsspec"):
        as_location("nosuch://b/r")
    with pytest.raises(EmbeddingExplorerError, match="names a local folder"):
        as_location("file://otherhost/runs/x")


# ---- written in place, read back --------------------------------------------------------------
def test_memory_run_equals_a_local_run(mem_url: str, tmp_path: Path, xy: Any) -> None:
    metadata = {"i": np.arange(1200), "half": np.where(np.arange(1200) < 600, "a", "b")}
    kwargs: dict[str, Any] = dict(render=TEXTS, metadata=metadata, n_components=4, progress=False)
    remote = ee.explore(mlp(), xy, ["input", "fc1", "fc2"], out=mem_url, **kwargs)
    local = ee.explore(mlp(), xy, ["input", "fc1", "fc2"], out=tmp_path / "run", **kwargs)
    assert_same_run(remote, local)
    # the score is (activations - mean) @ components.T of what is stored
    layer = remote["fc1"]
    expected = (np.asarray(layer.activations[:], np.float64) - layer.mean) @ layer.components.T
    np.testing.assert_allclose(layer.scores, expected, rtol=1e-5, atol=1e-5)
    assert remote.url == mem_url and remote.manifest["key"] == local.manifest["key"]
    with pytest.raises(EmbeddingExplorerError, match=r"not in a local folder; use run\.url"):
        _ = remote.path
    # a finished run keeps neither checkpoints nor the in-progress marker
    names = listing(mem_url)
    assert names == [
        "arrays.zarr",
        "manifest.json",
        "renderings.0.bin",
        "renderings.idx.npy",
        "samples.parquet",
    ]
    assert remote.manifest["rendering"]["parts"] == [["renderings.0.bin", sum(len(t) for t in TEXTS)]]
    assert_same_run(ee.open_run(mem_url), local)


def test_a_finished_run_is_reused_and_other_options_replace_it(mem_url: str, xy: Any) -> None:
    first = ee.explore(mlp(), xy, ["fc1"], out=mem_url, n_components=3, progress=False)
    written = MEMORY.modified(f"{mem_url[len('memory://') - 1 :]}/manifest.json")
    again = ee.explore(mlp(), xy, ["fc1"], out=mem_url, n_components=3, progress=False)
    assert MEMORY.modified(f"{mem_url[len('memory://') - 1 :]}/manifest.json") == written
    assert again.manifest == first.manifest
    other = ee.explore(mlp(), xy, ["fc1"], out=mem_url, n_components=5, render=TEXTS, progress=False)
    assert other["fc1"].n_components == 5 and other.rendering(3) == TEXTS[3].encode()
    assert ee.open_run(mem_url).manifest["key"] == other.manifest["key"] != first.manifest["key"]


def test_a_prefix_that_is_not_a_run_is_never_replaced(mem_url: str, xy: Any) -> None:
    MEMORY.pipe_file(f"{mem_url[len('memory://') - 1 :]}/data.csv", b"a,b\n1,2\n")
    with pytest.raises(EmbeddingExplorerError, match="exists and is not a run directory"):
        ee.explore(mlp(), xy, ["fc1"], out=mem_url, progress=False)
    assert listing(mem_url) == ["data.csv"]


def test_a_replacement_stopped_while_removing_the_old_run_is_replaced_later(
    mem_url: str, xy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old run's objects are removed after the prefix is marked .partial.json and its manifest
    removed: a removal that fails part way leaves the marker, so the next call replaces the prefix."""
    ee.explore(mlp(), xy, ["fc1"], out=mem_url, n_components=3, progress=False)
    real_rm = MEMORY.rm

    def failing_rm(path: Any, recursive: bool = False, **kwargs: Any) -> None:
        paths = sorted(path if isinstance(path, list) else MEMORY.find(path))
        MEMORY.rm_file(paths[0])  # one object removed, then the connection drops
        raise ConnectionError("connection reset while deleting objects")

    monkeypatch.setattr(MEMORY, "rm", failing_rm)
    with pytest.raises(ConnectionError, match="connection reset"):
        ee.explore(mlp(), xy, ["fc1"], out=mem_url, n_components=5, progress=False)
    names = listing(mem_url)
    assert PARTIAL in names and "manifest.json" not in names and "arrays.zarr" in names
    with pytest.raises(IncompleteRunError):
        ee.open_run(mem_url)
    monkeypatch.setattr(MEMORY, "rm", real_rm)
    run = ee.explore(mlp(), xy, ["fc1"], out=mem_url, n_components=5, progress=False)
    run.verify()
    assert run["fc1"].n_components == 5 and PARTIAL not in listing(mem_url)


def test_an_input_error_leaves_nothing(mem_url: str, xy: Any) -> None:
    x = xy[0].clone()
    x[700, 2] = float("nan")
    with pytest.raises(NonFiniteActivationError, match="sample 700"):
        ee.explore(mlp(), (x, xy[1]), ["input"], out=mem_url, progress=False)
    assert listing(mem_url) == []
    with pytest.raises(FileNotFoundError, match="no run at"):
        ee.open_run(mem_url)


def test_renderings_in_several_objects_read_back(mem_url: str) -> None:
    """Each checkpoint closes one rendering object; empty renderings at an object's edge and an
    object of empty renderings only still read back by sample id."""
    writer = RunWriter(mem_url, ["a"])
    writer.append_activations("a", np.arange(12, dtype=np.float32).reshape(6, 2))
    writer.finish_activations()
    batches = [[b"s0", b""], [b"", b""], [b"", b"sample five"]]
    for batch in batches:
        writer.append_renderings(batch)
        writer.flush()  # what a checkpoint does
    assert writer.finish_renderings() == 6
    writer.write_samples(pd.DataFrame({"sample_id": np.arange(6)}))
    writer.commit({"format": FORMAT, "format_version": FORMAT_VERSION, "name": "parts"})
    reader = RunReader(mem_url)
    assert reader.manifest["rendering"]["parts"] == [
        [f"renderings.{i}.bin", n] for i, n in enumerate([2, 0, 11])
    ]
    assert [reader.rendering(i) for i in range(6)] == [item for batch in batches for item in batch]
    np.testing.assert_array_equal(reader.array("activations", "00_a")[...], np.arange(12).reshape(6, 2))
    assert listing(mem_url) == [
        "arrays.zarr",
        "manifest.json",
        *[f"renderings.{i}.bin" for i in range(3)],
        "renderings.idx.npy",
        "samples.parquet",
    ]


# ---- stopped, then resumed in place ----------------------------------------------------------
def test_a_stopped_replacement_resumes_in_place(
    mem_url: str, tmp_path: Path, xy: Any, small_chunks: None
) -> None:
    """A new run over a finished one removes the old manifest first; stopped part way, the prefix
    opens as unfinished (never as the old run), and the next call resumes bit-equal."""
    ee.explore(mlp(), xy, ["fc1", "fc2"], out=mem_url, n_components=2, progress=False)
    model = mlp()
    hook = stop_after(model, 3)  # 3 batches of 256 done: a checkpoint after 768 samples
    kwargs: dict[str, Any] = dict(n_components=4, render=TEXTS, progress=False)
    with pytest.raises(OSError, match="connection reset"):
        ee.explore(model, xy, ["input", "fc1", "fc2"], out=mem_url, **kwargs)
    names = listing(mem_url)
    assert "manifest.json" not in names and {PARTIAL, ".resume", "arrays.zarr"} <= set(names)
    # one rendering object per checkpointed batch; the 4th batch was rendered before the model
    # raised, but its renderings are stored only once it is consumed, after the forward pass
    assert {f"renderings.{i}.bin" for i in range(3)} <= set(names)
    assert "renderings.3.bin" not in names
    with pytest.raises(IncompleteRunError, match="did not finish"):
        ee.open_run(mem_url)
    hook.remove()
    resumed = ee.explore(model, xy, ["input", "fc1", "fc2"], out=mem_url, **kwargs)
    assert resumed.manifest["timings"]["resumed_at"] == 768
    assert PARTIAL not in listing(mem_url) and ".resume" not in listing(mem_url)
    whole = ee.explore(mlp(), xy, ["input", "fc1", "fc2"], out=tmp_path / "whole", **kwargs)
    assert_same_run(resumed, whole)
    per_batch = [sum(len(t) for t in TEXTS[i : i + 256]) for i in range(0, 1200, 256)]
    assert resumed.manifest["rendering"]["parts"] == [
        [f"renderings.{i}.bin", n] for i, n in enumerate(per_batch)
    ]


def test_recompute_over_a_stopped_run_starts_over(mem_url: str, xy: Any, small_chunks: None) -> None:
    model = mlp()
    hook = stop_after(model, 3)
    with pytest.raises(OSError):
        ee.explore(model, xy, ["fc1"], out=mem_url, progress=False)
    hook.remove()
    run = ee.explore(model, xy, ["fc1"], out=mem_url, recompute=True, progress=False)
    assert run.manifest["timings"]["resumed_at"] == 0 and run.n_samples == 1200


# ---- fsspec's local file system through the in-place path, with storage_options ----------------
def test_storage_options_reach_fsspec(tmp_path: Path, xy: Any) -> None:
    url = f"local://{tmp_path}/deep/run"  # auto_mkdir: the local file system makes parent folders
    options = {"auto_mkdir": True}
    run = ee.explore(mlp(), xy, ["fc1"], out=url, storage_options=options, render=TEXTS, progress=False)
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["run"]  # no staging beside it
    assert (tmp_path / "deep" / "run" / "renderings.0.bin").read_bytes() == "".join(TEXTS).encode()
    opened = ee.open_run(url, storage_options=options)
    assert_same_run(
        opened, ee.explore(mlp(), xy, ["fc1"], out=tmp_path / "ref", render=TEXTS, progress=False)
    )
    assert opened.manifest["created"] == run.manifest["created"]


# ---- served from the object store -------------------------------------------------------------
def test_the_server_serves_a_memory_run(mem_url: str, tmp_path: Path) -> None:
    from embedding_explorer.server import create_app

    g = torch.Generator().manual_seed(3)
    images, labels = torch.rand(64, 1, 8, 8, generator=g), torch.arange(64) % 4
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 6))
    run = ee.explore(
        model, (images, labels), ["1"], out=mem_url, name="Remote", n_components=3, progress=False
    )
    local = ee.explore(model, (images, labels), ["1"], out=tmp_path / "r", n_components=3, progress=False)
    app = create_app([ee.open_run(mem_url)], static_dir=tmp_path / "no-ui")
    with TestClient(app) as client:
        assert client.get("/api/runs").json()[0]["id"] == "remote"
        r = client.get("/api/runs/remote/layers/1/scores")
        scores = np.frombuffer(r.content, dtype="<f4").reshape(64, 3)
        np.testing.assert_array_equal(scores, local["1"].scores)
        gallery = client.get("/api/runs/remote/layers/1/gallery", params={"n": 2}).json()
        top = gallery["components"][0]
        order = np.argsort(local["1"].scores[:, 0], kind="stable")
        expected_high = {int(i) for i in order[-2:]}
        assert {int(s["id"]) for s in top["high"]} == expected_high
        png = client.get("/api/runs/remote/samples/5/render")
        assert png.headers["content-type"] == "image/png" and png.content == local.rendering(5)
        assert png.content == run.rendering(5)


# ---- the command line ------------------------------------------------------------------------
def test_cli_info_reads_a_url(mem_url: str, xy: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from embedding_explorer import cli

    ee.explore(mlp(), xy, ["fc1"], out=mem_url, progress=False)
    assert cli.main(["info", mem_url, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["path"], info["n_samples"]) == (mem_url, 1200)


# ---- Dask workers in other processes write to the same URL -----------------------------------
@pytest.mark.slow  # worker processes start and import torch
def test_dask_workers_write_file_and_fsspec_urls(tmp_path: Path, xy: Any, small_chunks: None) -> None:
    """A ``file://`` URL (the local commit: staging + rename) and a ``local://`` URL (the
    in-place commit, with ``storage_options`` the workers need too: without ``auto_mkdir`` they
    could not create the chunks' folders) both equal a single-process run in a local folder."""
    distributed = pytest.importorskip("distributed")
    reference = ee.explore(
        mlp, xy, ["input", "fc1", "fc2"], out=tmp_path / "one", render=TEXTS, progress=False
    )
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0", silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        as_file = ee.explore(
            mlp, xy, ["input", "fc1", "fc2"], out=(tmp_path / "file").as_uri(), render=TEXTS, client=client,
            progress=False,
        )  # fmt: skip
        url, options = f"local://{tmp_path}/deep/fsspec", {"auto_mkdir": True}
        in_place = ee.explore(
            mlp, xy, ["input", "fc1", "fc2"], out=url, storage_options=options, render=TEXTS,
            client=client, progress=False,
        )  # fmt: skip
    assert as_file.path == (tmp_path / "file").resolve() and in_place.manifest["options"]["distributed"]
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["fsspec"]
    for run in (as_file, in_place):
        assert_equal_runs(run, reference)
        assert [run.rendering(i) for i in range(run.n_samples)] == [t.encode() for t in TEXTS]


def test_a_per_token_run_in_place_equals_a_local_one(
    mem_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spilled token columns, a sample table in row groups and texts shared by their tokens,
    written as objects in place (several rendering objects), read back as a local run does."""
    from embedding_explorer import extract

    model, tokenizer = minilm_bert()
    monkeypatch.setattr(extract, "checkpoint_rows", lambda *a: 24)
    texts = TOKEN_TEXTS[:12]
    args: dict[str, Any] = {"reduce": ee.Reducer("tokens", skip_special=True), "progress": False}
    batches = ee.text_batches(texts, tokenizer, batch_size=4)
    outs = (tmp_path / "local", mem_url)
    runs = [ee.explore(model, batches, ["encoder.layer.0"], out=out, **args) for out in outs]
    assert_same_run(*runs)
    assert len(runs[1].manifest["rendering"]["parts"]) > 1
    assert [runs[1].rendering(i) for i in range(runs[1].n_samples)] == [
        texts[t].encode() for t in runs[1].samples["text_id"]
    ]
