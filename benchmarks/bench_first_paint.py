"""First paint of the gallery in headless Chromium on a demo-like run, and what it takes.

The run: the demo's CNN (untrained, seed 0) over the first ``--samples`` Fashion-MNIST test images
(Debian's dataset-fashion-mnist), its six layers, thumbnails and pixel metadata, as the demo makes
them (cached in ``--out``). Served on loopback; each repeat opens the UI in a fresh browser
context (empty cache) at ``--width`` x ``--height`` and waits until the gallery's columns are
drawn and every on-screen thumbnail has loaded (``--query``: the view, block1's gallery by
default). Prints, as medians over ``--repeats``: that time
(ms from navigation), the requests made until then, how many asked for one thumbnail each, and
the bytes that crossed the wire (compressed where the server compressed). Never asserts.

Compare two versions by running it under each (the run is shared):

    PYTHONPATH=src .venv/bin/python benchmarks/bench_first_paint.py
    PYTHONPATH=../old/src .venv/bin/python benchmarks/bench_first_paint.py
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from chromium import launch

import embedding_explorer as ee
from embedding_explorer.demos.cnn import DEMO_LAYERS, untrained_cnn
from embedding_explorer.demos.fashion_mnist import MEAN, STD, FashionMNIST, image_metadata
from embedding_explorer.render import ImageRender
from embedding_explorer.server import serve

# drawn: the columns are there and every thumbnail on screen has loaded (or none is pending)
PAINTED = """() => {
  const columns = document.querySelectorAll('[data-testid=gallery-column]');
  if (!columns.length) return false;
  const thumbs = [...document.querySelectorAll('[data-testid=gallery] [data-testid=sample-thumb]')];
  const onScreen = thumbs.filter((t) => {
    const r = t.getBoundingClientRect();
    return r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth;
  });
  return onScreen.length > 0 && onScreen.every((t) => {
    const img = t.querySelector('img');
    return img && img.complete && img.naturalWidth > 0;
  });
}"""

WIRE_BYTES = """() => performance.getEntriesByType('navigation')
  .concat(performance.getEntriesByType('resource'))
  .reduce((s, e) => s + (e.transferSize || 0), 0)"""


def demo_like_run(out: Path, samples: int) -> ee.Run:
    """The demo's untrained CNN over Fashion-MNIST test images, reused when already built."""
    if (out / "manifest.json").exists():
        return ee.open_run(out)
    test = FashionMNIST("test", limit=samples)
    return ee.explore(
        untrained_cnn(seed=0),
        test,
        list(DEMO_LAYERS),
        out=out,
        name="fashion-cnn-untrained",
        render=ImageRender(mean=MEAN, std=STD),
        metadata=image_metadata(test.images),
        progress=False,
    )


def first_paint(browser: Any, url: str, width: int, height: int) -> dict[str, float]:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.goto(url)
    page.wait_for_function(PAINTED, timeout=60_000, polling=16)
    painted = page.evaluate("() => performance.now()")
    figures = {
        "first_paint_ms": painted,
        "requests": len(urls),
        "thumbnail_requests": sum("/render" in u and "/renderings" not in u for u in urls),
        "wire_kb": page.evaluate(WIRE_BYTES) / 1024,
    }
    context.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("bench-runs/first-paint"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--query", default="?layer=block1", help="the view opened")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    run = demo_like_run(args.out, args.samples)
    handle = serve([run], host="127.0.0.1", port=0, block=False)
    try:
        with sync_playwright() as p:
            browser = launch(p)
            url = handle.url + args.query
            first_paint(browser, url, args.width, args.height)  # warm the server's caches
            results = [first_paint(browser, url, args.width, args.height) for _ in range(args.repeats)]
            browser.close()
    finally:
        handle.stop()
    size = f"{args.width}x{args.height}"
    print(f"{run.name}: {run.n_samples} samples, {len(run.layers)} layers, {size} {args.query}")
    for key in results[0]:
        values = [r[key] for r in results]
        spread = f"(min {min(values):.1f}, max {max(values):.1f})"
        print(f"  {key:>18}: {statistics.median(values):9.1f}  {spread}")


if __name__ == "__main__":
    main()
