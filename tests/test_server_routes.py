"""The HTTP API against real runs: every endpoint's answer checked against the Run's own arrays."""

from __future__ import annotations

import base64
import re
import warnings
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer.server import create_app, routes
from embedding_explorer.server.directions import Directions
from embedding_explorer.server.errors import NotFoundError
from embedding_explorer.server.registry import Registry

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what the project pins
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

N_IMAGES = 300
LABEL_NAMES = ["zero", "one", "two", "three", "four"]
TEXTS = [f"sample {i}: {'héllo wörld ✓' if i % 2 else 'plain'}" for i in range(40)]


@pytest.fixture(scope="session")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        OrderedDict(conv=nn.Conv2d(1, 4, 3), relu=nn.ReLU(), flat=nn.Flatten(), fc=nn.Linear(4 * 14 * 14, 8))
    )
    images = torch.rand(N_IMAGES, 1, 16, 16)
    brightness = images.mean(dim=(1, 2, 3)).double().numpy()
    brightness[7] = np.nan
    metadata = pd.DataFrame(
        {
            "brightness": brightness,
            "split": rng.choice(np.array(["train", "val", None], dtype=object), N_IMAGES),
            "fold": np.arange(N_IMAGES) % 4,
        }
    )
    return ee.explore(
        model,
        images,
        ["input", "conv", "fc"],
        out=tmp_path_factory.mktemp("runs") / "images",
        name="Tiny CNN",
        labels=np.arange(N_IMAGES) % 5,
        label_names=LABEL_NAMES,
        metadata=metadata,
        n_components=5,
        progress=False,
    )


@pytest.fixture(scope="session")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    data = torch.randn(len(TEXTS), 6, generator=torch.Generator().manual_seed(1))
    out = tmp_path_factory.mktemp("runs") / "texts"
    return ee.explore(None, data, ["input"], out=out, name="Text run!", render=TEXTS, progress=False)


@pytest.fixture(scope="session")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    data = torch.randn(30, 5, generator=torch.Generator().manual_seed(2))
    out = tmp_path_factory.mktemp("runs") / "plain"
    return ee.explore(None, data, ["input"], out=out, name="Tiny CNN", render="none", progress=False)


@pytest.fixture(scope="module")
def client(image_run: ee.Run, text_run: ee.Run, plain_run: ee.Run, tmp_path_factory: pytest.TempPathFactory):
    app = create_app([image_run, text_run, plain_run], static_dir=tmp_path_factory.mktemp("no-ui"))
    with TestClient(app) as c:
        yield c


IMG = "/api/runs/tiny-cnn"
TXT = "/api/runs/text-run"
PLAIN = "/api/runs/tiny-cnn-2"


def test_health(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok", "version": ee.__version__}


def test_runs_lists_every_run_under_unique_ids(client: TestClient, image_run: ee.Run) -> None:
    runs = client.get("/api/runs").json()
    assert [r["id"] for r in runs] == ["tiny-cnn", "text-run", "tiny-cnn-2"]
    info = runs[0]
    assert info["name"] == "Tiny CNN"
    assert info["n_samples"] == N_IMAGES
    assert info["model_class"] == "torch.nn.modules.container.Sequential"
    assert info["rendering_kind"] == "image/png"
    assert info["labels"] == {"present": True, "names": LABEL_NAMES, "values": [0, 1, 2, 3, 4]}
    assert [layer["name"] for layer in info["layers"]] == image_run.layers
    for layer in info["layers"]:
        lay = image_run[layer["name"]]
        assert layer["dim"] == lay.dim
        assert layer["n_components"] == lay.n_components
        assert layer["total_variance"] == pytest.approx(lay.total_variance)
        assert layer["pca_method"] == lay.pca_method
        np.testing.assert_allclose(layer["explained_variance_ratio"], lay.explained_variance_ratio)
    assert runs[1]["rendering_kind"] == "text/plain"
    assert runs[1]["labels"] == {"present": False, "names": None, "values": []}
    words = [
        {"name": "n_words", "kind": "categorical", "categories": ["3", "5"], "source": "input_statistic"}
    ]
    assert runs[1]["columns"] == words  # the texts' recorded word counts
    assert runs[2]["rendering_kind"] is None


def test_columns_label_first_then_metadata_by_kind(client: TestClient) -> None:
    columns = client.get("/api/runs").json()[0]["columns"]
    assert columns[:4] == [
        {"name": "label", "kind": "categorical", "categories": LABEL_NAMES, "source": "label"},
        {"name": "brightness", "kind": "numeric", "categories": None, "source": "metadata"},  # given: it wins
        {"name": "split", "kind": "categorical", "categories": ["train", "val"], "source": "metadata"},
        {"name": "fold", "kind": "categorical", "categories": ["0", "1", "2", "3"], "source": "metadata"},
    ]
    # then what explore recorded: the images' other statistics and the 8-class head's outputs
    recorded = [(c["name"], c["source"]) for c in columns[4:]]
    assert recorded == [
        ("contrast", "input_statistic"),
        ("edge_density", "input_statistic"),
        ("predicted", "output"),
        ("confidence", "output"),
        ("entropy", "output"),
        ("loss", "output"),  # labels 0..4 are class indices of the 8 scores
        ("correct", "output"),
    ]


@pytest.mark.parametrize("n", [1, 8, 200])
def test_gallery_is_the_extremes_of_every_component(client: TestClient, image_run: ee.Run, n: int) -> None:
    body = client.get(f"{IMG}/layers/fc/gallery", params={"n": n}).json()
    layer = image_run["fc"]
    assert body["layer"] == "fc"
    assert [c["index"] for c in body["components"]] == list(range(layer.n_components))
    for comp in body["components"]:
        c = comp["index"]
        low, high = layer.extremes(c, n)
        assert [s["id"] for s in comp["low"]] == low.tolist()
        assert [s["id"] for s in comp["high"]] == high.tolist()
        np.testing.assert_allclose([s["score"] for s in comp["low"]], layer.scores[low, c])
        assert [s["label"] for s in comp["high"]] == [LABEL_NAMES[i % 5] for i in high]
        assert comp["explained_variance_ratio"] == pytest.approx(layer.explained_variance_ratio[c])


def test_gallery_without_labels_has_null_labels(client: TestClient) -> None:
    comp = client.get(f"{TXT}/layers/input/gallery", params={"n": 3}).json()["components"][0]
    assert [s["label"] for s in comp["low"] + comp["high"]] == [None] * 6


@pytest.mark.parametrize("q", [0.0, 0.13, 0.5, 0.999, 1.0])
def test_quantile_is_layer_quantile_samples(client: TestClient, image_run: ee.Run, q: float) -> None:
    body = client.get(f"{IMG}/layers/conv/components/1/quantile", params={"q": q, "n": 5}).json()
    layer = image_run["conv"]
    assert body["q"] == q
    assert [s["id"] for s in body["samples"]] == layer.quantile_samples(1, q, 5).tolist()
    assert body["value"] == pytest.approx(np.quantile(layer.scores[:, 1].astype(np.float64), q), abs=1e-12)
    assert [s["label"] for s in body["samples"]] == [LABEL_NAMES[s["id"] % 5] for s in body["samples"]]


def test_quantile_defaults(client: TestClient, image_run: ee.Run) -> None:
    body = client.get(f"{IMG}/layers/fc/components/0/quantile").json()
    assert body["q"] == 0.5
    assert [s["id"] for s in body["samples"]] == image_run["fc"].quantile_samples(0, 0.5, 8).tolist()


def test_histogram_is_layer_histogram(client: TestClient, image_run: ee.Run) -> None:
    body = client.get(f"{IMG}/layers/fc/components/2/histogram", params={"bins": 12}).json()
    expected = image_run["fc"].histogram(2, 12)
    np.testing.assert_allclose(body["edges"], expected.edges)
    assert body["counts"] == expected.counts.tolist()
    assert body["by_label"] is None
    assert sum(body["counts"]) == N_IMAGES


def test_histogram_by_label_uses_label_names(client: TestClient, image_run: ee.Run) -> None:
    body = client.get(f"{IMG}/layers/fc/components/0/histogram", params={"by_label": "true"}).json()
    expected = image_run["fc"].histogram(0, 30, by_label=True)
    assert expected.by_label is not None
    assert body["by_label"] == {LABEL_NAMES[k]: v.tolist() for k, v in expected.by_label.items()}
    assert np.sum(list(body["by_label"].values()), axis=0).tolist() == body["counts"]


def test_histograms_are_cached(client: TestClient) -> None:
    url = f"{IMG}/layers/input/components/3/histogram"
    first = client.get(url, params={"bins": 7}).json()
    served = client.app.state.registry.get("tiny-cnn")  # type: ignore[attr-defined]
    cache = client.app.state.histograms  # type: ignore[attr-defined]
    assert ("tiny-cnn", served.etag_key, "input", "pca", 3, 7, False, None) in cache  # None: no filter
    assert client.get(url, params={"bins": 7}).json() == first


@pytest.mark.parametrize(("components", "cols"), [(None, [0, 1, 2, 3, 4]), ("0,1", [0, 1]), ("4,0", [4, 0])])
def test_scores_binary_is_float32_rows(
    client: TestClient, image_run: ee.Run, components: str | None, cols: list[int]
) -> None:
    params = {} if components is None else {"components": components}
    r = client.get(f"{IMG}/layers/fc/scores", params=params)
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-shape"] == f"{N_IMAGES},{len(cols)}"
    assert r.headers["x-dtype"] == "float32"
    scores = np.frombuffer(r.content, dtype="<f4").reshape(N_IMAGES, len(cols))
    np.testing.assert_array_equal(scores, image_run["fc"].scores[:, cols])


def test_scores_as_uint16_codes_within_half_a_step_and_not_gzipped(
    client: TestClient, image_run: ee.Run
) -> None:
    r = client.get(f"{IMG}/layers/fc/scores", params={"components": "3,1", "dtype": "uint16"})
    assert (r.headers["x-dtype"], r.headers["x-shape"]) == ("uint16", f"{N_IMAGES},2")
    assert "content-encoding" not in r.headers  # dense codes go as they are
    exact = image_run["fc"].scores[:, [3, 1]].astype(np.float64)
    lo0, hi0, lo1, hi1 = (float(v) for v in r.headers["x-bounds"].split(","))
    assert (lo0, hi0, lo1, hi1) == (
        exact[:, 0].min(),
        exact[:, 0].max(),
        exact[:, 1].min(),
        exact[:, 1].max(),
    )
    codes = np.frombuffer(r.content, dtype="<u2").reshape(N_IMAGES, 2).astype(np.float64)
    step = np.array([hi0 - lo0, hi1 - lo1]) / 65534
    decoded = np.array([lo0, lo1]) + codes * step
    assert np.all(np.abs(decoded - exact) <= step / 2 * (1 + 1e-9))


def test_binary_arrays_gzipped_at_level_1_unless_dense(client: TestClient, image_run: ee.Run) -> None:
    ids = client.get(f"{IMG}/select", headers={"Accept-Encoding": "gzip"})  # 300 int32 ids
    assert ids.headers["content-encoding"] == "gzip" and ids.headers["vary"] == "Accept-Encoding"
    assert np.frombuffer(ids.content, "<i4").tolist() == list(range(N_IMAGES))
    with client.stream("GET", f"{IMG}/select", headers={"Accept-Encoding": "gzip"}) as r:
        wire = b"".join(r.iter_raw())  # level 1: the same stream as zlib's at level 1
    packer = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    assert wire == packer.compress(ids.content) + packer.flush()
    plain = client.get(f"{IMG}/select", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == ids.content
    scores = client.get(f"{IMG}/layers/fc/scores", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in scores.headers
    assert scores.content == image_run["fc"].scores.astype("<f4").tobytes()


def test_label_column_codes_index_its_categories(client: TestClient, image_run: ee.Run) -> None:
    r = client.get(f"{IMG}/columns/label/values")
    assert (r.headers["x-dtype"], r.headers["x-kind"]) == ("int8", "categorical")  # 5 labels
    codes = np.frombuffer(r.content, dtype="<i1")
    assert codes.tolist() == image_run.labels.tolist()  # labels 0..4 are their own codes


def test_numeric_column_is_float32_with_nan(client: TestClient, image_run: ee.Run) -> None:
    r = client.get(f"{IMG}/columns/brightness/values")
    assert (r.headers["x-dtype"], r.headers["x-kind"]) == ("float32", "numeric")
    values = np.frombuffer(r.content, dtype="<f4")
    expected = image_run.metadata["brightness"].to_numpy().astype(np.float32)
    np.testing.assert_array_equal(values, expected)
    assert np.isnan(values[7])


def test_categorical_column_marks_missing_with_minus_one(client: TestClient, image_run: ee.Run) -> None:
    r = client.get(f"{IMG}/columns/split/values")
    assert r.headers["x-dtype"] == "int8"
    codes = np.frombuffer(r.content, dtype="<i1")
    categories = ["train", "val"]
    decoded = [categories[c] if c >= 0 else None for c in codes.tolist()]
    split = image_run.metadata["split"]
    assert decoded == [v if isinstance(v, str) else None for v in split.tolist()]
    assert -1 in codes.tolist()


def test_sample_detail(client: TestClient, image_run: ee.Run) -> None:
    body = client.get(f"{IMG}/samples/7").json()
    assert body["id"] == 7
    assert (body["label"], body["label_value"]) == ("two", 2)
    assert body["metadata"]["brightness"] is None  # NaN
    assert body["metadata"]["fold"] == 3
    split = image_run.metadata["split"][7]
    assert body["metadata"]["split"] == (split if isinstance(split, str) else None)
    assert (body["layer"], body["scores"], body["percentiles"]) == (None, None, None)


def test_sample_detail_with_layer(client: TestClient, image_run: ee.Run) -> None:
    body = client.get(f"{IMG}/samples/42", params={"layer": "conv"}).json()
    layer = image_run["conv"]
    assert body["layer"] == "conv"
    np.testing.assert_allclose(body["scores"], layer.scores[42])
    np.testing.assert_allclose(body["percentiles"], layer.percentiles(42))


def test_sample_detail_without_labels(client: TestClient) -> None:
    body = client.get(f"{TXT}/samples/0").json()
    assert (body["label"], body["label_value"], body["metadata"]) == (None, None, {"n_words": 3})


def test_render_png_with_etag_and_304(client: TestClient, image_run: ee.Run) -> None:
    r = client.get(f"{IMG}/samples/5/render")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert r.content == image_run.rendering(5)
    assert r.content.startswith(b"\x89PNG")
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    tag = r.headers["etag"]
    assert tag.startswith('"') and not tag.startswith("W/")
    assert client.get(f"{IMG}/samples/6/render").headers["etag"] != tag
    again = client.get(f"{IMG}/samples/5/render", headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    stale = client.get(f"{IMG}/samples/5/render", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200


def test_render_text(client: TestClient) -> None:
    r = client.get(f"{TXT}/samples/3/render")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.text == TEXTS[3]


def test_renderings_batch_of_images(client: TestClient, image_run: ee.Run) -> None:
    r = client.get(f"{IMG}/renderings", params={"ids": "3,0,299,3"})
    body = r.json()
    assert body["kind"] == "image/png"
    assert [item["id"] for item in body["items"]] == [3, 0, 299, 3]
    for item in body["items"]:
        prefix, _, data = item["data_url"].partition(",")
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(data) == image_run.rendering(item["id"])
    assert client.get(f"{IMG}/renderings", params={"ids": "3,0,299,3"}).headers["etag"] == r.headers["etag"]
    cached = client.get(
        f"{IMG}/renderings", params={"ids": "3,0,299,3"}, headers={"If-None-Match": r.headers["etag"]}
    )
    assert cached.status_code == 304
    assert r.headers["cache-control"].endswith("immutable")


def test_renderings_batch_of_texts(client: TestClient) -> None:
    body = client.get(f"{TXT}/renderings", params={"ids": "1,2"}).json()
    assert body == {"kind": "text/plain", "items": [{"id": 1, "text": TEXTS[1]}, {"id": 2, "text": TEXTS[2]}]}


def test_renderings_take_up_to_1000_ids(client: TestClient) -> None:
    ids = ",".join(str(i % N_IMAGES) for i in range(1000))
    assert len(client.get(f"{IMG}/renderings", params={"ids": ids}).json()["items"]) == 1000
    too_many = client.get(f"{IMG}/renderings", params={"ids": ids + ",1"})
    assert too_many.status_code == 422
    assert "at most 1000" in too_many.json()["detail"]


@pytest.mark.parametrize("path", ["/samples/0/render", "/renderings?ids=0"])
def test_no_renderings_is_404(client: TestClient, path: str) -> None:
    r = client.get(PLAIN + path)
    assert r.status_code == 404
    assert "no sample renderings" in r.json()["detail"]


BAD_REQUESTS = [
    # (url, status, text the detail must contain)
    ("/api/runs/nope/layers/fc/gallery", 404, "'tiny-cnn', 'text-run', 'tiny-cnn-2'"),
    (f"{IMG}/layers/nope/gallery", 404, "its layers: 'input', 'conv', 'fc'"),
    (f"{IMG}/layers/fc/gallery?n=0", 422, "query parameter 'n'"),
    (f"{IMG}/layers/fc/gallery?n=201", 422, "less than or equal to 200"),
    (f"{IMG}/layers/fc/gallery?n=abc", 422, "valid integer"),
    (f"{IMG}/layers/fc/gallery?n=2.5", 422, "valid integer"),
    (f"{IMG}/layers/fc/components/5/quantile", 404, "has 5 components (0..4)"),
    (f"{IMG}/layers/fc/components/-1/quantile", 422, "path parameter 'c'"),
    (f"{IMG}/layers/fc/components/x/quantile", 422, "path parameter 'c'"),
    (f"{IMG}/layers/fc/components/99999999999999999999999/quantile", 404, "out of range"),
    (f"{IMG}/layers/fc/components/0/quantile?q=1.5", 422, "query parameter 'q'"),
    (f"{IMG}/layers/fc/components/0/quantile?q=-0.1", 422, "query parameter 'q'"),
    (f"{IMG}/layers/fc/components/0/quantile?q=nan", 422, "finite number"),
    (f"{IMG}/layers/fc/components/0/quantile?q=inf", 422, "finite number"),
    (f"{IMG}/layers/fc/components/0/quantile?q=half", 422, "query parameter 'q'"),
    (f"{IMG}/layers/fc/components/0/quantile?n=0", 422, "query parameter 'n'"),
    (f"{IMG}/layers/fc/components/0/quantile?n=1000", 422, "query parameter 'n'"),
    (f"{IMG}/layers/fc/components/9/histogram", 404, "out of range"),
    (f"{IMG}/layers/fc/components/0/histogram?bins=0", 422, "query parameter 'bins'"),
    (f"{IMG}/layers/fc/components/0/histogram?bins=201", 422, "query parameter 'bins'"),
    (f"{IMG}/layers/fc/components/0/histogram?by_label=maybe", 422, "query parameter 'by_label'"),
    (f"{TXT}/layers/input/components/0/histogram?by_label=true", 422, "has no labels"),
    (f"{IMG}/layers/fc/scores?components=0,9", 422, "[9] are out of range"),
    (f"{IMG}/layers/fc/scores?components=-1", 422, "out of range"),
    (f"{IMG}/layers/fc/scores?components=", 422, "comma-separated"),
    (f"{IMG}/layers/fc/scores?components=a,b", 422, "comma-separated"),
    (f"{IMG}/layers/fc/scores?components=1,1", 422, "repeats"),
    (f"{IMG}/layers/nope/scores", 404, "no layer 'nope'"),
    (f"{IMG}/columns/nope/values", 404, "'label', 'brightness', 'split', 'fold'"),
    (f"{IMG}/samples/300", 404, "sample ids are 0..299"),
    (f"{IMG}/samples/-1", 422, "path parameter 'sample_id'"),
    (f"{IMG}/samples/one", 422, "path parameter 'sample_id'"),
    (f"{IMG}/samples/0?layer=nope", 404, "no layer 'nope'"),
    (f"{IMG}/samples/300/render", 404, "sample ids are 0..299"),
    (f"{IMG}/samples/1e3/render", 422, "path parameter 'sample_id'"),
    (f"{IMG}/renderings", 422, "query parameter 'ids': Field required"),
    (f"{IMG}/renderings?ids=", 422, "comma-separated sample ids"),
    (f"{IMG}/renderings?ids=1,,2", 422, "comma-separated sample ids"),
    (f"{IMG}/renderings?ids=1;2", 422, "comma-separated sample ids"),
    (f"{IMG}/renderings?ids=0,300", 404, "no sample 300"),
    (f"{IMG}/renderings?ids=-4", 404, "no sample -4"),
    ("/api/nope", 404, "no API route /api/nope"),
]


@pytest.mark.parametrize(("url", "status", "detail"), BAD_REQUESTS)
def test_bad_requests_are_4xx_with_a_clear_detail(
    client: TestClient, url: str, status: int, detail: str
) -> None:
    r = client.get(url)
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]


HAMMER_VALUES = [
    "",
    "-1",
    "0",
    "1e309",
    "nan",
    "-inf",
    "x",
    "%00",
    "1,2",
    "9" * 40,
    "0x10",
    " 1",
    "true",
    "\u0661",
]
HAMMER_URLS = [
    "/api/runs/{v}",
    "/api/runs/tiny-cnn/layers/{v}/gallery",
    "/api/runs/tiny-cnn/layers/fc/gallery?n={v}",
    "/api/runs/tiny-cnn/layers/fc/components/{v}/quantile",
    "/api/runs/tiny-cnn/layers/fc/components/0/quantile?q={v}&n={v}",
    "/api/runs/tiny-cnn/layers/fc/components/{v}/histogram?bins={v}&by_label={v}",
    "/api/runs/tiny-cnn/layers/fc/scores?components={v}",
    "/api/runs/tiny-cnn/columns/{v}/values",
    "/api/runs/tiny-cnn/samples/{v}?layer={v}",
    "/api/runs/tiny-cnn/samples/{v}/render",
    "/api/runs/tiny-cnn/renderings?ids={v}",
    "/api/runs/text-run/renderings?ids={v}",
]


def test_no_value_makes_a_server_error(image_run: ee.Run, text_run: ee.Run, tmp_path: Path) -> None:
    with TestClient(
        create_app([image_run, text_run], static_dir=tmp_path), raise_server_exceptions=False
    ) as c:
        for template in HAMMER_URLS:
            for value in HAMMER_VALUES:
                url = template.format(v=value)
                r = c.get(url)
                assert r.status_code < 500, (url, r.status_code, r.text)
                if r.status_code >= 400 and r.headers["content-type"] == "application/json":
                    assert isinstance(r.json()["detail"], str), url


def test_only_get_is_allowed(client: TestClient) -> None:
    assert client.post("/api/runs").status_code == 405
    assert client.delete(f"{IMG}/samples/0").status_code == 405


def test_openapi_lists_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {
        "/api/health",
        "/api/runs",
        "/api/runs/{run}/layers/{layer}/gallery",
        "/api/runs/{run}/layers/{layer}/components/{c}/quantile",
        "/api/runs/{run}/layers/{layer}/components/{c}/histogram",
        "/api/runs/{run}/layers/{layer}/scores",
        "/api/runs/{run}/columns/{name}/values",
        "/api/runs/{run}/samples/{sample_id}",
        "/api/runs/{run}/samples/{sample_id}/render",
        "/api/runs/{run}/renderings",
        "/api/runs/{run}/layers/{layer}/associations",
        "/api/runs/{run}/insights",
        "/api/pc-correlation",
        "/api/compare/cka",
        "/api/compare/matched",
        "/api/runs/{run}/layers/{layer}/basis",
        "/api/runs/{run}/layers/{layer}/directions",
        "/api/runs/{run}/layers/{layer}/export/{table}.{fmt}",
        "/api/compare/datasets",
        "/api/compare/datasets/histogram",
        "/api/compare/datasets/extremes",
        "/api/runs/{run}/select",
        "/api/runs/{run}/samples/{sample_id}/neighbors",
        "/api/runs/{run}/samples/{sample_id}/neighborhood",
        "/api/runs/{run}/tokens",
        "/api/runs/{run}/layers/{layer}/components/{c}/texts/{text_id}",
    }
    assert client.get("/docs").status_code == 200


def test_create_app_takes_runs_only(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="takes Run objects"):
        create_app([str(tmp_path)])  # type: ignore[list-item]


# ---- handlers called directly, without HTTP ------------------------------------------------------
def test_handlers_answer_when_called_directly(
    client: TestClient, image_run: ee.Run, text_run: ee.Run
) -> None:
    registry, directions = Registry([image_run, text_run]), Directions()
    gallery = routes.gallery(registry, directions, "tiny-cnn", "fc", n=3)
    assert gallery.model_dump(mode="json") == client.get(f"{IMG}/layers/fc/gallery", params={"n": 3}).json()
    detail = routes.sample(registry, directions, "tiny-cnn", 12, layer="conv")
    assert detail.model_dump(mode="json") == client.get(f"{IMG}/samples/12", params={"layer": "conv"}).json()
    body = routes.scores(registry, directions, "tiny-cnn", "fc", components="1").body
    np.testing.assert_array_equal(np.frombuffer(body, "<f4"), image_run["fc"].scores[:, 1])
    fresh = routes.render(registry, "public", "text-run", 3)
    assert fresh.status_code == 200 and fresh.headers["Cache-Control"] == "public"
    cached = routes.render(registry, "public", "text-run", 3, if_none_match=fresh.headers["ETag"])
    assert cached.status_code == 304


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r, d: routes.gallery(r, d, "nope", "fc"), "no run 'nope'; the served runs: 'tiny-cnn'"),
        (lambda r, d: routes.quantile(r, d, "tiny-cnn", "fc", 5), "has 5 components (0..4)"),
        (lambda r, d: routes.sample(r, d, "tiny-cnn", N_IMAGES), "sample ids are 0..299"),
        (lambda r, d: routes.column_values(r, "tiny-cnn", "nope"), "has no column 'nope'"),
        (lambda r, d: routes.gallery(r, d, "tiny-cnn", "fc", basis="dir:0123"), "no direction '0123'"),
    ],
)
def test_what_does_not_exist_raises_not_found(image_run: ee.Run, call: Any, message: str) -> None:
    with pytest.raises(NotFoundError, match=re.escape(message)):
        call(Registry([image_run]), Directions())
