"""How errors become answers (server/errors.py): what does not exist is a 404 that says what
does, a library error about a value a 422, and a bug a 500 (never a 404 in disguise)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import embedding_explorer as ee
from embedding_explorer.server import create_app, routes
from embedding_explorer.server.errors import NotFoundError, validation_message

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    data = torch.randn(20, 4, generator=torch.Generator().manual_seed(3))
    out = tmp_path_factory.mktemp("errors") / "r"
    return ee.explore(
        None, data, ["input"], out=out, name="r", render=[f"t{i}" for i in range(20)], progress=False
    )


def test_not_found_is_404_with_its_message(run: ee.Run) -> None:
    with TestClient(create_app([run])) as c:
        r = c.get("/api/runs/r/samples/20")
        assert (r.status_code, r.json()) == (
            404,
            {"detail": "run 'r' has no sample 20; sample ids are 0..19"},
        )
        r = c.get("/api/runs/r/layers/nope/gallery")
        assert r.status_code == 404 and "its layers: 'input'" in r.json()["detail"]
    assert str(NotFoundError("no run 'x'")) == "no run 'x'"  # not quoted as a KeyError would be


def test_an_index_error_is_a_server_error_not_a_404(run: ee.Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(served: object, sample_id: int) -> bytes:
        return [b""][sample_id + 1]  # a bug: reads past the end

    monkeypatch.setattr(routes, "stored_rendering", broken)
    with TestClient(create_app([run]), raise_server_exceptions=False) as c:
        assert c.get("/api/runs/r/samples/0/render").status_code == 500
        assert c.get("/api/runs/r/samples/20/render").status_code == 404  # checked before: still a 404


def test_library_errors_about_values_are_422(run: ee.Run) -> None:
    with TestClient(create_app([run])) as c:
        r = c.get("/api/runs/r/layers/input/components/0/histogram", params={"by_label": True})
        assert r.status_code == 422 and "has no labels" in r.json()["detail"]


def test_validation_messages_name_the_parameter() -> None:
    errors = [
        {"loc": ("query", "n"), "msg": "Input should be less than or equal to 200", "input": "500"},
        {"loc": ("body",), "msg": "Field required"},
        "not a dict",
    ]
    assert validation_message(errors) == (
        "query parameter 'n': Input should be less than or equal to 200 (got '500'); body: Field required"
    )
    assert validation_message([]) == "invalid request"


def test_a_damaged_served_run_is_a_409_naming_the_file_not_a_500(tmp_path: Path) -> None:
    data = torch.randn(20, 4, generator=torch.Generator().manual_seed(3))
    ee.explore(None, data, ["input"], out=tmp_path / "r", name="r", labels=[0, 1] * 10, progress=False)
    served = ee.open_run(tmp_path / "r")
    (tmp_path / "r" / "samples.parquet").unlink()  # lost while served
    with TestClient(create_app([served]), raise_server_exceptions=False) as c:
        for url in ("/api/runs", "/api/runs/r/samples/0", "/api/runs/r/layers/input/associations"):
            r = c.get(url)
            assert r.status_code == 409, url
            assert "samples.parquet" in r.json()["detail"] and "rebuild it" in r.json()["detail"]
