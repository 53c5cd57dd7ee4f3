"""The basis bar in Chromium: the ICA toggle, and directions from two labels, two lasso selections
or two samples, probed like components and made again when the server forgot them.

Served by ``datasets_server``; screenshots 53-55."""

from __future__ import annotations

import re
from typing import Any

import pytest

from browser_support import Page, wait_images
from embedding_explorer.server.directions import Directions

pytestmark = pytest.mark.browser


@pytest.fixture
def server_url(datasets_server: Any) -> str:
    """This module's pages open ``datasets_server``: TinyCNN over the images and over them inverted."""
    url: str = datasets_server.url
    return url


def high_ids(page: Any, column: int = 0) -> list[int]:
    thumbs = (
        page.get_by_test_id("gallery-column")
        .nth(column)
        .get_by_test_id("gallery-high")
        .get_by_test_id("sample-thumb")
    )
    return [int(t.get_attribute("data-sample-id")) for t in thumbs.all()]


def test_ica_toggle_changes_the_gallery_and_scatter(ui: Page) -> None:
    page = ui.open("?layer=fc")
    page.get_by_test_id("gallery-column").first.wait_for()
    pca_ids = high_ids(page)
    page.get_by_test_id("basis-ica").click()
    assert ui.query()["basis"] == ["ica"]
    page.locator("[data-testid=gallery-row][data-basis=ica]").wait_for(timeout=60_000)
    head = page.get_by_test_id("component-header").first.text_content()
    assert re.fullmatch(r"IC 1\s*kurtosis -?\d+\.\d.*", head.strip()), head
    assert high_ids(page) != pca_ids
    wait_images(page, page.get_by_test_id("gallery").locator("img"))
    ui.shot("53-gallery-ica-light")

    page.get_by_test_id("tab-scatter").click()
    page.locator("[data-testid=scatter-canvas][data-drawn=true]").wait_for(timeout=60_000)
    assert page.locator(".scatter-axis-x").text_content().strip() == "IC 1"
    page.get_by_test_id("basis-pca").click()
    page.wait_for_function(
        "() => document.querySelector('.scatter-axis-x')?.textContent.startsWith('PC 1 ·')"
    )


def test_direction_from_two_labels_is_probed(ui: Page) -> None:
    page = ui.open("?layer=fc")
    page.get_by_test_id("gallery-column").first.wait_for()
    page.get_by_test_id("basis-dir").click()
    page.get_by_test_id("direction-needed").wait_for()
    page.get_by_test_id("direction-a").select_option("l:horizontal")
    page.get_by_test_id("direction-b").select_option("l:ring")
    page.get_by_test_id("direction-make").click()
    assert ui.query()["da"] == ["l:horizontal"] and ui.query()["db"] == ["l:ring"]
    page.locator("[data-testid=gallery-row][data-basis^='dir:']").wait_for()
    columns = page.get_by_test_id("gallery-column")
    assert columns.count() == 1
    assert "horizontal → ring" in columns.first.get_by_test_id("component-header").text_content()
    sep = float(
        re.search(r"separation (-?\d+\.\d+)", page.get_by_test_id("direction-separation").text_content())[1]
    )
    assert sep > 0.3  # an untrained model: the two shapes overlap, yet apart
    # the gallery shows the server's extremes along that direction
    basis = page.get_by_test_id("gallery-row").first.get_attribute("data-basis")
    api = page.request.get(f"{ui.base}api/runs/tiny-cnn/layers/fc/gallery?n=8&basis={basis}").json()
    assert api["components"][0]["name"] == "horizontal → ring"
    assert high_ids(page) == [s["id"] for s in api["components"][0]["high"]]
    wait_images(page, page.get_by_test_id("gallery").locator("img"))
    ui.shot("54-gallery-direction-light")

    # the same slider probes it
    columns.first.get_by_test_id("component-header").click()
    page.get_by_test_id("histogram").wait_for()
    assert page.get_by_test_id("probe-name").text_content() == "horizontal → ring"
    slider = page.get_by_test_id("probe-slider")
    slider.focus()
    page.keyboard.press("End")
    ui.wait_q("1")
    q1 = page.request.get(f"{ui.base}api/runs/tiny-cnn/layers/fc/components/0/quantile?q=1&n=8&basis={basis}")
    thumbs = page.get_by_test_id("probe-samples").get_by_test_id("sample-thumb").all()
    assert [int(t.get_attribute("data-sample-id")) for t in thumbs] == [s["id"] for s in q1.json()["samples"]]
    ui.shot("55-probe-direction-light")

    # a link recreates the direction on a fresh page
    page.reload()
    page.get_by_test_id("probe-name").wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=probe-name]')?.textContent === 'horizontal → ring'"
    )


def test_direction_from_two_lasso_selections(ui: Page) -> None:
    # two selections, as the lasso writes them in the URL: samples 0..49 and 200..259
    page = ui.open("?layer=fc&tab=scatter&sel=0-1d")
    page.get_by_test_id("use-as-a").click()
    assert ui.query()["da"] == ["s:0-1d"]
    page.goto(page.url.replace("sel=0-1d", "sel=5k-1n"))
    page.get_by_test_id("use-as-b").click()
    assert ui.query()["db"] == ["s:5k-1n"]
    assert "A: selection (50) · B: selection (60)" in page.get_by_test_id("direction-groups").text_content()
    page.get_by_test_id("make-direction").click()
    assert page.get_by_role("tab", name="Probe").get_attribute("aria-selected") == "true"
    page.get_by_test_id("histogram").wait_for()
    assert page.get_by_test_id("probe-name").text_content() == "selection A (50) → B (60)"
    page.get_by_test_id("probe-samples").get_by_test_id("sample-thumb").first.wait_for()


def test_a_direction_between_two_samples_shows_no_separation(ui: Page) -> None:
    """One sample per group: the separation cannot be measured (null), and reads "–"."""
    page = ui.open("?layer=fc&basis=dir&da=s:0&db=s:1")
    page.locator("[data-testid=gallery-row][data-basis^='dir:']").wait_for()
    assert page.get_by_test_id("direction-separation").text_content().strip() == "separation –"
    assert "separation –" in page.get_by_test_id("component-header").first.text_content()
    assert page.get_by_test_id("view-error").count() == 0  # no view failed (the fixture checks errors)


def test_a_direction_the_server_forgot_is_made_again(ui: Page, datasets_server: Any) -> None:
    """A restarted server (fresh directions) makes the direction again from its id: the page
    probes on with the id it has, and posts nothing again."""
    page = ui.open("?layer=fc&tab=probe&basis=dir&da=l:horizontal&db=l:ring")
    page.get_by_test_id("histogram").wait_for()
    assert page.get_by_test_id("probe-name").text_content() == "horizontal → ring"
    app = datasets_server.server.config.app
    while not hasattr(app, "state"):  # through the middleware to the FastAPI app
        app = app.app
    assert len(app.state.directions) >= 1
    app.state.directions = Directions()  # as a restarted server would have
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    slider = page.get_by_test_id("probe-slider")
    slider.focus()
    page.keyboard.press("End")
    ui.wait_q("1")  # the probe at q=1 (a new request) is answered: the direction was made again
    assert len(app.state.directions.made) == 1
    assert posts == []
    assert page.get_by_test_id("error-state").count() == 0
