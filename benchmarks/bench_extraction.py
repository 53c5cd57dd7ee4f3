"""Extraction overhead of small CNNs: ``ee.explore`` against the bare forward loop.

Two models, each over the same DataLoader in the same process, alternating (the median of the
paired ratios, and the best of ``--repeats``):

- ``demo``: the Fashion-MNIST demo CNN over the 10,000 test images, all six demo layers, the
  784-wide raw ``input`` included (its float64 moments are a 784 x 784 update per block of 512
  rows);
- ``issue``: the issue's "small demo-like CNN of 3 x 32 x 32 with 4 layers": the demo's three
  conv blocks and two linear layers over 10,000 colour images of 32 x 32, its four hidden
  layers hooked (``block1``-``block3``, ``fc1``; no input layer).

``--lean`` leaves out the thumbnails, the input statistics and the model outputs (the streaming
pipeline alone). Prints each ratio (goal: at most 1.10x). Never asserts. Uses the Fashion-MNIST
test images when installed, random images otherwise; the issue's CNN always runs on random
images.

    .venv/bin/python benchmarks/bench_extraction.py [--models demo,issue] [--limit 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch
from ab import LEAN, compare, report
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import embedding_explorer as ee
from embedding_explorer.demos.cnn import DEMO_LAYERS, untrained_cnn
from embedding_explorer.demos.fashion_mnist import MEAN, STD, FashionMNIST

ISSUE_LAYERS = ("block1", "block2", "block3", "fc1")
ISSUE_SIDE = 32


class IssueCNN(nn.Module):
    """The demo CNN's layout for 3 x 32 x 32 images: three conv blocks (32 -> 16 -> 8 -> 4) of
    32, 64 and 128 channels, then ``fc1`` (128 features) and ``fc2`` (10 logits)."""

    def __init__(self) -> None:
        super().__init__()
        blocks, cin = [], 3
        for cout in (32, 64, 128):
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                    nn.BatchNorm2d(cout),
                    nn.ReLU(),
                    nn.MaxPool2d(2),
                )
            )
            cin = cout
        self.block1, self.block2, self.block3 = blocks
        self.fc1 = nn.Linear(128 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(x)))
        logits: torch.Tensor = self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))
        return logits


def demo_dataset(limit: int) -> torch.utils.data.Dataset:  # type: ignore[type-arg]
    try:
        return FashionMNIST("test", limit=limit)
    except FileNotFoundError:
        g = torch.Generator().manual_seed(0)
        return TensorDataset(
            torch.randn(limit, 1, 28, 28, generator=g), torch.randint(0, 10, (limit,), generator=g)
        )


def issue_dataset(limit: int) -> torch.utils.data.Dataset:  # type: ignore[type-arg]
    g = torch.Generator().manual_seed(0)
    images = torch.rand(limit, 3, ISSUE_SIDE, ISSUE_SIDE, generator=g)
    return TensorDataset(images, torch.randint(0, 10, (limit,), generator=g))


def setup(which: str, limit: int, batch_size: int) -> tuple[nn.Module, DataLoader, list[str], dict]:  # type: ignore[type-arg]
    """The model, its loader, its layers and its render option."""
    if which == "demo":
        loader = DataLoader(demo_dataset(limit), batch_size=batch_size, shuffle=False)
        return untrained_cnn(seed=0), loader, list(DEMO_LAYERS), {"render": ee.ImageRender(MEAN, STD)}
    torch.manual_seed(0)
    loader = DataLoader(issue_dataset(limit), batch_size=batch_size, shuffle=False)
    return IssueCNN().eval(), loader, list(ISSUE_LAYERS), {"render": "image"}


def explorer(
    model: nn.Module,
    loader: DataLoader,
    layers: list[str],
    extra: dict,
    lean: bool,  # type: ignore[type-arg]
) -> Callable[[Path], None]:
    """``ee.explore`` with its defaults (thumbnails, input statistics, model outputs), or without
    them (``lean``)."""
    options = {**extra, **(LEAN if lean else {})}

    def run(out: Path) -> None:
        ee.explore(model, loader, layers, out=out, recompute=True, progress=False, **options)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="demo,issue", help="demo, issue, or both (comma-separated)")
    parser.add_argument("--limit", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lean", action="store_true", help="render='none', input_stats=False, outputs=None")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of one ee.explore here")
    args = parser.parse_args()
    for which in args.models.split(","):
        if which not in ("demo", "issue"):
            parser.error(f"--models: {which!r} is neither 'demo' nor 'issue'")
        model, loader, layers, extra = setup(which, args.limit, args.batch_size)
        profile = args.profile
        if profile is not None and len(args.models.split(",")) > 1:
            profile = profile.with_name(f"{profile.stem}-{which}{profile.suffix}")
        run = explorer(model, loader, layers, extra, args.lean)
        times, timings = compare(model, loader, run, repeats=args.repeats, profile=profile)
        n = len(loader.dataset)  # type: ignore[arg-type]
        what = "the demo CNN, Fashion-MNIST" if which == "demo" else "the issue's CNN, 3 x 32 x 32"
        print(f"{what}: {n:,} images, layers {', '.join(layers)} (best of {args.repeats})")
        report(n, times, timings, lean=args.lean, goal=1.10)


if __name__ == "__main__":
    main()
