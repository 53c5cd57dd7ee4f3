"""Extraction overhead: ``ee.explore`` on the demo CNN with all its layers vs the bare forward loop.

Both run over the same DataLoader in the same process, alternating, best of ``--repeats`` (and the
median of the paired ratios). ``--lean`` leaves out the input statistics and model outputs.
Prints the ratio (goal: at most 1.10x). Never asserts. Uses the Fashion-MNIST test images when
installed, random images otherwise.

    .venv/bin/python benchmarks/bench_extraction.py [--limit 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

import torch
from ab import load, ratios
from torch.utils.data import DataLoader, TensorDataset

import embedding_explorer as ee
from embedding_explorer.demos.cnn import DEMO_LAYERS, untrained_cnn
from embedding_explorer.demos.fashion_mnist import MEAN, STD, FashionMNIST

LEAN = {"input_stats": False, "outputs": None}  # --lean: neither recorded (for reference)


def dataset(limit: int) -> torch.utils.data.Dataset:  # type: ignore[type-arg]
    try:
        return FashionMNIST("test", limit=limit)
    except FileNotFoundError:
        g = torch.Generator().manual_seed(0)
        return TensorDataset(
            torch.randn(limit, 1, 28, 28, generator=g), torch.randint(0, 10, (limit,), generator=g)
        )


def bare(model: torch.nn.Module, loader: DataLoader) -> float:  # type: ignore[type-arg]
    start = time.perf_counter()
    with torch.inference_mode():
        for x, _ in loader:
            model(x)
    return time.perf_counter() - start


def ours(model: torch.nn.Module, loader: DataLoader, out: Path, lean: bool = False) -> float:  # type: ignore[type-arg]
    """``ee.explore`` with its defaults (input statistics, model outputs), or without both (``lean``)."""
    start = time.perf_counter()
    ee.explore(
        model,
        loader,
        list(DEMO_LAYERS),
        out=out,
        recompute=True,
        progress=False,
        render=ee.ImageRender(MEAN, STD),
        **LEAN if lean else {},
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lean", action="store_true", help="input_stats=False, outputs=None")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of one ee.explore here")
    args = parser.parse_args()
    model = untrained_cnn(seed=0)
    loader = DataLoader(dataset(args.limit), batch_size=args.batch_size, shuffle=False)
    bare(model, loader)  # warm up
    with tempfile.TemporaryDirectory() as tmp:
        times_bare, times_ours = [], []
        for i in range(args.repeats):
            times_bare.append(bare(model, loader))
            times_ours.append(ours(model, loader, Path(tmp) / f"run{i}", args.lean))
        run = ee.open_run(Path(tmp) / "run0")
        t = run.manifest["timings"]
        if args.profile is not None:
            profiler = cProfile.Profile()
            profiler.runcall(ours, model, loader, Path(tmp) / "profiled", args.lean)
            profiler.dump_stats(args.profile)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    b, o = min(times_bare), min(times_ours)
    n = len(loader.dataset)  # type: ignore[arg-type]
    print(f"extraction of {n:,} images, layers {', '.join(DEMO_LAYERS)} (best of {args.repeats})")
    print(f"  {ratios(times_bare, times_ours)}; {'lean' if args.lean else 'defaults'}, load {load()}")
    print(f"  bare forward loop  {b:6.2f} s  {n / b:8.0f} samples/s")
    print(f"  ee.explore         {o:6.2f} s  {n / o:8.0f} samples/s   ratio {o / b:.2f}x (goal <= 1.10x)")
    print(f"  of which: extract {t['extract_s']:.2f} s, PCA {t['pca_s']:.2f} s, scores {t['scores_s']:.2f} s")


if __name__ == "__main__":
    main()
