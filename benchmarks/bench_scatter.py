"""Page to a drawn 1M-point scatter in headless Chromium: this UI against a baseline build.

Builds a run of ``--samples`` samples once (a small random MLP over random inputs, two layers,
cached in ``--out``) and serves it on loopback from two server processes: this checkout's package
(server and built UI) and ``--baseline``, another checkout's ``src`` folder (e.g. the main
checkout before this change, its UI built). Each repeat opens
the Scatter view in a fresh Chromium page and times, inside the page (``performance.now()``, from
the start of navigation), the moment the scatter says ``data-drawn=true`` for every point (set
right after the first frame with the points is drawn); the polling of the test driver, delayed by
slow software-WebGL frames, is left out. The two UIs alternate so that load on the machine hits both
alike. Prints per-UI median, min and max, the bytes of scores fetched, the ratio of the medians,
the load average, and where the time went: the median of each step, in ms from navigation (the
page's resource timings, and the ``ee:scatter-*`` performance marks of a UI that sets them).
Never asserts.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_scatter.py --baseline /path/to/old/checkout/src
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import torch
from chromium import launch
from torch import nn

import embedding_explorer as ee

ROOT = Path(__file__).resolve().parents[1]
RUN = "scatter-1m"
# records when the scatter first says it is drawn (ms since navigation began)
DRAWN_AT = """new MutationObserver((_, observer) => {
  const box = document.querySelector('[data-testid=scatter-canvas][data-drawn=true]');
  if (box && box.dataset.points === String(POINTS)) {
    window.__drawnAt = performance.now();
    observer.disconnect();
  }
}).observe(document, { subtree: true, attributes: true, childList: true });"""
LAYER = "2"
# each step of the load, in ms from navigation (NaN where the UI lacks it)
STEPS_JS = """() => {
  const mark = (name) => performance.getEntriesByName(name)[0]?.startTime ?? NaN;
  const res = performance.getEntriesByType('resource');
  const end = (part) => res.find((e) => e.name.includes(part))?.responseEnd ?? NaN;
  const scripts = res.filter((e) => e.initiatorType === 'script' || e.name.endsWith('.js'));
  return {
    'code loaded': Math.max(...scripts.filter((e) => !e.name.includes('worker')).map((e) => e.responseEnd)),
    'scores asked': res.find((e) => e.name.includes('/scores'))?.startTime ?? NaN,
    'scores arrived': end('/scores'),
    'colours arrived': end('/columns/label/values'),
    'plot created': mark('ee:scatter-plot'),
    'draw started': mark('ee:scatter-draw'),
    'drawn': window.__drawnAt,
  };
}"""


def build_run(samples: int, out: Path) -> ee.Run:
    """A random MLP's hidden layers over ``samples`` random inputs, reused when already built."""
    if (out / "manifest.json").exists():
        return ee.open_run(out)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU())
    x = torch.randn(samples, 16)
    labels = torch.randint(0, 10, (samples,)).numpy()
    layers = ["1", LAYER]
    return ee.explore(model, x, layers, out=out, labels=labels, batch_size=16384, name=RUN, progress=False)


class Server:
    """The run served on loopback by the package in ``src`` (its server and built UI), in a subprocess."""

    def __init__(self, src: Path, run: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"
        code = (
            "import embedding_explorer as ee; from embedding_explorer.server import serve; "
            f"serve([ee.open_run({str(run)!r})], port={port})"
        )
        env = {**os.environ, "PYTHONPATH": str(src)}
        self.process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{self.url}api/runs", timeout=5).raise_for_status()
                return
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server of {src} did not start") from None
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def page_to_drawn(browser: Any, url: str, points: int) -> tuple[float, int, dict[str, float]]:
    """Seconds from navigation to the drawn scatter of ``points`` points, the score bytes fetched,
    and the ms from navigation to each step (:data:`STEPS_JS`)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.add_init_script(DRAWN_AT.replace("POINTS", str(points)))
    fetched: list[int] = []
    page.on(
        "response",
        lambda r: fetched.append(int(r.headers.get("content-length", "0"))) if "/scores" in r.url else None,
    )
    page.goto(f"{url}?run={RUN}&layer={LAYER}&tab=scatter")
    page.wait_for_function("() => window.__drawnAt !== undefined", timeout=120_000)
    seconds = float(page.evaluate("() => window.__drawnAt")) / 1000
    steps = {name: float(ms) for name, ms in page.evaluate(STEPS_JS).items()}
    context.close()
    return seconds, sum(fetched), steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-scatter")
    parser.add_argument("--baseline", type=Path, help="another checkout's src folder to compare with")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    run = build_run(args.samples, args.out)
    print(f"run of {run.n_samples:,} samples ready in {time.perf_counter() - start:.1f} s")
    uis = {"this": ROOT / "src"} | ({"baseline": args.baseline} if args.baseline else {})
    servers = {name: Server(src, args.out) for name, src in uis.items()}
    times: dict[str, list[float]] = {name: [] for name in uis}
    steps: dict[str, list[dict[str, float]]] = {name: [] for name in uis}
    wire: dict[str, int] = {}
    load = [os.getloadavg()[0]]
    try:
        with sync_playwright() as p:
            browser = launch(p)
            for _ in range(args.repeats):
                for name, server in reversed(servers.items()):
                    seconds, wire[name], step = page_to_drawn(browser, server.url, run.n_samples)
                    times[name].append(seconds)
                    steps[name].append(step)
                load.append(os.getloadavg()[0])
            browser.close()
    finally:
        for server in servers.values():
            server.stop()
    print(f"page to drawn, {run.n_samples:,} points, {args.repeats} loads each")
    print(f"{'UI':<10}{'median s':>10}{'min s':>8}{'max s':>8}{'scores MB':>11}")
    for name, ts in times.items():
        median, low, high = statistics.median(ts), min(ts), max(ts)
        print(f"{name:<10}{median:>10.2f}{low:>8.2f}{high:>8.2f}{wire[name] / 1e6:>11.1f}")
    if "baseline" in times:
        ratio = statistics.median(times["baseline"]) / statistics.median(times["this"])
        print(f"baseline / this: {ratio:.2f}x faster")
    print(f"load average (1 min) during the loads: {min(load):.1f}-{max(load):.1f}")
    print("\nwhere the time went, median ms from navigation:")
    print(f"{'step':<18}" + "".join(f"{name:>10}" for name in uis))
    for step_name in steps["this"][0]:
        row = [statistics.median(s[step_name] for s in steps[name]) for name in uis]
        print(f"{step_name:<18}" + "".join(f"{'-' if math.isnan(v) else f'{v:,.0f}':>10}" for v in row))


if __name__ == "__main__":
    main()
