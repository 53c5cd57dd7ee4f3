"""The scatter in Chromium: axes, hover tooltips, colouring by a numeric column, lasso selections
(the selection panel), the view restored by reload and history, and a large run (only the two
shown components fetched; hover and lasso once the spatial index built off the first draw is in)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from browser_support import N_SAMPLES, Page, serving, wait_images

pytestmark = pytest.mark.browser


def test_scatter_axes_lasso_and_reload(ui: Page) -> None:
    page = ui.open("?layer=fc&tab=scatter")
    box = page.get_by_test_id("scatter-canvas")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=scatter-canvas]')?.dataset.drawn === 'true'"
    )
    assert box.get_attribute("data-points") == str(N_SAMPLES)
    page.get_by_test_id("x-axis-select").select_option("2")
    page.get_by_test_id("y-axis-select").select_option("0")
    assert ui.query()["x"] == ["2"] and ui.query()["y"] == ["0"]
    assert "lasso" in page.get_by_test_id("lasso-hint").text_content().lower()

    # hover a point: the tooltip shows the sample
    bb = box.bounding_box()
    assert bb is not None
    cx, cy = bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2
    page.wait_for_timeout(600)  # the axis transition

    # lasso with the mouse: shift + drag around the middle of the cloud
    r = min(bb["width"], bb["height"]) * 0.3
    path = [(cx + r * np.cos(t), cy + r * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 40)]
    page.mouse.move(*path[0])
    page.keyboard.down("Shift")
    page.mouse.down()
    for x, y in path[1:]:
        page.mouse.move(x, y, steps=2)
        page.wait_for_timeout(12)
    page.mouse.up()
    page.keyboard.up("Shift")
    gallery = page.get_by_test_id("selection-gallery")
    gallery.wait_for()
    count = int(page.get_by_test_id("selection-count").text_content().replace(",", ""))
    assert 0 < count < N_SAMPLES
    assert "sel" in ui.query()
    counts = page.get_by_test_id("selection-label-counts").locator("li")
    assert counts.count() >= 1
    wait_images(page, gallery.locator("img"))
    ui.shot("04-scatter-lasso-light")

    # hover a selected point
    thumbs = gallery.get_by_test_id("sample-thumb")
    assert thumbs.count() == min(count, 120)

    # reload: the same view
    url = page.url
    page.reload()
    page.get_by_test_id("selection-gallery").wait_for()
    assert page.url == url
    assert int(page.get_by_test_id("selection-count").text_content().replace(",", "")) == count
    assert page.get_by_test_id("x-axis-select").input_value() == "2"
    assert page.get_by_test_id("y-axis-select").input_value() == "0"
    assert page.get_by_role("tab", name="Scatter").get_attribute("aria-selected") == "true"

    # back: before the lasso, no selection
    page.go_back()
    page.wait_for_function("() => !new URLSearchParams(location.search).has('sel')")
    page.get_by_test_id("selection-gallery").wait_for(state="detached")
    page.go_forward()
    page.get_by_test_id("selection-gallery").wait_for()


def test_scatter_hover_and_colour_by_numeric(ui: Page) -> None:
    page = ui.open("?layer=fc&tab=scatter")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=scatter-canvas]')?.dataset.drawn === 'true'"
    )
    box = page.get_by_test_id("scatter-canvas").bounding_box()
    assert box is not None
    assert hover_until_tooltip(page, box), "no tooltip while sweeping the middle of the scatter"
    tip = page.get_by_test_id("scatter-tooltip")
    assert re.search(r"Sample \d+", tip.text_content())
    wait_images(page, tip.locator("img"))
    ui.shot("05-scatter-hover-light")

    page.get_by_test_id("color-select").select_option("brightness")
    assert ui.query()["color"] == ["brightness"]
    page.get_by_test_id("legend").get_by_text("brightness").wait_for()
    page.mouse.move(box["x"] - 50, box["y"] - 50)
    page.wait_for_timeout(400)
    ui.shot("06-scatter-numeric-light")

    # the Lasso mode selects with a plain drag (no modifier key); Clear empties the selection
    page.get_by_test_id("mode-lasso").click()
    lasso_middle(page, box)
    page.get_by_test_id("selection-gallery").wait_for()
    assert int(page.get_by_test_id("selection-count").text_content().replace(",", "")) > 0
    page.get_by_test_id("clear-selection").click()
    page.get_by_test_id("selection-gallery").wait_for(state="detached")
    assert "sel" not in ui.query()


# above the count whose spatial index the page builds in a worker, after the first draw
LAZY_SAMPLES = 120_000


@pytest.fixture(scope="module")
def large_run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    """A run of 120,000 samples (a random linear layer over random inputs)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU())
    x = torch.randn(LAZY_SAMPLES, 8)
    labels = torch.randint(0, 3, (LAZY_SAMPLES,)).numpy()
    folder = tmp_path_factory.mktemp("browser-large")
    return ee.explore(model, x, ["0"], out=folder / "large", labels=labels, name="large", progress=False)


@pytest.fixture(scope="module")
def large_run_url(large_run: ee.Run) -> Iterator[str]:
    """``large_run`` served alone."""
    with serving([large_run]) as handle:
        yield handle.url


def test_large_scatter_fetches_two_components_and_lassoes_after_the_lazy_index(
    browser: Any, large_run: ee.Run, large_run_url: str
) -> None:
    page_ = Page(browser, large_run_url)
    page = page_.page
    scores_urls: list[str] = []
    page.on("request", lambda r: scores_urls.append(r.url) if "/scores" in r.url else None)
    try:
        page.goto(f"{large_run_url}?run=large&layer=0&tab=scatter&x=2&y=0")
        box = page.get_by_test_id("scatter-canvas")
        page.wait_for_function(
            "(n) => { const b = document.querySelector('[data-testid=scatter-canvas]');"
            " return b?.dataset.drawn === 'true' && b.dataset.points === String(n); }",
            arg=LAZY_SAMPLES,
        )
        # only the two components shown crossed the wire, quantised to 16 bits
        assert [parse_qs(urlsplit(u).query)["components"] for u in scores_urls] == [["2,0"]]
        assert parse_qs(urlsplit(scores_urls[0]).query)["dtype"] == ["uint16"]
        # the index built in the worker is swapped in, then hover and lasso find points
        page.wait_for_function(
            "() => document.querySelector('[data-testid=scatter-canvas]')?.dataset.indexed === 'true'"
        )
        bb = box.bounding_box()
        assert bb is not None
        assert hover_until_tooltip(page, bb), "no tooltip while sweeping the middle of the scatter"
        # the tooltip's numbers are the hovered sample's exact scores (from its detail)
        tip = page.get_by_test_id("scatter-tooltip")
        page.wait_for_function(
            "() => !document.querySelector('[data-testid=scatter-tooltip]')?.textContent.includes('…')"
        )
        sample = int(tip.locator("strong").text_content().removeprefix("Sample "))
        numbers = tip.locator(".tooltip-meta .muted").text_content()
        shown = [float(v) for v in re.findall(r"PC [13] (-?[\d.]+(?:e[-+]?\d+)?)", numbers)]
        exact = large_run["0"].scores[sample, [2, 0]]
        np.testing.assert_allclose(shown, exact, rtol=5e-3, atol=1e-4)
        page.mouse.move(bb["x"] - 40, bb["y"] - 40)
        page.get_by_test_id("mode-lasso").click()
        lasso_middle(page, bb)
        page.get_by_test_id("selection-gallery").wait_for(timeout=60_000)
        count = int(page.get_by_test_id("selection-count").text_content().replace(",", ""))
        assert 0 < count < LAZY_SAMPLES
        assert page_.unexpected_errors() == []
    finally:
        page_.close()


def lasso_middle(page: Any, bb: dict[str, float]) -> None:
    """A rectangle-ish lasso over the middle 40% of the scatter, in the Lasso mode."""
    x0, y0 = bb["x"] + bb["width"] * 0.3, bb["y"] + bb["height"] * 0.3
    x1, y1 = bb["x"] + bb["width"] * 0.7, bb["y"] + bb["height"] * 0.7
    page.mouse.move(x0, y0)
    page.mouse.down()
    for x, y in [(x1, y0), (x1, y1), (x0, y1), (x0 + 10, y0 + 20)]:
        page.mouse.move(x, y, steps=12)
        page.wait_for_timeout(20)
    page.mouse.up()


def test_a_lasso_before_the_index_is_built_keeps_the_selection_then_one_after_selects(
    browser: Any, large_run_url: str
) -> None:
    page_ = Page(browser, large_run_url)
    page = page_.page
    held: list[Any] = []
    page.route("**/spatialIndex.worker*", lambda route: held.append(route))  # held until released
    try:
        page.goto(f"{large_run_url}?run=large&layer=0&tab=scatter&sel=0-1d")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=scatter-canvas]')?.dataset.drawn === 'true'"
        )
        page.get_by_test_id("selection-gallery").wait_for()
        before = page.get_by_test_id("selection-count").text_content()
        box = page.get_by_test_id("scatter-canvas")
        assert box.get_attribute("data-indexed") == "false" and len(held) == 1
        bb = box.bounding_box()
        assert bb is not None
        page.get_by_test_id("mode-lasso").click()
        # with no index the lasso finds nothing: the selection stays as it was (not emptied)
        lasso_middle(page, bb)
        page.wait_for_timeout(300)
        assert page_.query()["sel"] == ["0-1d"]
        assert page.get_by_test_id("selection-count").text_content() == before
        held[0].continue_()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=scatter-canvas]')?.dataset.indexed === 'true'"
        )
        lasso_middle(page, bb)
        page.wait_for_function("() => !location.search.includes('sel=0-1d')")
        count = int(page.get_by_test_id("selection-count").text_content().replace(",", ""))
        assert 0 < count < LAZY_SAMPLES
        assert page_.unexpected_errors() == []
    finally:
        page_.close()


def test_the_first_draw_waits_for_the_colours_on_their_way(browser: Any, large_run_url: str) -> None:
    page_ = Page(browser, large_run_url)
    page = page_.page
    held: list[Any] = []
    page.route("**/columns/label/values", lambda route: held.append(route))  # held until released
    try:
        with page.expect_response(lambda r: "/scores" in r.url) as scores:
            page.goto(f"{large_run_url}?run=large&layer=0&tab=scatter")
        scores.value.finished()
        page.wait_for_function("() => performance.getEntriesByName('ee:scatter-scores').length > 0")
        page.wait_for_timeout(500)
        assert page.get_by_test_id("legend-entry").count() == 0
        # the scores are in, the colours are not: nothing is drawn yet (no uncoloured frame)
        assert page.get_by_test_id("scatter-canvas").get_attribute("data-drawn") == "false"
        assert len(held) == 1
        held[0].continue_()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=scatter-canvas]')?.dataset.drawn === 'true'"
        )
        assert page.get_by_test_id("legend-entry").count() == 3  # the labels 0, 1, 2
        assert page_.unexpected_errors() == []
    finally:
        page_.close()


def hover_until_tooltip(page: Any, box: dict[str, float]) -> bool:
    """Sweep the mouse over the middle of the scatter's ``box`` until it passes over a point
    (the tooltip shows); whether it did."""
    for fy in np.linspace(0.3, 0.7, 9):
        for fx in np.linspace(0.3, 0.7, 21):
            page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            if page.get_by_test_id("scatter-tooltip").count():
                return True
    return False
