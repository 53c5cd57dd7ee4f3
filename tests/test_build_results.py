"""A layer's results (build.results): PCA with its zero-variance warning, scores, sample table."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import zarr

import embedding_explorer as ee
from embedding_explorer import ZeroVarianceWarning
from embedding_explorer.build.results import finish_pca, sample_table, write_scores
from embedding_explorer.pca import StreamingPCA
from embedding_explorer.store.writer import RunWriter
from embedding_explorer.store.zarr_files import RowChunks


@pytest.mark.parametrize("as_files", [True, False])
def test_write_scores_writes_each_score_chunk_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_files: bool
) -> None:
    """One write per score chunk, as files (a fresh local run) or through Zarr (a resumed one)."""
    monkeypatch.setattr("embedding_explorer.store.format.SCORE_CHUNK_BYTES", 4 * 2 * 30)  # 30 rows of k=2
    x = np.random.default_rng(0).normal(size=(100, 5))
    writer = RunWriter(tmp_path / "r", ["a"])
    if not as_files:
        writer._files = None
    writer.layout({"a": 5}, rows_per_chunk=16)
    writer.append_activations("a", x)
    writer.finish_activations()
    pca = StreamingPCA(2).fit(x).finalize()
    writes: list[slice] = []
    real_array, real_write = writer.scores_array, RowChunks.write

    def spy(*args: object, **kwargs: object) -> object:
        array = real_array(*args, **kwargs)  # type: ignore[arg-type]

        class Recorder:
            chunks, shape, path = array.chunks, array.shape, array.path

            def __setitem__(self, key: slice, value: np.ndarray) -> None:
                writes.append(key)
                array[key] = value

        return Recorder()

    def write(chunks: RowChunks, first_row: int, block: np.ndarray) -> None:
        writes.append(slice(first_row, first_row + len(block)))
        real_write(chunks, first_row, block)

    monkeypatch.setattr(writer, "scores_array", spy)
    monkeypatch.setattr(RowChunks, "write", write)
    write_scores(writer, "a", pca, 100)
    assert writes == [slice(0, 30), slice(30, 60), slice(60, 90), slice(90, 100)]
    scores = writer.root["scores/00_a"][...]
    np.testing.assert_allclose(scores, pca.transform(x.astype(np.float32)), rtol=1e-5, atol=1e-5)
    writer.abort()


def test_finish_pca_warns_on_zero_variance_at_the_callers_line(tmp_path: Path) -> None:
    rows = np.ones((10, 3))
    acc = StreamingPCA(2)
    acc.partial_fit(rows)
    with pytest.warns(ZeroVarianceWarning, match="layer 'c' has zero variance, for a test") as record:
        pca = finish_pca(acc, rows, "c", why=", for a test", stacklevel=1)
    assert record[0].filename == __file__
    assert pca.total_variance == 0.0
    acc.partial_fit(np.arange(6.0).reshape(2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        finish_pca(acc, rows, "c", why="", stacklevel=1)


def test_sample_table_columns() -> None:
    table = sample_table(3, np.array(["x", "y", "x"]), pd.DataFrame({"m": [1.0, 2.0, 3.0]}))
    assert table.columns.tolist() == ["sample_id", "label", "m"]
    assert table["sample_id"].dtype == np.int64 and table["sample_id"].tolist() == [0, 1, 2]
    assert sample_table(2, None, None).columns.tolist() == ["sample_id"]


def test_scores_written_in_small_chunks_are_the_projection_of_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("embedding_explorer.store.format.SCORE_CHUNK_BYTES", 4 * 3 * 70)  # 70 rows of k=3
    x = torch.randn(500, 6, generator=torch.Generator().manual_seed(3))
    run = ee.explore(None, x, ["input"], out=tmp_path / "r", n_components=3, progress=False)
    key = run.manifest["layers"][0]["key"]
    assert zarr.open_array(str(tmp_path / "r" / "arrays.zarr" / "scores" / key), mode="r").chunks == (70, 3)
    layer = run["input"]
    expected = (x.numpy().astype(np.float64) - layer.mean) @ layer.components.T
    np.testing.assert_allclose(layer.scores, expected, rtol=1e-5, atol=1e-5)


def test_write_scores_refuses_fewer_stored_rows_than_samples_and_lets_kept_rows_go(tmp_path: Path) -> None:
    """Scores for more samples than the store holds are refused, naming the layer (the last
    score chunk would otherwise keep its zeros); once written, the rows kept in memory for the
    scores are let go (the store is read after that)."""
    x = np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32)
    writer = RunWriter(tmp_path / "r", ["a", "b"])
    writer.layout({"a": 3, "b": 3}, rows_per_chunk=16)
    for layer in ("a", "b"):
        writer.append_activations(layer, x)
    writer.finish_activations()
    pca = StreamingPCA(2).fit(x).finalize()
    with pytest.raises(ee.EmbeddingExplorerError, match="layer 'a' has 40 stored rows for 50 samples"):
        write_scores(writer, "a", pca, 50)
    write_scores(writer, "b", pca, 40)
    writer.activations("b")[...] = 0  # only a read of the store sees this
    np.testing.assert_array_equal(np.concatenate(list(writer.stored_rows("b", 40))), np.zeros_like(x))
    writer.abort()
