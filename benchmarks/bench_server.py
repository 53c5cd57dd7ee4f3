"""Server latency on a synthetic run of 1,000,000 samples x 5 layers, and page load in Chromium.

Builds the run once (a small random MLP over random inputs, so the data is honest but cheap;
cached in ``--out``), serves it on loopback, and measures p50/p95 over ``--requests`` requests of
the gallery, probe (quantile), histogram and scores endpoints, after one warm-up request each
(the first request per component sorts its scores). Then the time from navigation to a drawn
scatter of every point in Debian's Chromium. Prints figures; never asserts.

    .venv/bin/python benchmarks/bench_server.py [--samples 1000000] [--requests 50]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import httpx
import torch
from chromium import launch
from torch import nn

import embedding_explorer as ee
from embedding_explorer.server import serve

LAYERS = ["input", "1", "3", "5", "6"]


def build_run(samples: int, out: Path) -> ee.Run:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(32, 64),
        nn.ReLU(),
        nn.Linear(64, 64),
        nn.ReLU(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )
    x = torch.randn(samples, 32)
    labels = torch.randint(0, 10, (samples,)).numpy()
    return ee.explore(model, x, LAYERS, out=out, labels=labels, batch_size=8192, name="synthetic-1m")


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]
    )


def measure(client: httpx.Client, urls: list[str]) -> tuple[float, float, float]:
    first = time.perf_counter()
    client.get(urls[0]).raise_for_status()
    cold = time.perf_counter() - first
    times = []
    for url in urls:
        start = time.perf_counter()
        client.get(url).raise_for_status()
        times.append(1000 * (time.perf_counter() - start))
    return 1000 * cold, percentile(times, 50), percentile(times, 95)


def page_load(url: str, points: int) -> float | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path("/usr/bin/chromium").exists():
        return None
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector(
            f"[data-testid=scatter-canvas][data-drawn=true][data-points='{points}']", timeout=120_000
        )
        seconds = time.perf_counter() - start
        browser.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-server"))
    args = parser.parse_args()
    start = time.perf_counter()
    run = build_run(args.samples, args.out)
    ready = time.perf_counter() - start
    print(f"run of {run.n_samples:,} samples x {len(run.layers)} layers ready in {ready:.1f} s")
    handle = serve([run], port=0, block=False)
    base = f"{handle.url.rstrip('/')}/api/runs/synthetic-1m/layers"
    rng = random.Random(0)
    try:
        with httpx.Client(timeout=60) as client:
            endpoints = {
                "gallery (n=8, all PCs)": [f"{base}/5/gallery?n=8"] * args.requests,
                "probe (quantile, n=8)": [
                    f"{base}/5/components/0/quantile?q={rng.random():.4f}&n=8" for _ in range(args.requests)
                ],
                "histogram (30 bins, by label)": [f"{base}/5/components/1/histogram?bins=30&by_label=true"]
                * args.requests,
                "scores (2 PCs, binary)": [f"{base}/5/scores?components=0,1"] * args.requests,
            }
            print(f"{'endpoint':<32}{'first ms':>10}{'p50 ms':>9}{'p95 ms':>9}")
            for name, urls in endpoints.items():
                cold, p50, p95 = measure(client, urls)
                print(f"{name:<32}{cold:>10.1f}{p50:>9.1f}{p95:>9.1f}")
        seconds = page_load(f"{handle.url.rstrip('/')}/?run=synthetic-1m&layer=5&tab=scatter", run.n_samples)
        if seconds is not None:
            print(f"page load to a drawn scatter of {run.n_samples:,} points in Chromium: {seconds:.2f} s")
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
