"""The ``?filter=`` every sample view takes: filtered galleries, probes, scores, histograms,
data-set ends and the ``/select`` ids equal filtering the Run by hand; bad filters answer 422
naming the field."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer.analysis import compare_datasets
from embedding_explorer.server import create_app

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what the project pins
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

N = 120
NAMES = ["ant", "bee", "cat"]


def model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 4))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ee.Run]:
    """A model over a reference set and over a shifted set, with a numeric and a boolean column."""
    folder = tmp_path_factory.mktemp("filters")
    g = torch.Generator().manual_seed(0)
    sets = {"ref": torch.randn(N, 6, generator=g), "shifted": torch.randn(N, 6, generator=g) + 1.0}
    made = {}
    for name, data in sets.items():
        rng = np.random.default_rng(len(name))
        metadata = pd.DataFrame(
            {
                "brightness": rng.uniform(0, 1, N),
                "correct": rng.uniform(0, 1, N) > 0.3,
                "tag": [f"t{i % 5}" for i in range(N)],
            }
        )
        made[name] = ee.explore(
            model(0), data, ["0", "2"], out=folder / name, name=name, labels=np.arange(N) % 3,
            label_names=NAMES, metadata=metadata, n_components=4, progress=False,
        )  # fmt: skip
    return made


@pytest.fixture(scope="module")
def client(runs: dict[str, ee.Run], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(list(runs.values()), static_dir=tmp_path_factory.mktemp("no-ui"))
    with TestClient(app) as c:
        yield c


SPEC: dict[str, Any] = {
    "labels": ["bee", "cat"],
    "ranges": {"brightness": [0.2, 0.9]},
    "flags": {"correct": True},
}


def f(spec: dict[str, Any]) -> str:
    return quote(json.dumps(spec))


def kept_by_hand(run: ee.Run, spec: dict[str, Any]) -> np.ndarray:
    meta = run.metadata
    keep = np.isin(run.labels, [1, 2]) & meta["correct"].to_numpy()
    keep &= (meta["brightness"] >= 0.2).to_numpy() & (meta["brightness"] <= 0.9).to_numpy()
    return np.flatnonzero(keep)


def test_select_answers_the_kept_ids(client: TestClient, runs: dict[str, ee.Run]) -> None:
    res = client.get(f"/api/runs/ref/select?filter={f(SPEC)}")
    assert res.status_code == 200
    ids = np.frombuffer(res.content, dtype="<i4")
    want = kept_by_hand(runs["ref"], SPEC)
    assert (ids == want).all() and 0 < len(want) < N
    assert res.headers["X-Count"] == str(len(want)) and res.headers["X-Total"] == str(N)
    everything = np.frombuffer(client.get("/api/runs/ref/select").content, dtype="<i4")
    assert (everything == np.arange(N)).all()


def test_gallery_extremes_are_the_extremes_among_the_kept(
    client: TestClient, runs: dict[str, ee.Run]
) -> None:
    kept = kept_by_hand(runs["ref"], SPEC)
    gallery = client.get(f"/api/runs/ref/layers/2/gallery?n=5&filter={f(SPEC)}").json()
    scores = runs["ref"]["2"].scores.astype(np.float64)
    for c in gallery["components"]:
        s = scores[kept, c["index"]]
        assert [r["id"] for r in c["low"]] == kept[np.lexsort((kept, s))][:5].tolist()
        assert [r["id"] for r in c["high"]] == kept[np.lexsort((kept, -s))][:5].tolist()
        assert {r["label"] for r in c["low"] + c["high"]} <= {"bee", "cat"}


def test_probe_and_histogram_read_the_kept_samples(client: TestClient, runs: dict[str, ee.Run]) -> None:
    kept = kept_by_hand(runs["ref"], SPEC)
    s = runs["ref"]["0"].scores[kept, 1].astype(np.float64)
    probe = client.get(f"/api/runs/ref/layers/0/components/1/quantile?q=0.5&n=3&filter={f(SPEC)}").json()
    assert probe["value"] == pytest.approx(np.median(s))
    assert {r["id"] for r in probe["samples"]} <= set(kept.tolist())
    hist = client.get(
        f"/api/runs/ref/layers/0/components/1/histogram?bins=6&by_label=true&filter={f(SPEC)}"
    ).json()
    assert sum(hist["counts"]) == len(kept)
    assert set(hist["by_label"]) == {"bee", "cat"}
    assert hist["edges"][0] == pytest.approx(s.min()) and hist["edges"][-1] == pytest.approx(s.max())
    nobody = f({"query": "nothing matches this"})
    empty = client.get(f"/api/runs/ref/layers/0/components/1/quantile?filter={nobody}").json()
    assert empty["value"] is None and empty["samples"] == []


def test_filtered_scores_are_the_kept_rows(client: TestClient, runs: dict[str, ee.Run]) -> None:
    kept = kept_by_hand(runs["ref"], SPEC)
    res = client.get(f"/api/runs/ref/layers/2/scores?components=0,2&filter={f(SPEC)}")
    assert res.headers["X-Shape"] == f"{len(kept)},2"
    values = np.frombuffer(res.content, dtype="<f4").reshape(len(kept), 2)
    np.testing.assert_array_equal(values, runs["ref"]["2"].scores[kept][:, [0, 2]])


def test_data_set_ends_and_histograms_filter_both_sets(client: TestClient, runs: dict[str, ee.Run]) -> None:
    spec = {"hide": ["ant"], "query": "t3"}
    q = f"run_a=ref&run_b=shifted&layer=2&component=0&filter={f(spec)}"
    ends = client.get(f"/api/compare/datasets/extremes?{q}&n=4").json()
    for name, side in (("ref", "reference"), ("shifted", "other")):
        kept = runs[name].select(spec)
        assert len(kept) == len([i for i in range(N) if i % 3 != 0 and i % 5 == 3])
        ids = [r["id"] for r in ends[side]["low"] + ends[side]["high"]]
        assert set(ids) <= set(kept.tolist())
    hist = client.get(f"/api/compare/datasets/histogram?{q}&bins=5").json()
    assert sum(hist["reference"]) == len(runs["ref"].select(spec))
    assert sum(hist["other"]) == len(runs["shifted"].select(spec))
    shift = client.get(f"/api/compare/datasets?run_a=ref&run_b=shifted&layer=2&filter={f(spec)}").json()
    assert (shift["n_reference"], shift["n_other"]) == (
        len(runs["ref"].select(spec)),
        len(runs["shifted"].select(spec)),
    )
    by_hand = compare_datasets(runs["ref"], runs["shifted"], layers=["2"]).shift("2", filter=spec)
    rows = {row["index"]: row for row in shift["components"]}
    for c in range(len(by_hand)):
        assert rows[c]["ks"] == pytest.approx(by_hand.iloc[c]["ks"])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("filter=%7Bnope", r"query parameter 'filter': filter is not valid JSON"),
        (
            f"filter={quote(json.dumps({'colour': 'red'}))}",
            r"query parameter 'filter': filter\.colour is not a filter field",
        ),
        (
            f"filter={quote(json.dumps({'ranges': {'brightness': [2, 1]}}))}",
            r"filter\.ranges\['brightness'\]: low=2\.0 is above",
        ),
        (
            f"filter={quote(json.dumps({'labels': ['yak']}))}",
            r"filter\.labels: run 'ref' has no label 'yak'; its labels: 'ant', 'bee', 'cat'",
        ),
        (
            f"filter={quote(json.dumps({'flags': {'tag': True}}))}",
            r"filter\.flags\['tag'\]: column 'tag' is not boolean",
        ),
        (
            f"filter={quote(json.dumps({'ranges': {'size': [0, 1]}}))}",
            r"filter\.ranges\['size'\]: run 'ref' has no column 'size'",
        ),
    ],
)
def test_bad_filters_answer_422_naming_the_field(client: TestClient, query: str, message: str) -> None:
    for url in ("/api/runs/ref/layers/2/gallery", "/api/runs/ref/select", "/api/runs/ref/layers/2/scores"):
        res = client.get(f"{url}?{query}")
        assert res.status_code == 422, (url, res.text)
        assert re.search(message, res.json()["detail"]), res.json()["detail"]


def test_exports_keep_the_filtered_rows(client: TestClient, runs: dict[str, ee.Run]) -> None:
    import io

    kept = kept_by_hand(runs["ref"], SPEC)
    scores = pd.read_csv(
        io.BytesIO(client.get(f"/api/runs/ref/layers/2/export/scores.csv?filter={f(SPEC)}").content)
    )
    assert scores["sample_id"].tolist() == kept.tolist()
    ends = pd.read_csv(
        io.BytesIO(client.get(f"/api/runs/ref/layers/2/export/extremes.csv?n=3&filter={f(SPEC)}").content)
    )
    assert set(ends["sample_id"]) <= set(kept.tolist())
    low, _ = runs["ref"]["2"].extremes(0, 3, filter=SPEC)
    assert ends[(ends["component"] == "PC1") & (ends["end"] == "low")]["sample_id"].tolist() == low.tolist()
