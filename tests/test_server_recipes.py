"""The recipe book (server/recipes.py): bounded in memory, and on disk across restarts when the
server has a folder for it."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import embedding_explorer as ee
from embedding_explorer.server import create_app
from embedding_explorer.server.recipes import Recipe, RecipeBook

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

LAYER = "/api/runs/points/layers/input"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    data = torch.randn(60, 4, generator=torch.Generator().manual_seed(7))
    out = tmp_path_factory.mktemp("recipes") / "points"
    return ee.explore(None, data, ["input"], out=out, name="points", n_components=3, progress=False)


def recipe(i: int, n: int = 3, run: str = "points", version: str = "v1") -> Recipe:
    a = np.arange(i, i + n, dtype=np.int64)
    return Recipe(f"{i:016x}", run, "input", a, a + 100, f"d{i}", None, 0.5, n, n, version)


def test_a_restarted_server_makes_a_selection_direction_from_its_folder(run: ee.Run, tmp_path: Path) -> None:
    folder = tmp_path / "directions"
    body = {"ids_a": [1, 5, 9, 12], "ids_b": [2, 3, 40]}
    with TestClient(create_app([run], directions_dir=folder)) as first:
        made = first.post(f"{LAYER}/directions", json=body).json()
        before = first.get(f"{LAYER}/gallery", params={"basis": made["basis"], "n": 4}).json()
    assert [p.name for p in folder.iterdir()] == [f"{made['id']}.npz"]
    with TestClient(create_app([run], directions_dir=folder)) as restarted:  # no POST
        assert restarted.get(f"{LAYER}/gallery", params={"basis": made["basis"], "n": 4}).json() == before
        info = restarted.get(f"{LAYER}/basis", params={"basis": made["basis"]}).json()
        assert info["names"] == ["selection A (4) → B (3)"]
    with TestClient(create_app([run])) as in_memory:  # without the folder: a clear 404
        r = in_memory.get(f"{LAYER}/gallery", params={"basis": made["basis"]})
        assert r.status_code == 404 and f"no direction {made['id']!r}" in r.json()["detail"]


def test_the_book_is_bounded_in_memory_and_on_disk(tmp_path: Path) -> None:
    book = RecipeBook(max_recipes=2, max_bytes=10**6, folder=tmp_path)
    for i in range(3):
        book.add(recipe(i))
        for j, path in enumerate(sorted(tmp_path.glob("*.npz"))):  # older files are older
            os.utime(path, ns=(10**9 * (j + 1), 10**9 * (j + 1)))
    assert len(book) == 2
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [f"{1:016x}.npz", f"{2:016x}.npz"]
    key = ("points", "input", f"{2:016x}")
    fresh = RecipeBook(max_recipes=2, max_bytes=10**6, folder=tmp_path)
    read = fresh.get(key, "v1")
    assert read is not None and read.name == "d2" and read.group_b.tolist() == [102, 103, 104]
    assert fresh.get(key, "v2") is None  # written for other contents of the run
    assert fresh.get(("other", "input", f"{2:016x}"), "v1") is None  # ... or another run
    small = RecipeBook(max_recipes=10, max_bytes=2 * recipe(0, n=10).nbytes)
    for i in range(4):
        small.add(recipe(i, n=10))
    assert len(small) == 2  # two recipes of 160 bytes each fit
    tiny = RecipeBook(max_recipes=10, max_bytes=1)
    tiny.add(recipe(0))
    assert len(tiny) == 1  # the newest is always kept


def test_only_digests_name_files(tmp_path: Path) -> None:
    book = RecipeBook(max_recipes=4, max_bytes=10**6, folder=tmp_path)
    odd = Recipe("../../x", "points", "input", np.arange(2), np.arange(2) + 5, "odd", None, 1.0, 2, 2)
    book.add(odd)
    assert list(tmp_path.iterdir()) == [] and len(book) == 1
    assert book.get(("points", "input", "../../x")) is odd
    assert book.find("../../etc/passwd") is None
    (tmp_path / f"{7:016x}.npz").write_bytes(b"not a recipe")
    assert book.find(f"{7:016x}") is None
