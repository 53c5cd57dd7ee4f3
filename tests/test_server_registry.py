"""server.registry: the served runs; a run replaced on disk while served is opened again (with
fresh caches), a deleted one answers 404 with a message, and no answer mixes two runs."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import embedding_explorer as ee
from embedding_explorer.server import create_app
from embedding_explorer.server.registry import Registry
from support import tagged_run

N = 48


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ee.Run]:
    root = tmp_path_factory.mktemp("served")
    return {tag: tagged_run(root / tag, tag) for tag in "AB"}


def scores_of(client: TestClient, run_id: str) -> np.ndarray | None:
    answer = client.get(f"/api/runs/{run_id}/layers/fc1/scores")
    if answer.status_code != 200:
        return None
    shape = tuple(int(s) for s in answer.headers["X-Shape"].split(","))
    return np.frombuffer(answer.content, dtype="<f4").reshape(shape)


def test_replaced_run_is_served_again_with_fresh_caches(
    tmp_path: Path, references: dict[str, ee.Run]
) -> None:
    """Issue 12, item 2: after explore ran again to the served folder, the server mixed the old
    manifest with the new arrays (wrong texts with 200)."""
    out = tmp_path / "r"
    client = TestClient(create_app([tagged_run(out, "A")]))
    before = client.get("/api/runs").json()[0]
    assert client.get("/api/runs/run-a/samples/3/render").text == "A-3"
    np.testing.assert_array_equal(scores_of(client, "run-a"), references["A"]["fc1"].scores)
    histogram = client.get("/api/runs/run-a/layers/fc1/components/0/histogram").json()
    tagged_run(out, "B")
    assert client.get("/api/runs/run-a/samples/3/render").text == "B-3"
    np.testing.assert_array_equal(scores_of(client, "run-a"), references["B"]["fc1"].scores)
    after = client.get("/api/runs").json()[0]
    assert after["id"] == "run-a" and after["name"] == "run-B"
    assert after["version"] != before["version"]  # new ETags: no browser cache serves the old run
    assert client.get("/api/runs/run-a/layers/fc1/components/0/histogram").json() != histogram
    texts = client.get("/api/runs/run-a/renderings", params={"ids": "0,1,2"}).json()["items"]
    assert [t["text"] for t in texts] == ["B-0", "B-1", "B-2"]


def test_deleted_run_answers_404_naming_it(tmp_path: Path) -> None:
    out = tmp_path / "r"
    client = TestClient(create_app([tagged_run(out, "A")]))
    assert client.get("/api/runs/run-a/samples/0/render").status_code == 200
    shutil.rmtree(out)
    for url in (
        "/api/runs/run-a/samples/0/render",
        "/api/runs/run-a/layers/fc1/scores",
        "/api/runs/run-a/samples/0",
    ):
        answer = client.get(url)
        assert answer.status_code == 404, url
        assert "run 'run-a'" in answer.json()["detail"] and "is gone" in answer.json()["detail"]
    assert client.get("/api/runs").json() == []
    tagged_run(out, "B")  # made again: served again
    assert client.get("/api/runs/run-a/samples/0/render").text == "B-0"


def test_reopen_drops_made_directions(tmp_path: Path) -> None:
    out = tmp_path / "r"
    app = create_app([tagged_run(out, "A")])
    registry: Registry = app.state.registry
    dropped: list[str] = []
    registry.on_reopen.append(dropped.append)
    tagged_run(out, "B")
    assert registry.get("run-a").run.name == "run-B" and dropped == ["run-a"]
    assert len(app.state.directions.made) == 0


def test_answers_while_a_writer_replaces_the_run_are_of_one_run(
    tmp_path: Path, references: dict[str, ee.Run]
) -> None:
    """A thread runs explore to the served folder again and again while requests come in: each
    answer is wholly of run A or wholly of run B, or a 503/404 with a message; never a 500; and
    scores asked for between two texts of one run are that run's."""
    out = tmp_path / "r"
    client = TestClient(create_app([tagged_run(out, "A")]), raise_server_exceptions=False)
    stop, errors = threading.Event(), []

    def writer() -> None:
        try:
            for i in range(5):
                tagged_run(out, "BA"[i % 2])
        except BaseException as error:  # reported by the test
            errors.append(error)
        finally:
            stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    statuses: dict[int, int] = {}
    mixed: list[str] = []
    i = 0
    while not stop.is_set() or i < 30:
        i += 1
        ids = [(i + k) % N for k in range(6)]
        answer = client.get("/api/runs/run-a/renderings", params={"ids": ",".join(map(str, ids))})
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        if answer.status_code == 200:
            texts = [t["text"] for t in answer.json()["items"]]
            if texts not in ([f"{tag}-{j}" for j in ids] for tag in "AB"):
                mixed.append(f"renderings {texts}")
        else:
            assert answer.json()["detail"], answer.status_code
        before = client.get("/api/runs/run-a/samples/0/render")
        scores = scores_of(client, "run-a")
        after = client.get("/api/runs/run-a/samples/0/render")
        if scores is not None and not any(
            np.array_equal(scores, ref["fc1"].scores) for ref in references.values()
        ):
            mixed.append("scores of neither run")
        same = (
            scores is not None
            and before.status_code == after.status_code == 200
            and before.text == after.text
        )
        if same and not np.array_equal(scores, references[before.text[0]]["fc1"].scores):
            mixed.append(f"scores of the other run than {before.text}")
    thread.join()
    assert not errors
    assert mixed == []
    assert set(statuses) <= {200, 404, 503}, statuses
    assert client.get("/api/runs/run-a/samples/0/render").text == "B-0"  # the last commit, B
    np.testing.assert_array_equal(scores_of(client, "run-a"), references["B"]["fc1"].scores)


def test_replacing_one_run_recomputes_its_analyses_and_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cached analyses are keyed by the runs' generations: the replaced run's CKA is computed
    again, the CKA of two runs that did not change is not."""
    import embedding_explorer.server.analysis_routes as analysis_routes

    runs = [tagged_run(tmp_path / folder, "A") for folder in "abc"]  # the same data: comparable
    client = TestClient(create_app(runs))
    ids = [r["id"] for r in client.get("/api/runs").json()]
    computed: list[tuple[str, str]] = []
    real = analysis_routes.compare_models

    def counting(a: ee.Run, b: ee.Run) -> object:
        computed.append((a.name, b.name))
        return real(a, b)

    monkeypatch.setattr(analysis_routes, "compare_models", counting)
    cka = {pair: client.get("/api/compare/cka", params={"run_a": pair[0], "run_b": pair[1]}) for pair in
           [(ids[0], ids[1]), (ids[1], ids[2])]}  # fmt: skip
    assert all(answer.status_code == 200 for answer in cka.values()) and len(computed) == 2
    tagged_run(tmp_path / "a", "A")  # the first served run made again: a new generation
    assert client.get("/api/runs").status_code == 200  # ... seen, and opened again
    again = client.get("/api/compare/cka", params={"run_a": ids[1], "run_b": ids[2]})
    assert again.json() == cka[(ids[1], ids[2])].json() and len(computed) == 2
    replaced = client.get("/api/compare/cka", params={"run_a": ids[0], "run_b": ids[1]})
    assert replaced.status_code == 200 and len(computed) == 3


def test_the_first_ica_fit_runs_in_the_analysis_threads(
    references: dict[str, ee.Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``basis=ica`` request fits the layer's ICA through the analysis pool (``heavy``) before
    its handler runs in the common pool; once fitted, it is not sent there again."""
    import embedding_explorer.server.bases as bases

    sent: list[object] = []
    real = bases.heavy

    async def recording(request: object, compute: object, *, ready: bool = False) -> object:
        sent.append(compute)
        return await real(request, compute, ready=ready)  # type: ignore[arg-type]

    monkeypatch.setattr(bases, "heavy", recording)
    run = ee.open_run(references["A"].path)
    client = TestClient(create_app([run]))
    assert (
        client.get("/api/runs/run-a/layers/fc1/gallery", params={"basis": "ica", "n": 2}).status_code == 200
    )
    assert len(sent) == 1
    assert run["fc1"].ica_ready()
    assert client.get("/api/runs/run-a/layers/fc1/basis", params={"basis": "ica"}).status_code == 200
    assert client.get("/api/runs/run-a/layers/fc1/gallery", params={"basis": "pca"}).status_code == 200
    assert len(sent) == 1
    assert client.get("/api/runs/run-a/layers/nope/gallery", params={"basis": "ica"}).status_code == 404
