"""The probe in Chromium: the quantile slider by keys and mouse (the last position wins), the
histogram and its score axis."""

from __future__ import annotations

from typing import Any

import pytest

from browser_support import Page, wait_images

pytestmark = pytest.mark.browser


def probe_ids(page: Any) -> list[int]:
    thumbs = page.get_by_test_id("probe-samples").get_by_test_id("sample-thumb")
    return [int(t.get_attribute("data-sample-id")) for t in thumbs.all()]


def test_probe_slider_moves_samples(ui: Page) -> None:
    page = ui.open("?layer=fc")
    page.get_by_test_id("gallery-column").nth(1).get_by_test_id("component-header").click()
    assert page.get_by_role("tab", name="Probe").get_attribute("aria-selected") == "true"
    page.get_by_test_id("histogram").wait_for()
    assert page.get_by_test_id("legend").locator("li").count() == 5
    ui.wait_q("0.5")
    at_median = probe_ids(page)
    assert len(at_median) == 8
    query = ui.query()
    assert query["tab"] == ["probe"] and query["pc"] == ["1"] and query["layer"] == ["fc"]

    slider = page.get_by_test_id("probe-slider")
    slider.focus()
    page.keyboard.press("PageUp")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.get_by_test_id("probe-q").text_content() == "62%"
    ui.wait_q("0.62")
    moved = probe_ids(page)
    assert moved != at_median
    page.wait_for_function("() => new URLSearchParams(location.search).get('q') === '0.62'")

    # hold the key down: the answers follow, the last one wins
    for _ in range(30):
        page.keyboard.press("ArrowLeft")
    ui.wait_q("0.32")
    page.keyboard.press("End")
    ui.wait_q("1")
    page.keyboard.press("PageDown")
    ui.wait_q("0.9")

    # drag the slider with the mouse through most of the range: the last position wins
    bb = slider.bounding_box()
    assert bb is not None
    y = bb["y"] + bb["height"] / 2
    page.mouse.move(bb["x"] + bb["width"] * 0.95, y)
    page.mouse.down()
    page.mouse.move(bb["x"] + bb["width"] * 0.05, y, steps=40)
    page.mouse.move(bb["x"] + bb["width"] * 0.25, y, steps=10)
    page.mouse.up()
    shown = page.get_by_test_id("probe-q").text_content()
    q = int(shown.rstrip("%")) / 100
    assert 0.15 < q < 0.35, shown
    ui.wait_q(f"{q:g}")
    page.wait_for_function("(q) => new URLSearchParams(location.search).get('q') === q", arg=f"{q:g}")
    slider.focus()
    page.keyboard.press("End")
    page.keyboard.press("PageDown")
    ui.wait_q("0.9")
    wait_images(page, page.get_by_test_id("probe").locator("img"))
    ui.shot("03-probe-light")
    page.get_by_test_id("axis-score").click()
    assert ui.query()["axis"] == ["score"]
    assert page.get_by_test_id("histogram").get_by_text("density").count() == 1
    ui.shot("03b-probe-score-axis-light")
