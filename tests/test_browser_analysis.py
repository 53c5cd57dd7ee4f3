"""The analysis views in Chromium: Meaning (associations with labels and metadata), Layers
(correlation links and heatmap) and Models (CKA and matched components of two runs)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from browser_support import Page, wait_images

pytestmark = pytest.mark.browser


def test_meaning_table_and_summaries(ui: Page) -> None:
    page = ui.open("?layer=fc&tab=meaning")
    table = page.get_by_test_id("association-table")
    table.wait_for()
    heads = [t.strip() for t in table.locator("thead th .assoc-col-name").all_text_contents()]
    recorded = {"contrast", "edge_density", "predicted", "confidence", "entropy", "loss", "correct"}
    assert heads[0] == "label" and set(heads) - recorded == {"label", "brightness", "split"}
    assert page.get_by_test_id("assoc-row").count() == 10
    cells = page.locator("[data-testid=assoc-cell][data-column=label]")
    assert cells.count() == 10
    values = [float(v) for v in (cells.nth(i).get_attribute("data-value") for i in range(10)) if v]
    assert values and all(0 <= v <= 1 for v in values) and max(values) > 0.1
    assert re.fullmatch(r"\d\.\d\d", cells.first.text_content().strip())
    signed = page.locator("[data-testid=assoc-cell][data-column=brightness]").first.text_content().strip()
    assert re.fullmatch(r"[+−]?\d\.\d\d", signed), signed
    assert re.search(
        r"high: |no category stands out", page.locator("[data-testid=assoc-row]").first.text_content()
    )
    ui.shot("20-meaning-light")

    # a cell opens that component in the probe, its header reading as that column
    page.locator("[data-testid=assoc-cell][data-column=brightness][data-component='2']").click()
    page.get_by_test_id("probe").wait_for()
    query = ui.query()
    assert query["tab"] == ["probe"] and query["pc"] == ["2"] and query["color"] == ["brightness"]
    meaning = page.get_by_test_id("probe-meaning")
    meaning.wait_for()
    assert re.search(r"r = [+−]\d\.\d\d", meaning.text_content())

    # the gallery headers carry the label column's summary
    page.get_by_test_id("tab-gallery").click()
    page.evaluate(
        "() => { const u = new URL(location.href); u.searchParams.delete('color');"
        " history.pushState(null, '', u); dispatchEvent(new PopStateEvent('popstate')); }"
    )
    summary = page.get_by_test_id("gallery-column").first.get_by_test_id("component-summary")
    summary.wait_for()
    text = summary.text_content()
    assert re.search(r"η² = \d\.\d\d", text), text
    assert re.search(r"high: |no category", text), text
    wait_images(page, page.get_by_test_id("gallery").locator("img"))
    ui.shot("20b-gallery-summaries-light")


def test_layers_correlation_links_and_heatmap(ui: Page) -> None:
    page = ui.open("?tab=layers")
    graph = page.get_by_test_id("corr-graph")
    graph.wait_for()
    assert page.locator("[data-testid=corr-node][data-layer=conv]").count() == 8
    assert page.locator("[data-testid=corr-node][data-layer=fc]").count() == 10
    count = page.get_by_test_id("link-count")

    def links() -> int:
        n = int(count.get_attribute("data-count"))
        assert page.get_by_test_id("corr-link").count() == n
        return n

    at_default = links()
    assert at_default > 0
    ui.shot("21-layers-corr-light")

    # a higher threshold draws fewer links, a lower one more; it lands in the URL
    slider = page.get_by_test_id("threshold-input")
    slider.focus()
    for _ in range(6):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => new URLSearchParams(location.search).get('thr') === '0.6'")
    higher = links()
    assert higher < at_default
    for _ in range(10):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => new URLSearchParams(location.search).get('thr') === '0.1'")
    lower = links()
    assert lower > at_default

    # clicking a component highlights its links and shades the others
    node = page.locator("[data-testid=corr-node][data-layer=conv][data-component='0']")
    node.click()
    assert ui.query()["node"] == ["conv:0"]
    page.get_by_test_id("node-details").wait_for()
    assert page.locator(".corr-graph.has-focus").count() == 1
    assert page.locator("[data-testid=corr-link].on").count() >= 1

    # only two layers: the chips choose them (the gallery rows)
    page.locator("[data-testid=layer-chip][data-layer=input]").click()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=corr-node][data-layer=input]').length === 0"
    )
    assert ui.query()["row"] == ["conv", "fc"]

    # the heatmap of any two layers
    page.get_by_test_id("heat-a-select").select_option("input")
    page.get_by_test_id("heat-b-select").select_option("fc")
    assert ui.query()["ha"] == ["input"] and ui.query()["hb"] == ["fc"]
    heat = page.get_by_test_id("corr-heatmap")
    heat.wait_for()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=heatmap-cell]').length === 100")
    cell = page.get_by_test_id("heatmap-cell").nth(11)
    cell.hover()
    readout = page.get_by_test_id("heatmap-readout").text_content()
    assert re.search(r"PC 2 × fc PC 2\s*r = [+−]\d\.\d\d", readout), readout
    r = float(cell.get_attribute("data-r"))
    assert -1 <= r <= 1
    heat.scroll_into_view_if_needed()
    ui.shot("22-heatmap-light")


COMPARE = "?tab=compare&ra=tiny-cnn&rb=tiny-cnn-b"


def test_compare_cka_and_matched_pairs(ui: Page) -> None:
    page = ui.open(COMPARE)
    cka = page.get_by_test_id("cka-heatmap")
    cka.wait_for(timeout=60_000)
    cells = page.get_by_test_id("cka-cell")
    assert cells.count() == 9
    values = [float(t) for t in cells.all_text_contents()]
    assert all(0 <= v <= 1.0001 for v in values)
    assert page.locator("[data-testid=cka-cell][data-a=input][data-b=input]").text_content() == "1.00"
    page.get_by_test_id("matched-hint").wait_for()
    ui.shot("23a-compare-cka-light")

    page.locator("[data-testid=cka-cell][data-a=fc][data-b=fc]").click()
    assert ui.query()["ca"] == ["fc"] and ui.query()["cb"] == ["fc"]
    pairs = page.get_by_test_id("matched-pair")
    pairs.first.wait_for()
    assert pairs.count() == 10
    first = pairs.first.text_content()
    assert re.search(r"A\s*PC 1 \(\d+\.\d%\)\s*~\s*B\s*−?PC \d+ \(\d+\.\d%\)\s*\|r\| = \d\.\d\d", first), (
        first
    )
    thumbs_a = pairs.first.get_by_test_id("pair-thumbs-a").get_by_test_id("pair-thumb")
    thumbs_b = pairs.first.get_by_test_id("pair-thumbs-b").get_by_test_id("pair-thumb")
    assert thumbs_a.count() == 8 and thumbs_b.count() == 8
    wait_images(page, page.get_by_test_id("matched-pairs").locator("img"))
    pairs.nth(1).get_by_role("button", name=re.compile("PC 2")).first.click()
    assert ui.query()["pair"] == ["1"]
    ui.shot("23-compare-light")

    # reload: the same view
    page.reload()
    page.get_by_test_id("matched-pair").first.wait_for()
    assert page.locator("[data-testid=matched-pair].on").get_attribute("data-a") == "1"


def test_compare_runs_over_other_samples_is_not_offered(ui: Page) -> None:
    page = ui.open("?tab=compare&ra=tiny-cnn&rb=bag-of-words")
    notice = page.get_by_test_id("pair-notice")
    notice.wait_for()
    # the refused pair is never asked of the server: replaced, and why in plain words
    assert "“tiny-cnn” and “bag-of-words” cannot be compared here: other samples (240 vs 500)." in (
        notice.text_content()
    )
    assert page.get_by_test_id("compare-run-b").input_value() == "tiny-cnn-b"
    page.get_by_test_id("cka-heatmap").wait_for(timeout=60_000)
    assert page.get_by_test_id("error-state").count() == 0
    ui.shot("25-compare-refused-pair-light")


def test_compare_dark(browser: Any, server_url: str) -> None:
    ui = Page(browser, server_url, dark=True)
    try:
        page = ui.open(COMPARE + "&ca=conv&cb=fc&pair=0")
        page.get_by_test_id("matched-pair").first.wait_for(timeout=60_000)
        wait_images(page, page.get_by_test_id("matched-pairs").locator("img"))
        ui.shot("24-compare-dark")
        page.get_by_test_id("tab-layers").click()
        page.get_by_test_id("corr-graph").wait_for()
        page.get_by_test_id("corr-heatmap").wait_for()
        ui.shot("26-layers-dark")
        page.get_by_test_id("tab-meaning").click()
        page.get_by_test_id("association-table").wait_for()
        ui.shot("27-meaning-dark")
        assert ui.unexpected_errors() == [], ui.errors
    finally:
        ui.close()
