"""The Insights tab in Chromium: the first tab, the planted findings as sentences with their
figures, and links that open the view showing each (layer, component, column selected).

Served by this module's own server: TinyCNN over the synthetic images with the recorded input
statistics (no ``brightness`` given as metadata, so the recorded one is used), the same model
over the images inverted, and another model over the same images. Screenshots 60-61."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import TensorDataset

import embedding_explorer as ee
from browser_support import LABEL_NAMES, Page, TinyCNN, missing_requirements, serving, synthetic_images

pytestmark = pytest.mark.browser


def _run(out: Path, name: str, *, seed: int = 0, inverted: bool = False) -> ee.Run:
    torch.manual_seed(seed)
    x, y = synthetic_images()
    return ee.explore(
        TinyCNN().eval(),
        TensorDataset(1.0 - x if inverted else x, y),
        ["input", "conv", "fc"],
        out=out,
        name=name,
        batch_size=128,
        label_names=LABEL_NAMES,
        progress=False,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[ee.Run]:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("insights")
    return [
        _run(folder / "a", "tiny-cnn"),
        _run(folder / "inverted", "inverted", inverted=True),
        _run(folder / "b", "tiny-cnn-b", seed=1),
    ]


@pytest.fixture(scope="module")
def insights_server(runs: list[ee.Run]) -> Iterator[Any]:
    with serving(runs) as handle:
        yield handle


@pytest.fixture
def server_url(insights_server: Any) -> str:
    url: str = insights_server.url
    return url


def test_insights_tab_shows_the_planted_findings_and_links_to_them(ui: Page, runs: list[ee.Run]) -> None:
    expected = runs[0].insights(compare=runs[1:])
    brightness = expected[(expected.kind == "input_statistic") & (expected.layer == "conv")].iloc[0]
    assert brightness.column == "brightness" and brightness.component == 0  # the planted truth holds

    page = ui.open("?tab=insights")
    tabs = page.get_by_role("tab")
    assert tabs.first.text_content() == "Insights"  # the first tab
    found = page.get_by_test_id("insight")
    found.first.wait_for(timeout=60_000)
    assert page.get_by_test_id("insight-sentence").all_text_contents() == expected["sentence"].tolist()
    kinds = {found.nth(i).get_attribute("data-kind") for i in range(found.count())}
    assert {"input_statistic", "dataset_shift", "model_comparison", "class_emergence"} <= kinds
    ui.shot("60-insights-light")

    row = found.filter(has_text=brightness.sentence)
    assert "follows brightness, r = " in row.text_content()
    link = row.get_by_test_id("insight-open")
    assert link.text_content() == "Probe conv PC 1 →"
    link.click()
    page.get_by_test_id("probe").wait_for(timeout=60_000)
    query = ui.query()
    assert query["tab"] == ["probe"] and query["layer"] == ["conv"] and query["color"] == ["brightness"]
    assert "pc" not in query  # PC 1 is the default component

    page.get_by_test_id("tab-insights").click()
    shift = page.get_by_test_id("insight").filter(has_text="inverted moves").first
    shift.get_by_test_id("insight-open").click()
    page.get_by_test_id("shift-row").first.wait_for(timeout=60_000)
    top = expected[expected.kind == "dataset_shift"].iloc[0]
    query = ui.query()
    assert query["tab"] == ["datasets"] and query["dsb"] == ["inverted"] and query["dsl"] == [top.layer]
    # the Data sets view ranks by the same variance-aware shift: the finding's component is on top
    assert page.get_by_test_id("shift-row").first.get_attribute("data-component") == str(top.component)
    assert page.get_by_test_id("shift-ranked-by").text_content() == "largest shift weighted by variance first"


def test_insights_dark(browser: Any, server_url: str) -> None:
    ui = Page(browser, server_url, dark=True)
    try:
        page = ui.open("?tab=insights")
        page.get_by_test_id("insight").first.wait_for(timeout=60_000)
        ui.shot("61-insights-dark")
        assert ui.unexpected_errors() == [], ui.errors
    finally:
        ui.close()
