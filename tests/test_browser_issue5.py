"""The issue-5 UI in a real browser: the Data sets tab, directions, the ICA toggle, downloads.

Its own module fixture serves three runs: TinyCNN over the synthetic images, the very same model
over the inverted images (another data set), and another model (seed 1) over the first images
(a pair the data-set comparison refuses). Helpers and the Chromium setup are test_browser's.
Screenshots go to ``test-artifacts/screenshots/`` (5x-*.png).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import embedding_explorer as ee
from embedding_explorer.server.directions import Directions
from test_browser import (
    LABEL_NAMES,
    Page,
    TinyCNN,
    _requirements,
    chromium,
    make_run,
    serving,
    synthetic_images,
    wait_images,
)

pytestmark = pytest.mark.browser


def inverted_run(out: Path) -> ee.Run:
    """The same TinyCNN (seed 0) as ``make_run``, over the same images inverted: another data set."""
    torch.manual_seed(0)
    x, y = synthetic_images()
    return ee.explore(
        TinyCNN().eval(),
        TensorDataset(1.0 - x, y),
        ["input", "conv", "fc"],
        out=out,
        name="tiny-cnn · inverted",
        n_components=10,
        batch_size=128,
        label_names=LABEL_NAMES,
        progress=False,
    )


SERVED: dict[str, Any] = {}


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    reason = _requirements()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("browser5")
    runs = [
        make_run(folder / "tiny-cnn"),
        inverted_run(folder / "inverted"),
        make_run(folder / "tiny-cnn-b", seed=1, name="tiny-cnn-b"),
    ]
    with serving(runs) as handle:
        SERVED["app"] = handle.server.config.app  # to make the server forget its directions
        yield handle.url


@pytest.fixture(scope="module")
def browser(server_url: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def ui(browser: Any, server_url: str) -> Iterator[Page]:
    page = Page(browser, server_url)
    try:
        yield page
        assert page.unexpected_errors() == [], page.errors
    finally:
        page.close()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (the signature checked first)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def high_ids(page: Any, column: int = 0) -> list[int]:
    thumbs = (
        page.get_by_test_id("gallery-column")
        .nth(column)
        .get_by_test_id("gallery-high")
        .get_by_test_id("sample-thumb")
    )
    return [int(t.get_attribute("data-sample-id")) for t in thumbs.all()]


# ---- data sets ---------------------------------------------------------------------------------
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
    smd = [
        abs(float(t.replace("−", "-")))
        for t in page.locator("[data-testid=shift-row] .smd-cell .num").all_text_contents()
    ]
    assert smd == sorted(smd, reverse=True) and smd[0] > 0
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


def test_datasets_refused_pair_shows_why(ui: Page) -> None:
    ui.expected_errors.append(re.compile(r"status of 422"))
    page = ui.open("?tab=datasets&dsa=tiny-cnn&dsb=tiny-cnn-b")
    error = page.get_by_test_id("error-state")
    error.wait_for(timeout=60_000)
    assert "HTTP 422" in error.text_content()
    assert "model" in error.locator(".state-detail").text_content()
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


# ---- bases: ICA and directions -----------------------------------------------------------------
def test_ica_toggle_changes_the_gallery_and_scatter(ui: Page) -> None:
    page = ui.open("?layer=fc")
    page.get_by_test_id("gallery-column").first.wait_for()
    pca_ids = high_ids(page)
    page.get_by_test_id("basis-ica").click()
    assert ui.query()["basis"] == ["ica"]
    page.locator("[data-testid=gallery-row][data-basis=ica]").wait_for(timeout=60_000)
    head = page.get_by_test_id("component-header").first.text_content()
    assert re.fullmatch(r"IC 1\s*kurtosis -?\d+\.\d.*", head.strip()), head
    assert high_ids(page) != pca_ids
    wait_images(page, page.get_by_test_id("gallery").locator("img"))
    ui.shot("53-gallery-ica-light")

    page.get_by_test_id("tab-scatter").click()
    page.locator("[data-testid=scatter-canvas][data-drawn=true]").wait_for(timeout=60_000)
    assert page.locator(".scatter-axis-x").text_content().strip() == "IC 1"
    page.get_by_test_id("basis-pca").click()
    page.wait_for_function(
        "() => document.querySelector('.scatter-axis-x')?.textContent.startsWith('PC 1 ·')"
    )


def test_direction_from_two_labels_is_probed(ui: Page) -> None:
    page = ui.open("?layer=fc")
    page.get_by_test_id("gallery-column").first.wait_for()
    page.get_by_test_id("basis-dir").click()
    page.get_by_test_id("direction-needed").wait_for()
    page.get_by_test_id("direction-a").select_option("l:horizontal")
    page.get_by_test_id("direction-b").select_option("l:ring")
    page.get_by_test_id("direction-make").click()
    assert ui.query()["da"] == ["l:horizontal"] and ui.query()["db"] == ["l:ring"]
    page.locator("[data-testid=gallery-row][data-basis^='dir:']").wait_for()
    columns = page.get_by_test_id("gallery-column")
    assert columns.count() == 1
    assert "horizontal → ring" in columns.first.get_by_test_id("component-header").text_content()
    sep = float(
        re.search(r"separation (-?\d+\.\d+)", page.get_by_test_id("direction-separation").text_content())[1]
    )
    assert sep > 0.3  # an untrained model: the two shapes overlap, yet apart
    # the gallery shows the server's extremes along that direction
    basis = page.get_by_test_id("gallery-row").first.get_attribute("data-basis")
    api = page.request.get(f"{ui.base}api/runs/tiny-cnn/layers/fc/gallery?n=8&basis={basis}").json()
    assert api["components"][0]["name"] == "horizontal → ring"
    assert high_ids(page) == [s["id"] for s in api["components"][0]["high"]]
    wait_images(page, page.get_by_test_id("gallery").locator("img"))
    ui.shot("54-gallery-direction-light")

    # the same slider probes it
    columns.first.get_by_test_id("component-header").click()
    page.get_by_test_id("histogram").wait_for()
    assert page.get_by_test_id("probe-name").text_content() == "horizontal → ring"
    slider = page.get_by_test_id("probe-slider")
    slider.focus()
    page.keyboard.press("End")
    ui.wait_q("1")
    q1 = page.request.get(f"{ui.base}api/runs/tiny-cnn/layers/fc/components/0/quantile?q=1&n=8&basis={basis}")
    thumbs = page.get_by_test_id("probe-samples").get_by_test_id("sample-thumb").all()
    assert [int(t.get_attribute("data-sample-id")) for t in thumbs] == [s["id"] for s in q1.json()["samples"]]
    ui.shot("55-probe-direction-light")

    # a link recreates the direction on a fresh page
    page.reload()
    page.get_by_test_id("probe-name").wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=probe-name]')?.textContent === 'horizontal → ring'"
    )


def test_direction_from_two_lasso_selections(ui: Page) -> None:
    # two selections, as the lasso writes them in the URL: samples 0..49 and 200..259
    page = ui.open("?layer=fc&tab=scatter&sel=0-1d")
    page.get_by_test_id("use-as-a").click()
    assert ui.query()["da"] == ["s:0-1d"]
    page.goto(page.url.replace("sel=0-1d", "sel=5k-1n"))
    page.get_by_test_id("use-as-b").click()
    assert ui.query()["db"] == ["s:5k-1n"]
    assert "A: selection (50) · B: selection (60)" in page.get_by_test_id("direction-groups").text_content()
    page.get_by_test_id("make-direction").click()
    assert page.get_by_role("tab", name="Probe").get_attribute("aria-selected") == "true"
    page.get_by_test_id("histogram").wait_for()
    assert page.get_by_test_id("probe-name").text_content() == "selection A (50) → B (60)"
    page.get_by_test_id("probe-samples").get_by_test_id("sample-thumb").first.wait_for()


# ---- downloads ---------------------------------------------------------------------------------
def test_png_download_of_a_gallery_and_a_chart(ui: Page, tmp_path: Path) -> None:
    page = ui.open("?layer=fc&n=4")
    row = page.get_by_test_id("gallery-row").first
    row.get_by_test_id("gallery-column").first.wait_for()
    wait_images(page, row.locator("img"))
    with page.expect_download() as info:
        row.get_by_test_id("png-download").click()
    download = info.value
    assert download.suggested_filename == "tiny-cnn-fc-pca.png"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    data = path.read_bytes()
    width, height = png_size(data)
    box = row.bounding_box()
    assert (width, height) == (round(2 * np.ceil(box["width"])), round(2 * np.ceil(box["height"])))
    assert len(data) > 20_000  # thumbnails and text, not an empty canvas
    shots = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    (shots / "56-download-gallery.png").write_bytes(data)

    page.get_by_test_id("component-header").first.click()
    card = page.locator(".probe-hist-card")
    card.get_by_test_id("histogram").wait_for()
    with page.expect_download() as info:
        card.get_by_test_id("png-download").click()
    chart = info.value
    assert chart.suggested_filename == "tiny-cnn-fc-pc-1-histogram.png"
    chart.save_as(tmp_path / "chart.png")
    data = (tmp_path / "chart.png").read_bytes()
    width, height = png_size(data)
    assert width > 800 and 300 < height < 1000
    (shots / "57-download-histogram.png").write_bytes(data)


def test_export_buttons_download_tables(ui: Page, tmp_path: Path) -> None:
    page = ui.open("?layer=fc")
    page.get_by_test_id("export-menu").locator("summary").click()
    with page.expect_download() as info:
        page.get_by_test_id("export-scores-csv").click()
    download = info.value
    assert download.suggested_filename == "tiny-cnn-fc-scores.csv"
    download.save_as(tmp_path / "s.csv")
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "sample_id,label," + ",".join(f"PC{i}" for i in range(1, 11))
    assert len(lines) == 501
    ui.shot("58-export-menu-light")
    with page.expect_download() as info:
        page.get_by_test_id("export-extremes-parquet").click()
    assert info.value.suggested_filename == "tiny-cnn-fc-extremes.parquet"
    info.value.save_as(tmp_path / "e.parquet")
    assert (tmp_path / "e.parquet").read_bytes()[:4] == b"PAR1"


def test_png_download_of_the_scatter(ui: Page, tmp_path: Path) -> None:
    page = ui.open("?layer=fc&tab=scatter")
    page.locator("[data-testid=scatter-canvas][data-drawn=true]").wait_for(timeout=60_000)
    with page.expect_download() as info:
        page.locator(".scatter-png").get_by_test_id("png-download").click()
    download = info.value
    assert download.suggested_filename == "tiny-cnn-fc-pca-1-2-scatter.png"
    download.save_as(tmp_path / "scatter.png")
    data = (tmp_path / "scatter.png").read_bytes()
    width, height = png_size(data)
    box = page.locator(".scatter-frame").bounding_box()
    assert (width, height) == (round(2 * np.ceil(box["width"])), round(2 * np.ceil(box["height"])))
    assert len(data) > 30_000  # the WebGL points are in it, not only the axes
    shots = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
    (shots / "59-download-scatter.png").write_bytes(data)


def test_a_direction_between_two_samples_shows_no_separation(ui: Page) -> None:
    """One sample per group: the separation cannot be measured (null), and reads "–"."""
    page = ui.open("?layer=fc&basis=dir&da=s:0&db=s:1")
    page.locator("[data-testid=gallery-row][data-basis^='dir:']").wait_for()
    assert page.get_by_test_id("direction-separation").text_content().strip() == "separation –"
    assert "separation –" in page.get_by_test_id("component-header").first.text_content()
    assert page.get_by_test_id("view-error").count() == 0  # no view failed (the fixture checks errors)


def test_a_direction_the_server_forgot_is_made_again(ui: Page) -> None:
    """A restarted server (fresh directions) makes the direction again from its id: the page
    probes on with the id it has, and posts nothing again."""
    page = ui.open("?layer=fc&tab=probe&basis=dir&da=l:horizontal&db=l:ring")
    page.get_by_test_id("histogram").wait_for()
    assert page.get_by_test_id("probe-name").text_content() == "horizontal → ring"
    app = SERVED["app"]
    while not hasattr(app, "state"):  # through the middleware to the FastAPI app
        app = app.app
    assert len(app.state.directions) >= 1
    app.state.directions = Directions()  # as a restarted server would have
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    slider = page.get_by_test_id("probe-slider")
    slider.focus()
    page.keyboard.press("End")
    ui.wait_q("1")  # the probe at q=1 (a new request) is answered: the direction was made again
    assert len(app.state.directions.made) == 1
    assert posts == []
    assert page.get_by_test_id("error-state").count() == 0


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

    assert shown() == ranked("smd")
    assert page.locator("th[aria-sort=descending]").text_content().startswith("SMD")
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
