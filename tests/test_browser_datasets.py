"""The Data sets tab in Chromium: one model over two data sets, components ranked by their shift
(by any measure), overlaid histograms and ends, a refused pair, the dark theme.

Served by ``datasets_server``; screenshots 50-52 and 5a."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from browser_support import Page, wait_images

pytestmark = pytest.mark.browser


@pytest.fixture
def server_url(datasets_server: Any) -> str:
    """This module's pages open ``datasets_server``: TinyCNN over the images and over them inverted."""
    url: str = datasets_server.url
    return url


def test_datasets_tab_ranks_components_and_overlays_histograms(ui: Page) -> None:
    page = ui.open("?tab=datasets")
    assert page.get_by_test_id("tab-datasets").text_content() == "Data sets"
    assert page.get_by_test_id("tab-compare").text_content() == "Models"
    # the default pair: one model over two data sets (not the other model)
    assert page.get_by_test_id("datasets-run-a").input_value() == "tiny-cnn"
    assert page.get_by_test_id("datasets-run-b").input_value() == "tiny-cnn-inverted"
    assert page.get_by_test_id("datasets-layer").input_value() == "fc"
    rows = page.get_by_test_id("shift-row")
    rows.first.wait_for(timeout=60_000)
    assert rows.count() == 10
    # ranked by the variance-aware shift (W1 over the layer's total SD) by default
    shift = [float(t) for t in page.get_by_test_id("shift-total").all_text_contents()]
    assert shift == sorted(shift, reverse=True) and shift[0] > 0
    assert re.search(
        r"capture \d+\.\d% of B's variance", page.get_by_test_id("captured-variance").text_content()
    )
    hist = page.get_by_test_id("datasets-histogram")
    hist.wait_for()
    assert hist.locator("rect.overlay-a").count() == 40 and hist.locator("rect.overlay-b").count() == 40
    assert re.search(r"B('s mean)? sits", page.get_by_test_id("datasets-shift-text").text_content() or "")
    for end in ("ends-a-high", "ends-b-high", "ends-a-low", "ends-b-low"):
        assert page.get_by_test_id(end).get_by_test_id("pair-thumb").count() == 6
    wait_images(page, page.get_by_test_id("datasets-ends").locator("img"))
    ui.shot("50-datasets-light")

    # another component: in the URL, and the histogram follows
    third = rows.nth(2)
    component = third.get_attribute("data-component")
    third.click()
    assert ui.query()["dspc"] == [component]
    page.wait_for_function(
        "(c) => document.querySelector('[data-testid=shift-row].on')?.dataset.component === c", arg=component
    )
    page.get_by_test_id("datasets-layer").select_option("conv")
    assert ui.query()["dsl"] == ["conv"]
    page.locator("[data-testid=shift-row]").first.wait_for()
    page.reload()
    page.get_by_test_id("datasets-histogram").wait_for(timeout=60_000)
    assert page.get_by_test_id("datasets-layer").input_value() == "conv"


def test_datasets_refused_pair_is_replaced_and_says_why(ui: Page) -> None:
    page = ui.open("?tab=datasets&dsa=tiny-cnn&dsb=tiny-cnn-b")
    notice = page.get_by_test_id("pair-notice")
    notice.wait_for()
    text = notice.text_content()
    assert "“tiny-cnn” and “tiny-cnn-b” cannot be compared here: another model." in text
    assert not re.search(r"[0-9a-f]{12}|Try again", text)  # no hashes, nothing that cannot succeed
    assert page.get_by_test_id("datasets-run-b").input_value() == "tiny-cnn-inverted"
    option = page.locator("[data-testid=datasets-run-b] option[value=tiny-cnn-b]")
    assert option.is_disabled() and option.text_content() == "tiny-cnn-b — another model"
    page.get_by_test_id("datasets-histogram").wait_for(timeout=60_000)
    ui.shot("51-datasets-refused-light")


def test_datasets_dark(browser: Any, server_url: str) -> None:
    ui = Page(browser, server_url, dark=True)
    try:
        page = ui.open("?tab=datasets&dspc=0")
        page.get_by_test_id("datasets-histogram").wait_for(timeout=60_000)
        wait_images(page, page.get_by_test_id("datasets-ends").locator("img"))
        ui.shot("52-datasets-dark")
        assert ui.unexpected_errors() == [], ui.errors
    finally:
        ui.close()


def test_datasets_components_rank_by_any_measure(ui: Page) -> None:
    page = ui.open("?tab=datasets&dsl=fc")
    page.get_by_test_id("shift-row").first.wait_for(timeout=60_000)
    shift = page.request.get(
        f"{ui.base}api/compare/datasets?run_a=tiny-cnn&run_b=tiny-cnn-inverted&layer=fc"
    ).json()["components"]

    def shown() -> list[int]:
        return [int(r.get_attribute("data-component")) for r in page.get_by_test_id("shift-row").all()]

    def ranked(key: str) -> list[int]:
        rows = sorted(shift, key=lambda r: (-abs(r[key]) if r[key] is not None else np.inf, r["index"]))
        return [r["index"] for r in rows]

    assert shown() == ranked("w1_total_sd")
    assert page.locator("th[aria-sort=descending]").text_content().startswith("Shift")
    page.get_by_test_id("shift-sort-smd").click()
    assert ui.query()["dss"] == ["smd"]
    page.wait_for_function(
        "() => document.querySelector('th[aria-sort=descending]')?.textContent.startsWith('SMD')"
    )
    assert shown() == ranked("smd")
    page.get_by_test_id("shift-sort-w1").click()
    assert ui.query()["dss"] == ["w1"]
    page.wait_for_function(
        "() => document.querySelector('th[aria-sort=descending]')?.textContent.startsWith('W')"
    )
    assert shown() == ranked("wasserstein")
    assert page.get_by_test_id("shift-ranked-by").text_content() == "largest W₁ first"
    # with nothing picked, the histogram shows the top component of the ranking
    page.wait_for_function(
        "(c) => document.querySelector('[data-testid=shift-row].on')?.dataset.component === c",
        arg=str(ranked("wasserstein")[0]),
    )
    shares = page.get_by_test_id("shift-variance").all_text_contents()
    assert len(shares) == len(shift) and all(t.endswith("%") for t in shares)
    page.get_by_test_id("datasets-histogram").wait_for(timeout=60_000)
    wait_images(page, page.get_by_test_id("datasets-ends").locator("img"))
    ui.shot("5a-datasets-ranked-by-w1-light")
    page.get_by_test_id("shift-sort-ks").click()
    page.wait_for_function(
        "() => document.querySelector('th[aria-sort=descending]')?.textContent.startsWith('KS')"
    )
    assert shown() == ranked("ks") and ui.query()["dss"] == ["ks"]
    page.reload()  # the ranking is part of the link
    page.get_by_test_id("shift-row").first.wait_for(timeout=60_000)
    assert shown() == ranked("ks")
