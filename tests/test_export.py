"""Exported tables read back with pyarrow and pandas equal the run's own arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer import EmbeddingExplorerError
from embedding_explorer.export import (
    association_table,
    extremes_table,
    file_stems,
    scores_table,
)
from embedding_explorer.outputs import OUTPUT_COLUMNS

N = 90
NAMES = ["ant", "bee", "cow"]
LAYERS = {"enc.out:0": "0", "head": "2"}  # layer names that are not file-safe
TABLES = ("scores", "extremes", "associations", "variance")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4))
    x = torch.rand(N, 6) ** 3  # skewed, so FastICA finds independent components
    labels = np.arange(N) % 3
    metadata = {
        "size": x[:, 0].numpy().astype(np.float64) * 2 + 1,
        "split": np.where(np.arange(N) % 2 == 0, "train", "test"),
        "constant": np.ones(N),  # a single value: no association, left out
        "path": [f"img_{i}.png" for i in range(N)],  # an id-like column
    }
    out = tmp_path_factory.mktemp("runs") / "exp"
    return ee.explore(
        model,
        x,
        LAYERS,
        out=out,
        labels=labels,
        label_names=NAMES,
        metadata=metadata,
        n_components=3,
        progress=False,
    )


@pytest.fixture(scope="module")
def exported(run: ee.Run, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("export")
    return folder, ee.export_run(run, folder, n=5)


def test_files_are_named_per_layer_table_and_format(exported: tuple[Path, list[Path]]) -> None:
    folder, files = exported
    expected = [
        folder / f"{stem}.{table}.{fmt}"
        for stem in ("enc.out_0", "head")
        for table in TABLES
        for fmt in ("parquet", "csv")
    ]
    assert files == expected
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in expected)  # no temp files


def test_scores_read_back_equal_the_run(run: ee.Run, exported: tuple[Path, list[Path]]) -> None:
    folder, _ = exported
    for name, stem in (("enc.out:0", "enc.out_0"), ("head", "head")):
        layer = run[name]
        table = pq.read_table(folder / f"{stem}.scores.parquet")
        assert table.column_names == ["sample_id", "label", "PC1", "PC2", "PC3"]
        np.testing.assert_array_equal(table["sample_id"].to_numpy(), np.arange(N))
        assert table["label"].to_pylist() == [NAMES[i % 3] for i in range(N)]
        scores = np.column_stack([table[f"PC{c + 1}"].to_numpy() for c in range(3)])
        assert scores.dtype == np.float32
        np.testing.assert_array_equal(scores, layer.scores)
        csv = pd.read_csv(folder / f"{stem}.scores.csv")
        np.testing.assert_array_equal(csv[["PC1", "PC2", "PC3"]].to_numpy().astype(np.float32), layer.scores)
        assert csv["label"].tolist() == table["label"].to_pylist()


def test_extremes_read_back_equal_the_run(run: ee.Run, exported: tuple[Path, list[Path]]) -> None:
    folder, _ = exported
    layer = run["head"]
    for frame in (
        pq.read_table(folder / "head.extremes.parquet").to_pandas(),
        pd.read_csv(folder / "head.extremes.csv"),
    ):
        assert list(frame.columns) == ["component", "end", "rank", "sample_id", "score", "label"]
        assert len(frame) == 3 * 2 * 5
        for c in range(3):
            for end, ids in zip(("low", "high"), layer.extremes(c, 5), strict=True):
                part = frame[(frame["component"] == f"PC{c + 1}") & (frame["end"] == end)]
                assert part["rank"].tolist() == [1, 2, 3, 4, 5]
                np.testing.assert_array_equal(part["sample_id"].to_numpy(), ids)
                np.testing.assert_array_equal(
                    part["score"].to_numpy().astype(np.float32), layer.scores[ids, c]
                )
                assert part["label"].tolist() == [NAMES[i % 3] for i in ids]


def test_associations_and_variance_read_back_equal_the_run(
    run: ee.Run, exported: tuple[Path, list[Path]]
) -> None:
    folder, _ = exported
    layer = run["enc.out:0"]
    table = pq.read_table(folder / "enc.out_0.associations.parquet").to_pandas()
    assert list(table.columns) == ["component", "column", "kind", "statistic", "value", "summary"]
    given = [c for c in dict.fromkeys(table["column"]) if c not in OUTPUT_COLUMNS]  # not the model's outputs
    assert given == ["label", "size", "split"]  # constant, path left out
    label = table[table["column"] == "label"]
    np.testing.assert_allclose(label["value"], layer.association()["eta2"], rtol=1e-12)
    assert label["summary"].tolist() == layer.association()["summary"].tolist()
    size = table[table["column"] == "size"]
    assert set(size["statistic"]) == {"r"} and set(size["kind"]) == {"numeric"}
    expected_r = [np.corrcoef(layer.scores[:, c], run.metadata["size"])[0, 1] for c in range(3)]
    np.testing.assert_allclose(size["value"], expected_r, rtol=1e-5)
    variance = pd.read_csv(folder / "enc.out_0.variance.csv")
    np.testing.assert_allclose(
        variance["explained_variance_ratio"], layer.explained_variance_ratio, rtol=1e-12
    )
    np.testing.assert_allclose(
        variance["cumulative_ratio"], np.cumsum(layer.explained_variance_ratio), rtol=1e-12
    )


def test_tables_of_a_direction_and_of_ica(run: ee.Run) -> None:
    layer = run["enc.out:0"]
    direction = layer.label_direction("ant", "cow")
    table = scores_table(direction)
    assert list(table.columns) == ["sample_id", "label", "ant -> cow"]
    np.testing.assert_array_equal(table["ant -> cow"].to_numpy(), direction.scores[:, 0])
    ica = layer.ica(2)
    extremes = extremes_table(ica, n=3)
    assert sorted(set(extremes["component"])) == ["IC1", "IC2"]
    np.testing.assert_array_equal(extremes["sample_id"][:3], ica.extremes(0, 3)[0])
    assert set(association_table(ica)["component"]) == {"IC1", "IC2"}


def test_export_into_a_folder_with_other_files(run: ee.Run, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "head.scores.csv").write_text("stale")
    files = ee.export_run(run, tmp_path, formats="csv")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert all(p.suffix == ".csv" for p in files) and len(files) == 2 * len(TABLES)
    assert pd.read_csv(tmp_path / "head.scores.csv").shape == (N, 5)  # replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*(p.name for p in files), "notes.txt"])


def test_a_run_without_labels_or_metadata(tmp_path: Path) -> None:
    run = ee.explore(
        None, np.random.default_rng(0).normal(size=(20, 3)), ["input"], out=tmp_path / "r", progress=False
    )
    assert list(scores_table(run["input"]).columns) == ["sample_id", "PC1", "PC2", "PC3"]
    assert list(extremes_table(run["input"], 2).columns) == ["component", "end", "rank", "sample_id", "score"]
    assert association_table(run["input"]).empty


def test_bad_arguments(run: ee.Run, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"formats='xlsx': choose from 'parquet', 'csv' \(or 'both'\)"):
        ee.export_run(run, tmp_path, formats="xlsx")
    with pytest.raises(ValueError, match="n=0 must be a positive integer"):
        ee.export_run(run, tmp_path, n=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(EmbeddingExplorerError, match="exists and is not a folder"):
        ee.export_run(run, tmp_path / "file")
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]


def test_file_stems_are_safe_and_unique() -> None:
    assert file_stems(["block1.0:1", "fc", "a/b", "..x"]) == {
        "block1.0:1": "block1.0_1",
        "fc": "fc",
        "a/b": "a_b",
        "..x": "x",
    }
    assert file_stems(["a:b", "a_b", "A_B", "c"]) == {
        "a:b": "a_b_00",
        "a_b": "a_b_01",
        "A_B": "A_B_02",
        "c": "c",
    }
    # a suffixed stem that another layer already has gets a further suffix, never a duplicate
    stems = file_stems(["a:b", "a_b", "a_b_00", "x", "X", "x_04"])
    assert stems == {
        "a:b": "a_b_00_1",
        "a_b": "a_b_01",
        "a_b_00": "a_b_00",
        "x": "x_03",
        "X": "X_04_1",
        "x_04": "x_04",
    }
    assert len({s.lower() for s in stems.values()}) == len(stems)


def test_label_column_maps_each_label_to_its_name() -> None:
    from types import SimpleNamespace

    from embedding_explorer.export import label_column

    labels = np.array([2, 0, 7, None, 1, 2, -1], dtype=object)
    run = SimpleNamespace(labels=labels, label_names=["ant", "bee", "cow"])
    run.label_name = lambda v: ee.Run.label_name(run, v)  # type: ignore[arg-type]
    column = label_column(run)  # type: ignore[arg-type]
    assert column is not None and column.name == "label"
    assert column.tolist() == ["cow", "ant", "7", None, "bee", "cow", "-1"]
