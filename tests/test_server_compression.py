"""The app's one gzip decision (server/compression.py): level by the answer's kind, from the
request's Accept-Encoding; the bytes on the wire checked against zlib's own gzip stream."""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from embedding_explorer.server.answers import binary
from embedding_explorer.server.compression import BINARY_GZIP_LEVEL, GZIP_LEVEL, Compression

CODES = (np.arange(50_000) % 7).astype("<i4").tobytes()  # compresses well at any level
TEXT = " ".join(f"word{i % 997}" for i in range(20_000))


def answer(request: Request) -> Response:
    kind = request.path_params["kind"]
    if kind == "vector":
        return binary(CODES, {"X-Shape": str(len(CODES) // 4), "X-Dtype": "int32"})
    if kind == "matrix":
        return binary(CODES, {"X-Shape": f"{len(CODES) // 8},2", "X-Dtype": "int32"})
    if kind == "small":
        return binary(CODES[:400], {"X-Shape": "100", "X-Dtype": "int32"})
    if kind == "png":
        return Response(CODES, media_type="image/png")
    return Response(TEXT, media_type="text/plain")


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = Starlette(routes=[Route("/{kind}", answer)])
    app.add_middleware(Compression)
    return TestClient(app)


def wire(client: TestClient, path: str, accept: str) -> tuple[dict[str, str], bytes]:
    """The headers and the raw bytes sent (httpx would decode gzip itself)."""
    with client.stream("GET", path, headers={"Accept-Encoding": accept}) as r:
        return dict(r.headers), b"".join(r.iter_raw())


def gzipped(body: bytes, level: int) -> bytes:
    packer = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return packer.compress(body) + packer.flush()


@pytest.mark.parametrize(
    ("path", "body", "level"),
    [("/vector", CODES, BINARY_GZIP_LEVEL), ("/text", TEXT.encode(), GZIP_LEVEL)],
)
def test_gzip_level_follows_the_answers_kind(client: TestClient, path: str, body: bytes, level: int) -> None:
    headers, raw = wire(client, path, "deflate, GZIP")
    assert headers["content-encoding"] == "gzip" and "Accept-Encoding" in headers["vary"]
    assert gzip.decompress(raw) == body
    assert raw == gzipped(body, level)
    other = BINARY_GZIP_LEVEL if level == GZIP_LEVEL else GZIP_LEVEL
    assert raw != gzipped(body, other)


@pytest.mark.parametrize("path", ["/matrix", "/small", "/png"])
def test_score_matrices_small_answers_and_images_go_as_they_are(client: TestClient, path: str) -> None:
    headers, raw = wire(client, path, "gzip")
    assert "content-encoding" not in headers
    assert raw == (CODES[:400] if path == "/small" else CODES)


def test_nothing_is_gzipped_for_a_client_that_did_not_ask(client: TestClient) -> None:
    for path, body in (("/vector", CODES), ("/text", TEXT.encode())):
        headers, raw = wire(client, path, "identity")
        assert "content-encoding" not in headers and raw == body
