"""The per-token routes: tokens in context (``/api/runs/{run}/tokens``) and one text's strip of
component scores; associations of the ``token`` column (eta squared and the tokens at each end)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import embedding_explorer as ee
from embedding_explorer.server import create_app
from support import TOKEN_TEXTS, make_token_run


@pytest.fixture(scope="module")
def token_run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    return make_token_run(tmp_path_factory.mktemp("tokens") / "run")


@pytest.fixture(scope="module")
def client(token_run: ee.Run) -> TestClient:
    return TestClient(create_app([token_run]))


def test_run_info_says_per_token(client: TestClient, token_run: ee.Run) -> None:
    info = client.get("/api/runs").json()[0]
    assert info["per_token"] is True
    assert info["n_samples"] == token_run.n_samples == len(token_run.samples)


def test_token_contexts_window_and_whole_text(client: TestClient, token_run: ee.Run) -> None:
    samples = token_run.samples
    ids = [0, 5, int(samples.index[samples.token == "not"][0]), token_run.n_samples - 1]
    answer = client.get(
        f"/api/runs/{token_run.name}/tokens", params={"ids": ",".join(map(str, ids)), "window": 2}
    )
    assert answer.status_code == 200, answer.text
    for item, sample_id in zip(answer.json()["items"], ids, strict=True):
        text_id = int(samples.text_id[sample_id])
        same_text = samples[samples.text_id == text_id]
        assert item["text"] == TOKEN_TEXTS[text_id]
        assert item["tokens"][item["focus"]] == samples.token[sample_id]
        # the window: up to 2 tokens each side, never crossing into another text
        first = int(same_text.sample_id.iloc[0])
        lo = max(first, sample_id - 2)
        assert item["tokens"] == list(
            samples.token[lo : min(int(same_text.sample_id.iloc[-1]) + 1, sample_id + 3)]
        )
        assert item["more_before"] == (lo > first)
    assert (
        client.get(f"/api/runs/{token_run.name}/tokens", params={"ids": "0", "window": 99}).status_code == 422
    )


def test_token_strip_is_the_component_along_one_text(client: TestClient, token_run: ee.Run) -> None:
    answer = client.get(f"/api/runs/{token_run.name}/layers/layer5/components/0/texts/3")
    assert answer.status_code == 200, answer.text
    strip = answer.json()
    samples = token_run.samples
    ids = samples.sample_id[samples.text_id == 3].tolist()
    assert strip["sample_ids"] == ids
    assert strip["text"] == TOKEN_TEXTS[3]
    scores = np.asarray(token_run["layer5"].scores)[ids, 0]
    np.testing.assert_allclose(strip["scores"], scores, rtol=1e-6)
    all_scores = np.asarray(token_run["layer5"].scores)[:, 0]
    np.testing.assert_allclose([strip["low"], strip["high"]], np.percentile(all_scores, [1, 99]), rtol=1e-6)
    missing = client.get(f"/api/runs/{token_run.name}/layers/layer5/components/0/texts/999")
    assert missing.status_code == 404 and "no tokens of text 999" in missing.text


def test_not_a_per_token_run_is_404(tmp_path: Path) -> None:
    import torch

    run = ee.explore(None, torch.randn(20, 4), ["input"], out=tmp_path / "plain", progress=False)
    answer = TestClient(create_app([run])).get(f"/api/runs/{run.name}/tokens", params={"ids": "0"})
    assert answer.status_code == 404 and "not a per-token run" in answer.text


def test_associations_of_tokens_name_the_ends(client: TestClient, token_run: ee.Run) -> None:
    answer = client.get(f"/api/runs/{token_run.name}/layers/layer5/associations").json()
    by_name = {c["name"]: c for c in answer["columns"]}
    assert {"label", "negated", "token", "position"} <= set(by_name)
    table = token_run["layer5"].association("token")
    assert by_name["token"]["statistic"] == "eta2"
    np.testing.assert_allclose(by_name["token"]["values"], table["eta2"].to_numpy())
    assert by_name["token"]["summaries"] == list(table["summary"])


def test_directions_and_ica_over_tokens(client: TestClient, token_run: ee.Run) -> None:
    """A direction from 'not' tokens to the others, and ICA, probe token samples like PCA does."""
    layer = token_run["layer5"]
    samples = token_run.samples
    nots = np.flatnonzero(samples.token.to_numpy() == "not")
    others = np.flatnonzero(samples.token.to_numpy() != "not")
    direction = layer.direction(others, nots, name="not")
    _, high = direction.extremes(0, 5)
    assert set(samples.token[high]) == {"not"}  # the 'not' end of the direction is 'not' tokens
    ica = layer.ica()
    assert ica.scores.shape[0] == token_run.n_samples
    strip = client.get(
        f"/api/runs/{token_run.name}/layers/layer5/components/0/texts/5", params={"basis": "ica"}
    )
    assert strip.status_code == 200, strip.text
    ids = strip.json()["sample_ids"]
    np.testing.assert_allclose(strip.json()["scores"], np.asarray(ica.scores)[ids, 0], rtol=1e-5)
