"""The UI under a path prefix in Chromium: ``serve(root_path="/proxy/8031")`` behind a real reverse
proxy (started here) that serves it at ``/proxy/8031/`` and strips the prefix. Every view loads
and draws, and no request of the page leaves the prefix (each one the browser makes is recorded)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_support import (
    N_SAMPLES,
    Page,
    inverted_run,
    make_run,
    make_text_run,
    missing_requirements,
    reverse_proxy,
    serving,
    wait_images,
)

pytestmark = pytest.mark.browser
PREFIX = "/proxy/8031"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """The proxy and the UI's public URL under it: images through two models, the images
    inverted, texts."""
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("prefix")
    runs = [
        make_run(folder / "cnn"),
        make_run(folder / "cnn-b", seed=1, name="tiny-cnn-b"),
        inverted_run(folder / "inverted"),
        make_text_run(folder / "texts"),
    ]
    with serving(runs, root_path=PREFIX) as handle, reverse_proxy(handle.url, PREFIX) as (proxy, url):
        # the server answers under the prefix too (a proxy that passes the path on)
        assert handle.url.endswith(f"{PREFIX}/")
        yield proxy, url


@pytest.fixture
def ui(browser: Any, proxied: tuple[Any, str]) -> Iterator[Page]:
    """A page on the proxied UI that records every request it makes; none may leave the prefix."""
    proxy, url = proxied
    page = Page(browser, url)
    requests: list[str] = []
    page.page.on("request", lambda r: requests.append(r.url))
    try:
        yield page
        outside = [u for u in requests if not u.startswith(url) and not u.startswith(("data:", "blob:"))]
        assert outside == [], outside
        assert proxy.escaped == [], proxy.escaped
        assert any("/api/" in u for u in requests)
        assert page.unexpected_errors() == [], page.errors
    finally:
        page.close()


def test_gallery_and_sample_view(ui: Page, proxied: tuple[Any, str]) -> None:
    page = ui.open()
    assert f"{N_SAMPLES} samples" in page.get_by_test_id("run-summary").text_content()
    wait_images(page, page.get_by_test_id("gallery").locator("img"))
    page.get_by_test_id("gallery").locator("img").first.click()
    view = page.get_by_test_id("sample-view")
    view.wait_for()
    wait_images(page, view.locator("img"))
    assert page.url.startswith(proxied[1]) and "sample=" in page.url
    ui.shot("60-prefix-gallery-sample")


def test_probe(ui: Page) -> None:
    page = ui.open("?layer=fc&tab=probe")
    ui.wait_q("0.5")
    wait_images(page, page.get_by_test_id("probe-samples").locator("img"))


def test_scatter(ui: Page) -> None:
    page = ui.open("?layer=fc&tab=scatter")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=scatter-canvas]')?.dataset.drawn === 'true'"
    )
    assert page.get_by_test_id("scatter-canvas").get_attribute("data-points") == str(N_SAMPLES)


def test_meaning_and_layers(ui: Page) -> None:
    page = ui.open("?layer=fc&tab=meaning")
    page.get_by_test_id("association-table").wait_for()
    assert page.get_by_test_id("assoc-row").count() == 10
    page.get_by_test_id("tab-layers").click()
    page.get_by_test_id("corr-graph").wait_for()
    assert page.locator("[data-testid=corr-node][data-layer=fc]").count() == 10


def test_models_and_datasets(ui: Page) -> None:
    page = ui.open("?tab=compare&ra=tiny-cnn&rb=tiny-cnn-b")
    page.get_by_test_id("cka-heatmap").wait_for(timeout=60_000)
    assert page.get_by_test_id("cka-cell").count() == 9
    page = ui.open("?tab=datasets&dsa=tiny-cnn&dsb=tiny-cnn-inverted")
    page.get_by_test_id("shift-row").first.wait_for(timeout=60_000)
    assert page.get_by_test_id("shift-row").count() == 10
    page.get_by_test_id("datasets-histogram").wait_for()


def test_texts_and_export_links(ui: Page, proxied: tuple[Any, str]) -> None:
    page = ui.open("?run=bag-of-words")
    page.get_by_test_id("gallery").get_by_text("note").first.wait_for()
    page = ui.open("?layer=fc")
    page.get_by_test_id("export-menu").locator("summary").click()
    link = page.get_by_test_id("export-scores-csv")
    href = link.evaluate("a => a.href")
    assert href.startswith(f"{proxied[1]}api/runs/tiny-cnn/layers/fc/export/scores.csv")
    with page.expect_download() as download:
        link.click()
    path = Path(download.value.path())
    assert path.read_text().count("\n") == N_SAMPLES + 1  # the header and one row per sample
