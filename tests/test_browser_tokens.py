"""A per-token run in Chromium: gallery thumbnails are tokens highlighted in a window of their text
(the window a setting), each end names its token make-up, and the sample view reads a component
along the whole text as a coloured strip."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

import embedding_explorer as ee
from browser_support import Page, missing_requirements, serving
from support import TOKEN_TEXTS, make_token_run

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def token_run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    return make_token_run(tmp_path_factory.mktemp("browser-tokens") / "run")


@pytest.fixture(scope="module")
def token_server(token_run: ee.Run) -> Iterator[Any]:
    with serving([token_run]) as handle:
        yield handle


@pytest.fixture
def server_url(token_server: Any) -> str:
    url: str = token_server.url
    return url


def test_tokens_in_context_makeup_and_strip(ui: Page, token_run: ee.Run) -> None:
    page = ui.open("?run=minilm-tokens&layer=layer5")
    column = page.get_by_test_id("gallery-column").first
    column.wait_for()
    focus = column.get_by_test_id("gallery-high").get_by_test_id("token-focus").first
    focus.wait_for()
    samples = token_run.samples
    high_ids = [
        int(t.get_attribute("data-sample-id"))
        for t in column.get_by_test_id("gallery-high").get_by_test_id("sample-thumb").all()
    ]
    # the highlighted token is the sample's own token; the thumbnail's title holds the whole text
    first = column.get_by_test_id("gallery-high").get_by_test_id("sample-thumb").first
    assert focus.text_content().strip() == samples.token[high_ids[0]].removeprefix("##")
    assert TOKEN_TEXTS[int(samples.text_id[high_ids[0]])] in first.get_attribute("title")
    makeup = column.get_by_test_id("token-makeup").first
    makeup.wait_for()
    tokens = list(samples.token[high_ids])
    top = max(tokens, key=lambda t: (tokens.count(t), -tokens.index(t)))
    assert re.fullmatch(rf"{tokens.count(top)}/8 (is|are) '{re.escape(top)}'", makeup.text_content())
    ui.shot("20-tokens-gallery-light")

    # the window is a setting: 0 tokens of context leaves the token alone
    slider = page.get_by_test_id("token-window")
    slider.fill("0")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=gallery-high] .tok-window')]"
        ".every((w) => w.querySelectorAll('.tok').length === 1)"
    )
    slider.fill("3")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=gallery-high] .tok-window')]"
        ".some((w) => w.querySelectorAll('.tok').length > 1)"
    )

    # the sample view: the component along every token of the text, this token outlined
    first.click()
    strip = page.get_by_test_id("token-strip")
    strip.get_by_test_id("strip-token").first.wait_for()
    text_id = int(samples.text_id[high_ids[0]])
    expected = samples[samples.text_id == text_id]
    assert strip.get_by_test_id("strip-token").count() == len(expected)
    current = strip.locator(".strip-token.is-current")
    assert current.count() == 1
    assert current.text_content() == samples.token[high_ids[0]].removeprefix("##")
    scores = [float(s.get_attribute("data-score")) for s in strip.get_by_test_id("strip-token").all()]
    want = [float(v) for v in token_run["layer5"].scores[expected.sample_id.to_numpy(), 0]]
    assert scores == pytest.approx(want, rel=1e-5)
    ui.shot("21-tokens-strip-light")
