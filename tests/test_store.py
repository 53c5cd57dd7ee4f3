"""The run directory: chunked writes, staging and commit, manifests, packed renderings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import zarr

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError, IncompleteRunError
from embedding_explorer.pca import StreamingPCA
from embedding_explorer.store import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    RowWriter,
    RunReader,
    RunWriter,
    chunk_rows,
    layer_keys,
    read_manifest,
    score_rows,
    staging_path,
    write_json_atomic,
)


def minimal_manifest(**extra: object) -> dict[str, object]:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, **extra}


def test_layer_keys_are_file_safe_unique_and_ordered() -> None:
    keys = layer_keys(["block1.0:1", "block1.0/1", "fc"])
    assert keys == {"block1.0:1": "00_block1.0_1", "block1.0/1": "01_block1.0_1", "fc": "02_fc"}
    assert len(set(keys.values())) == 3


def test_chunk_rows_bounds() -> None:
    assert chunk_rows(1) == 65536
    assert chunk_rows(512) == (8 << 20) // (4 * 512)
    assert chunk_rows(10**6) == 256


def test_score_chunks_and_their_write_buffer_stay_within_64_mib() -> None:
    assert score_rows(10**6, 10) == 1 << 18  # 10 MiB of float32
    assert score_rows(10**6, 1000) == (64 << 20) // 4000 and score_rows(10**6, 1000) * 1000 * 4 <= 64 << 20
    assert score_rows(100, 5) == 100 and score_rows(10**6, 10**9) == 1


def test_scores_written_in_small_chunks_are_the_projection_of_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("embedding_explorer.store.SCORE_CHUNK_BYTES", 4 * 3 * 70)  # 70 rows of k=3
    x = torch.randn(500, 6, generator=torch.Generator().manual_seed(3))
    run = ee.explore(None, x, ["input"], out=tmp_path / "r", n_components=3, progress=False)
    key = run.manifest["layers"][0]["key"]
    assert zarr.open_array(str(tmp_path / "r" / "arrays.zarr" / "scores" / key), mode="r").chunks == (70, 3)
    layer = run["input"]
    expected = (x.numpy().astype(np.float64) - layer.mean) @ layer.components.T
    np.testing.assert_allclose(layer.scores, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pieces", [[1] * 23, [5, 20, 3, 1], [23], [10, 10, 3]])
def test_row_writer_writes_every_row_in_order(tmp_path: Path, pieces: list[int]) -> None:
    root = zarr.open_group(str(tmp_path / "a.zarr"), mode="w")
    array = root.create_array("x", shape=(0, 3), chunks=(4, 3), dtype="float32")
    data = np.arange(23 * 3, dtype=np.float32).reshape(23, 3)
    writer = RowWriter(array)
    start = 0
    for size in pieces:
        writer.append(data[start : start + size])
        start += size
        assert writer.n_written % 4 == 0  # whole chunks only until close
    writer.close()
    assert writer.n_written == 23
    np.testing.assert_array_equal(array[...], data)


def write_small_run(out: Path, n: int = 6) -> dict[str, Any]:
    writer = RunWriter(out, ["a:0", "b"])
    x = np.arange(n * 3, dtype=np.float64).reshape(n, 3) ** 1.5
    writer.append_activations("a:0", x[:4])
    writer.append_activations("a:0", x[4:])
    writer.finish_activations()
    pca = StreamingPCA(2).fit(x).finalize()
    writer.write_pca("a:0", pca)
    scores = writer.scores_array("a:0", n, 2)
    scores[...] = pca.transform(x).astype(np.float32)
    writer.append_renderings([b"s0", b"", b"sample two"])
    writer.append_renderings([f"s{i}".encode() for i in range(3, n)])
    assert writer.finish_renderings() == n
    writer.write_samples(pd.DataFrame({"sample_id": np.arange(n), "label": list("aabbcc")[:n]}))
    writer.commit(minimal_manifest(name="small"))
    return {"x": x, "pca": pca}


def test_writer_commit_and_reader_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "run"
    written = write_small_run(out)
    assert not staging_path(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    reader = RunReader(out)
    assert reader.manifest["name"] == "small"
    np.testing.assert_allclose(reader.array("activations", "00_a_0")[...], written["x"].astype(np.float32))
    pca = reader.pca_arrays("00_a_0")
    np.testing.assert_allclose(pca["components"], written["pca"].components)
    np.testing.assert_allclose(pca["mean"], written["pca"].mean)
    assert reader.rendering(0) == b"s0"
    assert reader.rendering(1) == b""
    assert reader.rendering(2) == b"sample two"
    assert reader.rendering(5) == b"s5"
    np.testing.assert_array_equal(reader.rendering_offsets(), [0, 2, 2, 12, 14, 16, 18])
    assert reader.samples()["label"].tolist() == list("aabbcc")


def test_commit_replaces_a_previous_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    write_small_run(out, n=6)
    write_small_run(out, n=5)
    assert RunReader(out).samples()["sample_id"].tolist() == [0, 1, 2, 3, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_abort_leaves_nothing_and_previous_run_intact(tmp_path: Path) -> None:
    out = tmp_path / "run"
    write_small_run(out)
    writer = RunWriter(out, ["a"])
    writer.append_activations("a", np.ones((3, 2)))
    writer.append_renderings([b"x"])
    assert staging_path(out).exists()
    writer.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert RunReader(out).manifest["name"] == "small"


def test_stale_staging_folder_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "run"
    staging_path(out).mkdir()
    (staging_path(out) / "junk").write_text("left by a killed process")
    with pytest.raises(IncompleteRunError, match=r"has no manifest\.json: its extraction did not finish"):
        read_manifest(out)
    write_small_run(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_refuses_to_overwrite_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(
        EmbeddingExplorerError, match="exists and is not a run directory; choose another path"
    ):
        RunWriter(out, ["a"])
    assert (out / "thesis.tex").read_text() == "precious"
    assert not staging_path(out).exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    RunWriter(empty, ["a"]).abort()  # an empty folder may be used


def test_read_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no run at"):
        read_manifest(tmp_path / "nothing")
    (tmp_path / "half").mkdir()
    with pytest.raises(IncompleteRunError, match="did not finish"):
        read_manifest(tmp_path / "half")
    other = tmp_path / "other"
    other.mkdir()
    (other / MANIFEST).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(EmbeddingExplorerError, match="is not an embedding-explorer manifest"):
        read_manifest(other)
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / MANIFEST).write_text(json.dumps(minimal_manifest(format_version=FORMAT_VERSION + 1)))
    with pytest.raises(EmbeddingExplorerError, match=f"format version {FORMAT_VERSION + 1}.*upgrade"):
        read_manifest(newer)


def test_write_json_atomic_handles_numpy_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    write_json_atomic(path, {"a": np.float32(1.5), "b": np.arange(3), "c": np.int64(7)})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": 7}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        write_json_atomic(tmp_path / "bad.json", {"a": object()})


def test_small_thumbnails_are_stored_raw_and_read_back_as_png(tmp_path: Path) -> None:
    """28 x 28 thumbnails cost a copy to store, not a zlib pass; readers still get PNG bytes."""
    import io

    from PIL import Image

    import embedding_explorer as ee
    from embedding_explorer.records import RAW_MAGIC
    from embedding_explorer.store import RENDERINGS

    images = torch.rand(20, 1, 28, 28)
    big = torch.rand(4, 3, 96, 96)
    small_run = ee.explore(None, images, ["input"], out=tmp_path / "small", progress=False)
    big_run = ee.explore(None, big, ["input"], out=tmp_path / "big", progress=False)
    assert (tmp_path / "small" / RENDERINGS).read_bytes().startswith(RAW_MAGIC)
    assert (tmp_path / "big" / RENDERINGS).read_bytes().startswith(b"\x89PNG")
    for run, x in ((small_run, images), (big_run, big)):
        png = run.rendering(3)
        assert png is not None and png.startswith(b"\x89PNG")
        decoded = np.asarray(Image.open(io.BytesIO(png)), dtype=np.float64)
        expected = (
            np.rint(x[3].numpy() * 255).squeeze(0)
            if x.shape[1] == 1
            else np.rint(np.moveaxis(x[3].numpy(), 0, -1) * 255)
        )
        np.testing.assert_array_equal(decoded, expected)


# ---- checkpoints: flush, restart, one layout ---------------------------------------------------
def test_row_writer_flush_stores_the_partial_chunk_and_restart_reads_it_back(tmp_path: Path) -> None:
    root = zarr.open_group(str(tmp_path / "a.zarr"), mode="w")
    array = root.create_array("x", shape=(0, 3), chunks=(4, 3), dtype="float16")
    data = np.arange(30 * 3, dtype=np.float32).reshape(30, 3)
    writer = RowWriter(array)
    writer.append(data[:10])
    writer.flush()  # a checkpoint after 10 rows: rows 8, 9 are in a partial chunk
    assert array.shape == (10, 3)
    np.testing.assert_array_equal(array[...], data[:10].astype(np.float16))
    writer.append(data[10:13])  # written after the checkpoint, then the process dies
    writer.flush()
    resumed = RowWriter(zarr.open_array(str(tmp_path / "a.zarr" / "x"), mode="r+"), n_written=10)
    assert resumed.n_written == 8 and resumed.array.shape == (10, 3)
    resumed.append(data[10:])
    resumed.close()
    np.testing.assert_array_equal(
        zarr.open_array(str(tmp_path / "a.zarr" / "x"))[...], data.astype(np.float16)
    )


def test_layout_gives_every_layer_the_same_chunks_and_dtype(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "r", ["a", "b"], storage_dtype="float16")
    writer.layout({"a": 3, "b": 700}, rows_per_chunk=512, n_rows=1000)
    for layer, dim in (("a", 3), ("b", 700)):
        array = writer.activations(layer)
        assert array.shape == (1000, dim) and array.chunks == (512, dim) and array.dtype == np.float16
    writer.abort()
    with pytest.raises(ValueError, match="storage_dtype='int8'"):
        RunWriter(tmp_path / "r", ["a"], storage_dtype="int8")
