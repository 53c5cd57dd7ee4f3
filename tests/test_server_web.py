"""The server's edges: the token rule, the static UI, run ids, columns, and starting it for real."""

from __future__ import annotations

import warnings
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import torch

import embedding_explorer as ee
from embedding_explorer.server import create_app, serve
from embedding_explorer.server.auth import COOKIE, check_token
from embedding_explorer.server.columns import factorize, metadata_column
from embedding_explorer.server.launch import is_loopback, load_runs, resolve_token, server_url
from embedding_explorer.server.registry import slug, unique_ids
from support import small_input_run, stand_in_ui

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what the project pins
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

TOKEN = "s3cret-token_123"
INDEX_HTML = "<!doctype html><title>app</title><div id=root></div>"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    return small_input_run(tmp_path_factory.mktemp("runs") / "small")


@pytest.fixture
def ui(tmp_path: Path) -> Path:
    """A stand-in for the built UI: an index page and one asset."""
    stand_in_ui(tmp_path, INDEX_HTML)
    (tmp_path / "favicon.svg").write_text("<svg/>")
    return tmp_path


# token rule ------------------------------------------------------------------------------
@pytest.fixture
def guarded(run: ee.Run, ui: Path) -> TestClient:
    return TestClient(create_app([run], static_dir=ui, token=TOKEN))


def test_no_token_by_default(run: ee.Run, tmp_path: Path) -> None:
    client = TestClient(create_app([run], static_dir=tmp_path))
    assert client.get("/api/runs").status_code == 200
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("path", ["/api/runs", "/api/health", "/api/runs/small/samples/0", "/", "/runs/x"])
def test_token_needed_everywhere_but_assets(guarded: TestClient, path: str) -> None:
    r = guarded.get(path)
    assert r.status_code == 401
    assert "token" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"


def test_wrong_token_is_401(guarded: TestClient) -> None:
    for kwargs in (
        {"params": {"token": "wrong-token"}},
        {"headers": {"Authorization": "Bearer wrong-token"}},
        {"params": {"token": "tökén"}},
    ):
        r = guarded.get("/api/runs", **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 401, kwargs
        assert r.json()["detail"].startswith("wrong token")
    guarded.cookies.set(COOKIE, "wrong-token")
    assert guarded.get("/api/runs").status_code == 401


def test_only_bearer_authorization_counts(guarded: TestClient) -> None:
    r = guarded.get("/api/runs", headers={"Authorization": f"Basic {TOKEN}"})
    assert r.status_code == 401


def test_token_in_query_header_or_cookie(guarded: TestClient) -> None:
    assert guarded.get("/api/runs", params={"token": TOKEN}).status_code == 200
    assert guarded.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    guarded.cookies.set(COOKIE, TOKEN)
    assert guarded.get("/api/runs").status_code == 200


def test_page_with_token_sets_the_cookie(guarded: TestClient) -> None:
    r = guarded.get("/", params={"token": TOKEN})
    assert r.status_code == 200
    assert r.text == INDEX_HTML
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    # the page's later requests carry the cookie and nothing else
    assert guarded.get("/api/runs").status_code == 200
    assert "set-cookie" not in guarded.get("/api/runs", params={"token": TOKEN}).headers


def test_assets_are_public_with_a_token(guarded: TestClient) -> None:
    assert guarded.get("/assets/app.js").status_code == 200
    assert guarded.get("/favicon.svg").status_code == 200
    assert guarded.get("/index.html").status_code == 401
    assert guarded.get("/assets/../index.html").status_code == 401


def test_cacheable_answers_are_private_with_a_token(run: ee.Run, tmp_path: Path) -> None:
    texts = [f"t{i}" for i in range(24)]
    data = torch.randn(24, 3, generator=torch.Generator().manual_seed(3))
    text_run = ee.explore(None, data, ["input"], out=tmp_path / "t", name="t", render=texts, progress=False)
    client = TestClient(create_app([text_run], static_dir=tmp_path, token=TOKEN))
    r = client.get("/api/runs/t/samples/1/render", params={"token": TOKEN})
    assert r.headers["cache-control"] == "private, max-age=31536000, immutable"


@pytest.mark.parametrize("bad", ["", "short", "has space in it", "semi;colon;token", "tökén-tökén"])
def test_tokens_must_be_url_safe(bad: str) -> None:
    with pytest.raises(ValueError, match="URL-safe"):
        check_token(bad)


# static UI -------------------------------------------------------------------------------
def test_page_says_how_to_build_the_ui_when_not_built(run: ee.Run, tmp_path: Path) -> None:
    client = TestClient(create_app([run], static_dir=tmp_path / "missing"))
    for path in ("/", "/runs/small/layers/input"):
        r = client.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert "not built" in r.text and "make ui" in r.text
    assert client.get("/api/nope").status_code == 404
    assert client.post("/").status_code == 405


def test_built_ui_with_spa_fallback(run: ee.Run, ui: Path) -> None:
    client = TestClient(create_app([run], static_dir=ui))
    assert client.get("/").text == INDEX_HTML
    assert client.get("/assets/app.js").text == "console.log('app')"
    assert client.get("/runs/small/layers/input?c=2").text == INDEX_HTML  # a client-side route
    assert client.get("/runs/small/layers/layer1.0").text == INDEX_HTML
    assert client.get("/assets/missing.js").status_code == 404
    r = client.get("/api/runs/small/nothing")
    assert r.status_code == 404
    assert r.json()["detail"].startswith("no API route")
    assert client.get("/api/runs").status_code == 200  # routes come before the mount


# ids and columns -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Fashion CNN (trained)", "fashion-cnn-trained"),
        ("resnet18", "resnet18"),
        ("!!!", "run"),
        ("a_b.c", "a-b-c"),
    ],
)
def test_slug(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_ids_are_made_unique_in_order() -> None:
    assert unique_ids(["A", "a", "a-2", "b", "A"]) == ["a", "a-2", "a-2-2", "b", "a-3"]


def test_numeric_column_kinds() -> None:
    many = metadata_column("x", pd.Series(np.linspace(0, 1, 21)))
    assert many is not None and many.kind == "numeric" and many.values.dtype == np.dtype("<f4")
    few = metadata_column("x", pd.Series(np.arange(40) % 20))
    assert few is not None and few.kind == "categorical" and few.categories == [str(i) for i in range(20)]
    flags = metadata_column("x", pd.Series([True, False] * 30))
    assert flags is not None and flags.kind == "categorical" and flags.categories == ["False", "True"]
    nullable = metadata_column("x", pd.Series(pd.array([*range(30), None], dtype="Int64")))
    assert nullable is not None and nullable.kind == "numeric" and np.isnan(nullable.values[-1])


def test_high_cardinality_text_column_is_left_out() -> None:
    assert metadata_column("path", pd.Series([f"img_{i}.png" for i in range(1001)])) is None
    kept = metadata_column("path", pd.Series([f"img_{i}.png" for i in range(1000)]))
    assert kept is not None and kept.kind == "categorical"


def test_factorize_orders_mixed_values_by_text() -> None:
    codes, uniques = factorize(pd.Series([3, "b", None, "a", 3], dtype=object))
    assert uniques == [3, "a", "b"]
    assert codes.tolist() == [0, 2, -1, 1, 0]


# starting the server ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.org", False), ("", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_needs_no_token() -> None:
    assert resolve_token("127.0.0.1", None, False) is None
    assert resolve_token("localhost", None, False) is None


def test_other_hosts_get_a_generated_token() -> None:
    first = resolve_token("0.0.0.0", None, False)
    second = resolve_token("0.0.0.0", None, False)
    assert first is not None and second is not None and first != second
    assert len(first) >= 32
    check_token(first)


def test_no_token_turns_it_off_even_off_loopback() -> None:
    assert resolve_token("0.0.0.0", None, True) is None
    assert resolve_token("0.0.0.0", "auto", True) is None
    with pytest.raises(ValueError, match="contradict"):
        resolve_token("0.0.0.0", TOKEN, True)


def test_token_auto_and_given() -> None:
    assert resolve_token("127.0.0.1", "auto", False) is not None
    assert resolve_token("0.0.0.0", TOKEN, False) == TOKEN
    with pytest.raises(ValueError, match="URL-safe"):
        resolve_token("0.0.0.0", "", False)


def test_server_url() -> None:
    assert server_url("127.0.0.1", 8031, None) == "http://127.0.0.1:8031/"
    assert server_url("0.0.0.0", 80, "abc") == "http://127.0.0.1:80/?token=abc"
    assert server_url("::1", 9000, None) == "http://[::1]:9000/"


def test_load_runs_from_runs_and_paths(run: ee.Run) -> None:
    loaded = load_runs([run, run.path, str(run.path)])
    assert [r.name for r in loaded] == ["small"] * 3
    assert load_runs(run.path)[0].path == run.path
    with pytest.raises(ValueError, match="no runs"):
        load_runs([])


def test_serve_in_the_background_answers_real_http(run: ee.Run, capsys: pytest.CaptureFixture[str]) -> None:
    handle = serve([run.path], port=0, block=False)
    try:
        assert handle.running
        assert handle.url.startswith("http://127.0.0.1:") and "token" not in handle.url
        assert handle.url in capsys.readouterr().out
        with httpx.Client(trust_env=False, timeout=10) as client:
            r = client.get(handle.url + "api/runs")
            assert r.status_code == 200
            assert [x["id"] for x in r.json()] == ["small"]
            assert client.get(handle.url).status_code == 200
    finally:
        handle.stop()
    assert not handle.running


def test_serve_with_a_token_prints_it_in_the_url(run: ee.Run, capsys: pytest.CaptureFixture[str]) -> None:
    with serve(run, port=0, token="auto", block=False) as handle:
        assert "?token=" in handle.url
        assert handle.url in capsys.readouterr().out
        with httpx.Client(trust_env=False, timeout=10) as client:
            assert client.get(handle.url.replace("/?", "/api/runs?")).status_code == 200
            assert client.get(handle.url.split("?")[0] + "api/runs").status_code == 401


def test_serve_refuses_a_taken_port(run: ee.Run) -> None:
    with serve(run, port=0, block=False) as handle:
        port = int(handle.url.rsplit(":", 1)[1].strip("/"))
        with pytest.raises(OSError, match="cannot listen"):
            serve(run, port=port, block=False)


def test_run_show_serves_the_run_in_the_background(tmp_path: Path) -> None:
    """``run.show()`` returns at once with a live server (no IPython display needed here)."""
    import torch

    x = torch.randn(40, 6)
    run = ee.explore(None, x, ["input"], out=tmp_path / "shown", progress=False)
    handle = run.show()
    try:
        assert ee.show is __import__("embedding_explorer.server", fromlist=["show"]).show
        response = httpx.get(f"{handle.url.rstrip('/')}/api/runs", timeout=10)
        assert response.status_code == 200
        assert [r["n_samples"] for r in response.json()] == [40]
    finally:
        handle.stop()


def test_odd_labels_and_metadata_never_give_a_500(tmp_path: Path) -> None:
    """List-valued metadata, missing labels and labels shown alike (regressions from review)."""
    from fastapi.testclient import TestClient

    x = torch.randn(12, 3)
    labels = ["a", None, "b", "a", "b", None, "a", "b", "a", "b", "a", "b"]
    run = ee.explore(
        None,
        x,
        ["input"],
        out=tmp_path / "odd",
        labels=labels,
        progress=False,
        metadata={"tags": [[1, 2]] * 12, "site": ["x"] * 6 + ["y"] * 6},
    )
    twins = ee.explore(
        None,
        x,
        ["input"],
        out=tmp_path / "twins",
        labels=[0, 1, 2] * 4,
        label_names=["x", "x", "y"],
        progress=False,
    )
    client = TestClient(create_app([run, twins]))
    listed = client.get("/api/runs")
    assert listed.status_code == 200
    assert "tags" not in [c["name"] for c in listed.json()[0]["columns"]]
    assert client.get("/api/runs/input/samples/0").status_code == 200
    hist = client.get("/api/runs/input/layers/input/components/0/histogram?bins=3&by_label=true")
    assert hist.status_code == 200
    assert sum(map(sum, hist.json()["by_label"].values())) == 10  # the two unlabelled samples are left out
    split = client.get("/api/runs/input-2/layers/input/components/0/histogram?bins=3&by_label=true").json()
    assert sorted(split["by_label"]) == ["x", "x (1)", "y"]
    assert [sum(v) for v in split["by_label"].values()] == [4, 4, 4]


def test_a_tokenless_loopback_server_refuses_foreign_host_headers(tmp_path: Path) -> None:
    """DNS rebinding: a page on evil.example rebound to 127.0.0.1 must not read the runs."""
    run = ee.explore(None, torch.randn(10, 3), ["input"], out=tmp_path / "r", progress=False)
    handle = serve([run], port=0, block=False)
    try:
        url = f"{handle.url.rstrip('/')}/api/runs"
        assert httpx.get(url, timeout=10).status_code == 200
        assert httpx.get(url, headers={"Host": "evil.example"}, timeout=10).status_code == 400
    finally:
        handle.stop()
