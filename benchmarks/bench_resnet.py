"""Extraction overhead on a heavier model: a hand-written ResNet-18 at 112 x 112.

``ee.explore`` (layers layer1-4 and fc, image thumbnails) against the bare forward loop over the
same DataLoader in the same process, alternating, best of ``--repeats`` (and the median of the
paired ratios). ``--lean`` leaves out the thumbnails, input statistics and model outputs.
Prints the ratio (goal: at most 1.05x). Random images (no weights or data set to download).
``--profile FILE`` also writes a cProfile of one ``ee.explore`` (read it with
``python -m pstats FILE``). Never asserts.

    .venv/bin/python benchmarks/bench_resnet.py [--samples 1536] [--batch-size 64] [--repeats 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from ab import LEAN, compare, report
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import embedding_explorer as ee

LAYERS = ["layer1", "layer2", "layer3", "layer4", "fc"]
SIDE = 112


class BasicBlock(nn.Module):
    """Two 3 x 3 convolutions with a shortcut (a 1 x 1 convolution where the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18's layout (He et al. 2016): stem, four stages of two basic blocks, pooled fc."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        widths = [64, 128, 256, 512]
        stages, cin = [], 64
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
            cin = w
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def ours(model: nn.Module, loader: DataLoader, out: Path, lean: bool = False) -> None:  # type: ignore[type-arg]
    """``ee.explore`` with its defaults (thumbnails, input statistics, model outputs), or without
    them (``lean``)."""
    options = {"render": "image", **(LEAN if lean else {})}
    ee.explore(model, loader, LAYERS, out=out, recompute=True, progress=False, **options)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=1536)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--lean", action="store_true", help="render='none', input_stats=False, outputs=None")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of one ee.explore here")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = ResNet18().eval()
    g = torch.Generator().manual_seed(0)
    images = torch.rand(args.samples, 3, SIDE, SIDE, generator=g)
    loader = DataLoader(
        TensorDataset(images, torch.randint(0, 10, (args.samples,), generator=g)),
        batch_size=args.batch_size,
        shuffle=False,
    )
    times, timings = compare(
        model,
        loader,
        lambda out: ours(model, loader, out, args.lean),
        repeats=args.repeats,
        profile=args.profile,
    )
    layers = ", ".join(LAYERS)
    print(f"ResNet-18 at {SIDE}x{SIDE}, {args.samples:,} images, batch {args.batch_size}, layers {layers}")
    print(f"  (best of {args.repeats}, {torch.get_num_threads()} torch threads)")
    report(args.samples, times, timings, lean=args.lean, goal=1.05)


if __name__ == "__main__":
    main()
