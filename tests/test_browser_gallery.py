"""The gallery in Chromium: component columns with both ends, the number of samples, layers as
rows, and text renderings (gallery, probe and sample view of the bag-of-words run)."""

from __future__ import annotations

import re

import pytest

from browser_support import Page, wait_images

pytestmark = pytest.mark.browser


def test_gallery_columns_ends_and_rows(ui: Page) -> None:
    page = ui.open("?layer=input")
    columns = page.get_by_test_id("gallery-column")
    columns.first.wait_for()
    assert columns.count() == 10
    head = columns.first.get_by_test_id("component-header")
    assert re.fullmatch(r"PC 1\s*\d+\.\d% of variance.*", head.text_content().strip())
    first = columns.first
    assert first.get_by_test_id("gallery-high").get_by_test_id("sample-thumb").count() == 8
    assert first.get_by_test_id("gallery-low").get_by_test_id("sample-thumb").count() == 8
    assert re.search(r"\d/8 \w+", first.text_content())  # dominant label at an end, e.g. "7/8 ring"

    # n is adjustable: 8 -> 5 per end, and it lands in the URL
    slider = page.get_by_test_id("n-input")
    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=gallery-high]')"
        "?.querySelectorAll('[data-testid=sample-thumb]').length === 5"
    )
    assert ui.query()["n"] == ["5"]

    # compare layers: add fc as a second row
    page.locator("[data-layer=fc]").get_by_role("button", name=re.compile("row")).click()
    rows = page.get_by_test_id("gallery-row")
    rows.nth(1).wait_for()
    assert [rows.nth(i).get_attribute("data-layer") for i in range(rows.count())] == ["input", "fc"]
    page.locator("[data-testid=gallery-row][data-layer=fc] [data-testid=gallery-column]").first.wait_for()
    wait_images(page, page.get_by_test_id("gallery").locator("img"))
    ui.shot("02-gallery-two-layers-light")


def test_text_run_gallery_and_probe(ui: Page) -> None:
    page = ui.open("?run=bag-of-words")
    assert page.get_by_test_id("layer-item").count() == 1
    column = page.get_by_test_id("gallery-column").first
    column.wait_for()
    assert page.get_by_test_id("gallery-column").count() == 6
    snippet = column.get_by_test_id("sample-thumb").first
    page.wait_for_function(
        "() => document.querySelector('[data-testid=gallery-column] .thumb-text-title')"
        "?.textContent.includes('note')"
    )
    assert re.search(r"(Sports|Cooking|Finance) note \d+", snippet.text_content())
    ui.shot("09-gallery-text-light")
    column.get_by_test_id("component-header").click()
    ui.wait_q("0.5")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=probe-samples] .thumb-text-title')]"
        ".every((t) => t.textContent.includes('note'))"
    )
    ui.shot("10-probe-text-light")
    page.get_by_test_id("probe-samples").get_by_test_id("sample-thumb").first.click()
    page.get_by_test_id("sample-view").locator(".sample-text").filter(has_text="note").wait_for()
