"""What every answer carries and every request is held to (server/guards.py, server/errors.py,
server/launch.py): security headers, a body limit, a Host allow-list without a token, short
422 answers documented as sent, and analyses that hold no thread cheap answers need."""

from __future__ import annotations

import asyncio
import json
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio.to_thread
import httpx
import jsonschema
import numpy as np
import pandas as pd
import pytest
import torch

import embedding_explorer as ee
from embedding_explorer.server import analysis_routes, create_app, launch
from embedding_explorer.server.answers import Cache
from embedding_explorer.server.directions import Directions, DirectionStore
from embedding_explorer.server.guards import MAX_BODY_BYTES, frame_ancestors

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

N = 40


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[ee.Run]:
    out = tmp_path_factory.mktemp("guards")
    x = torch.randn(N, 5, generator=torch.Generator().manual_seed(0))
    labels = np.arange(N) % 3
    texts = [f"sample {i}" for i in range(N)]
    return [
        ee.explore(None, x * s, ["input"], out=out / n, name=n, labels=labels, render=texts, progress=False)
        for n, s in (("a", 1.0), ("b", 2.0))
    ]


@pytest.fixture(scope="module")
def client(runs: list[ee.Run]) -> TestClient:
    return TestClient(create_app(runs))


# ---- headers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs",
        "/api/runs/a/layers/input/scores",
        "/api/runs/a/samples/0/render",
        "/api/runs/nope/layers/input/gallery",
        "/api/runs/a/layers/input/gallery?n=0",
        "/",
    ],
)
def test_every_answer_says_nosniff_and_who_may_frame_it(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.headers["x-content-type-options"] == "nosniff"
    policy = r.headers["content-security-policy"]
    assert policy == (
        "frame-ancestors 'self' http://localhost:* http://127.0.0.1:* https://localhost:* "
        "https://127.0.0.1:* vscode-webview:"
    )


def test_frame_ancestors_add_given_origins_and_refuse_non_origins(runs: list[ee.Run]) -> None:
    app = create_app(runs, frame_ancestors=["https://hub.example.org"])
    r = TestClient(app).get("/api/health")
    assert r.headers["content-security-policy"].endswith(" https://hub.example.org")
    with pytest.raises(ValueError, match=r"frame_ancestors: .* is no origin"):
        frame_ancestors(["https://a.org; script-src *"])


# ---- body limit --------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_before_it_is_read(runs: list[ee.Run]) -> None:
    c = TestClient(create_app(runs, max_body=1000))
    r = c.post("/api/runs/a/layers/input/directions", json={"ids_a": list(range(400)), "ids_b": [1]})
    assert r.status_code == 413
    assert r.json()["detail"].startswith("request body too large: at most 1000 bytes")
    ok = c.post("/api/runs/a/layers/input/directions", json={"ids_a": [0, 1], "ids_b": [2, 3]})
    assert ok.status_code == 200
    assert MAX_BODY_BYTES == 2**20


def test_a_chunked_body_is_refused_once_it_passes_the_limit(runs: list[ee.Run]) -> None:
    """No Content-Length: the server stops reading as soon as the bytes pass the limit."""
    app = create_app(runs, max_body=100_000)
    chunk = b" " * 65536
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < 10_000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/runs/a/layers/input/directions",
        "raw_path": b"/api/runs/a/layers/input/directions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8031),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 413
    assert pulled == 2  # 2 x 64 KiB > 100,000 bytes: not one chunk more was read


def test_a_422_quotes_at_most_a_few_hundred_characters_of_the_input(client: TestClient) -> None:
    huge = "9" * 500_000
    r = client.post("/api/runs/a/layers/input/directions", json={"ids_a": huge, "ids_b": [1]})
    assert r.status_code == 422
    assert len(r.content) < 2000
    assert "body parameter 'ids_a'" in r.json()["detail"] and "(500000 in all)" in r.json()["detail"]
    r = client.get("/api/runs/a/layers/input/gallery", params={"n": "x" * 20_000})
    assert r.status_code == 422 and len(r.content) < 2000


# ---- parameters and schema ---------------------------------------------------------------------


@pytest.mark.parametrize("param", ["run_a", "run_b", "layer_a", "layer_b"])
def test_an_empty_run_or_layer_is_refused_naming_it(client: TestClient, param: str) -> None:
    query = {"run_a": "a", "layer_a": "input", "run_b": "b", "layer_b": "input", param: ""}
    r = client.get("/api/pc-correlation", params=query)
    assert r.status_code == 422
    assert f"query parameter '{param}'" in r.json()["detail"]


def test_the_422_schema_is_what_is_sent(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    op = spec["paths"]["/api/runs/{run}/layers/{layer}/gallery"]["get"]
    schema = op["responses"]["422"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorAnswer"}
    validator = jsonschema.Draft202012Validator({**schema, "components": spec["components"]})
    for r in (
        client.get("/api/runs/a/layers/input/gallery?n=0"),  # FastAPI's validation
        client.get("/api/runs/a/layers/input/scores?components=x"),  # a route's own 422
        client.post("/api/runs/a/layers/input/directions", json={"ids_a": [1], "wrong": 1}),
    ):
        assert r.status_code == 422
        validator.validate(r.json())


# ---- hosts -------------------------------------------------------------------------------------


def test_without_a_token_only_known_hosts_are_answered_off_loopback_too(
    runs: list[ee.Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: dict[str, Any] = {}

    def capture(runs: object, **kwargs: Any) -> object:
        made.update(kwargs)
        raise KeyboardInterrupt  # stop before serving

    bind = launch.bind  # serve binds first (the port goes into a root path); here on loopback
    monkeypatch.setattr(launch, "bind", lambda host, port: bind("127.0.0.1", 0))
    monkeypatch.setattr(launch, "create_app", capture)
    with pytest.raises(KeyboardInterrupt):
        launch.serve(runs, host="192.0.2.7", no_token=True, hosts=["proxy.lan"])
    hosts = made["allowed_hosts"]
    assert hosts is not None and "evil.example" not in hosts
    assert {"127.0.0.1", "localhost", "[::1]", "192.0.2.7", "proxy.lan"} <= set(hosts)
    c = TestClient(create_app(runs, allowed_hosts=hosts))
    assert c.get("/api/runs", headers={"host": "evil.example:8031"}).status_code == 400
    assert c.get("/api/runs", headers={"host": "192.0.2.7:8031"}).status_code == 200
    assert launch.allowed_hosts("::1", None)[-1] == "[::1]"
    assert launch.allowed_hosts("0.0.0.0", "secret-token") is None  # a token protects


# ---- caches ------------------------------------------------------------------------------------


def test_cache_is_bounded_by_entries_and_bytes_least_recently_used_first() -> None:
    cache = Cache(max_entries=3, max_bytes=10_000)
    for i in range(5):
        cache.get(("k", i), lambda: np.zeros(10))
    assert len(cache) == 3 and ("k", 0) not in cache and ("k", 4) in cache
    cache.get(("k", 2), lambda: pytest.fail("computed twice"))  # used: now the newest
    cache.get(("big",), lambda: np.zeros(1200))  # 9,600 bytes: one entry too many
    assert ("k", 3) not in cache and ("k", 2) in cache and ("big",) in cache
    cache.get(("big2",), lambda: np.zeros(1000))  # 8,000 bytes more: all the others go
    assert len(cache) == 1 and cache.nbytes == 8000
    assert cache._locks == {}  # no lock is kept once computed


def test_histograms_of_directions_are_bounded_with_the_server(runs: list[ee.Run]) -> None:
    app = create_app(runs)
    app.state.directions = Directions(made=DirectionStore(limit=2))
    app.state.histograms = Cache(max_entries=4)
    c = TestClient(app)
    for k in range(12):
        made = c.post("/api/runs/a/layers/input/directions", json={"ids_a": [k], "ids_b": [k + 1, k + 2]})
        basis = made.json()["basis"]
        r = c.get("/api/runs/a/layers/input/components/0/histogram", params={"basis": basis, "bins": 5})
        assert r.status_code == 200 and sum(r.json()["counts"]) == N
    assert len(app.state.histograms) == 4
    assert len(app.state.directions.made) == 2
    served = app.state.registry.get("a")
    assert not getattr(served, "_histograms", {})  # nothing kept beside the bounded cache


# ---- analyses off the common threads -----------------------------------------------------------


def test_a_slow_cka_holds_no_thread_cheap_answers_need(
    runs: list[ee.Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_compare(a: ee.Run, b: ee.Run) -> SimpleNamespace:
        started.set()
        release.wait(120)
        return SimpleNamespace(cka=pd.DataFrame([[0.5]], index=["input"], columns=["input"]))

    monkeypatch.setattr(analysis_routes, "compare_models", slow_compare)
    app = create_app(runs)

    async def scenario() -> tuple[httpx.Response, int, list[httpx.Response]]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 4  # a small common pool
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            url = "/api/compare/cka?run_a=a&run_b=b"
            slow = [asyncio.create_task(client.get(url)) for _ in range(8)]  # more than the pool
            while not started.is_set():
                await asyncio.sleep(0.01)
            try:
                cheap = await asyncio.wait_for(client.get("/api/runs/a/layers/input/gallery"), 60)
                pending = sum(not task.done() for task in slow)
            finally:
                release.set()
            return cheap, pending, list(await asyncio.gather(*slow))

    cheap, pending, answers = asyncio.run(scenario())
    assert cheap.status_code == 200 and pending == 8  # answered while every CKA still waited
    assert [r.json()["cka"] for r in answers] == [[[0.5]]] * 8


def test_cli_serve_passes_the_guards_on(monkeypatch: pytest.MonkeyPatch, runs: list[ee.Run]) -> None:
    from embedding_explorer import cli, server

    seen: dict[str, Any] = {}
    monkeypatch.setattr(server, "serve", lambda runs, **kw: seen.update(kw))
    argv = ["serve", str(Path(runs[0].path)), "--allow-host", "box.lan", "--frame-ancestor", "https://h.org"]
    assert cli.main([*argv, "--max-body", "5000"]) == 0
    assert (seen["hosts"], seen["frame_ancestors"], seen["max_body"]) == (
        ["box.lan"],
        ["https://h.org"],
        5000,
    )
    assert json.dumps(seen["hosts"])  # plain lists
