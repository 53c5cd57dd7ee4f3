"""Neighbour routes: one layer's k nearest and a sample's neighbourhood across layers and against
another model, equal to the library's answers; bad requests answer 422 or 404."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from tests.support import MLP
from torch.utils.data import TensorDataset

import embedding_explorer as ee
from embedding_explorer.server import create_app

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what the project pins
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[ee.Run]:
    """Two models over the same 80 samples, and a third run over other data."""
    folder = tmp_path_factory.mktemp("nbr")
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(80, 8, generator=g), torch.arange(80) % 4
    made = []
    for seed, name, data in ((0, "a", x), (1, "b", x), (0, "c", x + 3)):
        torch.manual_seed(seed)
        made.append(
            ee.explore(
                MLP(),
                TensorDataset(data, y),
                ["fc1", "fc2"],
                out=folder / name,
                name=name,
                n_components=3,
                progress=False,
            )
        )
    return made


@pytest.fixture(scope="module")
def client(runs: list[ee.Run], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app(runs, static_dir=tmp_path_factory.mktemp("no-ui"))) as c:
        yield c


@pytest.mark.parametrize(("metric", "space"), [("cosine", "activations"), ("euclidean", "scores")])
def test_neighbors_equal_the_library(client: TestClient, runs: list[ee.Run], metric: str, space: str) -> None:
    res = client.get(f"/api/runs/a/samples/5/neighbors?layer=fc2&k=7&metric={metric}&space={space}")
    assert res.status_code == 200, res.text
    body = res.json()
    ids, dist = runs[0]["fc2"].neighbors(5, 7, metric, space=space)  # type: ignore[arg-type]
    assert [n["id"] for n in body["neighbors"]] == ids.tolist()
    np.testing.assert_allclose([n["distance"] for n in body["neighbors"]], dist)
    assert [n["label"] for n in body["neighbors"]] == [str(int(runs[0].labels[i])) for i in ids]
    assert (body["layer"], body["k"], body["metric"], body["space"]) == ("fc2", 7, metric, space)


def test_neighborhood_overlaps_layers_and_models(client: TestClient, runs: list[ee.Run]) -> None:
    body = client.get("/api/runs/a/samples/9/neighborhood?k=6&other=b").json()
    a, b = runs[0], runs[1]
    found = {name: a[name].neighbors(9, 6)[0] for name in a.layers}
    assert [row["layer"] for row in body["layers"]] == ["fc1", "fc2"]
    assert body["layers"][0]["overlap_previous"] is None
    shared = len(set(found["fc1"]) & set(found["fc2"]))
    assert body["layers"][1]["overlap_previous"] == shared / 6
    assert body["other"] == "b" and body["other_layers"] == ["fc1", "fc2"]
    for i, la in enumerate(a.layers):
        for j, lb in enumerate(b.layers):
            assert body["overlap"][i][j] == len(set(found[la]) & set(b[lb].neighbors(9, 6)[0])) / 6
    alone = client.get("/api/runs/a/samples/9/neighborhood?k=6").json()
    assert alone["other"] is None and alone["overlap"] == []


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/api/runs/a/samples/5/neighbors?layer=fc2&k=80", 422, r"k=80 must be at most 79"),
        ("/api/runs/a/samples/5/neighbors?layer=fc2&metric=l1", 422, r"query parameter 'metric'"),
        ("/api/runs/a/samples/5/neighbors?layer=nope", 404, r"run 'a' has no layer 'nope'"),
        ("/api/runs/a/samples/80/neighbors?layer=fc2", 404, r"run 'a' has no sample 80"),
        ("/api/runs/a/samples/5/neighborhood?other=c", 422, r"runs 'a' and 'c' hold different data"),
    ],
)
def test_bad_requests_say_what_is_wrong(client: TestClient, url: str, status: int, message: str) -> None:
    res = client.get(url)
    assert res.status_code == status, res.text
    assert re.search(message, res.json()["detail"])
