"""The shared sample filter and the neighbours in Chromium: a legend click isolates a label in the
gallery and the scatter, the filter lives in the URL (a reload restores it), the search narrows the
gallery, a brushed range filters by a numeric column, and the sample view lists neighbours with
their overlap across layers and models."""

from __future__ import annotations

import json
import re

import pytest

from browser_support import N_SAMPLES, Page, wait_images

pytestmark = pytest.mark.browser

DRAWN = "() => document.querySelector('[data-testid=scatter-canvas]')?.dataset.drawn === 'true'"


def filter_of(ui: Page) -> dict:
    return json.loads(ui.query().get("f", ["{}"])[0])


def gallery_labels(page) -> set[str]:  # type: ignore[no-untyped-def]
    """The label named in each gallery thumbnail's title ("Sample 3 · ring · score 1.2")."""
    thumbs = page.get_by_test_id("gallery-column").get_by_test_id("sample-thumb")
    thumbs.first.wait_for()
    return {t.split(" · ")[1] for t in thumbs.evaluate_all("els => els.map(e => e.title)")}


def wait_count(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "(t) => document.querySelector('[data-testid=filter-count]')?.textContent === t", arg=text
    )


def test_a_legend_click_isolates_a_label_in_gallery_and_scatter_and_survives_a_reload(ui: Page) -> None:
    page = ui.open("?layer=fc")
    assert len(gallery_labels(page)) > 1
    page.get_by_test_id("filter-bar").locator("[data-label=ring]").click()
    assert filter_of(ui) == {"labels": ["ring"]}
    wait_count(page, f"100 of {N_SAMPLES} samples")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=gallery-column] [data-testid=sample-thumb]')]"
        ".every(e => e.title.includes(' · ring · '))"
    )
    assert gallery_labels(page) == {"ring"}
    ui.shot("30-filter-label-gallery")

    page.get_by_test_id("tab-scatter").click()
    page.wait_for_function(DRAWN)
    box = page.get_by_test_id("scatter-canvas")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=scatter-canvas]').dataset.shown === '100'"
    )
    assert box.get_attribute("data-points") == str(N_SAMPLES)
    # the scatter's own legend isolates too
    page.get_by_test_id("legend").locator("[data-testid=legend-entry][data-label=blob]").click()
    assert filter_of(ui) == {"labels": ["blob"]}
    wait_count(page, f"100 of {N_SAMPLES} samples")
    ui.shot("31-filter-label-scatter")

    page.reload()
    page.get_by_test_id("filter-bar").wait_for()
    assert (
        page.get_by_test_id("filter-bar").locator("[data-label=blob]").get_attribute("aria-pressed") == "true"
    )
    wait_count(page, f"100 of {N_SAMPLES} samples")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=scatter-canvas]')?.dataset.shown === '100'"
    )
    page.get_by_test_id("tab-gallery").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=gallery-column] [data-testid=sample-thumb]')]"
        ".every(e => e.title.includes(' · blob · '))"
    )
    assert gallery_labels(page) == {"blob"}
    page.get_by_test_id("filter-clear").click()
    assert "f" not in ui.query()
    wait_count(page, f"all {N_SAMPLES} samples")


def test_hiding_a_label_and_brushing_a_range(ui: Page) -> None:
    page = ui.open("?layer=conv")
    page.get_by_test_id("filter-bar").locator("[data-label=ring] + [data-testid=filter-label-hide]").click()
    assert filter_of(ui) == {"hide": ["ring"]}
    wait_count(page, f"400 of {N_SAMPLES} samples")
    page.get_by_test_id("filter-add-range").select_option("brightness")
    plot = page.get_by_test_id("range-brush").locator("svg")
    plot.wait_for()
    box = plot.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, y, steps=5)
    page.mouse.up()
    page.wait_for_function("() => new URLSearchParams(location.search).get('f')?.includes('brightness')")
    low, high = filter_of(ui)["ranges"]["brightness"]
    assert low < high
    count = page.get_by_test_id("filter-count")
    page.wait_for_function(
        "() => /^\\d+ of 500 samples$/.test(document.querySelector('[data-testid=filter-count]').textContent)"
    )
    kept = int(re.match(r"(\d+) of", count.text_content() or "").group(1))  # type: ignore[union-attr]
    assert 0 < kept < 400
    assert "ring" not in gallery_labels(page)
    ui.shot("32-filter-range-brush")


def test_the_search_box_narrows_the_gallery(ui: Page) -> None:
    page = ui.open("?run=bag-of-words")
    page.get_by_test_id("filter-search").fill("garlic")
    page.wait_for_function("() => new URLSearchParams(location.search).get('f') === '{\"query\":\"garlic\"}'")
    page.wait_for_function(
        "() => { const t = [...document.querySelectorAll("
        "'[data-testid=gallery-column] [data-testid=sample-thumb]')];"
        " return t.length > 0 && t.every(e => e.textContent.toLowerCase().includes('garlic')) }"
    )
    count = page.get_by_test_id("filter-count").text_content() or ""
    assert re.fullmatch(r"\d+ of 240 samples", count) and not count.startswith("240")


def test_the_sample_view_lists_neighbours_and_their_overlap(ui: Page) -> None:
    page = ui.open("?layer=fc&sample=12")
    view = page.get_by_test_id("sample-view")
    view.wait_for()
    neighbours = view.get_by_test_id("neighbor")
    neighbours.first.wait_for()
    assert neighbours.count() == 8
    ids = [int(n.get_attribute("data-sample-id") or -1) for n in neighbours.all()]
    assert 12 not in ids and len(set(ids)) == 8
    rows = view.get_by_test_id("neighbors-overlap").locator("tbody tr")
    rows.first.wait_for()
    assert rows.count() == 3  # input, conv, fc
    assert view.get_by_test_id("overlap-previous").first.text_content() == "—"
    view.get_by_test_id("neighbors-other").select_option(label="vs tiny-cnn-b")
    assert ui.query()["nr"] == ["tiny-cnn-b"]  # the compared model is in the link
    view.get_by_test_id("overlap-other").nth(8).wait_for()
    assert view.get_by_test_id("overlap-other").count() == 9
    wait_images(page, view.get_by_test_id("neighbors-grid").locator("img"))
    view.get_by_test_id("sample-neighbors").scroll_into_view_if_needed()
    ui.shot("33-sample-neighbours")
    neighbours.first.get_by_test_id("sample-thumb").click()
    page.wait_for_function(
        "(id) => new URLSearchParams(location.search).get('sample') === String(id)", arg=ids[0]
    )
