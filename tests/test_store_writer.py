"""RunWriter and RowWriter (store.writer): rows in whole chunks, commit, abort, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from embedding_explorer import EmbeddingExplorerError, IncompleteRunError
from embedding_explorer.store.format import FORMAT, SHARED_RENDERINGS_VERSION, read_manifest, staging_path
from embedding_explorer.store.reader import RunReader
from embedding_explorer.store.writer import RowWriter, RunWriter
from support import write_small_run


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


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_row_writer_keeps_the_stored_rows_within_its_budget(tmp_path: Path, dtype: str) -> None:
    """Rows kept in memory are the rows as stored (cast to the storage dtype), in order; past
    the budget none are kept and the store is read instead (seen here by changing the store
    behind the writer's back)."""
    root = zarr.open_group(str(tmp_path / "a.zarr"), mode="w")
    data = np.random.default_rng(0).normal(size=(23, 3)).astype(dtype)
    for budget, expect_memory in ((23 * 3 * 8, True), (8 * 3 * 2, False)):
        array = root.create_array(f"x{budget}", shape=(0, 3), chunks=(4, 3), dtype=dtype)
        writer = RowWriter(array, keep_bytes=budget)
        for start in range(0, 23, 5):
            writer.append(data[start : start + 5])
        writer.close()
        np.testing.assert_array_equal(np.concatenate(list(writer.stored(23))), data)
        np.testing.assert_array_equal(np.concatenate(list(writer.stored(10))), data[:10])
        array[...] = 0  # the store changed: only the rows kept in memory still read as written
        from_memory = np.concatenate(list(writer.stored(23)))
        np.testing.assert_array_equal(from_memory, data if expect_memory else np.zeros_like(data))


def test_rows_written_another_way_or_resumed_are_read_from_the_store(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path / "r", ["a", "b"])
    writer.layout({"a": 2, "b": 2}, rows_per_chunk=4, n_rows=8)
    rows = np.arange(16, dtype=np.float32).reshape(8, 2)
    writer.append_activations("a", rows)
    writer.finish_activations()
    writer.put_activations("b", 0, rows)  # a Dask shard's rows: the writer never saw them whole
    writer.activations("a")[...] = 1
    writer.activations("b")[...] = 2
    np.testing.assert_array_equal(np.concatenate(list(writer.stored_rows("a", 8))), rows)
    np.testing.assert_array_equal(np.concatenate(list(writer.stored_rows("b", 8))), np.full((8, 2), 2))
    resumed = RowWriter(writer.activations("a"), n_written=6, keep_bytes=1 << 20)
    resumed.append(rows[6:])
    resumed.close()
    np.testing.assert_array_equal(np.concatenate(list(resumed.stored(8)))[:6], np.ones((6, 2)))
    writer.abort()


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


def test_renderings_shared_by_samples_are_stored_once_and_read_per_sample(tmp_path: Path) -> None:
    """Renderings appended with counts (a per-token run's texts) are each stored once; the reader
    gives every sample the rendering it shares, texts of no samples included."""
    writer = RunWriter(tmp_path / "run", ["a"])
    texts = [b"first text", b"", b"third", b"skipped", b"fifth one"]
    writer.append_renderings(texts[:3], np.array([2, 0, 3]))
    writer.append_renderings(texts[3:], np.array([0, 1]))
    assert writer.renderings_shared
    assert writer.finish_renderings() == 6
    writer.write_samples(pd.DataFrame({"sample_id": np.arange(6)}))
    manifest = {"format": FORMAT, "format_version": SHARED_RENDERINGS_VERSION, "rendering": {"shared": True}}
    writer.commit(manifest)
    reader = RunReader(tmp_path / "run")
    owner = [0, 0, 2, 2, 2, 4]  # the text each sample belongs to, by hand
    assert [reader.rendering(i) for i in range(6)] == [texts[t] for t in owner]
    assert (tmp_path / "run" / "renderings.bin").stat().st_size == sum(len(t) for t in texts)


@pytest.mark.parametrize(("budget_rows", "kept"), [(11, True), (10, False)])
def test_row_writer_keeps_rows_while_their_own_bytes_fit(
    tmp_path: Path, budget_rows: int, kept: bool
) -> None:
    """The last, partial chunk is kept as its own rows, not as a view holding a whole chunk's
    array: 8 + 3 rows fit a budget of 11 rows (read back from memory after the store changed),
    not one of 10 (read from the store). A view would count 16 rows, and a run of many layers,
    each with a small share of the budget, would keep none."""
    root = zarr.open_group(str(tmp_path / "a.zarr"), mode="w")
    array = root.create_array("x", shape=(0, 2), chunks=(8, 2), dtype="float32")
    data = np.arange(22, dtype=np.float32).reshape(11, 2)
    writer = RowWriter(array, keep_bytes=budget_rows * 2 * 4)
    writer.append(data)
    writer.close()
    array[...] = 0  # the store changed: rows kept in memory still read as written
    expected = data if kept else np.zeros_like(data)
    np.testing.assert_array_equal(np.concatenate(list(writer.stored(11))), expected)


def test_run_writer_refuses_rows_of_another_width(tmp_path: Path) -> None:
    """A batch whose rows have another width than the layer's is refused, naming the layer
    (numpy would broadcast a single column into the chunk)."""
    writer = RunWriter(tmp_path / "run", ["a"])
    writer.layout({"a": 3}, rows_per_chunk=8)
    writer.append_activations("a", np.ones((2, 3), dtype=np.float32))
    with pytest.raises(
        EmbeddingExplorerError, match=r"layer 'a' gave rows of shape \(2, 1\); its earlier batches had 3"
    ):
        writer.append_activations("a", np.ones((2, 1), dtype=np.float32))
    writer.abort()


@pytest.mark.parametrize("sizes", [[3, 5, 8, 2], [20, 1], [1] * 17, [8, 8, 8]])
def test_row_writer_copies_rows_into_whole_chunks(tmp_path: Path, sizes: list[int]) -> None:
    """Batches of any size (across chunk boundaries, larger than a chunk) are stored in order,
    as copies: the caller may reuse a batch's memory as soon as it is appended."""
    root = zarr.open_group(str(tmp_path / "a.zarr"), mode="w")
    array = root.create_array("x", shape=(0, 3), chunks=(8, 3), dtype="float16")
    rng = np.random.default_rng(0)
    expected, buffer = [], np.empty((max(sizes), 3))
    writer = RowWriter(array)
    for size in sizes:
        rows = buffer[:size]
        rows[...] = rng.normal(size=(size, 3))
        expected.append(rows.astype(np.float16))
        writer.append(rows)
        rows[...] = np.nan  # the writer holds a copy, not this memory
    writer.close()
    np.testing.assert_array_equal(array[...], np.concatenate(expected))


def test_sample_table_floats_are_written_without_a_dictionary(tmp_path: Path) -> None:
    """The sample table's float columns are plainly encoded (their values rarely repeat: a
    dictionary only costs), the others keep their dictionary, and every value reads back."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "sample_id": np.arange(500),
            "label": np.tile(["cat", "dog"], 250),
            "correct": rng.random(500) > 0.5,
            "brightness": rng.random(500),
            "loss": rng.random(500).astype(np.float32),
        }
    )
    writer = RunWriter(tmp_path / "run", ["a"])
    writer.write_samples(table)
    writer.commit({"format": FORMAT, "format_version": 1})
    path = tmp_path / "run" / "samples.parquet"
    columns = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {columns.column(i).path_in_schema: set(columns.column(i).encodings) for i in range(5)}
    dictionary = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    # (Parquet never gives booleans a dictionary: they are bit-packed)
    assert {name for name, used in encodings.items() if used & dictionary} == {"sample_id", "label"}
    pd.testing.assert_frame_equal(pd.read_parquet(path), table)


def test_a_sample_table_with_a_nested_column_keeps_its_dictionaries(tmp_path: Path) -> None:
    """A list column (user metadata) is named by its leaf path in Parquet: such a table keeps
    dictionaries throughout, the list's strings included, and reads back whole."""
    import pyarrow.parquet as pq

    table = pd.DataFrame({"sample_id": np.arange(4), "tags": [["a", "b"], ["a"], [], ["b", "b"]]})
    writer = RunWriter(tmp_path / "run", ["a"])
    writer.write_samples(table)
    writer.commit({"format": FORMAT, "format_version": 1})
    path = tmp_path / "run" / "samples.parquet"
    columns = pq.ParquetFile(path).metadata.row_group(0)
    tags = next(
        columns.column(i)
        for i in range(columns.num_columns)
        if columns.column(i).path_in_schema.startswith("tags")
    )
    assert {"PLAIN_DICTIONARY", "RLE_DICTIONARY"} & set(tags.encodings)
    assert pd.read_parquet(path)["tags"].map(list).tolist() == [["a", "b"], ["a"], [], ["b", "b"]]


@pytest.mark.parametrize("storage_dtype", ["float32", "float16"])
def test_run_writer_checkpoints_inside_a_chunk_and_goes_on_filling_it(
    tmp_path: Path, storage_dtype: str
) -> None:
    """A checkpoint stores the rows of the chunk being filled and later batches go on filling
    the same chunk: after each checkpoint and at the end the stored array holds every row
    appended, as stored (float64, non-contiguous and empty batches included)."""
    writer = RunWriter(tmp_path / "run", ["a"], storage_dtype=storage_dtype)
    writer.layout({"a": 3}, rows_per_chunk=8)
    rng = np.random.default_rng(0)
    source = np.empty((20, 5))  # the caller's memory, reused for every batch
    expected: list[np.ndarray] = []
    for i, size in enumerate([3, 0, 2, 7, 1, 20, 5]):
        rows = source[:size, 1:4]  # a non-contiguous float64 view
        rows[...] = rng.normal(size=(size, 3)) * 100
        expected.append(rows.astype(storage_dtype))
        writer.append_activations("a", rows)
        rows[...] = np.nan
        if i in (0, 2, 3, 5):
            writer.flush(durable=True)
            so_far = np.concatenate(expected)
            np.testing.assert_array_equal(
                writer.activations("a")[: len(so_far)], so_far, err_msg=f"batch {i}"
            )
    writer.finish_activations()
    every = np.concatenate(expected)
    np.testing.assert_array_equal(writer.activations("a")[...], every)
    np.testing.assert_array_equal(np.concatenate(list(writer.stored_rows("a", len(every)))), every)
    writer.abort()
