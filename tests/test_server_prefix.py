"""The app under a path prefix (``serve --root-path``): behind a proxy that strips the prefix and
one that passes it on, the redirect to ``prefix/``, the token cookie's path, the docs' links."""

from __future__ import annotations

import warnings
from pathlib import Path

import httpx
import pytest

import embedding_explorer as ee
from embedding_explorer.cli import main
from embedding_explorer.server import create_app, serve
from embedding_explorer.server.auth import COOKIE
from embedding_explorer.server.launch import server_url
from embedding_explorer.server.prefix import normalize_root_path, route_path
from support import small_input_run, stand_in_ui

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what the project pins
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

PREFIX = "/proxy/8031"
TOKEN = "s3cret-token_123"
INDEX_HTML = "<!doctype html><title>app</title><script src='./assets/app.js'></script>"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    return small_input_run(tmp_path_factory.mktemp("runs") / "small")


@pytest.fixture
def ui(tmp_path: Path) -> Path:
    stand_in_ui(tmp_path, INDEX_HTML)
    return tmp_path


@pytest.mark.parametrize(
    ("given", "expected"),
    [("", ""), ("/", ""), ("/proxy/8031", PREFIX), ("proxy/8031/", PREFIX), (" /a/b-c_d.e~ ", "/a/b-c_d.e~")],
)
def test_root_paths_are_normalised(given: str, expected: str) -> None:
    assert normalize_root_path(given) == expected


@pytest.mark.parametrize("bad", ["/a//b", "/a/../b", "/a/./b", "/a b", "/a?b", "/a#b", "/a\\b"])
def test_a_bad_root_path_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="is no URL path prefix"):
        normalize_root_path(bad)


def test_route_path_takes_the_prefix_off_only_where_it_is() -> None:
    scope = {"root_path": PREFIX}
    assert route_path({**scope, "path": f"{PREFIX}/api/runs"}) == "/api/runs"
    assert route_path({**scope, "path": "/api/runs"}) == "/api/runs"
    assert route_path({**scope, "path": f"{PREFIX}x/api"}) == f"{PREFIX}x/api"  # another folder
    assert route_path({"path": "/api/runs"}) == "/api/runs"


@pytest.mark.parametrize("stripped", [True, False], ids=["proxy-strips", "proxy-passes-on"])
def test_every_answer_under_the_prefix(run: ee.Run, ui: Path, stripped: bool) -> None:
    client = TestClient(create_app([run], static_dir=ui, root_path=PREFIX + "/"))
    at = "" if stripped else PREFIX
    direct = TestClient(create_app([run], static_dir=ui))
    assert client.get(f"{at}/api/runs").json() == direct.get("/api/runs").json()
    page = client.get(f"{at}/")
    assert page.status_code == 200 and page.text == INDEX_HTML
    assert client.get(f"{at}/assets/app.js").text == "console.log('app')"
    assert client.get(f"{at}/some/view").text == INDEX_HTML  # the app's own paths get the page
    missing = client.get(f"{at}/api/nope")
    assert missing.status_code == 404 and missing.json()["detail"].startswith("no API route /api/nope")
    assert client.get(f"{at}/assets/gone.js").status_code == 404
    render = client.get(f"{at}/api/runs/small/samples/3/render")
    assert render.status_code == direct.get("/api/runs/small/samples/3/render").status_code


def test_the_prefix_without_its_slash_redirects_into_it(run: ee.Run, ui: Path) -> None:
    client = TestClient(create_app([run], static_dir=ui, root_path=PREFIX), follow_redirects=False)
    answer = client.get(f"{PREFIX}?tab=probe&pc=2")
    assert answer.status_code == 307
    assert answer.headers["location"] == f"{PREFIX}/?tab=probe&pc=2"
    assert client.get(PREFIX).headers["location"] == f"{PREFIX}/"


def test_the_token_rule_is_unchanged_under_a_prefix(run: ee.Run, ui: Path) -> None:
    client = TestClient(create_app([run], static_dir=ui, token=TOKEN, root_path=PREFIX))
    assert client.get(f"{PREFIX}/api/runs").status_code == 401
    assert client.get(f"{PREFIX}/").status_code == 401
    assert client.get(f"{PREFIX}/assets/app.js").status_code == 200  # assets hold no data
    page = client.get(f"{PREFIX}/?token={TOKEN}")
    assert page.status_code == 200
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN};") and f"Path={PREFIX}/;" in cookie
    assert client.get(f"{PREFIX}/api/runs").status_code == 200  # the cookie, under the prefix
    assert client.get("/api/runs").status_code == 401  # ... and only there
    assert client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_the_docs_link_their_schema_under_the_prefix(run: ee.Run, ui: Path) -> None:
    client = TestClient(create_app([run], static_dir=ui, root_path=PREFIX))
    docs = client.get(f"{PREFIX}/docs")
    assert docs.status_code == 200 and "href='openapi.json'" in docs.text  # relative: under the prefix
    assert client.get(f"{PREFIX}/openapi.json").json()["servers"] == [{"url": PREFIX}]


def test_serve_under_a_prefix_with_the_port_bound(run: ee.Run) -> None:
    with serve(run, port=0, block=False, root_path="/user/a/proxy/{port}") as handle:
        assert handle.url == f"http://127.0.0.1:{handle.port}/user/a/proxy/{handle.port}/"
        passed_on = httpx.get(f"{handle.url}api/runs", timeout=10)
        stripped = httpx.get(f"http://127.0.0.1:{handle.port}/api/runs", timeout=10)
        assert passed_on.status_code == stripped.status_code == 200
        assert passed_on.json() == stripped.json()


def test_the_printed_url_carries_the_prefix() -> None:
    assert server_url("127.0.0.1", 8031, None, PREFIX) == f"http://127.0.0.1:8031{PREFIX}/"
    assert server_url("0.0.0.0", 80, "abc", "/x") == "http://127.0.0.1:80/x/?token=abc"


def test_serve_refuses_a_bad_prefix_before_it_listens(run: ee.Run) -> None:
    with pytest.raises(ValueError, match=r"root_path='/a/\.\./b' is no URL path prefix"):
        serve(run, port=0, block=False, root_path="/a/../b")


def test_cli_serve_takes_a_root_path(run: ee.Run, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setattr("embedding_explorer.server.serve", lambda runs, **kw: seen.update(kw))
    assert main(["serve", str(run.path), "--no-browser", "--root-path", "/tools/explorer"]) == 0
    assert seen["root_path"] == "/tools/explorer"
