"""No silent zeros: a finished run's files are inventoried at commit and checked when it opens."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch

import embedding_explorer as ee
from embedding_explorer import DamagedRunError
from embedding_explorer.store.format import MANIFEST, RENDERING_OFFSETS, RENDERING_SAMPLES, RENDERINGS
from embedding_explorer.store.integrity import FILES, is_bulk
from support import MLP

LAYERS = ["input", "fc1", "fc2"]


@pytest.fixture
def run(run_dir: Path) -> ee.Run:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(600, 8, generator=g)
    texts = [f"sample {i}" for i in range(600)]
    return ee.explore(MLP(), x, LAYERS, out=run_dir, render=texts, progress=False)


def _key(run: ee.Run, layer: str) -> str:
    return str(run[layer].key)


def test_the_manifest_lists_every_file_with_its_size(run: ee.Run) -> None:
    files = run.manifest[FILES]
    on_disk = {
        p.relative_to(run.path).as_posix(): p.stat().st_size
        for p in run.path.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    assert {rel: entry[0] for rel, entry in files.items()} == on_disk
    key = _key(run, "fc1")
    assert files[f"arrays.zarr/scores/{key}/c/0/0"][1] is not None  # checksummed
    assert files[f"arrays.zarr/activations/{key}/c/0/0"][1] is None  # the bulk: size only


@pytest.mark.parametrize(
    "chunk",
    [
        "arrays.zarr/scores/{key}/c/0/0",
        "arrays.zarr/pca/{key}/mean/c/0",
        "arrays.zarr/activations/{key}/c/0/0",
    ],
    ids=["score-chunk", "mean", "activation-chunk"],
)
def test_a_deleted_chunk_is_an_error_naming_it(run: ee.Run, chunk: str) -> None:
    rel = chunk.format(key=_key(run, "fc1"))
    (run.path / rel).unlink()
    with pytest.raises(DamagedRunError, match=rf"{rel} is missing; rebuild it .*recompute=True"):
        ee.open_run(run.path)


def test_a_truncated_renderings_file_is_an_error(run: ee.Run) -> None:
    path = run.path / RENDERINGS
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 10)
    with pytest.raises(DamagedRunError, match=rf"{RENDERINGS} has {size - 10:,} bytes where {size:,}"):
        ee.open_run(run.path)


def test_a_deleted_sample_table_is_an_error(run: ee.Run) -> None:
    (run.path / "samples.parquet").unlink()
    with pytest.raises(DamagedRunError, match=r"samples.parquet is missing"):
        ee.open_run(run.path)


def test_verify_finds_a_chunk_altered_in_place(run: ee.Run) -> None:
    rel = f"arrays.zarr/scores/{_key(run, 'fc2')}/c/0/0"
    data = bytearray((run.path / rel).read_bytes())
    data[:4] = np.float32(1234.5).tobytes()
    (run.path / rel).write_bytes(bytes(data))
    reopened = ee.open_run(run.path)  # the same size: opening cannot tell
    with pytest.raises(DamagedRunError, match=rf"{rel} was altered"):
        reopened.verify()


def test_verify_finds_swapped_rendering_offsets(run: ee.Run) -> None:
    """renderings.idx.npy is small and checksummed (only the packed renderings are size-only):
    two offsets swapped keep its size, and verify names it instead of serving wrong renderings."""
    assert run.manifest[FILES][RENDERING_OFFSETS][1] is not None
    assert run.manifest[FILES][RENDERINGS][1] is None
    path = run.path / RENDERING_OFFSETS
    offsets = np.load(path)
    offsets[[4, 5]] = offsets[[5, 4]]
    np.save(path, offsets)
    reopened = ee.open_run(run.path)  # the same size: opening cannot tell
    with pytest.raises(DamagedRunError, match=rf"{RENDERING_OFFSETS} was altered"):
        reopened.verify()


def test_sizes_only_for_the_bulk_and_checksums_for_the_index_files() -> None:
    for bulk in ("arrays.zarr/activations/00_fc1/c/0/0", "renderings.bin", "renderings.3.bin"):
        assert is_bulk(bulk), bulk
    for small in ("arrays.zarr/activations/00_fc1/zarr.json", RENDERING_OFFSETS, RENDERING_SAMPLES):
        assert not is_bulk(small), small


def test_a_run_inventoried_without_index_checksums_still_verifies(run: ee.Run) -> None:
    """Runs committed before the index files were checksummed record none for them: size only."""
    manifest = json.loads((run.path / MANIFEST).read_text())
    manifest[FILES][RENDERING_OFFSETS][1] = None
    (run.path / MANIFEST).write_text(json.dumps(manifest))
    reopened = ee.open_run(run.path)
    reopened.verify()
    assert reopened.rendering(5) == b"sample 5"


def test_verify_passes_on_an_intact_run(run: ee.Run) -> None:
    ee.open_run(run.path).verify()


def test_a_run_without_an_inventory_still_opens(run: ee.Run) -> None:
    manifest = json.loads((run.path / MANIFEST).read_text())
    del manifest[FILES]
    (run.path / MANIFEST).write_text(json.dumps(manifest))
    assert ee.open_run(run.path).n_samples == 600


def test_a_chunk_of_zeros_is_written_and_inventoried(run_dir: Path, small_chunks: None) -> None:
    x = torch.zeros(600, 8)
    x[:, 0] = torch.arange(600.0)  # the first 256-row chunk of "input" rows holds zeros elsewhere
    x[:300] = 0.0
    run = ee.explore(None, x, ["input"], out=run_dir, progress=False)
    rel = f"arrays.zarr/activations/{_key(run, 'input')}/c/0/0"
    assert rel in run.manifest[FILES]
    (run.path / rel).unlink()
    with pytest.raises(DamagedRunError, match=rel):
        ee.open_run(run.path)


# ---- a run written in place (object stores) --------------------------------------------------
@pytest.fixture
def memory_url() -> Iterator[str]:
    root = f"integrity-{uuid.uuid4().hex}"
    yield f"memory://{root}/run"
    fsspec.filesystem("memory").rm(f"/{root}", recursive=True)


def test_a_deleted_object_is_an_error_naming_it(memory_url: str) -> None:
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    run = ee.explore(MLP(), x, LAYERS, out=memory_url, progress=False)
    rel = f"arrays.zarr/scores/{_key(run, 'fc2')}/c/0/0"
    assert rel in run.manifest[FILES]
    fsspec.filesystem("memory").rm(f"{memory_url.removeprefix('memory://')}/{rel}")
    with pytest.raises(DamagedRunError, match=rel):
        ee.open_run(memory_url)
