"""Probing along ICA and directions through the API, and the export files.

Every answer is checked against the library's own objects (``layer.ica()``, ``layer.direction``,
``layer.label_direction``, the export tables) and against numpy where a hand computation is short.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import embedding_explorer as ee
from embedding_explorer import export
from embedding_explorer.server import create_app

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what the project pins
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

NAMES = ["cat", "dog", "fox"]
LAYER = "/api/runs/blobs/layers/input"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    """Three labelled blobs in 6-d, with non-Gaussian (uniform) directions for ICA to find."""
    rng = np.random.default_rng(0)
    labels = np.arange(240) % 3
    centres = rng.normal(0, 3, (3, 6))
    x = centres[labels] + rng.uniform(-1, 1, (240, 6)) * np.array([3, 2, 1, 1, 0.5, 0.5])
    return ee.explore(
        None,
        torch.from_numpy(x.astype(np.float32)),
        ["input"],
        out=tmp_path_factory.mktemp("bases") / "blobs",
        name="blobs",
        labels=labels.tolist(),
        label_names=NAMES,
        metadata={"size": rng.uniform(0, 1, 240)},
        n_components=4,
        progress=False,
    )


@pytest.fixture(scope="module")
def client(run: ee.Run, tmp_path_factory: pytest.TempPathFactory):
    with TestClient(create_app([run], static_dir=tmp_path_factory.mktemp("no-ui"))) as c:
        yield c


def make(client: TestClient, body: dict[str, object]) -> dict[str, object]:
    r = client.post(f"{LAYER}/directions", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_ica_basis_is_layer_ica(client: TestClient, run: ee.Run) -> None:
    ica = run["input"].ica()
    info = client.get(f"{LAYER}/basis", params={"basis": "ica"}).json()
    assert info["kind"] == "ica" and info["n_components"] == 4
    assert info["names"] == ["IC 1", "IC 2", "IC 3", "IC 4"]
    assert info["kurtosis"] == pytest.approx(ica.kurtosis.tolist())
    assert info["explained_variance_ratio"] is None

    gallery = client.get(f"{LAYER}/gallery", params={"basis": "ica", "n": 5}).json()
    assert gallery["basis"] == "ica" and gallery["kind"] == "ica"
    for c, comp in enumerate(gallery["components"]):
        low, high = ica.extremes(c, 5)
        assert [s["id"] for s in comp["low"]] == low.tolist()
        assert [s["id"] for s in comp["high"]] == high.tolist()
        assert [s["score"] for s in comp["high"]] == pytest.approx(ica.scores[high, c].tolist())
        # by hand: the highest scores of that column
        assert sorted(ica.scores[:, c].tolist(), reverse=True)[:5] == pytest.approx(
            [s["score"] for s in comp["high"]]
        )
        assert comp["kurtosis"] == pytest.approx(float(ica.kurtosis[c]))
        assert comp["explained_variance_ratio"] is None

    pca = client.get(f"{LAYER}/gallery", params={"n": 5}).json()
    assert pca["kind"] == "pca"
    assert [s["id"] for s in pca["components"][0]["high"]] != [
        s["id"] for s in gallery["components"][0]["high"]
    ]


def test_ica_quantile_histogram_scores_and_sample(client: TestClient, run: ee.Run) -> None:
    ica = run["input"].ica()
    q = client.get(f"{LAYER}/components/1/quantile", params={"basis": "ica", "q": 0.3, "n": 4}).json()
    assert q["value"] == pytest.approx(float(np.quantile(ica.scores[:, 1].astype(float), 0.3)))
    assert [s["id"] for s in q["samples"]] == ica.quantile_samples(1, 0.3, 4).tolist()

    h = client.get(
        f"{LAYER}/components/2/histogram", params={"basis": "ica", "bins": 6, "by_label": True}
    ).json()
    expected = ica.histogram(2, 6, by_label=True)
    assert h["edges"] == pytest.approx(expected.edges.tolist())
    assert h["counts"] == expected.counts.tolist()
    assert set(h["by_label"]) == set(NAMES)

    r = client.get(f"{LAYER}/scores", params={"basis": "ica", "components": "3,0"})
    assert r.headers["X-Shape"] == "240,2"
    block = np.frombuffer(r.content, dtype="<f4").reshape(240, 2)
    np.testing.assert_array_equal(block, ica.scores[:, [3, 0]])

    s = client.get("/api/runs/blobs/samples/17", params={"layer": "input", "basis": "ica"}).json()
    assert s["basis"] == "ica"
    assert s["scores"] == pytest.approx(ica.scores[17].tolist())
    below = [(ica.scores[:, c] < ica.scores[17, c]).sum() / 239 * 100 for c in range(4)]
    assert s["percentiles"] == pytest.approx(below)


def test_direction_from_two_labels(client: TestClient, run: ee.Run) -> None:
    out = make(client, {"label_a": "cat", "label_b": "fox"})
    expected = run["input"].label_direction("cat", "fox")
    assert out["name"] == "cat → fox"
    assert (out["label_a"], out["label_b"]) == ("cat", "fox")
    assert (out["n_a"], out["n_b"]) == (80, 80)
    assert out["separation"] == pytest.approx(expected.separation)
    assert out["basis"] == f"dir:{out['id']}"

    # the same direction by hand: unit vector between the two class means
    x = np.asarray(run["input"].activations[...], dtype=float)
    labels = np.asarray(run.labels)
    v = x[labels == 2].mean(0) - x[labels == 0].mean(0)
    v /= np.linalg.norm(v)
    scores = (x - run["input"].mean) @ v

    gallery = client.get(f"{LAYER}/gallery", params={"basis": out["basis"], "n": 6}).json()
    assert gallery["kind"] == "direction" and gallery["separation"] == pytest.approx(expected.separation)
    (comp,) = gallery["components"]
    assert comp["name"] == "cat → fox"
    assert [s["id"] for s in comp["high"]] == np.argsort(-scores, kind="stable")[:6].tolist()
    assert [s["score"] for s in comp["low"]] == pytest.approx(np.sort(scores)[:6], rel=1e-4, abs=1e-4)
    # the high end is mostly fox, the low end mostly cat
    assert [s["label"] for s in comp["high"]].count("fox") >= 5
    assert [s["label"] for s in comp["low"]].count("cat") >= 5

    q = client.get(f"{LAYER}/components/0/quantile", params={"basis": out["basis"], "q": 0.5}).json()
    assert q["value"] == pytest.approx(float(np.median(scores)), rel=1e-4, abs=1e-4)

    # the same groups give the same id; GET lists it
    again = make(client, {"label_a": "0", "label_b": "2"})  # stored values work as well as names
    assert again["id"] == out["id"]
    listed = client.get(f"{LAYER}/directions").json()
    assert out["id"] in [d["id"] for d in listed]


def test_direction_from_two_selections(client: TestClient, run: ee.Run) -> None:
    ids_a, ids_b = list(range(0, 30)), list(range(100, 140))
    out = make(client, {"ids_a": ids_a, "ids_b": ids_b})
    expected = run["input"].direction(ids_a, ids_b)
    assert (out["n_a"], out["n_b"]) == (30, 40)
    assert out["separation"] == pytest.approx(expected.separation)
    assert out["label_a"] is None
    r = client.get(f"{LAYER}/scores", params={"basis": out["basis"]})
    assert r.headers["X-Shape"] == "240,1"
    np.testing.assert_allclose(np.frombuffer(r.content, dtype="<f4"), expected.scores[:, 0], rtol=1e-6)
    # order and repeats in a group do not change the direction
    shuffled = make(client, {"ids_a": [*ids_a[::-1], 3, 3], "ids_b": ids_b})
    assert shuffled["id"] == out["id"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"label_a": "cat"}, "both label_a and label_b"),
        ({"ids_a": [1, 2]}, "both ids_a and ids_b"),
        ({}, "either label_a and label_b, or ids_a and ids_b"),
        ({"label_a": "cat", "label_b": "dog", "ids_a": [1], "ids_b": [2]}, "not both"),
        ({"label_a": "cat", "label_b": "cow"}, "label_b='cow' is no label"),
        ({"ids_a": [], "ids_b": [1, 2]}, "ids_a is empty"),
        ({"ids_a": [1, 2], "ids_b": [5, 240]}, "out of range (240)"),
        ({"ids_a": [1, 2], "ids_b": [2, 1]}, "the same samples"),
        ({"label_a": "dog", "label_b": "dog"}, "the same samples"),
        ({"ids_a": [1], "ids_b": [2], "colour": "red"}, "colour"),
        ({"ids_a": [True, 2], "ids_b": [5, 6]}, "ids_a"),  # a boolean is not sample 1
        ({"ids_a": [1, 2], "ids_b": ["5", 6]}, "ids_b"),
    ],
)
def test_bad_directions_say_why(client: TestClient, body: dict[str, object], message: str) -> None:
    r = client.post(f"{LAYER}/directions", json=body)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]


def test_unknown_runs_layers_and_bases(client: TestClient) -> None:
    assert (
        client.post("/api/runs/nope/layers/input/directions", json={"ids_a": [1], "ids_b": [2]}).status_code
        == 404
    )
    r = client.post("/api/runs/blobs/layers/fc/directions", json={"ids_a": [1], "ids_b": [2]})
    assert r.status_code == 404 and "no layer 'fc'" in r.json()["detail"]
    for url, params, status, message in [
        (f"{LAYER}/gallery", {"basis": "dir:0123456789abcdef"}, 404, "no direction '0123456789abcdef'"),
        (f"{LAYER}/gallery", {"basis": "nmf"}, 422, "must be 'pca', 'ica' or 'dir:<id>'"),
        (f"{LAYER}/components/4/histogram", {"basis": "ica"}, 404, "out of range for ica"),
        (f"{LAYER}/scores", {"basis": "ica", "components": "0,9"}, 422, "out of range for ica"),
        (f"{LAYER}/basis", {"basis": "x" * 81}, 422, "basis"),
    ]:
        r = client.get(url, params=params)
        assert r.status_code == status, (url, r.text)
        assert message in r.json()["detail"], r.json()["detail"]


def test_a_direction_belongs_to_its_layer(run: ee.Run, tmp_path_factory: pytest.TempPathFactory) -> None:
    other = ee.explore(
        None,
        torch.randn(50, 3, generator=torch.Generator().manual_seed(4)),
        ["input"],
        out=tmp_path_factory.mktemp("other") / "o",
        name="other",
        progress=False,
    )
    with TestClient(create_app([run, other], static_dir=tmp_path_factory.mktemp("no-ui"))) as c:
        d = c.post(f"{LAYER}/directions", json={"ids_a": [1, 2], "ids_b": [3, 4]}).json()
        r = c.get("/api/runs/other/layers/input/gallery", params={"basis": d["basis"]})
        assert r.status_code == 422
        assert "belongs to layer 'input' of run 'blobs'" in r.json()["detail"]
        assert c.get("/api/runs/other/layers/input/directions").json() == []
        r = c.post("/api/runs/other/layers/input/directions", json={"label_a": "a", "label_b": "b"})
        assert r.status_code == 422 and "has no labels" in r.json()["detail"]


@pytest.mark.parametrize("table", ["scores", "extremes", "associations"])
def test_export_files_are_the_export_tables(client: TestClient, run: ee.Run, table: str) -> None:
    expected = {
        "scores": export.scores_table(run["input"]),
        "extremes": export.extremes_table(run["input"], n=5),
        "associations": export.association_table(run["input"]),
    }[table]
    params = {"n": 5}
    r = client.get(f"{LAYER}/export/{table}.csv", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == f'attachment; filename="blobs-input-{table}.csv"'
    assert r.headers["content-type"].startswith("text/csv")
    from_csv = pd.read_csv(io.StringIO(r.text))
    assert list(from_csv.columns) == list(expected.columns)
    assert len(from_csv) == len(expected)
    r = client.get(f"{LAYER}/export/{table}.parquet", params=params)
    assert r.status_code == 200
    assert r.content[:4] == b"PAR1"
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(r.content)), expected)


def test_export_of_ica_and_bad_names(client: TestClient, run: ee.Run) -> None:
    r = client.get(f"{LAYER}/export/scores.parquet", params={"basis": "ica"})
    assert 'filename="blobs-input-ica-scores.parquet"' in r.headers["content-disposition"]
    frame = pd.read_parquet(io.BytesIO(r.content))
    assert list(frame.columns) == ["sample_id", "label", "IC1", "IC2", "IC3", "IC4"]
    np.testing.assert_array_equal(frame["IC2"].to_numpy(), run["input"].ica().scores[:, 1])
    assert client.get(f"{LAYER}/export/scores.xlsx").status_code == 422
    assert client.get(f"{LAYER}/export/weights.csv").status_code == 422
    assert client.get("/api/runs/blobs/layers/fc/export/scores.csv").status_code == 404


@pytest.mark.parametrize("value", ["", "dir:", "dir:%00", "ICA", "pca ", "dir:../../etc", "-1", "ica,pca"])
def test_no_basis_value_makes_a_server_error(
    run: ee.Run, tmp_path_factory: pytest.TempPathFactory, value: str
) -> None:
    app = create_app([run], static_dir=tmp_path_factory.mktemp("no-ui"))
    with TestClient(app, raise_server_exceptions=False) as c:
        for path in (
            "gallery",
            "components/0/quantile",
            "components/0/histogram",
            "scores",
            "basis",
            "export/scores.csv",
        ):
            r = c.get(f"{LAYER}/{path}", params={"basis": value})
            assert r.status_code in (404, 422), (path, value, r.status_code, r.text)
            assert isinstance(r.json()["detail"], str)


# ---- review fixes ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stars(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    """Star ratings: raw values 0..2 named "1".."3", so a name reads like another raw value."""
    x = np.random.default_rng(3).normal(size=(90, 4)).astype(np.float32)
    x[np.arange(90) % 3 == 2, 0] += 2.0
    return ee.explore(
        None,
        x,
        ["input"],
        out=tmp_path_factory.mktemp("stars") / "stars",
        name="stars",
        labels=(np.arange(90) % 3).tolist(),
        label_names=["1", "2", "3"],
        n_components=3,
        progress=False,
    )


@pytest.fixture(scope="module")
def stars_client(stars: ee.Run, tmp_path_factory: pytest.TempPathFactory):
    with TestClient(create_app([stars], static_dir=tmp_path_factory.mktemp("no-ui"))) as c:
        yield c


def test_label_names_that_read_like_raw_values_do_not_merge_groups(
    stars_client: TestClient, stars: ee.Run
) -> None:
    r = stars_client.post("/api/runs/stars/layers/input/directions", json={"label_a": "1", "label_b": "3"})
    assert r.status_code == 200, r.text
    body = r.json()
    labels = np.asarray(stars.labels)
    # "1" is the name of raw value 0 only (not also raw value 1), "3" of raw value 2
    assert (body["n_a"], body["n_b"]) == (int((labels == 0).sum()), int((labels == 2).sum())) == (30, 30)
    lib = stars["input"].label_direction("1", "3")
    np.testing.assert_array_equal(lib.group_a, np.flatnonzero(labels == 0))
    assert body["separation"] == pytest.approx(lib.separation)
    # a JSON number is a raw value: 1 is the samples named "2"
    r = stars_client.post("/api/runs/stars/layers/input/directions", json={"label_a": 1, "label_b": "3"})
    assert r.json()["n_a"] == 30 and r.json()["label_a"] == "2"
    np.testing.assert_array_equal(stars["input"].label_direction(1, 2).group_a, np.flatnonzero(labels == 1))


def test_a_direction_between_single_samples_has_no_separation(client: TestClient, run: ee.Run) -> None:
    body = make(client, {"ids_a": [0], "ids_b": [1]})
    assert np.isnan(run["input"].direction([0], [1]).separation)  # no spread to measure it by
    assert body["separation"] is None
    assert client.get(f"{LAYER}/basis", params={"basis": body["basis"]}).json()["separation"] is None
    gallery = client.get(f"{LAYER}/gallery", params={"basis": body["basis"], "n": 2})
    assert gallery.status_code == 200 and gallery.json()["separation"] is None
    # ... and the schema says so, so the UI's types make it handle the null
    schema = client.get("/openapi.json").json()["components"]["schemas"]["DirectionOut"]
    assert {"type": "null"} in schema["properties"]["separation"]["anyOf"]


def test_sample_ids_beyond_int64_are_named(client: TestClient) -> None:
    r = client.post(f"{LAYER}/directions", json={"ids_a": [3, 2**70], "ids_b": [1]})
    assert r.status_code == 422
    assert f"ids_a holds sample id {2**70}, out of range" in r.json()["detail"]
    r = client.post(f"{LAYER}/directions", json={"ids_a": [1], "ids_b": [-(2**64)]})
    assert r.status_code == 422 and str(-(2**64)) in r.json()["detail"]


def test_a_new_name_for_the_same_groups_is_a_new_direction(client: TestClient) -> None:
    first = make(client, {"ids_a": [0, 3, 6], "ids_b": [1, 4, 7], "name": "first"})
    again = make(client, {"ids_a": [0, 3, 6], "ids_b": [1, 4, 7], "name": "first"})
    second = make(client, {"ids_a": [0, 3, 6], "ids_b": [1, 4, 7], "name": "second"})
    assert first["id"] == again["id"] != second["id"]
    assert (first["name"], second["name"]) == ("first", "second")
    assert second["separation"] == pytest.approx(first["separation"])
    names = client.get(f"{LAYER}/basis", params={"basis": second["basis"]}).json()["names"]
    assert names == ["second"]


def test_export_names_beyond_latin1(tmp_path: Path) -> None:
    from urllib.parse import unquote

    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    r = ee.explore(None, x, {"层": "input"}, out=tmp_path / "r", name="r", n_components=2, progress=False)
    with TestClient(create_app([r], static_dir=tmp_path / "no-ui")) as c:
        resp = c.get("/api/runs/r/layers/层/export/scores.csv")
    assert resp.status_code == 200, resp.text
    header = resp.headers["content-disposition"]
    assert header.startswith('attachment; filename="r-_-scores.csv"; ')
    assert unquote(header.split("filename*=UTF-8''")[1]) == "r-层-scores.csv"
    assert pd.read_csv(io.BytesIO(resp.content)).shape == (40, 3)
