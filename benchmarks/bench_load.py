"""Load: many concurrent clients against a real uvicorn server on loopback, mixed endpoints.

Builds two small demo-like runs once in a temporary folder (a small CNN, trained-like and
untrained-like, over random 28x28 images with 10 labels, a metadata column and image
thumbnails), then, for each mode, starts ``uvicorn`` on 127.0.0.1 in its own process, runs
``--clients`` client loops for ``--seconds`` (runs list, gallery, histogram, quantile, scores
binary, thumbnails, associations, CKA), and prints requests/s, p50/p95/p99, errors and the
server's memory (RSS of all its processes) before and after. Modes:

``inline``
    one worker, analyses (CKA, associations) in the common thread pool, as before issue 12;
``heavy``
    one worker, analyses in the server's own bounded threads (:func:`..server.answers.heavy`);
``workers``
    ``--workers`` uvicorn worker processes (each loads the runs, each has its own caches and
    directions), analyses as in ``heavy``.

Every request is timed from the client, which runs in this process: on a machine with few
cores the client's own CPU is part of what is measured. Prints figures; never asserts.

    .venv/bin/python benchmarks/bench_load.py [--seconds 60] [--clients 200] [--modes inline,heavy,workers]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import torch
from torch import nn

import embedding_explorer as ee

HERE = Path(__file__).resolve().parent
LAYERS = ["1", "4", "7"]
RUNS_ENV = "EE_BENCH_LOAD_RUNS"
INLINE_ENV = "EE_BENCH_LOAD_INLINE"


def make_app() -> Any:
    """The app uvicorn serves (``--factory``): the runs named in the environment."""
    from embedding_explorer.server import analysis_routes, create_app, dataset_routes

    if os.environ.get(INLINE_ENV) == "1":  # analyses in the common pool, as before issue 12

        async def common_pool(request: Any, compute: Any, *, ready: bool = False) -> Any:
            import anyio.to_thread

            return await anyio.to_thread.run_sync(compute)

        for module in (analysis_routes, dataset_routes):
            setattr(module, "heavy", common_pool)  # noqa: B010
    paths = os.environ[RUNS_ENV].split(os.pathsep)
    return create_app([ee.open_run(p) for p in paths])


def build_runs(folder: Path, samples: int) -> list[Path]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(samples, 1, 28, 28, generator=g)
    labels = torch.randint(0, 10, (samples,), generator=g).numpy()
    metadata = {"brightness": x.mean(dim=(1, 2, 3)).numpy()}
    paths = []
    for name, seed in (("trained", 0), ("untrained", 1)):
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 32),
        )  # fmt: skip
        out = folder / name
        ee.explore(
            model, x, LAYERS, out=out, name=name, labels=labels, metadata=metadata, render="image",
            n_components=10, batch_size=1024, progress=False,
        )  # fmt: skip
        paths.append(out)
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MiB."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs) / 2**20
    except psutil.NoSuchProcess:
        return float("nan")


def start_server(paths: list[Path], workers: int, inline: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, RUNS_ENV: os.pathsep.join(map(str, paths)), INLINE_ENV: "1" if inline else "0"}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "bench_load:make_app", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError(f"the server at {url} did not start")


def urls(rng: random.Random, samples: int) -> str:
    """One request of the mix (weights as a page's requests go: many thumbnails and probes)."""
    layer = rng.choice(LAYERS)
    run = rng.choice(["trained", "untrained"])
    c = rng.randrange(8)  # layer "1" has 8 channels: 8 components
    kind = rng.choices(
        ["runs", "gallery", "histogram", "quantile", "scores", "thumbs", "render", "assoc", "cka"],
        weights=[5, 15, 15, 5, 10, 20, 10, 10, 10],
    )[0]
    base = f"/api/runs/{run}/layers/{layer}"
    if kind == "runs":
        return "/api/runs"
    if kind == "gallery":
        return f"{base}/gallery?n=8"
    if kind == "histogram":
        return f"{base}/components/{c}/histogram?bins={rng.choice([20, 30, 50])}&by_label=true"
    if kind == "quantile":
        return f"{base}/components/{c}/quantile?q={rng.random():.3f}&n=8"
    if kind == "scores":
        return f"{base}/scores?components=0,1"
    if kind == "thumbs":
        ids = ",".join(str(rng.randrange(samples)) for _ in range(24))
        return f"/api/runs/{run}/renderings?ids={ids}"
    if kind == "render":
        return f"/api/runs/{run}/samples/{rng.randrange(samples)}/render"
    if kind == "assoc":
        return f"{base}/associations"
    return "/api/compare/cka?run_a=trained&run_b=untrained"


async def load(url: str, clients: int, seconds: float, samples: int) -> tuple[list[float], Counter[str], int]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client_loop(k: int, client: httpx.AsyncClient) -> None:
        nonlocal errors
        rng = random.Random(k)
        while time.monotonic() < deadline:
            start = time.perf_counter()
            path = urls(rng, samples)
            try:
                r = await client.get(path)
                if r.status_code != 200:
                    errors[f"{r.status_code} {path.split('?')[0]}"] += 1
            except httpx.HTTPError as e:
                errors[type(e).__name__] += 1
            latencies.append(time.perf_counter() - start)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        await asyncio.gather(*(client_loop(k, client) for k in range(clients)))
    return latencies, errors, len(latencies)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def run_mode(mode: str, paths: list[Path], args: argparse.Namespace) -> None:
    workers = args.workers if mode == "workers" else 1
    server, url = start_server(paths, workers, inline=mode == "inline")
    try:
        before = rss_mb(server.pid)
        t = time.perf_counter()
        warm = [
            "/api/compare/cka?run_a=trained&run_b=untrained",
            *(f"/api/runs/{r}/layers/{lay}/associations" for r in ("trained", "untrained") for lay in LAYERS),
        ]
        for path in warm * workers:  # each worker computes its own (requests spread over them)
            httpx.get(url + path, timeout=600)
        warm_s = time.perf_counter() - t
        start = time.monotonic()
        latencies, errors, total = asyncio.run(load(url, args.clients, args.seconds, args.samples))
        elapsed = time.monotonic() - start
        after = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    label = f"{mode} ({workers} worker{'s' if workers > 1 else ''})"
    print(
        f"{label:<22} {total / elapsed:8.0f} req/s   p50 {percentile(latencies, 50):7.1f} ms   "
        f"p95 {percentile(latencies, 95):7.1f} ms   p99 {percentile(latencies, 99):7.1f} ms   "
        f"errors {sum(errors.values())}/{total}   server RSS {before:.0f} -> {after:.0f} MiB   "
        f"(first CKA and associations: {warm_s:.1f} s)",
        flush=True,
    )
    for what, count in errors.most_common(5):
        print(f"    {count} x {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes in the 'workers' mode")
    parser.add_argument("--modes", default="inline,heavy,workers")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - {"inline", "heavy", "workers"}
    if unknown:
        parser.error(f"--modes: unknown {sorted(unknown)}; choose from inline, heavy, workers")
    load_avg = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{os.cpu_count()} cores, load average {load_avg}; {args.clients} clients, {args.seconds:.0f} s")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        t = time.perf_counter()
        paths = build_runs(Path(tmp), args.samples)
        print(f"built 2 runs of {args.samples} samples in {time.perf_counter() - t:.1f} s")
        for mode in modes:
            run_mode(mode, paths, args)
    print(f"load average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
