"""Downloads in Chromium: PNGs of a gallery row, a chart and the scatter, and the export menu's
tables (CSV, Parquet).

Served by ``datasets_server``; screenshots 56-59."""

from __future__ import annotations

import struct
from pathlib import Path
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


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (the signature checked first)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


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
