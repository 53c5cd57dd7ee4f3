"""The web UI in a real browser: Debian's Chromium driven by Playwright against a real run and server.

A module fixture explores a tiny CNN over 500 synthetic 28x28 images (labels 0..4 with names),
serves the run on a free port, and every test opens the built UI (``src/embedding_explorer/static``)
in a fresh page, collecting console errors. Screenshots of each view, light and dark, go to
``test-artifacts/screenshots/``. Skipped when Chromium or the built UI is missing
(build it with ``npm ci && npm run build`` in ``frontend/``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import embedding_explorer as ee

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
STATIC_INDEX = ROOT / "src" / "embedding_explorer" / "static" / "index.html"
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # headless Chromium draws WebGL (the scatter) with SwiftShader; newer versions want it asked for
    "--enable-unsafe-swiftshader",
]
LABEL_NAMES = ["horizontal", "vertical", "diagonal", "ring", "blob"]
N_SAMPLES = 500
TIMEOUT_MS = 20_000


# ---- a small real run ----------------------------------------------------------------------------
class TinyCNN(nn.Module):
    """(B, 1, 28, 28) -> conv 5x5/2 (8 maps) -> ReLU -> 4x4 pool -> fc (16) -> head (5)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 5, stride=2)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(8 * 4 * 4, 16)
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.act(self.conv(x))).flatten(1)
        return self.head(torch.relu(self.fc(h)))


def synthetic_images(n: int = N_SAMPLES, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Shapes by class (bars, a diagonal, a ring, a blob) at random places, brightness and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    images = np.zeros((n, 1, 28, 28), dtype=np.float32)
    labels = np.arange(n) % 5
    rng.shuffle(labels)
    for i, label in enumerate(labels):
        cx, cy = rng.uniform(8, 20, size=2)
        width = rng.uniform(1.5, 3.5)
        if label == 0:
            img = np.abs(yy - cy) < width
        elif label == 1:
            img = np.abs(xx - cx) < width
        elif label == 2:
            img = np.abs((xx - cx) - (yy - cy)) < width * 1.4
        elif label == 3:
            r = np.hypot(xx - cx, yy - cy)
            img = np.abs(r - rng.uniform(5, 9)) < width * 0.7
        else:
            img = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (width * 2) ** 2)) > 0.3
        brightness = rng.uniform(0.4, 1.0)
        images[i, 0] = np.clip(img.astype(np.float32) * brightness + rng.normal(0, 0.08, (28, 28)), 0, 1)
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def make_run(out: Path, *, seed: int = 0, name: str = "tiny-cnn") -> ee.Run:
    """A finished run of TinyCNN over the synthetic images: layers input, conv and fc.

    Another ``seed`` gives another (untrained) model over the very same samples: a run to compare.
    """
    torch.manual_seed(seed)
    x, y = synthetic_images()
    model = TinyCNN().eval()
    metadata = {
        "brightness": x.mean(dim=(1, 2, 3)).numpy().astype(np.float64),
        "split": np.where(np.arange(len(y)) % 4 == 0, "test", "train"),
    }
    return ee.explore(
        model,
        TensorDataset(x, y),
        ["input", "conv", "fc"],
        out=out,
        name=name,
        n_components=10,
        batch_size=128,
        label_names=LABEL_NAMES,
        metadata=metadata,
        progress=False,
    )


TOPICS = {
    "sports": ["match", "goal", "team", "coach", "season", "league", "score", "player"],
    "cooking": ["recipe", "oven", "garlic", "butter", "simmer", "flavour", "dough", "spice"],
    "finance": ["market", "shares", "interest", "bond", "inflation", "profit", "bank", "fund"],
}
COMMON = ["the", "a", "today", "really", "new", "big", "after", "week", "people", "time"]


def synthetic_texts(n: int = 240, seed: int = 1) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Short two-line documents about three topics, with bag-of-words vectors."""
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    vocab = sorted({w for words in TOPICS.values() for w in words} | set(COMMON))
    index = {w: i for i, w in enumerate(vocab)}
    texts, vectors, labels = [], np.zeros((n, len(vocab)), dtype=np.float32), np.arange(n) % 3
    for i, label in enumerate(labels):
        own = TOPICS[names[label]]
        mix = rng.uniform(0.5, 0.95)
        words = [
            (rng.choice(own) if rng.random() < mix else rng.choice(COMMON))
            for _ in range(int(rng.integers(12, 30)))
        ]
        title = f"{names[label].title()} note {i}: {words[0]} and {words[1]}"
        texts.append(title + "\n" + " ".join(words).capitalize() + ".")
        for w in words:
            vectors[i, index[w]] += 1
    return texts, vectors, labels


def make_text_run(out: Path) -> ee.Run:
    """A run in input space (no model) over bag-of-words vectors of short texts."""
    texts, vectors, labels = synthetic_texts()
    return ee.explore(
        None,
        torch.from_numpy(vectors),
        ["input"],
        out=out,
        name="bag-of-words",
        n_components=6,
        labels=labels.tolist(),
        label_names=list(TOPICS),
        render=texts,
        progress=False,
    )


# ---- fixtures --------------------------------------------------------------------------------------
def _requirements() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (install Debian's chromium)"
    if not STATIC_INDEX.exists():
        return f"the UI is not built ({STATIC_INDEX} is missing): run `npm ci && npm run build` in frontend/"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (Python) is not installed"
    return None


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    reason = _requirements()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("browser")
    runs = [
        make_run(folder / "tiny-cnn"),
        make_text_run(folder / "bag-of-words"),
        make_run(folder / "tiny-cnn-b", seed=1, name="tiny-cnn-b"),
    ]
    with serving(runs) as handle:
        yield handle.url


@pytest.fixture(scope="module")
def browser(server_url: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


@contextlib.contextmanager
def serving(runs: Sequence[ee.Run]) -> Iterator[Any]:
    """The UI server on a free loopback port for the duration."""
    from embedding_explorer.server import serve

    handle = serve(runs, host="127.0.0.1", port=0, block=False)
    try:
        yield handle
    finally:
        handle.stop()


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, with the flags this project's machines need."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A fresh page (own context) that records console errors and uncaught exceptions."""

    def __init__(self, browser: Any, base: str, *, dark: bool = False) -> None:
        self.context = browser.new_context(
            viewport={"width": 1440, "height": 900},
            color_scheme="dark" if dark else "light",
            device_scale_factor=1,
        )
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.base = base
        self.errors: list[str] = []
        self.expected_errors: list[re.Pattern[str]] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def open(self, query: str = "") -> Any:
        self.page.goto(self.base + query)
        self.page.get_by_test_id("layer-list").wait_for()
        return self.page

    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.page.url).query)

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.wait_for_timeout(150)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"))

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected_errors)]

    def wait_q(self, q: str) -> None:
        """Wait until the probe shows the samples near quantile ``q`` (as the server echoed it)."""
        try:
            self.page.wait_for_function(
                "(q) => document.querySelector('[data-testid=probe-samples]')?.dataset.q === q", arg=q
            )
        except Exception as e:
            probe = self.page.get_by_test_id("probe")
            text = probe.text_content() if probe.count() else "(no probe view)"
            raise AssertionError(
                f"probe never showed q={q}; errors: {self.errors}; probe: {text[:500]}"
            ) from e

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def ui(browser: Any, server_url: str) -> Iterator[Page]:
    page = Page(browser, server_url)
    try:
        yield page
        assert page.unexpected_errors() == [], page.errors
    finally:
        page.close()


IMAGES_LOADED = """(els) => els.every((img) => {
    const r = img.getBoundingClientRect();
    const onScreen = r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth;
    return !onScreen || (img.complete && img.naturalWidth > 0);
})"""


def wait_images(page: Any, locator: Any) -> None:
    """Wait until every <img> under ``locator`` that is on screen has loaded (others are lazy)."""
    locator.first.wait_for()
    page.wait_for_function(IMAGES_LOADED, arg=locator.element_handles())


def probe_ids(page: Any) -> list[int]:
    thumbs = page.get_by_test_id("probe-samples").get_by_test_id("sample-thumb")
    return [int(t.get_attribute("data-sample-id")) for t in thumbs.all()]


# ---- tests ---------------------------------------------------------------------------------------
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


def test_gallery_columns_ends_and_rows(ui: Page) -> None:
    page = ui.open()
    columns = page.get_by_test_id("gallery-column")
    columns.first.wait_for()
    assert columns.count() == 10
    head = columns.first.get_by_test_id("component-header")
    assert re.fullmatch(r"PC 1\s*\d+\.\d% of variance.*", head.text_content().strip())
    first = columns.first
    assert first.get_by_test_id("gallery-high").get_by_test_id("sample-thumb").count() == 8
    assert first.get_by_test_id("gallery-low").get_by_test_id("sample-thumb").count() == 8
    assert re.search(r"\d/8 \w+", first.text_content())  # dominant label at an end, e.g. "7/8 ring"

    # n is adjustable: 8 -> 5 per end, and it lands in the URL
    slider = page.get_by_test_id("n-input")
    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=gallery-high]')"
        "?.querySelectorAll('[data-testid=sample-thumb]').length === 5"
    )
    assert ui.query()["n"] == ["5"]

    # compare layers: add fc as a second row
    page.locator("[data-layer=fc]").get_by_role("button", name=re.compile("row")).click()
    rows = page.get_by_test_id("gallery-row")
    rows.nth(1).wait_for()
    assert [rows.nth(i).get_attribute("data-layer") for i in range(rows.count())] == ["input", "fc"]
    page.locator("[data-testid=gallery-row][data-layer=fc] [data-testid=gallery-column]").first.wait_for()
    wait_images(page, page.get_by_test_id("gallery").locator("img"))
    ui.shot("02-gallery-two-layers-light")


def test_probe_slider_moves_samples(ui: Page) -> None:
    page = ui.open("?layer=fc")
    page.get_by_test_id("gallery-column").nth(1).get_by_test_id("component-header").click()
    assert page.get_by_role("tab", name="Probe").get_attribute("aria-selected") == "true"
    page.get_by_test_id("histogram").wait_for()
    assert page.get_by_test_id("legend").locator("li").count() == 5
    ui.wait_q("0.5")
    at_median = probe_ids(page)
    assert len(at_median) == 8
    query = ui.query()
    assert query["tab"] == ["probe"] and query["pc"] == ["1"] and query["layer"] == ["fc"]

    slider = page.get_by_test_id("probe-slider")
    slider.focus()
    page.keyboard.press("PageUp")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.get_by_test_id("probe-q").text_content() == "62%"
    ui.wait_q("0.62")
    moved = probe_ids(page)
    assert moved != at_median
    page.wait_for_function("() => new URLSearchParams(location.search).get('q') === '0.62'")

    # hold the key down: the answers follow, the last one wins
    for _ in range(30):
        page.keyboard.press("ArrowLeft")
    ui.wait_q("0.32")
    page.keyboard.press("End")
    ui.wait_q("1")
    page.keyboard.press("PageDown")
    ui.wait_q("0.9")

    # drag the slider with the mouse through most of the range: the last position wins
    bb = slider.bounding_box()
    assert bb is not None
    y = bb["y"] + bb["height"] / 2
    page.mouse.move(bb["x"] + bb["width"] * 0.95, y)
    page.mouse.down()
    page.mouse.move(bb["x"] + bb["width"] * 0.05, y, steps=40)
    page.mouse.move(bb["x"] + bb["width"] * 0.25, y, steps=10)
    page.mouse.up()
    shown = page.get_by_test_id("probe-q").text_content()
    q = int(shown.rstrip("%")) / 100
    assert 0.15 < q < 0.35, shown
    ui.wait_q(f"{q:g}")
    page.wait_for_function("(q) => new URLSearchParams(location.search).get('q') === q", arg=f"{q:g}")
    slider.focus()
    page.keyboard.press("End")
    page.keyboard.press("PageDown")
    ui.wait_q("0.9")
    wait_images(page, page.get_by_test_id("probe").locator("img"))
    ui.shot("03-probe-light")
    page.get_by_test_id("axis-score").click()
    assert ui.query()["axis"] == ["score"]
    assert page.get_by_test_id("histogram").get_by_text("density").count() == 1
    ui.shot("03b-probe-score-axis-light")


def test_scatter_axes_lasso_and_reload(ui: Page) -> None:
    page = ui.open("?layer=fc&tab=scatter")
    box = page.get_by_test_id("scatter-canvas")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=scatter-canvas]')?.dataset.drawn === 'true'"
    )
    assert box.get_attribute("data-points") == str(N_SAMPLES)
    page.get_by_test_id("x-axis-select").select_option("2")
    page.get_by_test_id("y-axis-select").select_option("0")
    assert ui.query()["x"] == ["2"] and ui.query()["y"] == ["0"]
    assert "lasso" in page.get_by_test_id("lasso-hint").text_content().lower()

    # hover a point: the tooltip shows the sample
    bb = box.bounding_box()
    assert bb is not None
    cx, cy = bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2
    page.wait_for_timeout(600)  # the axis transition

    # lasso with the mouse: shift + drag around the middle of the cloud
    r = min(bb["width"], bb["height"]) * 0.3
    path = [(cx + r * np.cos(t), cy + r * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 40)]
    page.mouse.move(*path[0])
    page.keyboard.down("Shift")
    page.mouse.down()
    for x, y in path[1:]:
        page.mouse.move(x, y, steps=2)
        page.wait_for_timeout(12)
    page.mouse.up()
    page.keyboard.up("Shift")
    gallery = page.get_by_test_id("selection-gallery")
    gallery.wait_for()
    count = int(page.get_by_test_id("selection-count").text_content().replace(",", ""))
    assert 0 < count < N_SAMPLES
    assert "sel" in ui.query()
    counts = page.get_by_test_id("selection-label-counts").locator("li")
    assert counts.count() >= 1
    wait_images(page, gallery.locator("img"))
    ui.shot("04-scatter-lasso-light")

    # hover a selected point
    thumbs = gallery.get_by_test_id("sample-thumb")
    assert thumbs.count() == min(count, 120)

    # reload: the same view
    url = page.url
    page.reload()
    page.get_by_test_id("selection-gallery").wait_for()
    assert page.url == url
    assert int(page.get_by_test_id("selection-count").text_content().replace(",", "")) == count
    assert page.get_by_test_id("x-axis-select").input_value() == "2"
    assert page.get_by_test_id("y-axis-select").input_value() == "0"
    assert page.get_by_role("tab", name="Scatter").get_attribute("aria-selected") == "true"

    # back: before the lasso, no selection
    page.go_back()
    page.wait_for_function("() => !new URLSearchParams(location.search).has('sel')")
    page.get_by_test_id("selection-gallery").wait_for(state="detached")
    page.go_forward()
    page.get_by_test_id("selection-gallery").wait_for()


def test_scatter_hover_and_colour_by_numeric(ui: Page) -> None:
    page = ui.open("?layer=fc&tab=scatter")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=scatter-canvas]')?.dataset.drawn === 'true'"
    )
    box = page.get_by_test_id("scatter-canvas").bounding_box()
    assert box is not None
    # sweep the mouse until it passes over a point
    found = False
    for fy in np.linspace(0.3, 0.7, 9):
        for fx in np.linspace(0.3, 0.7, 21):
            page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            if page.get_by_test_id("scatter-tooltip").count():
                found = True
                break
        if found:
            break
    assert found, "no tooltip while sweeping the middle of the scatter"
    tip = page.get_by_test_id("scatter-tooltip")
    assert re.search(r"Sample \d+", tip.text_content())
    wait_images(page, tip.locator("img"))
    ui.shot("05-scatter-hover-light")

    page.get_by_test_id("color-select").select_option("brightness")
    assert ui.query()["color"] == ["brightness"]
    page.get_by_test_id("legend").get_by_text("brightness").wait_for()
    page.mouse.move(box["x"] - 50, box["y"] - 50)
    page.wait_for_timeout(400)
    ui.shot("06-scatter-numeric-light")

    # the Lasso mode selects with a plain drag (no modifier key); Clear empties the selection
    page.get_by_test_id("mode-lasso").click()
    x0, y0 = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3
    x1, y1 = box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.7
    page.mouse.move(x0, y0)
    page.mouse.down()
    for x, y in [(x1, y0), (x1, y1), (x0, y1), (x0 + 10, y0 + 20)]:
        page.mouse.move(x, y, steps=12)
        page.wait_for_timeout(20)
    page.mouse.up()
    page.get_by_test_id("selection-gallery").wait_for()
    assert int(page.get_by_test_id("selection-count").text_content().replace(",", "")) > 0
    page.get_by_test_id("clear-selection").click()
    page.get_by_test_id("selection-gallery").wait_for(state="detached")
    assert "sel" not in ui.query()


def test_sample_view(ui: Page) -> None:
    page = ui.open("?layer=conv")
    thumb = page.get_by_test_id("gallery-column").first.get_by_test_id("sample-thumb").first
    sample_id = thumb.get_attribute("data-sample-id")
    thumb.click()
    view = page.get_by_test_id("sample-view")
    view.wait_for()
    assert ui.query()["sample"] == [sample_id]
    assert f"#{sample_id}" in view.text_content()
    rows = page.get_by_test_id("sample-scores").locator("tbody tr")
    rows.first.wait_for()
    assert rows.count() == 8  # conv is mean-pooled to 8 channels: 8 components
    label = page.get_by_test_id("sample-label").text_content().strip()
    assert label.split(" (value ")[0] in LABEL_NAMES
    assert "brightness" in view.text_content()
    wait_images(page, view.locator("img"))
    ui.shot("07-sample-view-light")
    page.keyboard.press("Escape")
    view.wait_for(state="detached")
    assert "sample" not in ui.query()


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


def test_text_run_gallery_and_probe(ui: Page) -> None:
    page = ui.open("?run=bag-of-words")
    assert page.get_by_test_id("layer-item").count() == 1
    column = page.get_by_test_id("gallery-column").first
    column.wait_for()
    assert page.get_by_test_id("gallery-column").count() == 6
    snippet = column.get_by_test_id("sample-thumb").first
    page.wait_for_function(
        "() => document.querySelector('[data-testid=gallery-column] .thumb-text-title')"
        "?.textContent.includes('note')"
    )
    assert re.search(r"(Sports|Cooking|Finance) note \d+", snippet.text_content())
    ui.shot("09-gallery-text-light")
    column.get_by_test_id("component-header").click()
    ui.wait_q("0.5")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=probe-samples] .thumb-text-title')]"
        ".every((t) => t.textContent.includes('note'))"
    )
    ui.shot("10-probe-text-light")
    page.get_by_test_id("probe-samples").get_by_test_id("sample-thumb").first.click()
    page.get_by_test_id("sample-view").locator(".sample-text").filter(has_text="note").wait_for()


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


# ---- analysis views: meaning, layers, compare ------------------------------------------------------
COMPARE = "?tab=compare&ra=tiny-cnn&rb=tiny-cnn-b"


def test_meaning_table_and_summaries(ui: Page) -> None:
    page = ui.open("?layer=fc&tab=meaning")
    table = page.get_by_test_id("association-table")
    table.wait_for()
    heads = [t.strip() for t in table.locator("thead th .assoc-col-name").all_text_contents()]
    assert heads[0] == "label" and set(heads) == {"label", "brightness", "split"}
    assert page.get_by_test_id("assoc-row").count() == 10
    cells = page.locator("[data-testid=assoc-cell][data-column=label]")
    assert cells.count() == 10
    values = [float(v) for v in (cells.nth(i).get_attribute("data-value") for i in range(10)) if v]
    assert values and all(0 <= v <= 1 for v in values) and max(values) > 0.1
    assert re.fullmatch(r"\d\.\d\d", cells.first.text_content().strip())
    signed = page.locator("[data-testid=assoc-cell][data-column=brightness]").first.text_content().strip()
    assert re.fullmatch(r"[+−]?\d\.\d\d", signed), signed
    assert re.search(
        r"separates|no category stands out", page.locator("[data-testid=assoc-row]").first.text_content()
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
    assert re.search(r"separates|no category", text), text
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


def test_compare_runs_over_other_samples_is_an_error(ui: Page) -> None:
    ui.expected_errors.append(re.compile(r"status of 422"))
    page = ui.open("?tab=compare&ra=tiny-cnn&rb=bag-of-words")
    error = page.get_by_test_id("error-state")
    error.wait_for(timeout=60_000)
    assert "HTTP 422" in error.text_content()
    assert len(error.locator(".state-detail").text_content()) > 10
    ui.shot("25-compare-error-light")


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
