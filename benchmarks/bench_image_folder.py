"""A folder of JPEGs through ``explore``, as the command reads it: each file decoded twice in the
main process (for the model, then for its thumbnail) against once, in the main process or in
loader worker processes (``load_data(..., workers=N)``, the command's ``--workers``).

``--n`` JPEGs of 500 x 375 in 10 class folders, read as 224 x 224 crops (the default transform),
through a light CNN (3 strided convolutions, two layers captured): it stands for a forward pass
that is fast next to decoding, as on a GPU. The bare loop decodes each file once in the main
process and runs the model, the way a user's own loop would. Best of ``--repeats``, in one
process, alternating; never asserts.

    .venv/bin/python benchmarks/bench_image_folder.py [--n 1000] [--repeats 3] [--workers 0,1,2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from bench_fingerprint import write_folder
from torch import nn
from torch.utils.data import DataLoader

import embedding_explorer as ee

LAYERS = ["2", "5"]


def light_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 5, stride=4),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ).eval()


def bare(model: nn.Module, files: Any, batch_size: int) -> None:
    with torch.inference_mode():
        for x, _ in DataLoader(files, batch_size=batch_size):
            model(x)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", default="0,1,2", help="loader processes to time, comma-separated")
    args = parser.parse_args()
    model = light_cnn()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        write_folder(folder, args.n, 10)
        files = ee.load_data(folder).data
        out = Path(tmp) / "runs"

        def run(data: Any, **kwargs: Any) -> Callable[[], None]:
            def go() -> None:
                ee.explore(model, data, LAYERS, out=out / "run", recompute=True, progress=False,
                           batch_size=args.batch_size, **kwargs)  # fmt: skip

            return go

        loaded = ee.load_data(folder)
        cases: dict[str, Callable[[], None]] = {
            "bare loop (decode once, forward)": lambda: bare(model, files, args.batch_size),
            "explore, decoded twice in the main process": run(files, **loaded.explore_kwargs()),
        }
        for workers in (int(w) for w in args.workers.split(",")):
            where = "in the main process" if workers == 0 else f"in {workers} worker process(es)"
            cases[f"explore, decoded once {where}"] = run(ee.load_data(folder, workers=workers))
        times: dict[str, list[float]] = {name: [] for name in cases}
        bare(model, files, args.batch_size)  # warm up
        for _ in range(args.repeats):
            for name, fn in cases.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    print(f"{args.n:,} JPEGs 500 x 375 -> 224 x 224, batch {args.batch_size}, light CNN, layers {LAYERS}")
    print(f"  (best of {args.repeats}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores, "
          f"load {' '.join(f'{v:.1f}' for v in os.getloadavg())})")  # fmt: skip
    baseline = min(times[next(iter(times))])
    for name, seconds in times.items():
        best = min(seconds)
        print(f"  {name:52s} {best:6.2f} s  {args.n / best:7.0f} samples/s  {best / baseline:5.2f}x")


if __name__ == "__main__":
    main()
