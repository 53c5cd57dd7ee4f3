"""``ee.from_arrays`` and ``vectors_from_path``: activations captured elsewhere become a normal run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import zarr
from sklearn.decomposition import PCA

import embedding_explorer as ee
from embedding_explorer import records
from embedding_explorer.exceptions import EmbeddingExplorerError
from embedding_explorer.vectors import ParquetVectors
from support import MLP, lock_held_at_open


def test_from_arrays_equals_explore_on_the_same_activations(tmp_path: Path) -> None:
    x, y = torch.randn(300, 8), np.arange(300) % 3
    run = ee.explore(MLP(), (x, y), ["fc1", "fc2"], out=tmp_path / "model", batch_size=64, progress=False)
    arrays = {name: np.asarray(run[name].activations[:]) for name in run.layers}
    again = ee.from_arrays(arrays, labels=y, out=tmp_path / "arrays", batch_size=50, progress=False)
    assert again.layers == run.layers and again.n_samples == 300
    np.testing.assert_array_equal(again.labels, run.labels)
    for name in run.layers:
        a, b = run[name], again[name]
        np.testing.assert_allclose(b.explained_variance_ratio, a.explained_variance_ratio, rtol=0, atol=1e-9)
        np.testing.assert_allclose(b.explained_variance, a.explained_variance, rtol=1e-9, atol=1e-12)
        real = a.explained_variance > 1e-9  # fc1 (16 wide) has rank 8: the rest is rounding noise
        np.testing.assert_allclose(b.components[real], a.components[real], rtol=0, atol=1e-9)
        # scores are stored as float32: equal to its rounding
        np.testing.assert_allclose(b.scores[:], a.scores[:], rtol=0, atol=1e-5 * np.abs(a.scores[:]).max())
        sk = PCA(a.n_components, svd_solver="full").fit(arrays[name].astype(np.float64))
        np.testing.assert_allclose(
            b.explained_variance_ratio, sk.explained_variance_ratio_, rtol=1e-9, atol=1e-12
        )


def _rows(n: int = 120, d: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) * np.arange(1, d + 1)).astype(np.float32)


def _kinds(tmp_path: Path, rows: np.ndarray) -> dict[str, object]:
    np.save(tmp_path / "a.npy", rows)
    z = zarr.create_array(
        store=str(tmp_path / "a.zarr"), shape=rows.shape, chunks=(32, rows.shape[1]), dtype="f4"
    )
    z[:] = rows
    return {
        "numpy": rows,
        "memmap": np.load(tmp_path / "a.npy", mmap_mode="r"),
        "torch": torch.from_numpy(rows.copy()),
        "zarr": zarr.open_array(str(tmp_path / "a.zarr"), mode="r"),
    }


@pytest.mark.parametrize("kind", ["numpy", "memmap", "torch", "zarr"])
def test_each_kind_of_array_gives_the_same_run(tmp_path: Path, kind: str) -> None:
    rows = _rows()
    array = _kinds(tmp_path, rows)[kind]
    run = ee.from_arrays({"emb": array}, out=tmp_path / "run", n_components=4, batch_size=32, progress=False)
    sk = PCA(4, svd_solver="full").fit(rows.astype(np.float64))
    layer = run["emb"]
    np.testing.assert_allclose(layer.explained_variance_ratio, sk.explained_variance_ratio_, rtol=1e-9)
    np.testing.assert_allclose(np.abs(layer.components), np.abs(sk.components_), atol=1e-9)
    np.testing.assert_allclose(np.abs(layer.scores[:]), np.abs(sk.transform(rows)), atol=1e-4)


def test_token_arrays_are_reduced_like_hooked_outputs(tmp_path: Path) -> None:
    tokens = np.random.default_rng(1).normal(size=(40, 5, 3)).astype(np.float32)
    run = ee.from_arrays(
        {"resid": tokens, "last": tokens}, reduce={"last": "last"}, out=tmp_path / "r", progress=False
    )
    np.testing.assert_allclose(run["resid"].activations[:], tokens.mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(run["last"].activations[:], tokens[:, -1])
    assert run.manifest["layers"][1]["reduce"] == "last"


def test_texts_images_metadata_and_reuse(tmp_path: Path) -> None:
    rows = _rows(40)
    texts = [f"sample {i}" for i in range(40)]
    run = ee.from_arrays(
        {"emb": rows}, render=texts, metadata={"length": np.arange(40)}, out=tmp_path / "t", progress=False
    )
    assert run.manifest["rendering"]["kind"] == records.TEXT
    assert run.samples["length"].tolist() == list(range(40))
    generation = run.manifest["generation"]
    again = ee.from_arrays(
        {"emb": rows}, render=texts, metadata={"length": np.arange(40)}, out=tmp_path / "t", progress=False
    )
    assert again.manifest["generation"] == generation  # the same arrays: the finished run is reused
    changed = rows.copy()
    changed[0] += 1
    other = ee.from_arrays(
        {"emb": changed}, render=texts, metadata={"length": np.arange(40)}, out=tmp_path / "t", progress=False
    )
    assert other.manifest["generation"] != generation
    images = np.random.default_rng(2).random((40, 1, 12, 12)).astype(np.float32)
    shown = ee.from_arrays({"emb": rows}, render=images, out=tmp_path / "i", progress=False)
    assert shown.manifest["rendering"]["kind"] == records.IMAGE


@pytest.mark.parametrize(
    ("arrays", "kwargs", "message"),
    [
        ({}, {}, "at least one layer"),
        ({"a": np.zeros((4, 2)), "b": np.zeros((5, 2))}, {}, r"different numbers of rows.*'a': 4, 'b': 5"),
        ({"a": [[1.0, 2.0]]}, {}, "layer 'a' is a list; give an array"),
        ({"a": np.zeros((4, 2), complex)}, {}, "layer 'a' has dtype complex128"),
        ({"a": np.zeros((1, 2))}, {}, "1 rows; PCA needs at least 2"),
        ({"a": np.zeros((4, 2))}, {"labels": [1, 2]}, "labels has 2 entries for 4 samples"),
        ({"a": np.zeros((4, 2))}, {"render": ["x"]}, "render has 1 texts for 4 samples"),
        ({"a": np.ones((4, 2)) * np.nan}, {}, "layer 'a' produced NaN for sample 0"),
    ],
)
def test_bad_arrays_are_refused_naming_them(tmp_path: Path, arrays: dict, kwargs: dict, message: str) -> None:
    with pytest.raises((EmbeddingExplorerError, ValueError), match=message):
        ee.from_arrays(arrays, out=tmp_path / "bad", progress=False, **kwargs)
    assert not (tmp_path / "bad").exists()


def test_a_memory_map_is_streamed_not_loaded(tmp_path: Path) -> None:
    n, d = 60_000, 128  # 30.7 MB of float32 rows
    np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=(n, d))[:] = (
        np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
    )
    code = textwrap.dedent(
        f"""
        import tracemalloc, numpy as np, embedding_explorer as ee
        from embedding_explorer.store import format, writer
        format.CHUNK_BYTES = 1 << 20  # 2048-row chunks: what is held at once, far below the array
        writer.KEEP_BYTES = 1 << 20  # rows kept for the scores: a constant too, scaled down alike
        rows = np.load({str(tmp_path / "big.npy")!r}, mmap_mode="r")
        tracemalloc.start()
        run = ee.from_arrays({{"big": rows}}, out={str(tmp_path / "run")!r}, batch_size=1024, progress=False)
        print(tracemalloc.get_traced_memory()[1], run["big"].dim, run.n_samples)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak, dim, n_samples = map(int, out.stdout.split())
    assert (dim, n_samples) == (d, n)
    # what stays is O(chunk) for the rows plus O(N * n_components) for the scores' buffer
    assert peak < n * d * 4 / 3, f"peak numpy/Python allocations {peak / 1e6:.1f} MB for a 30.7 MB array"


def test_vectors_from_a_parquet_file_read_by_row_groups(tmp_path: Path) -> None:
    rows = _rows(100, 4)
    table = pa.table(
        {
            "emb": pa.array(list(rows), type=pa.list_(pa.float32())),
            "label": np.arange(100) % 4,
            "source": [f"doc{i}" for i in range(100)],
        }
    )
    pq.write_table(table, tmp_path / "v.parquet", row_group_size=30)
    found = ee.vectors_from_path(tmp_path / "v.parquet", "emb")
    vectors = found.arrays["emb"]
    assert isinstance(vectors, ParquetVectors) and vectors.shape == (100, 4)
    np.testing.assert_array_equal(vectors[25:65], rows[25:65])  # across three row groups
    np.testing.assert_array_equal(found.labels, np.arange(100) % 4)
    assert list(found.metadata.columns) == ["source"]
    run = found.explore(out=tmp_path / "run", n_components=3, batch_size=16, progress=False)
    sk = PCA(3, svd_solver="full").fit(rows.astype(np.float64))
    np.testing.assert_allclose(run["emb"].explained_variance_ratio, sk.explained_variance_ratio_, rtol=1e-9)
    assert run.samples["source"].tolist()[:2] == ["doc0", "doc1"]


def test_vectors_from_npz_and_a_folder_of_npy(tmp_path: Path) -> None:
    rows, labels = _rows(50), np.arange(50) % 2
    np.savez(tmp_path / "v.npz", layer3=rows, resid=rows[:, :3], labels=labels)
    found = ee.vectors_from_path(tmp_path / "v.npz")
    assert sorted(found.arrays) == ["layer3", "resid"] and found.metadata is None
    np.testing.assert_array_equal(found.labels, labels)
    assert list(ee.vectors_from_path(tmp_path / "v.npz", "resid").arrays) == ["resid"]
    folder = tmp_path / "npy"
    folder.mkdir()
    np.save(folder / "layer3.npy", rows)
    np.save(folder / "score.npy", np.linspace(0, 1, 50))
    found = ee.vectors_from_path(folder)
    assert isinstance(found.arrays["layer3"], np.memmap)
    assert list(found.metadata.columns) == ["score"] and found.labels is None


@pytest.mark.parametrize(
    ("make", "column", "message"),
    [
        (lambda p: p / "none.parquet", "emb", "no such file or folder"),
        (lambda p: (p / "e").mkdir() or p / "e", None, "the folder has no .npy files"),
        (lambda p: (p / "x.csv").write_text("a\n1\n") and p / "x.csv", None, "give a .parquet file"),
        (
            lambda p: p / "v.parquet",
            "nope",
            "--vector-column 'nope' is not in v.parquet; its columns: emb, n",
        ),
        (lambda p: p / "v.parquet", "n", "--vector-column 'n' of v.parquet holds int64, not vectors"),
    ],
)
def test_bad_vector_files_are_one_line_errors(tmp_path: Path, make, column, message: str) -> None:
    pq.write_table(pa.table({"emb": [[1.0, 2.0], [3.0, 4.0]], "n": [1, 2]}), tmp_path / "v.parquet")
    with pytest.raises(EmbeddingExplorerError, match=message):
        ee.vectors_from_path(make(tmp_path), column)


def test_ragged_parquet_vectors_name_the_row(tmp_path: Path) -> None:
    pq.write_table(pa.table({"emb": [[1.0, 2.0], [3.0, 4.0], [5.0]]}), tmp_path / "r.parquet")
    with pytest.raises(EmbeddingExplorerError, match="row 2 has 1 values, earlier rows 2"):
        ee.vectors_from_path(tmp_path / "r.parquet")


def test_vectors_command_builds_and_summarises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from embedding_explorer.cli import main

    rows = _rows(60, 5)
    pq.write_table(
        pa.table({"emb": pa.array(list(rows), type=pa.list_(pa.float32())), "label": np.arange(60) % 3}),
        tmp_path / "api.parquet",
    )
    out = tmp_path / "run"
    argv = ["vectors", str(tmp_path / "api.parquet"), "--vector-column", "emb", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("api: 60 samples") and "emb" in printed
    run = ee.open_run(out)
    sk = PCA(5, svd_solver="full").fit(rows.astype(np.float64))
    np.testing.assert_allclose(run["emb"].explained_variance_ratio, sk.explained_variance_ratio_, rtol=1e-9)
    np.testing.assert_array_equal(run.labels, np.arange(60) % 3)
    assert (
        main(["vectors", str(tmp_path / "api.parquet"), "--vector-column", "x", "--out", str(tmp_path / "b")])
        == 2
    )
    err = capsys.readouterr().err
    assert "--vector-column 'x' is not in api.parquet" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()


def test_vectors_runs_naming_one_model_compare_as_two_data_sets(tmp_path: Path) -> None:
    """``vectors --model-name``: two files of one model's vectors over two data sets compare as
    one model over two data sets; without it, the error says which flag to give."""
    from embedding_explorer.cli import main

    rng = np.random.default_rng(2)
    for name, shift in (("ref", 0.0), ("shifted", 1.5)):
        np.savez(tmp_path / f"{name}.npz", emb=rng.normal(size=(80, 4)) + shift)
    for name in ("ref", "shifted"):
        argv = ["vectors", str(tmp_path / f"{name}.npz"), "--out", str(tmp_path / name), "--quiet"]
        assert main([*argv, "--model-name", "encoder-v1"]) == 0
        assert main([*argv, "--out", str(tmp_path / f"{name}-unnamed")]) == 0
    named = ee.compare_datasets(ee.open_run(tmp_path / "ref"), ee.open_run(tmp_path / "shifted"))
    assert named.layers == ["emb"]
    with pytest.raises(EmbeddingExplorerError, match="vectors --model-name"):
        ee.compare_datasets(ee.open_run(tmp_path / "ref-unnamed"), ee.open_run(tmp_path / "shifted-unnamed"))


def test_explore_with_vectors_equals_the_vectors_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``explore --vectors PATH --vector-column C`` is the way in the issue names: the same run as
    the ``vectors`` command; mixing it with model specs, or giving neither, is one line."""
    from embedding_explorer.cli import main

    rows = _rows(40, 4)
    np.savez(tmp_path / "cache.npz", resid=rows, label=np.arange(40) % 2)
    argv = ["explore", "--vectors", str(tmp_path / "cache.npz"), "--vector-column", "resid", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "a"), "--name", "cache"]) == 0
    assert capsys.readouterr().out.startswith("cache: 40 samples")
    assert main(["vectors", str(tmp_path / "cache.npz"), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    a, b = ee.open_run(tmp_path / "a"), ee.open_run(tmp_path / "b")
    np.testing.assert_array_equal(a["resid"].scores, b["resid"].scores)
    np.testing.assert_array_equal(a.labels, np.arange(40) % 2)
    capsys.readouterr()
    assert main([*argv, "--layers", "x", "--out", str(tmp_path / "c")]) == 2
    assert "--vectors builds a run from stored vectors: drop --layers" in capsys.readouterr().err
    assert main(["explore", "--data", "x.csv", "--out", str(tmp_path / "d")]) == 2
    assert "explore needs --model, --layers (or --vectors PATH" in capsys.readouterr().err
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_the_run_from_arrays_built_is_opened_under_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer waiting for the lock cannot commit another run before from_arrays opens its own."""
    held = lock_held_at_open(monkeypatch)
    run = ee.from_arrays(
        {"a": np.random.default_rng(0).normal(size=(50, 4))}, out=tmp_path / "r", progress=False
    )
    assert held == [True] and run.n_samples == 50


def test_two_models_caches_over_the_same_texts_are_the_same_samples(tmp_path: Path) -> None:
    """A run from arrays is known by what its samples are (its texts or images), not by its
    activations, and however its rows are batched (a wide layer's batches are shorter): two
    models' caches over the same texts compare (``compare_models``, CKA against a hand
    computation), given as a list or a pandas Series, and an edited text makes other samples."""
    import pandas as pd

    rng = np.random.default_rng(4)
    n = 600
    texts = [f"gloss {i}" for i in range(n)]
    first = rng.normal(size=(n, 6))
    second = np.tanh(first @ rng.normal(size=(6, 4096)))  # another, wide model: batches of 512
    a = ee.from_arrays({"emb": first}, render=texts, out=tmp_path / "a", progress=False)
    b = ee.from_arrays({"emb": second}, render=pd.Series(texts), out=tmp_path / "b", progress=False)
    assert a.manifest["data"]["content_hash"] == b.manifest["data"]["content_hash"] is not None
    cmp = ee.compare_models(a, b)
    x, y = first - first.mean(axis=0), second - second.mean(axis=0)
    by_hand = np.linalg.norm(x.T @ y) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))
    assert cmp.cka.loc["emb", "emb"] == pytest.approx(by_hand, rel=1e-6)  # float32 stored rows
    edited = ee.from_arrays({"emb": first}, render=[*texts[:-1], "another"], out=tmp_path / "c",
                            progress=False)  # fmt: skip
    with pytest.raises(EmbeddingExplorerError, match="do not cover the same samples"):
        ee.compare_models(a, edited)
    images = rng.random((n, 1, 16, 16)).astype(np.float32)
    by_images = [
        ee.from_arrays({"emb": rows}, render=images, out=tmp_path / f"i{i}", progress=False)
        for i, rows in enumerate((first, second))
    ]
    assert by_images[0].manifest["data"]["content_hash"] == by_images[1].manifest["data"]["content_hash"]
