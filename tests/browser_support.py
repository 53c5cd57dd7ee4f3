"""What the browser tests share: the runs they serve, the server, Chromium, and a page wrapper.

The runs: a tiny CNN over 500 synthetic 28x28 images (labels 0..4 with names), the same CNN over
the images inverted, another CNN (seed 1) over the same images, and bag-of-words vectors of short
texts (no model). The fixtures that serve them are in ``conftest.py``; every test opens the built
UI (``src/embedding_explorer/static``) in a fresh page, collecting console errors. Screenshots go to
``test-artifacts/screenshots/``. Skipped when Chromium or the built UI is missing (build it with
``npm ci && npm run build`` in ``frontend/``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

import embedding_explorer as ee

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


# ---- small real runs ------------------------------------------------------------------------------
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


# ---- Chromium and the server ----------------------------------------------------------------------
def missing_requirements() -> str | None:
    """Why the browser tests cannot run here (Chromium, the built UI or Playwright missing), or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (install Debian's chromium)"
    if not STATIC_INDEX.exists():
        return f"the UI is not built ({STATIC_INDEX} is missing): run `npm ci && npm run build` in frontend/"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (Python) is not installed"
    return None


@contextlib.contextmanager
def serving(runs: Sequence[ee.Run], *, root_path: str = "") -> Iterator[Any]:
    """The UI server on a free loopback port for the duration (under ``root_path`` when given)."""
    from embedding_explorer.server import serve

    handle = serve(runs, host="127.0.0.1", port=0, block=False, root_path=root_path)
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


IMAGES_LOADED = """(els) => els.every((img) => {
    const r = img.getBoundingClientRect();
    const onScreen = r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth;
    return !onScreen || (img.complete && img.naturalWidth > 0);
})"""


def wait_images(page: Any, locator: Any) -> None:
    """Wait until every <img> under ``locator`` that is on screen has loaded (others are lazy)."""
    locator.first.wait_for()
    page.wait_for_function(IMAGES_LOADED, arg=locator.element_handles())


# ---- a reverse proxy that serves the UI under a path prefix -------------------------------------
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer"}
    | {"transfer-encoding", "upgrade", "host", "content-length"}
)


class ReverseProxy:
    """A small real reverse proxy (Starlette + httpx under uvicorn): ``{prefix}/...`` is forwarded
    to ``upstream/...`` with the prefix stripped, as jupyter-server-proxy and nginx do; any
    other path answers 404 and is kept in ``escaped``."""

    def __init__(self, upstream: str, prefix: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.prefix = prefix.rstrip("/")
        self.escaped: list[str] = []
        self.forwarded: list[str] = []

    def app(self) -> Any:
        import httpx
        from starlette.applications import Starlette
        from starlette.background import BackgroundTask
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse, Response, StreamingResponse
        from starlette.routing import Route

        async def forward(request: Request) -> Response:
            path = request.url.path
            if not path.startswith(self.prefix + "/"):
                self.escaped.append(str(request.url))
                return PlainTextResponse(f"{path} is outside {self.prefix}/", 404)
            inner = path[len(self.prefix) :]
            self.forwarded.append(inner)
            headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
            client = httpx.AsyncClient(timeout=60)  # one per request: closed with its answer
            outgoing = client.build_request(
                request.method,
                self.upstream + inner,
                params=request.url.query,
                headers=headers,
                content=await request.body(),
            )
            answer = await client.send(outgoing, stream=True)
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}

            async def close() -> None:
                await answer.aclose()
                await client.aclose()

            return StreamingResponse(
                answer.aiter_raw(), answer.status_code, headers=kept, background=BackgroundTask(close)
            )

        methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
        return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


@contextlib.contextmanager
def reverse_proxy(upstream: str, prefix: str) -> Iterator[tuple[ReverseProxy, str]]:
    """The proxy on a free loopback port for the duration: it and the prefix's public URL."""
    import socket
    import threading
    import time

    import uvicorn

    proxy = ReverseProxy(upstream, prefix)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(proxy.app(), log_level="warning", ws="none", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test's reverse proxy did not start")
        time.sleep(0.01)
    try:
        yield proxy, f"http://127.0.0.1:{sock.getsockname()[1]}{proxy.prefix}/"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
