"""The offline API page at /docs, and compressed answers (the UI bundle, JSON)."""

from __future__ import annotations

import gzip
import re
import warnings

import numpy as np
import pytest
import torch

import embedding_explorer as ee
from embedding_explorer.server import create_app

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what the project pins
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

BUNDLE = "export function f(){return 'embedding explorer';}\n" * 4000  # ~200 KB of script


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    data = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    run = ee.explore(
        None, data, ["input"], out=tmp_path_factory.mktemp("runs") / "r", name="r",
        labels=np.arange(40) % 2, progress=False,
    )  # fmt: skip
    ui = tmp_path_factory.mktemp("ui")
    (ui / "assets").mkdir()
    (ui / "index.html").write_text("<!doctype html><title>app</title><div id=root></div>")
    (ui / "assets" / "index.js").write_text(BUNDLE)
    return TestClient(create_app([run], static_dir=ui))


def test_docs_page_needs_nothing_from_the_internet(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    # every route of the schema is listed, with its parameters
    for path in client.get("/openapi.json").json()["paths"]:
        assert f">{path}<" in html.replace("&#x27;", "'")
    assert "<code>layer</code> (path, required)" in html
    # nothing loaded from elsewhere: no scripts, no external styles or images (Swagger UI's CDN)
    assert "<script" not in html
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", html), "the page links outside the server"
    assert client.get("/redoc").headers["content-type"].startswith("text/html")  # the app, not ReDoc
    assert "redoc" not in client.get("/redoc").text.lower()


def test_bundle_and_json_are_gzipped_when_asked(client: TestClient) -> None:
    raw = client.get("/assets/index.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.text == BUNDLE
    # httpx decodes gzip itself: read the bytes on the wire through a stream
    with client.stream("GET", "/assets/index.js", headers={"Accept-Encoding": "gzip"}) as r:
        assert r.headers["content-encoding"] == "gzip"
        wire = b"".join(r.iter_raw())
    assert gzip.decompress(wire).decode() == BUNDLE
    assert len(wire) < len(BUNDLE) / 20
    gallery = client.get("/api/runs/r/layers/input/gallery?n=16", headers={"Accept-Encoding": "gzip"})
    assert gallery.headers.get("content-encoding") == "gzip" and gallery.json()["layer"] == "input"
    small = client.get("/api/health", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers  # under 1 KiB: as it is
