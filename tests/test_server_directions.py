"""Directions kept by what they are made of (server/directions.py): every id the server gave out
makes its direction again, so a client never posts a direction twice.

Label directions (``label:<a>:<b>``) are made again from the run; directions of sample ids from
their recipe, kept by the digest of their groups. The made directions and the recipes are each
bounded in memory.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import embedding_explorer as ee
from embedding_explorer.server import create_app
from embedding_explorer.server.directions import (
    Directions,
    DirectionStore,
    StoredDirection,
    content_id,
    direction_bytes,
    label_id,
)
from embedding_explorer.server.errors import NotFoundError
from embedding_explorer.server.registry import Registry

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

NAMES = ["cat", "dog", "fox"]
LAYER = "/api/runs/blobs/layers/input"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    rng = np.random.default_rng(1)
    labels = np.arange(240) % 3
    x = rng.normal(0, 3, (3, 6))[labels] + rng.normal(0, 1, (240, 6))
    return ee.explore(
        None,
        torch.from_numpy(x.astype(np.float32)),
        ["input"],
        out=tmp_path_factory.mktemp("directions") / "blobs",
        name="blobs",
        labels=labels.tolist(),
        label_names=NAMES,
        n_components=3,
        progress=False,
    )


@pytest.fixture
def client(run: ee.Run, tmp_path_factory: pytest.TempPathFactory):
    with TestClient(create_app([run], static_dir=tmp_path_factory.mktemp("no-ui"))) as c:
        yield c


def forget(client: TestClient) -> None:
    """As a server does that dropped every made direction from its cache."""
    directions = client.app.state.directions  # type: ignore[attr-defined]
    directions.made.clear()
    assert len(directions.made) == 0


def test_the_direction_store_is_bounded_by_memory(run: ee.Run) -> None:
    layer = run["input"]
    made = [layer.direction([i], [i + 1, i + 2]) for i in range(6)]
    n, d = run.n_samples, layer.dim
    # float32 scores + int64 sort order + float64 sorted scores, the groups, three D-vectors
    assert direction_bytes(made[0]) == n * 20 + 8 * 3 + 3 * 8 * d
    store = DirectionStore(limit=100, max_bytes=3 * direction_bytes(made[0]) + 10)
    for i, direction in enumerate(made):
        store.put(StoredDirection(f"d{i}", "blobs", "input", direction, None))
    assert len(store) == 3 and store.nbytes <= 3 * direction_bytes(made[0]) + 10
    assert [store.get(("blobs", "input", f"d{i}")) is not None for i in range(6)] == [False] * 3 + [True] * 3
    tiny = DirectionStore(max_bytes=1)  # the newest is kept even when it alone is over the bound
    tiny.put(StoredDirection("x", "blobs", "input", made[0], None))
    assert len(tiny) == 1


def test_a_label_direction_is_named_by_its_labels_and_made_again_from_them(
    client: TestClient, run: ee.Run
) -> None:
    made = client.post(f"{LAYER}/directions", json={"label_a": "cat", "label_b": "fox"}).json()
    assert made["id"] == label_id([0], [2]) == "label:0:2"
    before = client.get(f"{LAYER}/gallery", params={"basis": made["basis"], "n": 5}).json()
    forget(client)
    after = client.get(f"{LAYER}/gallery", params={"basis": made["basis"], "n": 5}).json()
    assert after == before
    # a label id needs no POST at all: a fresh server makes it from the run
    with TestClient(create_app([run])) as fresh:
        r = fresh.get(f"{LAYER}/gallery", params={"basis": "dir:label:0:2", "n": 5})
        assert r.status_code == 200 and r.json() == before
        listed = fresh.get(f"{LAYER}/directions").json()
        assert [(d["id"], d["name"], d["label_a"], d["n_a"]) for d in listed] == [
            ("label:0:2", "cat → fox", "cat", 80)
        ]
    expected = run["input"].label_direction("cat", "fox")
    assert after["separation"] == pytest.approx(expected.separation)


def test_a_selection_direction_is_made_again_from_its_recipe(client: TestClient, run: ee.Run) -> None:
    ids_a, ids_b = [3, 1, 4, 15, 9], [2, 6, 5, 35]
    made = client.post(f"{LAYER}/directions", json={"ids_a": ids_a, "ids_b": ids_b}).json()
    assert made["id"] == content_id("blobs", "input", np.sort(ids_a), np.sort(ids_b))
    before = client.get(f"{LAYER}/components/0/quantile", params={"basis": made["basis"], "q": 0.3}).json()
    forget(client)
    after = client.get(f"{LAYER}/components/0/quantile", params={"basis": made["basis"], "q": 0.3}).json()
    assert after == before
    expected = run["input"].direction(ids_a, ids_b)
    assert after["value"] == pytest.approx(expected.quantile(0, 0.3))


def test_recipes_are_bounded_and_a_forgotten_one_is_a_clear_404(run: ee.Run) -> None:
    registry = Registry([run])
    served = registry.get("blobs")
    layer = served.layer("input")
    directions = Directions(max_recipes=2)
    ids = []
    for i in range(3):
        groups = (np.array([i], dtype=np.int64), np.array([i + 10, i + 11], dtype=np.int64))
        made = directions.make(served, layer, f"d{i}", groups, f"d{i}", None)
        assert (made.n_a, made.n_b) == (1, 2)
        ids.append(made.id)
    assert len(directions) == 2
    assert [r.id for r in directions.of_layer("blobs", "input")] == ["d1", "d2"]
    directions.made.clear()
    assert directions.get(served, layer, "d2").direction.name == "d2"  # made again from its recipe
    with pytest.raises(NotFoundError, match="no direction 'd0' on this server"):
        directions.get(served, layer, "d0")


@pytest.mark.parametrize(
    ("basis", "status", "detail"),
    [
        ("dir:label:0:3", 404, "its labels are at 0..2"),
        ("dir:label:1:1", 422, "the same samples"),
        ("dir:label:0:", 404, "no direction 'label:0:'"),
        ("dir:label:00:2", 404, "did you mean 'label:0:2'?"),
        ("dir:label:0+1:2", 404, "joins labels of one name only"),
        ("dir:label:0:2", 200, ""),
    ],
)
def test_label_ids_are_checked(client: TestClient, basis: str, status: int, detail: str) -> None:
    r = client.get(f"{LAYER}/basis", params={"basis": basis})
    assert r.status_code == status, r.text
    if detail:
        assert detail in r.json()["detail"]
    else:
        assert r.json()["names"] == ["cat → fox"]
