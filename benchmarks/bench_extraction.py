"""Extraction overhead: ``ee.explore`` on the demo CNN with all its layers vs the bare forward loop.

Both run over the same DataLoader in the same process, alternating, best of ``--repeats``.
Prints the ratio (goal: at most 1.15x). Never asserts. Uses the Fashion-MNIST test images when
installed, random images otherwise.

    .venv/bin/python benchmarks/bench_extraction.py [--limit 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

import embedding_explorer as ee
from embedding_explorer.demos.cnn import DEMO_LAYERS, untrained_cnn
from embedding_explorer.demos.fashion_mnist import MEAN, STD, FashionMNIST


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


def ours(model: torch.nn.Module, loader: DataLoader, out: Path) -> float:  # type: ignore[type-arg]
    start = time.perf_counter()
    ee.explore(
        model,
        loader,
        list(DEMO_LAYERS),
        out=out,
        recompute=True,
        progress=False,
        render=ee.ImageRender(MEAN, STD),
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = untrained_cnn(seed=0)
    loader = DataLoader(dataset(args.limit), batch_size=args.batch_size, shuffle=False)
    bare(model, loader)  # warm up
    with tempfile.TemporaryDirectory() as tmp:
        times_bare, times_ours = [], []
        for i in range(args.repeats):
            times_bare.append(bare(model, loader))
            times_ours.append(ours(model, loader, Path(tmp) / f"run{i}"))
        run = ee.open_run(Path(tmp) / "run0")
        t = run.manifest["timings"]
    b, o = min(times_bare), min(times_ours)
    n = len(loader.dataset)  # type: ignore[arg-type]
    print(f"extraction of {n:,} images, layers {', '.join(DEMO_LAYERS)} (best of {args.repeats})")
    print(f"  bare forward loop  {b:6.2f} s  {n / b:8.0f} samples/s")
    print(f"  ee.explore         {o:6.2f} s  {n / o:8.0f} samples/s   ratio {o / b:.2f}x (goal <= 1.15x)")
    print(f"  of which: extract {t['extract_s']:.2f} s, PCA {t['pca_s']:.2f} s, scores {t['scores_s']:.2f} s")


if __name__ == "__main__":
    main()
