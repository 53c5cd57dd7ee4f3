"""The analysis endpoints: associations, PC correlation, CKA and matched components."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient
from torch import nn

import embedding_explorer as ee
from embedding_explorer.server import analysis_routes, create_app
from embedding_explorer.server.errors import NotFoundError
from embedding_explorer.server.registry import Registry

N = 120


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[ee.Run, ee.Run, ee.Run]:
    out = tmp_path_factory.mktemp("analysis")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 6, generator=g)
    labels = (x[:, 0] > 0).long().numpy()  # PC-related labels, so eta2 is far from 0
    metadata = pd.DataFrame(
        {
            "size": x[:, 1].numpy() * 3 + 1,
            "site": ["a", "b", "c"] * (N // 3),
            "file": [f"photos/{i:04d}.jpg" for i in range(N)],  # an id, as an image folder's
        }
    )
    torch.manual_seed(1)
    trained = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
    other = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4))
    a = ee.explore(
        trained, x, ["0", "2"], out=out / "a", name="a", labels=labels, metadata=metadata, progress=False
    )
    b = ee.explore(other, x, ["0", "2"], out=out / "b", name="b", labels=labels, progress=False)
    c = ee.explore(trained, x[:60], ["0"], out=out / "c", name="c", progress=False)
    return a, b, c


@pytest.fixture(scope="module")
def client(runs: tuple[ee.Run, ee.Run, ee.Run]) -> TestClient:
    return TestClient(create_app(list(runs)))


def test_associations_match_the_library(client: TestClient, runs: tuple[ee.Run, ee.Run, ee.Run]) -> None:
    body = client.get("/api/runs/a/layers/0/associations").json()
    assert next(c["name"] for c in body["columns"]) == "label"
    by_name = {c["name"]: c for c in body["columns"]}
    label = runs[0]["0"].association("label", kind="categorical")
    np.testing.assert_allclose(by_name["label"]["values"], label["eta2"].to_numpy(), rtol=1e-12)
    assert by_name["label"]["summaries"] == label["summary"].tolist()
    size = runs[0]["0"].association("size", kind="numeric")
    assert by_name["size"]["statistic"] == "r"
    np.testing.assert_allclose(by_name["size"]["values"], size["r"].to_numpy(), rtol=1e-12)
    assert by_name["site"]["statistic"] == "eta2"
    # an id explains every component trivially (eta squared 1): left out, saying why
    assert "file" not in by_name and "different value for every sample" in body["skipped"]["file"]


def test_pc_correlation_within_and_between_runs(
    client: TestClient, runs: tuple[ee.Run, ee.Run, ee.Run]
) -> None:
    a, b, _ = runs
    within = client.get("/api/pc-correlation?run_a=a&layer_a=0&layer_b=2").json()
    expected = np.corrcoef(a["0"].scores.T.astype(float), a["2"].scores.T.astype(float))[
        : a["0"].n_components, a["0"].n_components :
    ]
    np.testing.assert_allclose(np.array(within["r"], dtype=float), expected, atol=1e-6)
    between = client.get("/api/pc-correlation?run_a=a&layer_a=2&run_b=b&layer_b=2").json()
    assert np.array(between["r"]).shape == (a["2"].n_components, b["2"].n_components)
    assert between["ratio_b"] == pytest.approx(b["2"].explained_variance_ratio.tolist())


def test_cka_table_and_matched_components(client: TestClient, runs: tuple[ee.Run, ee.Run, ee.Run]) -> None:
    a, b, _ = runs
    table = client.get("/api/compare/cka?run_a=a&run_b=b").json()
    assert table["layers_a"] == a.layers and table["layers_b"] == b.layers
    direct = ee.cka(a["0"], b["0"])
    assert table["cka"][0][0] == pytest.approx(direct, rel=1e-9)
    self_table = client.get("/api/compare/cka?run_a=a&run_b=a").json()
    assert np.allclose(np.diag(np.array(self_table["cka"], dtype=float)), 1.0)
    matched = client.get("/api/compare/matched?run_a=a&layer_a=2&run_b=a&layer_b=2").json()["pairs"]
    assert [(p["component_a"], p["component_b"], p["sign"]) for p in matched] == [
        (i, i, 1) for i in range(len(matched))
    ]
    assert all(p["r"] == pytest.approx(1.0) for p in matched)


def test_bad_analysis_requests_are_4xx_with_a_reason(client: TestClient) -> None:
    different = client.get("/api/compare/cka?run_a=a&run_b=c")
    assert different.status_code == 422 and "cover different samples" in different.json()["detail"]
    assert client.get("/api/compare/cka?run_a=a&run_b=nope").status_code == 404
    assert client.get("/api/pc-correlation?run_a=a&layer_a=0&layer_b=9").status_code == 404
    assert client.get("/api/runs/a/layers/7/associations").status_code == 404
    assert client.get("/api/compare/matched?run_a=a&layer_a=0&run_b=b").status_code == 422


def test_analysis_handlers_answer_when_called_directly(
    client: TestClient, runs: tuple[ee.Run, ee.Run, ee.Run]
) -> None:
    registry = Registry(list(runs))
    table = analysis_routes.cka_table(registry, "a", "b")
    assert table.model_dump(mode="json") == client.get("/api/compare/cka?run_a=a&run_b=b").json()
    assert registry.cache.get(registry.key("compare", ["a", "b"]), lambda: None) is not None
    with pytest.raises(NotFoundError, match="no layer '7'"):
        analysis_routes.association_table(registry, "a", "7")


def test_insights_route_is_the_library_with_run_ids(
    client: TestClient, runs: tuple[ee.Run, ee.Run, ee.Run]
) -> None:
    a, b, c = runs
    body = client.get("/api/runs/a/insights").json()
    assert body["compare"] == ["b", "c"]  # by default every served run that can be compared
    expected = a.insights(compare=[b, c])
    assert [i["sentence"] for i in body["insights"]] == expected["sentence"].tolist()
    assert [i["strength"] for i in body["insights"]] == pytest.approx(expected["strength"].tolist())
    kinds = {i["kind"] for i in body["insights"]}
    assert {"class_emergence", "model_comparison"} <= kinds  # c: a subset of the same data, no shift
    cka = next(i for i in body["insights"] if i["kind"] == "model_comparison")
    assert cka["other"] == "b" and {cka["target"][k] for k in ("ra", "rb")} == {"a", "b"}
    only = client.get("/api/runs/a/insights", params={"compare": ["b"]}).json()
    assert only["compare"] == ["b"]
    assert [i["sentence"] for i in only["insights"]] == a.insights(compare=[b])["sentence"].tolist()
    assert client.get("/api/runs/nope/insights").status_code == 404
    assert client.get("/api/runs/a/insights", params={"compare": ["nope"]}).status_code == 404


def test_insights_send_null_for_a_missing_column_or_other(client: TestClient) -> None:
    body = client.get("/api/runs/a/insights").json()["insights"]
    cka = next(i for i in body if i["kind"] == "model_comparison")
    classes = next(i for i in body if i["kind"] == "class_emergence")
    assert cka["column"] is None and classes["other"] is None  # JSON null, not "nan"


def test_insights_name_the_served_runs_when_two_share_a_name(tmp_path: Path) -> None:
    x = torch.randn(150, 6, generator=torch.Generator().manual_seed(0))
    made = []
    for seed in (0, 1):  # both named after the model class, "sequential"
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
        made.append(ee.explore(model, x, ["0", "2"], out=tmp_path / str(seed), progress=False))
    assert made[0].name == made[1].name
    client = TestClient(create_app(made))
    for run, other in (("sequential", "sequential-2"), ("sequential-2", "sequential")):
        body = client.get(f"/api/runs/{run}/insights").json()
        assert body["compare"] == [other]
        cka = next(i for i in body["insights"] if i["kind"] == "model_comparison")
        assert cka["other"] == other
        assert (cka["target"]["run"], cka["target"]["ra"], cka["target"]["rb"]) == (run, run, other)


def test_insights_follow_a_run_rebuilt_in_place(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 100)
    x = rng.normal(size=(200, 5))
    x[:, 0] += 5 * labels
    run = ee.from_arrays(
        {"L": x}, labels=labels, name="s", out=tmp_path / "s", progress=False, n_components=3
    )
    client = TestClient(create_app([run]))
    before = client.get("/api/runs/s/insights").json()["insights"]
    assert [i["sentence"] for i in before] == run.insights()["sentence"].tolist() != []
    x = rng.normal(size=(200, 5))
    x[:, 0] += 0.8 * labels  # the classes apart by less: another finding
    rebuilt = ee.from_arrays(
        {"L": x},
        labels=labels,
        name="s",
        out=tmp_path / "s",
        progress=False,
        n_components=3,
        recompute=True,
    )
    after = client.get("/api/runs/s/insights").json()["insights"]
    assert [i["sentence"] for i in after] == rebuilt.insights()["sentence"].tolist() != []
    assert [i["sentence"] for i in after] != [i["sentence"] for i in before]


def test_default_insights_leave_out_runs_without_a_comparable_layer(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(100, 6)
    labels = (x[:, 0] > 0).long().numpy()
    early = ee.explore(model, x, ["0"], out=tmp_path / "e", name="early", labels=labels, progress=False)
    late = ee.explore(model, x, ["2"], out=tmp_path / "l", name="late", progress=False)  # no shared layer
    narrow = ee.explore(None, x, ["input"], out=tmp_path / "n", name="narrow", labels=labels, progress=False)
    wide = ee.explore(None, torch.randn(100, 9), ["input"], out=tmp_path / "w", name="wide", progress=False)
    client = TestClient(create_app([early, late, narrow, wide]))
    for run_id, run in (("early", early), ("narrow", narrow)):
        answer = client.get(f"/api/runs/{run_id}/insights")
        assert answer.status_code == 200
        assert answer.json()["compare"] == []  # the other runs pass no comparison: left out
        own = run.insights()["sentence"].tolist()
        assert [i["sentence"] for i in answer.json()["insights"]] == own != []


def test_insights_refuse_the_run_itself(client: TestClient) -> None:
    answer = client.get("/api/runs/a/insights", params={"compare": ["a"]})
    assert answer.status_code == 422
    assert "run 'a' is the run whose findings these are" in answer.json()["detail"]
