"""Extraction overhead: ``ee.explore`` on the demo CNN with all its layers vs the bare forward loop.

Both run over the same DataLoader in the same process, alternating, best of ``--repeats`` (and the
median of the paired ratios). ``--lean`` leaves out the input statistics and model outputs.
Prints the ratio (goal: at most 1.10x). Never asserts. Uses the Fashion-MNIST test images when
installed, random images otherwise.

    .venv/bin/python benchmarks/bench_extraction.py [--limit 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from ab import LEAN, compare, report
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


def ours(model: torch.nn.Module, loader: DataLoader, out: Path, lean: bool = False) -> None:  # type: ignore[type-arg]
    """``ee.explore`` with its defaults (input statistics, model outputs), or without both (``lean``)."""
    extra = {"render": ee.ImageRender(MEAN, STD), **(LEAN if lean else {})}
    ee.explore(model, loader, list(DEMO_LAYERS), out=out, recompute=True, progress=False, **extra)


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
    times_bare, times_ours, timings = compare(
        model,
        loader,
        lambda out: ours(model, loader, out, args.lean),
        repeats=args.repeats,
        profile=args.profile,
    )
    n = len(loader.dataset)  # type: ignore[arg-type]
    print(f"extraction of {n:,} images, layers {', '.join(DEMO_LAYERS)} (best of {args.repeats})")
    report(n, times_bare, times_ours, timings, lean=args.lean, goal=1.10)


if __name__ == "__main__":
    main()
