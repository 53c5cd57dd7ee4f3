"""An audio run in Chromium: gallery thumbnails are spectrograms with a play button (an <audio>
element on the clip, served as audio/wav); the sample view and the lightbox show a larger
spectrogram and a player."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import embedding_explorer as ee
from browser_support import Page, missing_requirements, serving, wait_images
from specs_support import WAVE_NET, write_audio_folder

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    folder: Path = tmp_path_factory.mktemp("browser-audio")
    (folder / "net.py").write_text(WAVE_NET)
    write_audio_folder(folder / "tones")
    return ee.explore(f"{folder}/net.py:build", folder / "tones", ["2"], out=folder / "run", progress=False)


@pytest.fixture(scope="module")
def audio_server(audio_run: ee.Run) -> Iterator[Any]:
    with serving([audio_run]) as handle:
        yield handle


@pytest.fixture
def server_url(audio_server: Any) -> str:
    url: str = audio_server.url
    return url


def test_spectrogram_thumbnails_play_their_clips(ui: Page, audio_run: ee.Run) -> None:
    page = ui.open("?layer=2")
    column = page.get_by_test_id("gallery-column").first
    thumbs = column.get_by_test_id("audio-thumb")
    thumbs.first.wait_for()
    wait_images(page, column.locator("img"))
    first = thumbs.first.locator("img")
    assert first.get_attribute("src").startswith("data:image/png;base64,")
    size = first.evaluate("(img) => [img.naturalWidth, img.naturalHeight]")
    assert size == [128, 64]  # the spectrogram: time across, frequency up
    audio = thumbs.first.get_by_test_id("thumb-audio")
    source = audio.evaluate("(a) => a.src")
    with urllib.request.urlopen(source) as answer:
        assert answer.headers["content-type"] == "audio/wav"
        sample_id = int(thumbs.first.get_by_test_id("sample-thumb").get_attribute("data-sample-id"))
        assert answer.read() == audio_run.rendering(sample_id)
    ui.shot("40-audio-gallery-light")

    thumbs.first.get_by_test_id("sample-thumb").click()
    view = page.get_by_test_id("sample-view")
    view.wait_for()
    wait_images(page, view.get_by_test_id("sample-spectrogram"))
    player = view.get_by_test_id("sample-audio")
    assert player.get_attribute("controls") is not None
    assert player.evaluate("(a) => a.src") == source  # the same clip
    ui.shot("41-audio-sample-light")
    view.get_by_test_id("sample-enlarge").click()
    lightbox = page.get_by_test_id("lightbox")
    wait_images(page, lightbox.get_by_test_id("lightbox-img"))
    assert lightbox.get_by_test_id("lightbox-img").evaluate("(img) => img.naturalWidth") == 128
    assert lightbox.get_by_test_id("lightbox-audio").evaluate("(a) => a.src") == source
    ui.shot("42-audio-lightbox-light")
    assert ui.unexpected_errors() == []
