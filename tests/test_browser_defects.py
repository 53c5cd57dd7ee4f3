"""Defects a user met in the browser (issue 14), each checked where it showed: sideways scrolling,
summaries that named the low end first, run switches that lost the layer, pickers that offered
refused pairs, one request per thumbnail, cut labels at 1024 x 700, text snippets without their
text, no lightbox, jargon, and variance bars out of keyboard reach."""

from __future__ import annotations

import re
from typing import Any

import pytest

from browser_support import Page, wait_images

pytestmark = pytest.mark.browser

NO_SIDEWAYS_SCROLL = "() => document.scrollingElement.scrollWidth <= innerWidth"


def narrow(browser: Any, server_url: str) -> Page:
    """A page at 1024 x 700, the smallest window the UI is made for."""
    ui = Page(browser, server_url)
    ui.page.set_viewport_size({"width": 1024, "height": 700})
    return ui


@pytest.mark.parametrize("query", ["", "?run=bag-of-words", "?layer=input&n=16"])
def test_gallery_page_does_not_scroll_sideways(ui: Page, query: str) -> None:
    page = ui.open(query)
    page.get_by_test_id("gallery-column").first.wait_for()
    page.get_by_test_id("sample-thumb").first.wait_for()
    width = page.evaluate("() => [document.scrollingElement.scrollWidth, innerWidth]")
    assert page.evaluate(NO_SIDEWAYS_SCROLL), f"the page scrolls sideways: {width}"
    # the columns still scroll inside their own box
    scroller = page.locator(".gallery-scroller").first
    assert scroller.evaluate("(el) => el.scrollWidth > el.clientWidth")


def test_opens_on_a_learned_layer_and_run_switches_keep_layer_and_component(ui: Page) -> None:
    page = ui.open()
    # the first learned layer, not the raw input
    page.locator("[data-testid=layer-item].focused[data-layer=conv]").wait_for()
    page.locator("[data-testid=gallery-row][data-layer=conv]").wait_for()
    page = ui.open("?layer=fc&pc=2&tab=probe")
    ui.wait_q("0.5")
    page.get_by_role("button", name=re.compile("^tiny-cnn-b")).click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('run') === 'tiny-cnn-b'")
    query = ui.query()
    assert query["layer"] == ["fc"] and query["pc"] == ["2"] and query["tab"] == ["probe"], query
    page.locator("[data-testid=layer-item].focused[data-layer=fc]").wait_for()
    # a run without that layer falls back to its own default, without a "no layer" notice
    page.get_by_role("button", name=re.compile("^bag-of-words")).click()
    page.locator("[data-testid=layer-item].focused[data-layer=input]").wait_for()
    assert page.get_by_role("status").filter(has_text="no layer").count() == 0


def test_summary_states_high_and_low_and_the_strongest_column(ui: Page) -> None:
    page = ui.open("?layer=input")
    column = page.get_by_test_id("gallery-column").first
    summary = column.get_by_test_id("component-summary")
    summary.wait_for()
    text = summary.text_content()
    assert re.search(r"(by mean · high: .+ · low: .+|no category stands out)", text), text
    # the run's brightness metadata goes with input PC 1 more than the labels do
    strongest = column.get_by_test_id("component-strongest")
    strongest.wait_for()
    assert re.fullmatch(r"strongest: brightness r = [+−]0\.\d\d", strongest.text_content()), (
        strongest.text_content()
    )
    ui.shot("60-gallery-summary-strongest-light")


def test_thumbnails_come_in_batches_with_a_neutral_placeholder(ui: Page) -> None:
    requests: list[str] = []
    ui.page.on("request", lambda r: requests.append(r.url))
    page = ui.open("?layer=input&n=16")
    thumbs = page.get_by_test_id("gallery").locator("img")
    wait_images(page, thumbs)
    assert thumbs.count() == 10 * 2 * 16
    assert not [u for u in requests if "/render" in u and "/renderings" not in u], "one request per thumbnail"
    assert 1 <= sum("/renderings" in u for u in requests) <= 2
    # while loading, a thumbnail is the neutral sunken panel colour, not black
    ui.page.route(re.compile(r".*/renderings\?.*"), lambda route: None)  # never answered
    ui.open("?layer=fc")  # a fresh page: nothing cached
    placeholder = page.locator(".thumb-placeholder.is-loading").first
    placeholder.wait_for()
    colour = placeholder.evaluate("(el) => getComputedStyle(el.parentElement).backgroundColor")
    assert colour not in ("rgb(0, 0, 0)", "rgb(13, 15, 20)"), colour


def test_pickers_mark_pairs_the_server_refuses(ui: Page) -> None:
    page = ui.open("?tab=compare")
    page.get_by_test_id("cka-heatmap").wait_for(timeout=60_000)
    option = page.locator("[data-testid=compare-run-b] option[value=bag-of-words]")
    assert option.is_disabled()
    assert option.text_content() == "bag-of-words — other samples (240 vs 500)"
    page.get_by_test_id("tab-datasets").click()
    # runs of two models and a text run: nothing for the Data sets view, said without an error
    empty = page.get_by_test_id("datasets-no-pair")
    empty.wait_for()
    assert page.get_by_test_id("error-state").count() == 0


def test_matched_components_show_tallies_and_eta2(ui: Page) -> None:
    page = ui.open("?tab=compare&ra=tiny-cnn&rb=tiny-cnn-b&ca=fc&cb=fc")
    pair = page.get_by_test_id("matched-pair").first
    pair.wait_for(timeout=60_000)
    pair.get_by_test_id("pair-eta2").first.wait_for()
    assert re.fullmatch(r"labels η² = \d\.\d\d", pair.get_by_test_id("pair-eta2").first.text_content())
    tallies = pair.get_by_test_id("pair-tally").all_text_contents()
    assert len(tallies) == 4 and all(re.fullmatch(r"\d/4 \w+", t) for t in tallies), tallies
    wait_images(page, page.get_by_test_id("matched-pairs").locator("img"))
    size = pair.locator("img").first.bounding_box()
    assert size is not None and size["width"] >= 36, size
    ui.shot("61-matched-tallies-light")


def test_narrow_window_keeps_names_and_controls_whole(browser: Any, server_url: str) -> None:
    ui = narrow(browser, server_url)
    try:
        page = ui.open("?layer=input&n=16")
        page.get_by_test_id("gallery-column").first.wait_for()
        name = page.locator(".run-summary-name")
        whole_or_ellipsis = (
            "(el) => el.scrollWidth <= el.clientWidth || getComputedStyle(el).textOverflow === 'ellipsis'"
        )
        assert name.evaluate(whole_or_ellipsis)
        # at 16 samples per end the HIGH / LOW tags stay on one line
        tag = page.locator(".end-tag-high").first
        assert tag.evaluate("(el) => el.getBoundingClientRect().height < 22"), "the HIGH tag wraps"
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        ui.shot("62-gallery-16-narrow-light")

        # the probe's axis switch is whole inside its card
        page.get_by_test_id("tab-probe").click()
        button = page.get_by_test_id("axis-score")
        button.wait_for()
        box, card = button.bounding_box(), page.locator(".probe-hist-card").bounding_box()
        assert box and card and box["x"] + box["width"] <= card["x"] + card["width"], (box, card)
        assert button.evaluate("(el) => el.scrollWidth <= el.clientWidth")

        # the sidebar can be hidden, and the choice is kept
        page.get_by_test_id("sidebar-toggle").click()
        page.get_by_test_id("layer-list").wait_for(state="detached")
        page.reload()
        page.get_by_test_id("tab-probe").wait_for()
        assert page.get_by_test_id("layer-list").count() == 0
        page.get_by_test_id("sidebar-toggle").click()
        page.get_by_test_id("layer-list").wait_for()

        # the CKA table scrolls inside its card rather than being cut
        page.get_by_test_id("tab-compare").click()
        page.get_by_test_id("cka-heatmap").wait_for(timeout=60_000)
        scroller = page.locator(".cka-scroller")
        card_box = page.locator(".cka-card").bounding_box()
        grid_right = scroller.evaluate("(el) => el.getBoundingClientRect().right")
        assert card_box and grid_right <= card_box["x"] + card_box["width"] + 1
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        ui.shot("63-compare-narrow-light")
        assert ui.unexpected_errors() == [], ui.errors
    finally:
        ui.close()


def test_text_snippets_hover_and_lightbox(ui: Page) -> None:
    page = ui.open("?run=bag-of-words")
    thumbs = page.get_by_test_id("gallery-high").first.get_by_test_id("sample-thumb")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=gallery-high] .thumb-text-body')?.textContent.length > 0"
    )
    first = thumbs.first
    # the hover shows the text itself, well past the old ~30 characters
    title = first.get_attribute("title")
    assert re.search(r"(Sports|Cooking|Finance) note \d+", title) and len(title) > 80, title
    body = first.locator(".thumb-text-body")
    assert body.evaluate("(el) => getComputedStyle(el).webkitLineClamp") == "3"

    ids = [thumbs.nth(i).get_attribute("data-sample-id") for i in range(thumbs.count())]
    thumbs.nth(1).click()
    page.get_by_test_id("sample-enlarge").click()
    box = page.get_by_test_id("lightbox")
    box.wait_for()
    text = page.get_by_test_id("lightbox-text")
    page.wait_for_function(
        "(id) => document.querySelector('[data-testid=lightbox] .mono')?.textContent === '#' + id", arg=ids[1]
    )
    assert "note" in text.text_content()
    assert page.get_by_test_id("lightbox-position").text_content().startswith(f"2 of {len(ids)}")
    ui.shot("64-lightbox-text-light")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "(id) => document.querySelector('[data-testid=lightbox] .mono')?.textContent === '#' + id", arg=ids[2]
    )
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        "(id) => document.querySelector('[data-testid=lightbox] .mono')?.textContent === '#' + id", arg=ids[0]
    )
    page.keyboard.press("Escape")
    box.wait_for(state="detached")
    # Esc closed the lightbox only; the sample view shows where the steps ended
    assert ui.query()["sample"] == [ids[0]]
    page.get_by_test_id("sample-view").wait_for()


def test_image_lightbox_and_no_jargon(ui: Page) -> None:
    page = ui.open()
    page.get_by_test_id("gallery-column").first.wait_for()
    assert "covariance_eigh" not in page.locator("body").text_content()
    thumb = page.get_by_test_id("gallery-low").first.get_by_test_id("sample-thumb").first
    thumb.locator("img").wait_for()
    thumb.click()
    view = page.get_by_test_id("sample-view")
    view.get_by_test_id("sample-label").wait_for()
    assert "(value" not in view.text_content()
    view.locator("img.zoomable").click()
    image = page.get_by_test_id("lightbox-img")
    image.wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=lightbox-img]').naturalWidth > 0")
    assert image.bounding_box()["width"] >= 300  # type: ignore[index]
    ui.shot("65-lightbox-image-light")
    page.keyboard.press("Escape")
    page.get_by_test_id("lightbox").wait_for(state="detached")


def test_variance_bars_by_keyboard(ui: Page) -> None:
    page = ui.open()
    fc = page.locator("[data-testid=layer-item][data-layer=fc]")
    bars = fc.locator("[data-testid=variance-bars] rect[role=button]")
    bars.first.wait_for()
    assert bars.count() == 10
    assert [bars.nth(i).get_attribute("tabindex") for i in range(3)] == ["0", "-1", "-1"]
    bars.first.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_function("() => new URLSearchParams(location.search).get('tab') === 'probe'")
    assert ui.query()["layer"] == ["fc"] and ui.query()["pc"] == ["2"]
