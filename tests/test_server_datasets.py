"""The data-set comparison API: every answer checked against ``ee.compare_datasets`` and numpy."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer.analysis.datasets import compare_datasets
from embedding_explorer.server import create_app, dataset_routes
from embedding_explorer.server.errors import NotFoundError
from embedding_explorer.server.registry import Registry

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what the project pins
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

URL = "/api/compare/datasets"


def model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(fc=nn.Linear(6, 5), act=nn.Tanh(), out=nn.Linear(5, 3))).eval()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ee.Run]:
    """One model over a reference set and a shifted set; another model over the reference."""
    folder = tmp_path_factory.mktemp("datasets")
    g = torch.Generator().manual_seed(0)
    reference = torch.randn(150, 6, generator=g)
    shifted = torch.randn(90, 6, generator=g) * 1.5 + torch.tensor([2.0, 0, 0, -1.0, 0, 0])

    def explore(m: nn.Module, data: torch.Tensor, name: str) -> ee.Run:
        labels = (np.arange(len(data)) % 3).tolist()
        return ee.explore(
            m,
            data,
            ["fc", "out"],
            out=folder / name,
            name=name,
            labels=labels,
            n_components=4,
            progress=False,
        )

    return {
        "ref": explore(model(0), reference, "ref"),
        "shifted": explore(model(0), shifted, "shifted"),
        "other-model": explore(model(1), reference, "other-model"),
    }


@pytest.fixture(scope="module")
def client(runs: dict[str, ee.Run], tmp_path_factory: pytest.TempPathFactory):
    app = create_app(list(runs.values()), static_dir=tmp_path_factory.mktemp("no-ui"))
    with TestClient(app) as c:
        yield c


def test_shift_table_is_the_ranked_comparison(client: TestClient, runs: dict[str, ee.Run]) -> None:
    r = client.get(URL, params={"run_a": "ref", "run_b": "shifted", "layer": "fc"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["layers"] == ["fc", "out"]
    assert (body["n_reference"], body["n_other"]) == (150, 90)
    ranked = compare_datasets(runs["ref"], runs["shifted"]).ranked("fc")
    assert [c["name"].replace(" ", "") for c in body["components"]] == list(ranked.index)
    assert [c["index"] for c in body["components"]] == [int(name[2:]) - 1 for name in ranked.index]
    for row, (_, expected) in zip(body["components"], ranked.iterrows(), strict=True):
        for column in (
            "w1_total_sd",
            "smd",
            "ks",
            "ks_pvalue",
            "wasserstein",
            "mean_reference",
            "mean_other",
        ):
            assert row[column] == pytest.approx(expected[column], rel=1e-9, abs=1e-12)
    shift = [c["w1_total_sd"] for c in body["components"]]  # the variance-aware ranking
    assert shift == sorted(shift, reverse=True)
    # the statistics themselves, by hand: the shifted set projected on the reference's components
    ref_layer = runs["ref"]["fc"]
    other = ref_layer.project(runs["shifted"]["fc"].activations[...])
    first = body["components"][0]
    a, b = ref_layer.scores[:, first["index"]].astype(float), other[:, first["index"]]
    pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    assert first["smd"] == pytest.approx((b.mean() - a.mean()) / pooled, rel=1e-4)
    ratios = ref_layer.explained_variance_ratio
    assert first["explained_variance_ratio"] == pytest.approx(ratios[first["index"]])


def test_captured_variance(client: TestClient, runs: dict[str, ee.Run]) -> None:
    body = client.get(URL, params={"run_a": "ref", "run_b": "shifted", "layer": "fc"}).json()
    captured = body["captured"]
    assert captured["k"] == [1, 2, 3, 4]
    other = runs["ref"]["fc"].project(runs["shifted"]["fc"].activations[...])
    total = np.asarray(runs["shifted"]["fc"].activations[...], dtype=float).var(axis=0, ddof=1).sum()
    expected = np.cumsum(other.var(axis=0, ddof=1)) / total
    assert captured["reference_components"] == pytest.approx(expected, rel=1e-4)
    own = np.cumsum(runs["shifted"]["fc"].explained_variance_ratio)
    assert captured["own_components"] == pytest.approx(own, rel=1e-6)
    assert all(r <= o + 1e-6 for r, o in zip(expected, own, strict=True))  # Ky Fan


def test_histogram_counts_both_sets_on_one_axis(client: TestClient, runs: dict[str, ee.Run]) -> None:
    params = {"run_a": "ref", "run_b": "shifted", "layer": "fc", "component": 1, "bins": 12}
    body = client.get(f"{URL}/histogram", params=params).json()
    a = runs["ref"]["fc"].scores[:, 1].astype(float)
    b = runs["ref"]["fc"].project(runs["shifted"]["fc"].activations[...])[:, 1]
    edges = np.asarray(body["edges"])
    assert len(edges) == 13
    assert edges[0] == pytest.approx(min(a.min(), b.min()), abs=1e-5)
    assert edges[-1] == pytest.approx(max(a.max(), b.max()), abs=1e-5)
    assert body["reference"] == np.histogram(a, edges)[0].tolist()
    assert sum(body["other"]) == 90 and sum(body["reference"]) == 150
    assert body["other"] == pytest.approx(np.histogram(b, edges)[0].tolist(), abs=1)  # float32 vs float64


def test_extremes_of_both_sets(client: TestClient, runs: dict[str, ee.Run]) -> None:
    params = {"run_a": "ref", "run_b": "shifted", "layer": "out", "component": 0, "n": 5}
    body = client.get(f"{URL}/extremes", params=params).json()
    ref_scores = runs["ref"]["out"].scores[:, 0]
    order = np.argsort(ref_scores, kind="stable")
    assert [s["id"] for s in body["reference"]["low"]] == order[:5].tolist()
    assert [s["id"] for s in body["reference"]["high"]] == order[::-1][:5].tolist()
    other = compare_datasets(runs["ref"], runs["shifted"]).other_scores("out")[:, 0]
    other_order = np.argsort(other, kind="stable")
    assert [s["id"] for s in body["other"]["low"]] == other_order[:5].tolist()
    assert [s["score"] for s in body["other"]["high"]] == pytest.approx(np.sort(other)[::-1][:5], rel=1e-6)
    labels = runs["shifted"].labels
    assert [s["label"] for s in body["other"]["low"]] == [str(labels[i]) for i in other_order[:5]]


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("", {"run_a": "ref", "run_b": "other-model", "layer": "fc"}, 422, "model"),
        ("", {"run_a": "ref", "run_b": "ref", "layer": "fc"}, 422, "both 'ref'"),
        ("", {"run_a": "nope", "run_b": "ref", "layer": "fc"}, 404, "no run 'nope'"),
        ("", {"run_a": "ref", "run_b": "shifted", "layer": "conv"}, 404, "no layer 'conv'"),
        ("", {"run_a": "ref", "run_b": "shifted"}, 422, "layer"),
        (
            "/histogram",
            {"run_a": "ref", "run_b": "shifted", "layer": "fc", "component": 4},
            404,
            "out of range",
        ),
        (
            "/histogram",
            {"run_a": "ref", "run_b": "shifted", "layer": "fc", "component": -1},
            422,
            "component",
        ),
        (
            "/histogram",
            {"run_a": "ref", "run_b": "shifted", "layer": "fc", "component": 0, "bins": 0},
            422,
            "bins",
        ),
        (
            "/extremes",
            {"run_a": "ref", "run_b": "shifted", "layer": "fc", "component": 9},
            404,
            "out of range",
        ),
        (
            "/extremes",
            {"run_a": "ref", "run_b": "shifted", "layer": "fc", "component": 0, "n": 999},
            422,
            "'n'",
        ),
        ("/extremes", {"run_a": "ref", "run_b": "other-model", "layer": "fc", "component": 0}, 422, "model"),
    ],
)
def test_bad_requests_say_why(
    client: TestClient, path: str, params: dict[str, object], status: int, message: str
) -> None:
    r = client.get(URL + path, params=params)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_runs_info_tells_models_and_data_apart(client: TestClient, runs: dict[str, ee.Run]) -> None:
    info = {r["id"]: r for r in client.get("/api/runs").json()}
    assert info["ref"]["model_fingerprint"] == info["shifted"]["model_fingerprint"]
    assert info["ref"]["model_fingerprint"] != info["other-model"]["model_fingerprint"]
    assert info["ref"]["data_fingerprint"] != info["shifted"]["data_fingerprint"]
    assert info["ref"]["data_fingerprint"] == info["other-model"]["data_fingerprint"]


def test_comparison_is_computed_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import embedding_explorer.server.dataset_routes as routes

    calls = []
    real = routes.compare_datasets

    def counting(a: ee.Run, b: ee.Run, *, layers: list[str]) -> object:
        calls.append((a.name, b.name, tuple(layers)))
        return real(a, b, layers=layers)

    monkeypatch.setattr(routes, "compare_datasets", counting)
    app = create_app([client.app.state.registry.get(i).run for i in ("ref", "shifted")], static_dir=tmp_path)  # type: ignore[attr-defined]
    with TestClient(app) as c:
        for path in ("", "/histogram", "/extremes"):
            params = {"run_a": "ref", "run_b": "shifted", "layer": "fc", "component": 0}
            assert c.get(URL + path, params=params).status_code == 200
    assert calls == [("ref", "shifted", ("fc",))]


def test_a_layer_that_differs_refuses_only_itself(tmp_path: Path) -> None:
    """Two runs of one model whose conv layer is reduced differently: fc still compares."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).eval()
    g = torch.Generator().manual_seed(1)
    made = [
        ee.explore(
            m,
            torch.randn(30, 1, 6, 6, generator=g) + shift,
            {"conv": "0", "fc": "3"},
            out=tmp_path / name,
            name=name,
            reduce={"conv": reduce},
            n_components=2,
            progress=False,
        )
        for name, reduce, shift in (("m1", "mean", 0.0), ("m2", "max", 0.5))
    ]
    with TestClient(create_app(made, static_dir=tmp_path / "no-ui")) as c:
        fc = c.get(URL, params={"run_a": "m1", "run_b": "m2", "layer": "fc"})
        conv = c.get(URL, params={"run_a": "m1", "run_b": "m2", "layer": "conv"})
    assert fc.status_code == 200, fc.text
    assert fc.json()["layers"] == ["fc"]  # only the layers that compare
    expected = compare_datasets(made[0], made[1], layers=["fc"]).ranked("fc")
    assert [row["smd"] for row in fc.json()["components"]] == pytest.approx(expected["smd"].tolist())
    assert conv.status_code == 422
    assert "layer 'conv' differs between runs 'm1' and 'm2': reduce 'mean' vs 'max'" in conv.json()["detail"]


def test_dataset_handlers_answer_when_called_directly(client: TestClient, runs: dict[str, ee.Run]) -> None:
    registry = Registry(list(runs.values()))
    hist = dataset_routes.histogram_of(registry, "ref", "shifted", "fc", 1, 12)
    params = {"run_a": "ref", "run_b": "shifted", "layer": "fc", "component": 1, "bins": 12}
    assert hist.model_dump(mode="json") == client.get(f"{URL}/histogram", params=params).json()
    with pytest.raises(NotFoundError, match=r"component=99 is out of range for layer 'fc' of 'ref'"):
        dataset_routes.extremes_of(registry, "ref", "shifted", "fc", 99, 8)
