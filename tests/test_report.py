"""The static HTML report: every layer and component, embedded thumbnails, escaped texts, no
requests; opened from disk in Debian's Chromium."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from browser_support import CHROMIUM, chromium
from embedding_explorer.report import nice_step, render_report

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-artifacts" / "screenshots"
NAMES = ["ring", "bar", "<b>&co</b>"]  # a label name that must be escaped
N_IMAGES = 90
N_SHOWN = 4


def images() -> tuple[torch.Tensor, torch.Tensor]:
    """16x16 images of rings, bars and blobs of random brightness, labels 0..2."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16].astype(np.float32)
    labels = np.arange(N_IMAGES) % 3
    x = np.zeros((N_IMAGES, 1, 16, 16), dtype=np.float32)
    for i, label in enumerate(labels):
        cx, cy = rng.uniform(5, 11, size=2)
        if label == 0:
            shape = np.abs(np.hypot(xx - cx, yy - cy) - 4) < 1.2
        elif label == 1:
            shape = np.abs(xx - cx) < 1.5
        else:
            shape = np.hypot(xx - cx, yy - cy) < 3
        x[i, 0] = shape * rng.uniform(0.3, 1.0) + rng.normal(0, 0.05, (16, 16))
    return torch.from_numpy(np.clip(x, 0, 1)), torch.from_numpy(labels)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5)
    )
    x, y = images()
    return ee.explore(
        model,
        torch.utils.data.TensorDataset(x, y),
        {"input": "input", "conv": "1", "logits": "4"},
        out=tmp_path_factory.mktemp("runs") / "shapes",
        name="shapes <demo>",
        n_components=4,
        label_names=NAMES,
        metadata={"brightness": x.mean(dim=(1, 2, 3)).numpy().astype(np.float64)},
        progress=False,
    )


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    rng = np.random.default_rng(1)
    vectors = rng.poisson(1.0, size=(30, 6)).astype(np.float32)
    texts = [f"doc {i}: <script>alert('{i}')</script> & more" + " words" * 60 for i in range(30)]
    return ee.explore(
        None,
        vectors,
        ["input"],
        out=tmp_path_factory.mktemp("runs") / "texts",
        labels=["alpha", "beta"] * 15,
        render=texts,
        n_components=3,
        progress=False,
    )


@pytest.fixture(scope="module")
def report(image_run: ee.Run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return image_run.report(tmp_path_factory.mktemp("report") / "shapes.html", n=N_SHOWN)


def test_every_layer_and_component_with_both_extremes(image_run: ee.Run, report: Path) -> None:
    text = report.read_text()
    sections = re.findall(
        r'<section class="layer" id="layer-(\d+)"><h2><span class="name">([^<]*)</span>', text
    )
    assert sections == [(str(i), name) for i, name in enumerate(image_run.layers)]
    assert text.count('class="component"') == sum(layer.n_components for layer in image_run)
    assert text.count('class="tile"') == sum(layer.n_components for layer in image_run) * 2 * N_SHOWN
    assert f"{image_run.n_samples:,} samples" in text
    assert "Sequential" in text and image_run.manifest["created"][:10] in text
    assert "shapes &lt;demo&gt;" in text and "<demo>" not in text


def test_thumbnails_are_embedded_once_each_as_the_runs_pngs(image_run: ee.Run, report: Path) -> None:
    text = report.read_text()
    rules = dict(
        re.findall(r"\.s(\d+)\{background-image:url\(data:image/png;base64,([A-Za-z0-9+/=]+)\)\}", text)
    )
    shown = {
        int(i)
        for layer in image_run
        for c in range(layer.n_components)
        for end in layer.extremes(c, N_SHOWN)
        for i in end
    }
    assert {int(i) for i in rules} == shown
    for i, data in rules.items():
        assert base64.b64decode(data) == image_run.rendering(int(i))
    # the tiles of each component are its extremes, lowest first, then highest
    layer = image_run["logits"]
    row = text.split('<section class="layer" id="layer-2">')[1].split('class="component"')[1]
    low, high = layer.extremes(0, N_SHOWN)
    assert [int(i) for i in re.findall(r'class="img(?: px)? s(\d+)"', row)] == [*low, *high]


def test_nothing_is_fetched_and_texts_are_escaped(image_run: ee.Run, report: Path, text_run: ee.Run) -> None:
    for document in (report.read_text(), render_report(text_run, n=3)):
        assert "http://" not in document and "https://" not in document
        assert "<script" not in document and "<link" not in document and "<img" not in document
        assert "@import" not in document and "url(" not in document.replace("url(data:image/png;base64,", "")
    text = render_report(text_run, n=3)
    assert "&lt;script&gt;alert(&#x27;" in text
    assert text.count('class="snippet"') == 3 * 2 * 3
    assert "…" in text  # long texts are cut; the tooltip holds more
    assert "&lt;b&gt;&amp;co&lt;/b&gt;" in report.read_text()


def test_variance_bars_are_proportional_to_the_ratios(image_run: ee.Run, report: Path) -> None:
    section = report.read_text().split('<section class="layer" id="layer-1">')[1]
    heights = [
        float(h) for h in re.findall(r'<rect class="bar" [^>]*height="([\d.]+)"', section.split("</svg>")[0])
    ]
    ratio = image_run["conv"].explained_variance_ratio
    np.testing.assert_allclose(np.array(heights) / heights[0], ratio / ratio[0], atol=0.02)


def test_run_without_labels_or_renderings(tmp_path: Path) -> None:
    run = ee.explore(
        None, np.random.default_rng(2).normal(size=(20, 3)), ["input"], out=tmp_path / "r", progress=False
    )
    text = render_report(run, n=2)
    assert text.count('class="chip"') == 3 * 2 * 2
    assert "no labels or metadata" in text and "none (input space)" in text


def test_bad_arguments(image_run: ee.Run, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n=0 must be a positive integer"):
        image_run.report(tmp_path / "r.html", n=0)
    with pytest.raises(ee.EmbeddingExplorerError, match="is a folder; give a file name"):
        image_run.report(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("peak", "step"), [(29.2, 10.0), (3.0, 1.0), (0.4, 0.1), (99.0, 50.0), (7.5, 2.0)])
def test_nice_ticks(peak: float, step: float) -> None:
    assert nice_step(peak) == pytest.approx(step)


@pytest.mark.browser
def test_report_opens_from_disk_in_chromium(image_run: ee.Run, report: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium)")
    pytest.importorskip("playwright.sync_api")
    requests: list[str] = []
    errors: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(report.as_uri())
        headings = page.locator("section.layer h2 .name")
        assert headings.all_inner_texts() == image_run.layers
        for i, layer in enumerate(image_run):
            section = page.locator(f"#layer-{i}")
            section.scroll_into_view_if_needed()
            assert section.is_visible()
            assert section.locator(".chart svg rect.bar").count() == layer.n_components
            assert section.locator(".component").count() == layer.n_components
        # every thumbnail's embedded PNG decodes to its real size
        sizes = page.evaluate(
            """async () => {
              const urls = new Set([...document.querySelectorAll('.tile .img')].map(
                el => getComputedStyle(el).backgroundImage.slice(5, -2)));
              return Promise.all([...urls].map(u => new Promise(ok => {
                const im = new Image(); im.onload = () => ok([im.naturalWidth, im.naturalHeight]);
                im.onerror = () => ok([0, 0]); im.src = u; })));
            }"""
        )
        assert sizes and all(size == [16, 16] for size in sizes)
        tile = page.locator(".tile .img").first.bounding_box()
        assert tile is not None and tile["width"] == pytest.approx(56, abs=1)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "report.png"), full_page=True)
    assert errors == []
    assert {url.split(":", 1)[0] for url in requests} <= {"file", "data"}


def test_a_per_token_run_shows_tokens_in_their_text(tmp_path: Path) -> None:
    """Each extreme token marked within a window of its text; each end's make-up names tokens."""
    from support import TOKEN_TEXTS, make_token_run

    run = make_token_run(tmp_path / "tokens", TOKEN_TEXTS[:12])
    page = render_report(run, n=4)
    samples = run.samples
    low, high = run["layer5"].extremes(0, 4)
    marked = re.findall(r"<mark>([^<]*)</mark>", page)
    for sample_id in [*high, *low]:
        assert samples.token[sample_id] in marked
    tokens = list(samples.token[high])
    top = max(tokens, key=tokens.count)
    assert f"<b>{tokens.count(top)}/4</b> {top!r}".replace("'", "&#x27;") in page
