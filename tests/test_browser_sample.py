"""The sample view in Chromium: opened from a thumbnail, its scores, label and metadata, closed by
Escape."""

from __future__ import annotations

import pytest

from browser_support import LABEL_NAMES, Page, wait_images

pytestmark = pytest.mark.browser


def test_sample_view(ui: Page) -> None:
    page = ui.open("?layer=conv")
    thumb = page.get_by_test_id("gallery-column").first.get_by_test_id("sample-thumb").first
    sample_id = thumb.get_attribute("data-sample-id")
    thumb.click()
    view = page.get_by_test_id("sample-view")
    view.wait_for()
    assert ui.query()["sample"] == [sample_id]
    assert f"#{sample_id}" in view.text_content()
    rows = page.get_by_test_id("sample-scores").locator("tbody tr")
    rows.first.wait_for()
    assert rows.count() == 8  # conv is mean-pooled to 8 channels: 8 components
    label = page.get_by_test_id("sample-label").text_content().strip()
    assert label in LABEL_NAMES  # the name only, not its stored code ("(value 2)")
    assert "brightness" in view.text_content()
    wait_images(page, view.locator("img"))
    ui.shot("07-sample-view-light")
    page.keyboard.press("Escape")
    view.wait_for(state="detached")
    assert "sample" not in ui.query()
