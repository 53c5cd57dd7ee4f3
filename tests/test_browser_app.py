"""The app shell in Chromium: the sidebar (layers, variance bars), errors from the server, links
to runs or layers that do not exist, and the dark theme across the views."""

from __future__ import annotations

import re
from typing import Any

import pytest

from browser_support import Page, wait_images

pytestmark = pytest.mark.browser


def test_layers_and_variance_bars(ui: Page) -> None:
    page = ui.open()
    layers = page.get_by_test_id("layer-item")
    assert [layers.nth(i).get_attribute("data-layer") for i in range(layers.count())] == [
        "input",
        "conv",
        "fc",
    ]
    assert page.get_by_test_id("variance-bars").count() == 3
    bars = page.get_by_test_id("variance-bars").first.locator("rect")
    assert bars.count() == 10
    assert "% of variance" in bars.first.locator("title").text_content()
    assert "500 samples" in page.get_by_test_id("run-summary").text_content()
    wait_images(page, page.get_by_test_id("gallery").locator("img"))
    ui.shot("01-gallery-light")


def test_server_errors_are_shown(ui: Page) -> None:
    detail = "layer 'fc' could not be read: the run directory is damaged"
    ui.page.route(
        re.compile(r".*/gallery\?.*"),
        lambda route: route.fulfill(
            status=500, content_type="application/json", body=f'{{"detail": "{detail}"}}'
        ),
    )
    page = ui.open("?layer=fc")
    error = page.get_by_test_id("error-state")
    error.wait_for()
    assert detail in error.text_content()
    assert "HTTP 500" in error.text_content()
    ui.shot("08-error-light")
    # the failed requests are the only console errors
    ui.expected_errors.append(re.compile(r"status of 500"))


def test_unknown_run_and_layer_fall_back(ui: Page) -> None:
    page = ui.open("?run=nope&layer=gone&token=keep-me-1234")
    assert page.get_by_role("status").filter(has_text="no run").count() == 1
    assert "keep-me-1234" in page.url
    page.get_by_test_id("gallery-column").first.wait_for()


def test_dark_theme_views(browser: Any, server_url: str) -> None:
    ui = Page(browser, server_url, dark=True)
    try:
        page = ui.open("?layer=conv&row=input&row=conv")
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        page.locator(
            "[data-testid=gallery-row][data-layer=conv] [data-testid=gallery-column]"
        ).first.wait_for()
        wait_images(page, page.get_by_test_id("gallery").locator("img"))
        ui.shot("11-gallery-dark")
        page.get_by_test_id("tab-probe").click()
        ui.wait_q("0.5")
        wait_images(page, page.get_by_test_id("probe").locator("img"))
        ui.shot("12-probe-dark")
        page.get_by_test_id("tab-scatter").click()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=scatter-canvas]')?.dataset.drawn === 'true'"
        )
        page.wait_for_timeout(300)
        ui.shot("13-scatter-dark")
        page.get_by_test_id("tab-gallery").click()
        page.get_by_test_id("sample-thumb").first.click()
        page.get_by_test_id("sample-scores").wait_for()
        wait_images(page, page.get_by_test_id("sample-view").locator("img"))
        ui.shot("14-sample-view-dark")
        # the toggle switches to light and remembers it
        page.get_by_test_id("theme-toggle").click()
        assert page.evaluate("document.documentElement.dataset.theme") == "light"
        page.reload()
        page.get_by_test_id("layer-list").wait_for()
        assert page.evaluate("document.documentElement.dataset.theme") == "light"
        assert ui.unexpected_errors() == [], ui.errors
    finally:
        ui.close()
